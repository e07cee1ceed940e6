"""The vector fields of the passages a question reads, fetched once: every space's
passage vector and sentence vectors in one query for a batch of ids, kept (bounded)
while the store's committed state stays the same.

A question reads the same candidates' vectors several times over (their whole cosines,
their best sentences, closeness to the question's-language top hit, every hit's cosine
in every space at the end), each a query to Milvus: :class:`VectorRows` makes those
one query per batch of passages not yet read (docs/benchmarks.md, *A question's reads
batched*). Only committed passages are kept (ids above the commit may be a write under
way, whose ids a crash gives back), never under the writer lease, and all of it goes
when the state moves (a write elsewhere may have added sentence vectors in place).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

SIZE = 4096
"""Passages kept: a question reads a few hundred (~10 kB each with two spaces, and
their text and tokens: the store keeps those beside the vectors)."""


class VectorRows:
    """Rows of ``id`` and every space's ``v_``/``s_`` fields (float vectors as float32
    arrays), by passage id."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._rows: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._key: object = None
        self.queries = 0  # batches read (for the benchmarks)

    def get(self, ids: Iterable[int], key: object, upto: int, fields: Sequence[str],
            read: Callable[[list[int], Sequence[str]], list[dict[str, Any]]]
            ) -> dict[int, dict[str, Any]]:
        """The rows of ``ids`` (those that exist): kept ones, the rest read by ``read``
        (one call for them all) and kept if at most ``upto`` (committed). ``key``: the
        committed state's (epoch, generation, collection); another drops everything."""
        if key != self._key:
            self._rows.clear()
            self._key = key
        wanted = sorted(set(ids))
        out: dict[int, dict[str, Any]] = {}
        missing = []
        for pid in wanted:
            row = self._rows.get(pid)
            if row is None:
                missing.append(pid)
            else:
                self._rows.move_to_end(pid)
                out[pid] = row
        if missing:
            self.queries += 1
            for r in read(missing, fields):
                pid = int(r["id"])
                row = {f: (np.asarray(r[f], np.float32) if f.startswith("v_") else r[f])
                       for f in fields if f != "id"}
                out[pid] = row
                if pid <= upto:
                    self._rows[pid] = row
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return out

    def kept(self, ids: Iterable[int], key: object) -> dict[int, dict[str, Any]] | None:
        """The kept rows of ``ids`` when every one of them is kept (else None: the
        caller reads them its own way), under the same ``key``."""
        if key != self._key:
            return None
        out = {}
        for pid in set(ids):
            row = self._rows.get(pid)
            if row is None:
                return None
            out[pid] = row
        return out

    def clear(self) -> None:
        self._rows.clear()
        self._key = None
