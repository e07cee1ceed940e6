"""Vector spaces, and the FAISS indexes derived from the vectors SQLite holds.

There is one FAISS index per vector space ("e5", "use") and passage language,
saved under ``faiss/`` next to the database together with the *generation* (a
counter bumped by every write transaction) they reflect. A process that finds
files of another generation (a crash between commit and save, or another process
wrote since) rebuilds them from SQLite, so the two can never disagree for long
and a crash never leaves a half-written index behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from khabar._errors import ModelMismatchError

from ._read import count_passages, language_counts
from ._schema import generation, meta, transaction

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
    fingerprint: str
    dim: int


def read_spaces(db: sqlite3.Connection) -> dict[str, SpaceInfo]:
    raw = meta(db, "spaces")
    return {k: SpaceInfo(**v) for k, v in json.loads(raw).items()} if raw else {}


def bind_spaces(db: sqlite3.Connection, spaces: Sequence[SpaceInfo], *, replace: bool,
                where: Path) -> None:
    """Record which encoders make the vectors, or refuse a different one (see
    :meth:`khabar.store.Store.bind_spaces`); ``where`` names the store in errors."""
    current = read_spaces(db)
    if not replace and count_passages(db) > 0:
        for space in spaces:
            old = current.get(space.name)
            if old is not None and old.fingerprint != space.fingerprint:
                raise ModelMismatchError(
                    f"the store at {where} was built with model {old.fingerprint!r}, "
                    f"but the configured model is {space.fingerprint!r}. "
                    "Set KHABAR_MODEL back to the store's model, or run "
                    "`khabar reindex` to rebuild the vectors with the new one."
                )
    merged = {} if replace else dict(current)
    merged.update({s.name: s for s in spaces})
    payload = json.dumps({k: vars(v) for k, v in merged.items()}, sort_keys=True)
    if payload != meta(db, "spaces"):
        with transaction(db):
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('spaces', ?)",
                       (payload,))


# -- FAISS ------------------------------------------------------------------------------
class _VectorIndex:
    """FAISS indexes of one space, one per passage language, kept with their ids."""

    def __init__(self, dim: int, kind: IndexKind) -> None:
        self.dim = dim
        self.kind = kind
        self.by_lang: dict[str, faiss.Index] = {}

    def _new(self) -> faiss.Index:
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 128
            inner.hnsw.efConstruction = 80
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def add(self, lang: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        if lang not in self.by_lang:
            self.by_lang[lang] = self._new()
        self.by_lang[lang].add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                        ids.astype(np.int64))

    def size(self) -> int:
        return sum(ix.ntotal for ix in self.by_lang.values())


class VectorIndexes:
    """One process's FAISS indexes of a store, every space, and their files.

    ``lock`` guards them; writers hold it from their transaction until the
    indexes mirror it (:meth:`apply`). Every method that reads SQLite takes the
    calling thread's connection.
    """

    def __init__(self, folder: Path, index_type: IndexType, hnsw_threshold: int) -> None:
        self.folder = folder
        self.index_type = index_type
        self.hnsw_threshold = hnsw_threshold
        self.lock = threading.RLock()
        self.by_space: dict[str, _VectorIndex] = {}
        self.loaded_generation = -1
        self.dirty = False

    def kind(self, size: int) -> IndexKind:
        """The index to build for ``size`` passages."""
        if self.index_type in ("flat", "hnsw"):
            return self.index_type
        return "hnsw" if size >= self.hnsw_threshold else "flat"

    # -- searching ----------------------------------------------------------------------
    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Top ``k`` passages of one language by inner product; call :meth:`refresh`
        first."""
        with self.lock:
            index = self.by_space.get(space)
            ix = index.by_lang.get(lang) if index else None
            if ix is None or ix.ntotal == 0 or (allowed is not None and not allowed):
                return []
            params = None
            if allowed is not None:
                sel = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
                params = faiss.SearchParameters(sel=sel)
            k = min(k, ix.ntotal)
            q = np.asarray(query, dtype=np.float32).reshape(1, -1)
            scores, ids = ix.search(q, k, params=params) if params else ix.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # -- keeping up with SQLite ---------------------------------------------------------
    def refresh(self, db: sqlite3.Connection, *, force_rebuild: bool = False) -> None:
        """Bring the indexes up to the database's generation: from the saved files
        when they are of it, else rebuilt from SQLite (and saved)."""
        with self.lock:
            gen = generation(db)
            if gen == self.loaded_generation and not force_rebuild:
                return
            if not force_rebuild and self._load_files(gen):
                self.loaded_generation = gen
                return
            self._rebuild(db)
            self.loaded_generation = gen
            self._save_files(gen)

    def apply(self, db: sqlite3.Connection, gen_before: int, removed: list[int],
              added: list[tuple[int, str]], vectors: dict[str, np.ndarray]) -> None:
        """Mirror a committed write (passages ``removed``, ``added`` as (id, lang)).

        Incremental when this process was up to date before the write, otherwise a
        full refresh. Files are saved by :meth:`flush` (end of a batch); until then
        a crash only costs a rebuild from SQLite at the next open.
        """
        spaces = read_spaces(db)
        hnsw = any(ix.kind == "hnsw" for ix in self.by_space.values())
        if (self.loaded_generation != gen_before or set(spaces) != set(vectors)
                or (removed and hnsw)):
            self.refresh(db)
            return
        for space, vecs in vectors.items():
            index = self.by_space.setdefault(
                space, _VectorIndex(spaces[space].dim, self.kind(count_passages(db))))
            if removed:
                for ix in index.by_lang.values():
                    ix.remove_ids(np.asarray(removed, dtype=np.int64))
            for lang in dict.fromkeys(lang for _, lang in added):
                rows = [i for i, (_, lg) in enumerate(added) if lg == lang]
                ids = np.asarray([added[i][0] for i in rows], dtype=np.int64)
                index.add(lang, ids, np.asarray(vecs, dtype=np.float32)[rows])
        self.loaded_generation = gen_before + 1
        self.dirty = True

    def flush(self, db: sqlite3.Connection) -> None:
        """Save the indexes if writes since the last save changed them."""
        with self.lock:
            if self.dirty and self.loaded_generation == generation(db):
                self._save_files(self.loaded_generation)
            self.dirty = False

    def _rebuild(self, db: sqlite3.Connection) -> None:
        self.by_space = {}
        langs = language_counts(db)
        kind = self.kind(max(langs.values(), default=0))
        for space, info in read_spaces(db).items():
            index = _VectorIndex(info.dim, kind)
            for lang in langs:
                rows = db.execute(
                    "SELECT v.passage_id, v.vec FROM vectors v JOIN passages p"
                    " ON p.id = v.passage_id WHERE v.space = ? AND p.lang = ? ORDER BY p.id",
                    (space, lang)).fetchall()
                if not rows:
                    continue
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                index.add(lang, ids, vecs.reshape(len(rows), info.dim))
            self.by_space[space] = index

    # -- files ----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.folder / "state.json"

    def _load_files(self, gen: int) -> bool:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return False
        if state.get("generation") != gen:
            return False
        indexes: dict[str, _VectorIndex] = {}
        try:
            for space, entry in state["spaces"].items():
                index = _VectorIndex(entry["dim"], entry["kind"])
                for lang, fname in entry["files"].items():
                    index.by_lang[lang] = faiss.read_index(str(self.folder / fname))
                indexes[space] = index
        except (OSError, RuntimeError, KeyError) as exc:
            log.warning("FAISS files unreadable (%s); rebuilding from SQLite", exc)
            return False
        self.by_space = indexes
        return True

    def _save_files(self, gen: int) -> None:
        state: dict[str, object] = {"generation": gen, "spaces": {}}
        for space, index in self.by_space.items():
            files = {}
            for lang, ix in index.by_lang.items():
                fname = f"{space}-{lang}-{gen}.faiss"
                tmp = self.folder / f"{fname}.{os.getpid()}-{threading.get_ident()}.tmp"
                faiss.write_index(ix, str(tmp))
                os.replace(tmp, self.folder / fname)
                files[lang] = fname
            state["spaces"][space] = {"dim": index.dim, "kind": index.kind,  # type: ignore[index]
                                      "files": files}
        # Unique temp names: another process may be saving the same generation.
        tmp = self._state_path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._state_path)
        # Files of older generations are garbage now; readers that still hold them
        # have them open or will rebuild.
        for f in self.folder.glob("*.faiss"):
            if not f.name.endswith(f"-{gen}.faiss"):
                with contextlib.suppress(OSError):
                    f.unlink()

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
                for lang, ix in index.by_lang.items():
                    ids = set(faiss.vector_to_array(ix.id_map).tolist())
                    want = {r[0] for r in db.execute("SELECT id FROM passages WHERE lang = ?",
                                                     (lang,))}
                    if ids != want:
                        faults.append(f"FAISS {name}/{lang} ids differ from SQLite's passages")
        return faults
