"""Rows of an embedding table read from its file as asked, once each, and kept.

Not memory-mapped: a mapping's pages count in the process's resident memory once
touched, and a 4 kB page holds several rows, so a bot that indexes news came to hold
more and more of e5's 190 MB word-embedding table (+50 MB after four posts at 100k
passages; docs/benchmarks.md, "The bot's memory with posts"). Kept here are only the
rows of the tokens met, packed: news in two languages uses a small part of a
100-language vocabulary (17.6k distinct e5 tokens in the 311k of ``../shared``'s news
and Wikipedia: 13 MB here, against 55 MB of mapped pages).
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

import numpy as np

from khabar._errors import ModelError


class FileRows:
    """A 2-D table stored row after row at ``offset`` of ``path``; ``rows[ids]`` gives
    the rows of an array of ids, shaped ``ids.shape + (width,)``. Thread-safe."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int],
                 dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = Path(path), shape, np.dtype(dtype)
        self._start = offset
        self._row = self.dtype.itemsize * shape[1]
        try:
            self._file = self.path.open("rb")
            size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise ModelError(f"cannot read {path}: {exc}") from exc
        if size < offset + self._row * shape[0]:
            raise ModelError(f"{path} is too short for a {shape} table: rebuild the model")
        self._slot = np.full(shape[0], -1, dtype=np.int32)  # row -> its place in _kept
        self._kept = np.empty((1024, shape[1]), dtype=self.dtype)
        self._n = 0
        self._lock = threading.Lock()

    @classmethod
    def safetensors(cls, path: Path, name: str) -> FileRows:
        """The 2-D tensor ``name`` of a .safetensors file."""
        dtypes = {"F16": np.float16, "F32": np.float32}
        try:
            with path.open("rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            entry = header[name]
            start, end = entry["data_offsets"]
            dtype = np.dtype(dtypes[entry["dtype"]])
            shape = tuple(entry["shape"])
            if len(shape) != 2 or end - start != dtype.itemsize * shape[0] * shape[1]:
                raise ValueError(f"{name} has {end - start} bytes for shape {shape}")
        except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            raise ModelError(f"cannot read {name} from {path}: {exc}") from exc
        return cls(path, 8 + size + start, (shape[0], shape[1]), dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.shape[0]):
            raise IndexError(f"a row outside 0..{self.shape[0] - 1}")
        with self._lock:
            new = np.unique(ids[self._slot[ids] < 0])
            if new.size:
                self._read(new)
            return self._kept[self._slot[ids]]

    def _read(self, new: np.ndarray) -> None:
        if self._n + len(new) > len(self._kept):
            grown = np.empty((max(2 * len(self._kept), self._n + len(new)), self.shape[1]),
                             dtype=self.dtype)
            grown[:self._n] = self._kept[:self._n]
            self._kept = grown
        fd, row, start = self._file.fileno(), self._row, self._start
        buf = b"".join(os.pread(fd, row, start + int(i) * row) for i in new)
        if len(buf) != row * len(new):
            raise ModelError(f"{self.path} ends early: rebuild the model")
        self._kept[self._n:self._n + len(new)] = np.frombuffer(
            buf, dtype=self.dtype).reshape(len(new), self.shape[1])
        self._slot[new] = np.arange(self._n, self._n + len(new), dtype=np.int32)
        self._n += len(new)
