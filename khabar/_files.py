"""Files written beside the store by the indexes derived from it (FAISS, BM25, the
lexical bridge's vocabulary): whole or not at all, and one saver at a time."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def write_atomic(path: Path, data: bytes | Iterable[bytes | memoryview]) -> None:
    """Write a file whole or not at all: a unique temporary name, fsync, rename.
    ``data`` may come in parts (a large array written piece by piece)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        for part in [data] if isinstance(data, bytes) else data:
            fh.write(part)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def save_lock(folder: Path, name: str = "save.lock") -> Iterator[bool]:
    """Whether this process may save now: one saver at a time per lock file, and a
    saver never waits for another one."""
    if fcntl is None:  # no flock (Windows): saves are rare, take the chance
        yield True
        return
    with open(folder / name, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
