"""Vector spaces, and the FAISS indexes derived from the vectors SQLite holds.

There is one FAISS index per vector space ("e5", "use") and passage language.
Each process keeps its indexes at a :class:`~._changes.ChangeMark` and brings them
up to date with the delta since (its own writes and other processes' alike):
vectors of the passages added, read from SQLite, and ids of those removed. They
are saved under ``faiss/`` with the mark they reflect, at the end of a batch once
they are well behind and when the store is closed; an open loads them and
applies the delta since, so files that are behind (a crash between commit and
save, or another process wrote since) cost only that delta, never a rebuild, and
a crash never leaves a half-written index behind (files are written whole, then
named in ``state.json``, which is replaced atomically).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from khabar._errors import ModelMismatchError
from khabar._files import save_lock, write_atomic

from ._changes import ChangeMark, bump_epoch, current_mark, needs_reset, removed_since
from ._read import count_passages
from ._schema import from_f16, meta, snapshot, transaction
from ._types import Allowed, Excluding, Matching

log = logging.getLogger(__name__)

IndexType = Literal["auto", "flat", "hnsw"]
"""What to build: ``auto`` is flat below the HNSW threshold, HNSW from it on."""
IndexKind = Literal["flat", "hnsw"]
"""What was built."""


# -- spaces -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceInfo:
    """A vector space: which encoder made its vectors, and their width."""

    name: str  # "e5" (the configured model) or "use" (the second encoder)
    fingerprint: str  # the model's, and a suffix (SENTENCE_SUFFIXES) for its sentence way
    dim: int

    @property
    def model(self) -> str:
        """The fingerprint of the model alone."""
        for suffix in SENTENCE_SUFFIXES.values():
            if self.fingerprint.endswith(suffix):
                return self.fingerprint.removesuffix(suffix)
        return self.fingerprint

    @property
    def sentences(self) -> str:
        """How the space's sentence vectors are made: "late" (pooled from the passage's
        run), "int8" (each sentence on its own by the model quantised to int8) or
        "each" (every sentence embedded on its own; stores before either)."""
        return next((way for way, suffix in SENTENCE_SUFFIXES.items()
                     if self.fingerprint.endswith(suffix)), "each")


LATE_SENTENCES = "+late-sentences"
"""Ends a space's fingerprint when its sentence vectors are pooled from the passage's
run (khabar/model/_late.py), which gives other vectors than embedding each sentence:
a store never mixes the two, and a khabar from before knows it is not its own."""
# Not bumped with _int8.GRAPH_INT8's "-3" (7-bit weights), so that "t2" stores keep
# opening and taking passages without a reindex: their vectors already differed between
# CPU classes (8-bit weights saturate without VNNI: cosine 0.99931 mean, 0.99914 min,
# VNNI against emulated Haswell, seed sentences), and "-3"'s are about as near to "-2"'s
# (0.99925 mean, 0.99868 min over 324 real sentences: bench/int8_bits.py), all of them
# ≥ 0.9985 to fp32. Bump it for a change that moves them further.
INT8_SENTENCES = "+int8t2-sentences"
"""Ends a space's fingerprint when its sentence vectors are embedded by the model
quantised to int8, one activation scale a token (khabar/model/_int8.py): other vectors
again, kept apart the same way. (``+int8-sentences``, one scale a batch, was an opt-in
way before: such a store is another model's to this khabar, and ``khabar reindex``
makes its vectors anew.)"""
SENTENCE_SUFFIXES = {"late": LATE_SENTENCES, "int8": INT8_SENTENCES}


def read_spaces(db: sqlite3.Connection) -> dict[str, SpaceInfo]:
    raw = meta(db, "spaces")
    return {k: SpaceInfo(**v) for k, v in json.loads(raw).items()} if raw else {}


_HOW = {"late": "from each passage's run (late chunking)",
        "int8": "by embedding each sentence on its own with the model quantised to int8",
        "each": "by embedding each sentence on its own"}


def refuse_other_spaces(current: Mapping[str, SpaceInfo], spaces: Sequence[SpaceInfo],
                        where: object) -> None:
    """Raise if a store holding passages (``current``: its spaces) is asked to take
    vectors another way: another model, or sentence vectors made another way. Both
    backends bind through this; ``where`` names the store."""
    for space in spaces:
        old = current.get(space.name)
        if old is not None and old.model == space.model and old.sentences != space.sentences:
            raise ModelMismatchError(
                f"the store at {where} has {space.name} sentence vectors made "
                f"{_HOW[old.sentences]}, not {_HOW[space.sentences]}; a store never "
                "mixes them. Run `khabar reindex` to make them all anew.")
        if old is not None and old.fingerprint != space.fingerprint:
            raise ModelMismatchError(
                f"the store at {where} was built with model {old.fingerprint!r}, "
                f"but the configured model is {space.fingerprint!r}. "
                "Set KHABAR_MODEL back to the store's model, or run "
                "`khabar reindex` to rebuild the vectors with the new one.")


def fingerprint_faults(spaces: Mapping[str, SpaceInfo], expected: Iterable[SpaceInfo],
                       n: int) -> list[str]:
    """``check``'s faults for a store of ``n`` passages whose recorded spaces are not
    the configured encoders'."""
    faults = []
    for space in expected:
        have = spaces.get(space.name)
        if n and (have is None or have.fingerprint != space.fingerprint):
            faults.append(f"model fingerprint for {space.name} is "
                          f"{have.fingerprint if have else None!r}, configured "
                          f"{space.fingerprint!r}")
    return faults


def bind_spaces(db: sqlite3.Connection, spaces: Sequence[SpaceInfo], *, replace: bool,
                where: Path) -> None:
    """Record which encoders make the vectors, or refuse a different one (see
    :meth:`khabar.store.Store.bind_spaces`); ``where`` names the store in errors."""
    current = read_spaces(db)
    if not replace and count_passages(db) > 0:
        refuse_other_spaces(current, spaces, where)
    merged = {} if replace else dict(current)
    merged.update({s.name: s for s in spaces})
    payload = json.dumps({k: vars(v) for k, v in merged.items()}, sort_keys=True)
    if payload != meta(db, "spaces"):
        with transaction(db):
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('spaces', ?)",
                       (payload,))
            bump_epoch(db)  # other vectors: readers start again


# -- FAISS ------------------------------------------------------------------------------
HNSW_DELETED_LIMIT = 0.2
"""HNSW graphs cannot drop a vector: a deleted passage stays in the graph, kept out of
results by an ``IDSelector``, until more than this fraction of an index is deleted;
then that index is rebuilt from its own live vectors."""
SAVE_BEHIND = 2000
""":meth:`VectorIndexes.flush` (the end of a batch) saves the files once they are this
many passages (added or removed) behind, or of another epoch; closing the store
saves them whenever they are behind. Files that are behind cost an open only the
delta, read from SQLite, so a batch of a few articles does not rewrite them."""
SAVE_FRACTION = 20
SAVE_BEHIND_MAX = 20_000
"""A large archive saves less often: every ``1/SAVE_FRACTION`` of its passages (at least
:data:`SAVE_BEHIND`, at most this), so the bytes written a passage stay bounded instead
of growing with the archive (each save writes every index whole: ~1.5 GB at 1M)."""


def save_behind(total: int) -> int:
    """How many passages the files may be behind before a batch's end saves them."""
    return max(SAVE_BEHIND, min(total // SAVE_FRACTION, SAVE_BEHIND_MAX))


STORAGE = "fp16"
"""How the saved indexes hold their vectors, named in ``state.json`` (files without it,
saved before layout 4, hold float32: they are read and turned to float16)."""


# Vectors added since an index was built or loaded wait in a small flat index beside
# it until this many (or the next save): a FAISS index read from a file holds its
# vectors in an array with no room to grow, so its first add copies all of them
# (250 ms at 100k passages, seconds at 1M: the first answer after another process's
# article paid it). Searching the small index beside costs microseconds.
FRESH_LIMIT = 20_000


class _VectorIndex:
    """FAISS indexes of one space, one per passage language, kept with their ids."""

    def __init__(self, dim: int, kind: IndexKind) -> None:
        self.dim = dim
        self.kind = kind
        self.by_lang: dict[str, faiss.Index] = {}
        self.fresh: dict[str, faiss.Index] = {}  # recent additions (FRESH_LIMIT)
        # HNSW only: ids still in the graph whose passages were deleted.
        self.deleted: dict[str, set[int]] = {}
        # HNSW only: per language, parameters skipping its deleted ids, their selector,
        # and what that points at.
        self._skip: dict[str, tuple[faiss.SearchParameters, faiss.IDSelector, object]] = {}
        # Where each id sits in an index, (lang, fresh?) -> (the index, its ids sorted,
        # their positions): made when first asked (:meth:`vectors`), dropped when the
        # index changes.
        self._where: dict[tuple[str, bool], tuple[faiss.Index, np.ndarray, np.ndarray]] = {}

    def _new(self, kind: IndexKind | None = None) -> faiss.Index:
        # float16, as SQLite holds the vectors (layout 4): half float32's memory and
        # files, and a flat search reads half the bytes (measured faster, not slower).
        fp16 = faiss.ScalarQuantizer.QT_fp16
        if (kind or self.kind) == "hnsw":
            inner = faiss.IndexHNSWSQ(self.dim, fp16, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 128
            inner.hnsw.efConstruction = 80
        else:
            inner = faiss.IndexScalarQuantizer(self.dim, fp16, faiss.METRIC_INNER_PRODUCT)
        return faiss.IndexIDMap2(inner)

    def float16(self) -> bool:
        """Whether every index holds float16 (files of layout 3 hold float32)."""
        for ix in self.by_lang.values():
            inner = faiss.downcast_index(ix.index)
            if isinstance(inner, faiss.IndexHNSW):
                inner = faiss.downcast_index(inner.storage)
            if not isinstance(inner, faiss.IndexScalarQuantizer):
                return False
        return True

    def add(self, lang: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        main = self.by_lang.get(lang)
        if main is None or main.ntotal == 0:  # building: straight in
            self._where.pop((lang, False), None)
            if main is None:
                main = self.by_lang[lang] = self._new()
            main.add_with_ids(vecs, ids.astype(np.int64))
            return
        fresh = self.fresh.get(lang)
        if fresh is None:
            fresh = self.fresh[lang] = self._new("flat")
        self._where.pop((lang, True), None)
        fresh.add_with_ids(vecs, ids.astype(np.int64))
        if fresh.ntotal >= FRESH_LIMIT:
            self.merge_fresh()

    def merge_fresh(self) -> None:
        """Move the recent additions into the main indexes (before a save)."""
        for lang, fresh in list(self.fresh.items()):
            self._where.pop((lang, False), None)
            self._where.pop((lang, True), None)
            if fresh.ntotal:
                ids = faiss.vector_to_array(fresh.id_map).astype(np.int64)
                vecs = faiss.downcast_index(fresh.index).reconstruct_n(0, fresh.ntotal)
                self.by_lang[lang].add_with_ids(vecs, ids)
            del self.fresh[lang]

    def langs(self) -> list[str]:
        return list(dict.fromkeys([*self.by_lang, *self.fresh]))

    def remove(self, lang: str, ids: Sequence[int]) -> None:
        ix = self.by_lang.get(lang)
        if ix is None or not ids:
            return
        gone = np.asarray(ids, dtype=np.int64)
        self._where.pop((lang, True), None)
        if self.kind == "flat":
            self._where.pop((lang, False), None)
        if lang in self.fresh:
            self.fresh[lang].remove_ids(gone)
        if self.kind == "flat":
            ix.remove_ids(gone)
            return
        held = faiss.vector_to_array(ix.id_map)
        deleted = self.deleted.setdefault(lang, set())
        deleted.update(int(i) for i in gone[np.isin(gone, held)])
        self._skip.pop(lang, None)
        if len(deleted) > HNSW_DELETED_LIMIT * ix.ntotal:
            self._rebuild_lang(lang)

    def _rebuild_lang(self, lang: str) -> None:
        ids, vecs = self.live_vectors(lang)
        del self.by_lang[lang]
        self.fresh.pop(lang, None)
        self.deleted.pop(lang, None)
        self._skip.pop(lang, None)
        if len(ids):
            self.add(lang, ids, vecs)

    def live_vectors(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        """The (ids, vectors) of the live passages of one language, in index order."""
        ix = self.by_lang[lang]
        ids = faiss.vector_to_array(ix.id_map).astype(np.int64)
        vecs = faiss.downcast_index(ix.index).reconstruct_n(0, ix.ntotal)
        deleted = self.deleted.get(lang)
        if deleted:
            keep = ~np.isin(ids, np.fromiter(deleted, np.int64, len(deleted)))
            ids, vecs = ids[keep], vecs[keep]
        fresh = self.fresh.get(lang)
        if fresh is not None and fresh.ntotal:
            ids = np.concatenate([ids, faiss.vector_to_array(fresh.id_map).astype(np.int64)])
            vecs = np.concatenate([vecs, faiss.downcast_index(fresh.index).reconstruct_n(
                0, fresh.ntotal)])
        return ids, vecs

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors held for ``ids`` (live passages of any language), float32, as
        the index stores them: the float16 that SQLite holds too (FAISS rounds a
        float16 tie otherwise than numpy now and then: ~1e-4 of the values, by one
        unit in the last place). Ids not held are left out."""
        want = np.unique(np.asarray(ids, dtype=np.int64))
        out: dict[int, np.ndarray] = {}
        for lang in self.langs():
            for is_fresh in (False, True):
                if not len(want):
                    return out
                ix = (self.fresh if is_fresh else self.by_lang).get(lang)
                if ix is None or ix.ntotal == 0:
                    continue
                found, pos = self._positions(lang, is_fresh, ix, want)
                deleted = None if is_fresh else self.deleted.get(lang)
                if deleted and len(found):
                    live = ~np.isin(found, np.fromiter(deleted, np.int64, len(deleted)))
                    found, pos = found[live], pos[live]
                if not len(found):
                    continue
                vecs = faiss.downcast_index(ix.index).reconstruct_batch(pos)
                out.update(zip(found.tolist(), vecs, strict=True))
                want = want[~np.isin(want, found)]
        return out

    def _positions(self, lang: str, is_fresh: bool, ix: faiss.Index, want: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The ids of ``want`` (sorted) that ``ix`` holds, and their positions in it."""
        cached = self._where.get((lang, is_fresh))
        if cached is None or cached[0] is not ix or len(cached[1]) != ix.ntotal:
            held = faiss.vector_to_array(ix.id_map).astype(np.int64)
            order = np.argsort(held, kind="stable")
            cached = self._where[(lang, is_fresh)] = (ix, held[order], order)
        _, ordered, order = cached
        at = np.minimum(np.searchsorted(ordered, want), len(ordered) - 1)
        hit = ordered[at] == want
        return want[hit], order[at[hit]].astype(np.int64)

    def converted(self, kind: IndexKind) -> _VectorIndex:
        """The same vectors in an index of another kind."""
        other = _VectorIndex(self.dim, kind)
        for lang in self.langs():
            ids, vecs = self.live_vectors(lang)
            if len(ids):
                other.add(lang, ids, vecs)
        return other

    def live(self, lang: str) -> int:
        ix = self.by_lang.get(lang)
        fresh = self.fresh.get(lang)
        return ((ix.ntotal - len(self.deleted.get(lang, ())) if ix is not None else 0)
                + (fresh.ntotal if fresh is not None else 0))

    def counts(self) -> dict[str, int]:
        return {lang: self.live(lang) for lang in self.langs()}

    def size(self) -> int:
        return sum(self.counts().values())

    def ids(self, lang: str) -> set[int]:
        ix = self.by_lang.get(lang)
        held = set(faiss.vector_to_array(ix.id_map).tolist()) if ix is not None else set()
        fresh = self.fresh.get(lang)
        recent = set(faiss.vector_to_array(fresh.id_map).tolist()) if fresh is not None \
            else set()
        return (held - self.deleted.get(lang, set())) | recent

    def search(self, lang: str, queries: np.ndarray, k: int, allowed: Allowed | None
               ) -> list[list[tuple[int, float]]]:
        """The top ``k`` (id, score) of each query (a row of ``queries``)."""
        if isinstance(allowed, Matching):  # another backend's expression: FAISS needs ids
            allowed = allowed.ids()
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        ix = self.by_lang.get(lang)
        if ix is None or self.live(lang) == 0 or (allowed is not None and not allowed):
            return [[] for _ in q]
        deleted = self.deleted.get(lang)
        params: faiss.SearchParameters | None = None
        keep: object = None  # what a selector points at, alive through the search
        if isinstance(allowed, Excluding) and allowed.ids:
            # A chat's scope: the few passages it hides, or the graph's deleted ones.
            params, keep = _excluding(allowed.ids, self._deleted(lang) if deleted else None)
        elif allowed is not None and not isinstance(allowed, Excluding):
            if deleted:
                allowed = allowed - deleted
                if not allowed:
                    return [[] for _ in q]
            sel = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=sel)
        elif deleted:
            self._deleted(lang)
            params = self._skip[lang][0]
        found = self._search_one(ix, q, k, params)
        fresh = self.fresh.get(lang)
        if fresh is None or fresh.ntotal == 0:  # ties by id, as below
            return [sorted(hits, key=lambda hit: (-hit[1], hit[0])) for hits in found]
        # The recent additions: never deleted-but-held (removed outright), so only the
        # caller's filter applies.
        if isinstance(allowed, Excluding):
            params, keep = _excluding(allowed.ids) if allowed.ids else (None, None)
        else:
            params = None if allowed is None else faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64)))
        recent = self._search_one(fresh, q, k, params)
        del keep
        return [sorted(a + b, key=lambda hit: (-hit[1], hit[0]))[:k]
                for a, b in zip(found, recent, strict=True)]

    def _deleted(self, lang: str) -> faiss.IDSelector:
        """The selector of ``lang``'s deleted-but-held ids, made once per change."""
        if lang not in self._skip:
            batch = faiss.IDSelectorBatch(np.fromiter(self.deleted[lang], np.int64))
            sel = faiss.IDSelectorNot(batch)
            self._skip[lang] = (faiss.SearchParameters(sel=sel), batch, sel)
        return self._skip[lang][1]

    @staticmethod
    def _search_one(ix: faiss.Index, q: np.ndarray, k: int,
                    params: faiss.SearchParameters | None) -> list[list[tuple[int, float]]]:
        if ix.ntotal == 0:
            return [[] for _ in q]
        k = min(k, ix.ntotal)
        scores, ids = ix.search(q, k, params=params) if params else ix.search(q, k)
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                for row_ids, row_scores in zip(ids, scores, strict=True)]


def _excluding(ids: frozenset[int], deleted: faiss.IDSelector | None = None
               ) -> tuple[faiss.SearchParameters, object]:
    """Search parameters that skip ``ids`` (and the ``deleted`` selector's), with the
    selectors they point at: FAISS's Python objects do not keep each other alive, so
    the caller holds the second while searching."""
    hidden = faiss.IDSelectorBatch(np.fromiter(ids, np.int64, len(ids)))
    either = hidden if deleted is None else faiss.IDSelectorOr(hidden, deleted)
    sel = faiss.IDSelectorNot(either)
    return faiss.SearchParameters(sel=sel), (hidden, either, sel, deleted)


class VectorIndexes:
    """One process's FAISS indexes of a store, every space, and their files.

    They hold the passages of the store as of :attr:`mark` (see ._changes) and are
    brought up to date by :meth:`refresh`: only the delta since, read from SQLite
    (vectors of the passages added, ids of those removed), whoever wrote it; a
    rebuild happens only when the epoch changed (reindexing), when nothing usable is
    loaded, or when asked. Files are saved with the mark they reflect, so an open
    loads them and applies the delta since.

    ``lock`` guards the indexes. Every method that reads SQLite takes the calling
    thread's connection.
    """

    def __init__(self, folder: Path, index_type: IndexType, hnsw_threshold: int) -> None:
        self.folder = folder
        self.index_type = index_type
        self.hnsw_threshold = hnsw_threshold
        self.lock = threading.RLock()
        self.by_space: dict[str, _VectorIndex] = {}
        self.mark: ChangeMark | None = None  # what the indexes hold
        self.saved: ChangeMark | None = None  # what the files this process met hold
        self.dirty = False  # changed since loaded or saved
        self.rebuilds = 0  # whole rebuilds from SQLite, for tests and benchmarks

    def kind(self, size: int) -> IndexKind:
        """The index to build when the largest language has ``size`` passages."""
        if self.index_type in ("flat", "hnsw"):
            return self.index_type
        return "hnsw" if size >= self.hnsw_threshold else "flat"

    def built_kind(self) -> IndexKind:
        """The kind of index held now (what would be built for an empty store when
        none is)."""
        for index in self.by_space.values():
            return index.kind
        return self.kind(0)

    # -- searching ----------------------------------------------------------------------
    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """Top ``k`` passages of one language by inner product; call :meth:`refresh`
        first."""
        return self.search_many(space, lang, query, k, allowed)[0]

    def search_many(self, space: str, lang: str, queries: np.ndarray, k: int,
                    allowed: Allowed | None = None, *, one_thread: bool = False
                    ) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``queries``, in one FAISS call (one call of
        many queries costs about what one of a single query does); ``one_thread``
        keeps FAISS on the calling thread (see :func:`_one_thread`)."""
        with self.lock, _one_thread() if one_thread else contextlib.nullcontext():
            index = self.by_space.get(space)
            if index is None:
                return [[] for _ in range(1 if np.ndim(queries) == 1 else len(queries))]
            return index.search(lang, queries, k, allowed)

    def vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors the indexes hold for ``ids`` (see :meth:`_VectorIndex.vectors`);
        call :meth:`refresh` first."""
        with self.lock:
            index = self.by_space.get(space)
            return index.vectors(ids) if index is not None and len(ids) else {}

    # -- keeping up with SQLite ---------------------------------------------------------
    def refresh(self, db: sqlite3.Connection, *, force_rebuild: bool = False) -> None:
        """Bring the indexes up to the database: the delta since :attr:`mark`, after
        loading the saved files when nothing is loaded yet; a rebuild from SQLite
        when that cannot be (or ``force_rebuild``), and then the files are saved."""
        with self.lock:
            now = current_mark(db)
            if now == self.mark and not force_rebuild:
                return
            rebuilds = self.rebuilds
            if force_rebuild:
                self._rebuild(db)
            else:
                if self.mark is None:
                    self._load_files(db, now)
                self._catch_up(db)
            rebuilt = self.rebuilds != rebuilds
        if rebuilt:  # worth keeping for the next process at once
            self.save(force=True)

    def _catch_up(self, db: sqlite3.Connection) -> None:
        """Apply what changed since :attr:`mark`, read in one snapshot."""
        with snapshot(db):
            now = current_mark(db)
            if needs_reset(db, self.mark, now):
                self._rebuild(db)
                return
            assert self.mark is not None
            if now == self.mark:
                return
            spaces = read_spaces(db)
            removed: dict[str, list[int]] = {}
            for pid, lang in removed_since(db, self.mark):
                removed.setdefault(lang, []).append(pid)
            for name, info in spaces.items():
                index = self.by_space.get(name)
                if index is None:
                    index = self.by_space[name] = _VectorIndex(info.dim, self.built_kind())
                for lang, gone in removed.items():
                    index.remove(lang, gone)
                for lang, (ids, vecs) in _vectors_after(db, name, info.dim,
                                                        self.mark.passage).items():
                    index.add(lang, ids, vecs)
            self.mark = now
            self.dirty = True
            self._settle_kind()

    def _settle_kind(self) -> None:
        """Convert the indexes when the store grew (or shrank) across the HNSW
        threshold: the kind is always what a rebuild would pick."""
        counts: dict[str, int] = {}
        for index in self.by_space.values():
            for lang, n in index.counts().items():
                counts[lang] = max(counts.get(lang, 0), n)
        want = self.kind(max(counts.values(), default=0))
        for name, index in list(self.by_space.items()):
            if index.kind != want:
                log.info("FAISS %s: %s index becomes %s", name, index.kind, want)
                self.by_space[name] = index.converted(want)
                self.dirty = True
                self.saved = None  # the files hold the other kind

    def _rebuild(self, db: sqlite3.Connection) -> None:
        """Every index anew from SQLite, in one snapshot."""
        with snapshot(db):
            now = current_mark(db)
            loaded: dict[str, tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]] = {
                name: (info.dim, _vectors_after(db, name, info.dim, 0))
                for name, info in read_spaces(db).items()}
        counts: dict[str, int] = {}
        for _, by_lang in loaded.values():
            for lang, (ids, _) in by_lang.items():
                counts[lang] = max(counts.get(lang, 0), len(ids))
        kind = self.kind(max(counts.values(), default=0))
        self.by_space = {}
        for name, (dim, by_lang) in loaded.items():
            index = self.by_space[name] = _VectorIndex(dim, kind)
            for lang, (ids, vecs) in by_lang.items():
                index.add(lang, ids, vecs)
        self.mark = now
        self.dirty = True
        self.rebuilds += 1

    # -- files ----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.folder / "state.json"

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_path.read_text())
            ChangeMark.from_dict(state["mark"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state if isinstance(state, dict) else None

    def _load_files(self, db: sqlite3.Connection, now: ChangeMark) -> bool:
        """Load the saved indexes when they are of this store and epoch (however far
        behind): :meth:`_catch_up` applies the rest."""
        for _ in range(3):  # another process may replace the files as they are read
            state = self._read_state()
            if state is None:
                return False
            mark = ChangeMark.from_dict(state["mark"])
            if needs_reset(db, mark, now):
                return False
            indexes: dict[str, _VectorIndex] = {}
            try:
                for space, entry in state["spaces"].items():
                    index = _VectorIndex(entry["dim"], entry["kind"])
                    for lang, fname in entry["files"].items():
                        index.by_lang[lang] = faiss.read_index(str(self.folder / fname))
                    index.deleted = {lang: set(ids)
                                     for lang, ids in entry.get("deleted", {}).items()}
                    indexes[space] = index
            except (OSError, RuntimeError, KeyError, TypeError) as exc:
                log.info("FAISS files changed or unreadable (%s); reading them again", exc)
                continue
            self.by_space = indexes
            self.mark = self.saved = mark
            self.dirty = False
            for name, index in list(indexes.items()):
                if not index.float16():  # files saved before layout 4: once, in memory
                    self.by_space[name] = index.converted(index.kind)
                    self.dirty, self.saved = True, None
            self._settle_kind()  # the index type or threshold may be set otherwise now
            return True
        log.warning("FAISS files unreadable; rebuilding from SQLite")
        return False

    def total(self) -> int:
        """Passages in the (largest) space's main indexes: the archive's size."""
        return max((sum(ix.ntotal for ix in index.by_lang.values())
                    for index in self.by_space.values()), default=0)

    def flush(self) -> None:
        """Save the indexes at the end of a batch when the files are far behind."""
        self.save(force=False)

    def save(self, *, force: bool) -> bool:
        """Save the indexes if they changed and the files (as far as this process
        knows) do not hold as much; unless ``force``, only when the files are of
        another epoch or :data:`SAVE_BEHIND` passages behind.

        The indexes are serialised holding the lock (a copy in memory) and written
        without it, so searches go on meanwhile. Returns whether files were written.
        """
        with self.lock:
            mark = self.mark
            if not self.dirty or mark is None:
                return False
            saved = self.saved
            if saved is not None and saved.covers(mark):
                self.dirty = False
                return False
            if not force and saved is not None and saved.store == mark.store \
                    and saved.epoch == mark.epoch and (mark.passage - saved.passage) \
                    + (mark.removed - saved.removed) < save_behind(self.total()):
                return False
            for index in self.by_space.values():  # the copy is paid here, not by a question
                index.merge_fresh()
            blobs = {(space, lang): faiss.serialize_index(ix)
                     for space, index in self.by_space.items()
                     for lang, ix in index.by_lang.items()}
            spaces = {space: {"dim": index.dim, "kind": index.kind, "storage": STORAGE,
                              "deleted": {lang: sorted(ids)
                                          for lang, ids in index.deleted.items() if ids}}
                      for space, index in self.by_space.items()}
            self.dirty = False
        try:
            written = self._write_files(mark, blobs, spaces)
        except OSError as exc:
            log.warning("FAISS files not saved (%s); the next open reads more of SQLite",
                        exc)
            written = False
        with self.lock:
            if written:
                self.saved = mark
            elif self.mark == mark:
                self.dirty = True  # try again at the next flush
        return written

    def _write_files(self, mark: ChangeMark, blobs: dict[tuple[str, str], np.ndarray],
                     spaces: dict[str, dict[str, Any]]) -> bool:
        """Write the files and then, atomically, the state naming them; only one
        process saves at a time (another one saving meanwhile: this save is skipped)."""
        with save_lock(self.folder) as mine:
            if not mine:
                return False
            state = self._read_state()
            if state is not None and ChangeMark.from_dict(state["mark"]).covers(mark) \
                    and {k: (v.get("kind"), v.get("storage")) for k, v in state["spaces"].items()} \
                    == {k: (v["kind"], v["storage"]) for k, v in spaces.items()}:
                return True  # another process saved as much
            token = f"{mark.epoch}-{mark.passage}-{mark.removed}-{os.getpid()}"
            files: dict[str, dict[str, str]] = {space: {} for space in spaces}
            for (space, lang), blob in blobs.items():
                fname = f"{space}-{lang}-{token}.faiss"
                write_atomic(self.folder / fname, blob.tobytes())
                files[space][lang] = fname
            new = {"mark": mark.to_dict(),
                   "spaces": {space: {**entry, "files": files[space]}
                              for space, entry in spaces.items()}}
            write_atomic(self._state_path, json.dumps(new).encode())
            # Files no state names are garbage now; a reader that read the old state
            # and finds its files gone reads the new one (see _load_files).
            keep = {f for by_lang in files.values() for f in by_lang.values()}
            for f in [*self.folder.glob("*.faiss"), *self.folder.glob("*.tmp")]:
                if f.name not in keep:
                    with contextlib.suppress(OSError):
                        f.unlink()
            return True

    # -- integrity --------------------------------------------------------------------------
    def faults(self, db: sqlite3.Connection, spaces: Iterable[str], n: int) -> list[str]:
        """Where the loaded indexes disagree with SQLite's ``n`` passages."""
        faults: list[str] = []
        for name in spaces:
            index = self.by_space.get(name)
            size = index.size() if index else 0
            if size != n:
                faults.append(f"FAISS {name} index holds {size} vectors for {n} passages")
            elif index:
                for lang in index.langs():
                    want = {r[0] for r in db.execute("SELECT id FROM passages WHERE lang = ?",
                                                     (lang,))}
                    if index.ids(lang) != want:
                        faults.append(f"FAISS {name}/{lang} ids differ from SQLite's passages")
        return faults


def _vectors_after(db: sqlite3.Connection, space: str, dim: int, after: int
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """language -> (ids, vectors) of the passages above id ``after`` that have a
    ``space`` vector of the right width, by id (a wrong one is left out: ``check``
    names it)."""
    rows = db.execute(
        "SELECT v.passage_id, p.lang, v.vec FROM vectors v JOIN passages p"
        " ON p.id = v.passage_id WHERE v.space = ? AND v.passage_id > ?"
        " ORDER BY v.passage_id", (space, after)).fetchall()
    width = dim * 2  # float16
    by_lang: dict[str, tuple[list[int], list[bytes]]] = {}
    bad = 0
    for pid, lang, vec in rows:
        if len(vec) != width:
            bad += 1
            continue
        ids, vecs = by_lang.setdefault(lang, ([], []))
        ids.append(pid)
        vecs.append(vec)
    if bad:
        log.warning("%d %s vector(s) of the wrong width left out of FAISS", bad, space)
    return {lang: (np.asarray(ids, dtype=np.int64),
                   from_f16(b"".join(vecs)).reshape(len(ids), dim))
            for lang, (ids, vecs) in by_lang.items()}


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS on the calling thread alone (OpenMP's setting is per thread). A search
    of the few passages of one article is over in microseconds; waking OpenMP's
    threads costs more, far more when other processes hold the cores (measured on a
    busy 2-core machine: 19 ms a near-duplicate search, against 0.05 ms)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
