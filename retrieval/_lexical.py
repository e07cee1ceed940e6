"""BM25 over the normalised, stemmed passages, one index per passage language.

Names, numbers and places ("حلب", "Konashenkov", "2012") are found exactly here
when the dense encoders blur them.

The index is an inverted index in numpy (:class:`_Bm25`: token → the passages
holding it and how often), kept up to date with the store's change log
(``Store.changes_since(mark, content="tokens")``): a write costs the passages it
added or removed, in the writing process and in every reader. Each passage's
tokens were computed when it was stored (``passage_tokens``), so nothing here
analyses the archive's text; only the question's.

Scores are those of bm25s's defaults, the Lucene variant: per query token,
``idf × tf / (tf + k1 × (1 - b + b × dl / avgdl))`` with
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, k1 = 1.5, b = 0.75, over the passages
of one language (a passage without tokens counts with length 1, as bm25s indexes
it). df, N and avgdl are taken at query time from the passages held, so an index
brought up to date scores exactly as one built afresh would.

The index is saved under ``<store>/lexical/`` with the :class:`ChangeMark` it
reflects (when the store closes, at the end of an ingest batch and, in the
background, once it is :data:`SAVE_BEHIND` passages ahead of its files); opening
loads the files and applies what changed since, read from SQLite.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from khabar._files import save_lock, write_atomic
from khabar.store import Allowed, ArchiveStore, ChangeMark, Excluding, Matching
from khabar.text import lexical_tokens

log = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
SAVE_BEHIND = 2000
"""The files are saved (in the background) once the index is this many passages
(added or removed) ahead of them; closing the store saves whenever they are behind."""
DEAD_LIMIT = 0.25
"""A deleted passage's postings stay, masked, until more than this fraction of a
language's passages are deleted; then that language's arrays are compacted."""
TAIL_MIN = 50_000
"""Postings of passages added since the last merge are kept apart (sorted by token)
until there are this many, or an eighth of the merged ones; then they are merged."""
_FORMAT = 1


class _Bm25:
    """The inverted index of one language's passages.

    Passages have *slots* in order of arrival (``ids``, ``lens``, ``alive``).
    Postings (slot, tf) per token id are in a merged part, CSC-like (``indptr``
    into ``docs``/``tfs``), and a tail of recent ones sorted by token id
    (``tail_terms``/``tail_docs``/``tail_tfs``). A removed passage is marked dead;
    :meth:`compact` drops dead slots, their postings and tokens left with none.
    """

    def __init__(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.lens = np.zeros(0, np.int32)
        self.alive = np.zeros(0, np.bool_)
        self.n = 0  # slots in use
        self.slot_of: dict[int, int] = {}  # live passages only
        self.n_alive = 0
        self.total_len = 0  # of the live passages
        self.terms: list[str] = []
        self.term_of: dict[str, int] = {}
        self.indptr = np.zeros(1, np.int64)
        self.docs = np.zeros(0, np.int32)
        self.tfs = np.zeros(0, np.uint16)
        self.tail_terms = np.zeros(0, np.int32)
        self.tail_docs = np.zeros(0, np.int32)
        self.tail_tfs = np.zeros(0, np.uint16)

    # -- changes ------------------------------------------------------------------------
    def add(self, ids: Sequence[int], tokens: Sequence[str]) -> None:
        """Passages with their tokens (space-separated, as stored)."""
        if not ids:
            return
        split = [t.split() for t in tokens]
        lens = np.fromiter((len(s) for s in split), np.int64, len(split))
        start = self.n
        self._grow(start + len(ids))
        self.ids[start:start + len(ids)] = ids
        self.lens[start:start + len(ids)] = np.maximum(lens, 1)  # bm25s indexes [""]
        self.alive[start:start + len(ids)] = True
        self.n += len(ids)
        self.slot_of.update(zip(ids, range(start, start + len(ids)), strict=True))
        self.n_alive += len(ids)
        self.total_len += int(self.lens[start:start + len(ids)].sum())
        term_of = self.term_of
        known = len(term_of)
        flat = [term_of.setdefault(t, len(term_of)) for s in split for t in s]
        if len(term_of) > known:
            self.terms.extend(list(term_of)[known:])
        if not flat:
            return
        slots = np.repeat(np.arange(start, start + len(ids), dtype=np.int64), lens)
        key = np.asarray(flat, np.int64) * self.n + slots  # token-major, then slot
        key, tf = np.unique(key, return_counts=True)
        terms = (key // self.n).astype(np.int32)
        docs = (key % self.n).astype(np.int32)
        tfs = np.minimum(tf, 65535).astype(np.uint16)
        if len(self.tail_terms):  # the tail's slots are all lower: a stable sort keeps
            terms = np.concatenate([self.tail_terms, terms])  # each token's in order
            docs = np.concatenate([self.tail_docs, docs])
            tfs = np.concatenate([self.tail_tfs, tfs])
            order = np.argsort(terms, kind="stable")
            terms, docs, tfs = terms[order], docs[order], tfs[order]
        self.tail_terms, self.tail_docs, self.tail_tfs = terms, docs, tfs
        if len(terms) >= max(TAIL_MIN, len(self.docs) // 8):
            self.merge()

    def _grow(self, size: int) -> None:
        if size <= len(self.ids):
            return
        cap = max(size, 2 * len(self.ids), 1024)
        for name in ("ids", "lens", "alive"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)

    def remove(self, ids: Sequence[int]) -> int:
        """Mark these passages dead (ids not held are ignored); how many were held."""
        gone = 0
        for pid in ids:
            slot = self.slot_of.pop(pid, None)
            if slot is None:
                continue
            self.alive[slot] = False
            self.n_alive -= 1
            self.total_len -= int(self.lens[slot])
            gone += 1
        if gone and self.n - self.n_alive > DEAD_LIMIT * self.n:
            self.compact()
        return gone

    def merge(self) -> None:
        """Fold the tail into the merged postings (linear in their number)."""
        if not len(self.tail_terms):
            return
        n_terms = len(self.terms)
        old = np.zeros(n_terms, np.int64)
        old[:len(self.indptr) - 1] = np.diff(self.indptr)
        new = np.bincount(self.tail_terms, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(old + new, out=indptr[1:])
        size = int(indptr[-1])
        docs = np.empty(size, np.int32)
        tfs = np.empty(size, np.uint16)
        if len(self.docs):  # each token's old postings first, then its new ones
            held = len(self.indptr) - 1
            shift = np.repeat(indptr[:held] - self.indptr[:-1], old[:held])
            at = np.arange(len(self.docs), dtype=np.int64) + shift
            docs[at] = self.docs
            tfs[at] = self.tfs
        starts = np.zeros(n_terms, np.int64)
        np.cumsum(new[:-1], out=starts[1:])
        at = (np.arange(len(self.tail_terms), dtype=np.int64)
              + (indptr[:-1] + old - starts)[self.tail_terms])
        docs[at] = self.tail_docs
        tfs[at] = self.tail_tfs
        self.indptr, self.docs, self.tfs = indptr, docs, tfs
        self.tail_terms = np.zeros(0, np.int32)
        self.tail_docs = np.zeros(0, np.int32)
        self.tail_tfs = np.zeros(0, np.uint16)

    def compact(self) -> None:
        """Drop the dead passages, their postings, and tokens no passage holds."""
        self.merge()
        alive = self.alive[:self.n]
        keep = alive[self.docs]
        kept = np.zeros(len(keep) + 1, np.int64)
        np.cumsum(keep, out=kept[1:])
        indptr = kept[self.indptr]
        remap = (np.cumsum(alive) - 1).astype(np.int32)
        docs, tfs = remap[self.docs[keep]], self.tfs[keep]
        used = np.diff(indptr) > 0
        if not used.all():
            self.terms = [t for t, u in zip(self.terms, used.tolist(), strict=True) if u]
            self.term_of = dict(zip(self.terms, range(len(self.terms)), strict=True))
            indptr = np.concatenate([[0], indptr[1:][used]])
        self.indptr, self.docs, self.tfs = indptr, docs, tfs
        self.ids, self.lens = self.ids[:self.n][alive], self.lens[:self.n][alive]
        self.n = len(self.ids)
        self.alive = np.ones(self.n, np.bool_)
        self.slot_of = dict(zip(self.ids.tolist(), range(self.n), strict=True))

    # -- scoring --------------------------------------------------------------------------
    def token_scores(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(slots, BM25 scores) of the live passages holding ``token``."""
        tid = self.term_of.get(token)
        if tid is None or not self.n_alive:
            return None
        parts_d, parts_t = [], []
        if tid < len(self.indptr) - 1:
            lo, hi = self.indptr[tid], self.indptr[tid + 1]
            parts_d.append(self.docs[lo:hi])
            parts_t.append(self.tfs[lo:hi])
        if len(self.tail_terms):
            lo, hi = np.searchsorted(self.tail_terms, [tid, tid + 1])
            parts_d.append(self.tail_docs[lo:hi])
            parts_t.append(self.tail_tfs[lo:hi])
        docs = np.concatenate(parts_d) if len(parts_d) > 1 else parts_d[0]
        tfs = np.concatenate(parts_t) if len(parts_t) > 1 else parts_t[0]
        if self.n_alive < self.n:
            live = self.alive[docs]
            docs, tfs = docs[live], tfs[live]
        df = len(docs)
        if not df:
            return None
        n = self.n_alive
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        tf = tfs.astype(np.float64)
        norm = K1 * (1 - B + B * self.lens[docs] / (self.total_len / n))
        return docs, idf * tf / (norm + tf)

    # -- files ----------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`from_arrays` reads back (merges the tail first)."""
        self.merge()
        blob = "\n".join(self.terms).encode("utf-8")
        return {"ids": self.ids[:self.n], "lens": self.lens[:self.n],
                "alive": self.alive[:self.n].copy(), "indptr": self.indptr,
                "docs": self.docs, "tfs": self.tfs,
                "terms": np.frombuffer(blob, np.uint8)}

    @classmethod
    def from_arrays(cls, a: Any) -> _Bm25:
        ix = cls()
        ix.ids, ix.lens, ix.alive = a["ids"], a["lens"], a["alive"]
        ix.indptr, ix.docs, ix.tfs = a["indptr"], a["docs"], a["tfs"]
        ix.n = len(ix.ids)
        if not (len(ix.lens) == len(ix.alive) == ix.n and len(ix.docs) == len(ix.tfs)
                == ix.indptr[-1]):
            raise ValueError("inconsistent BM25 arrays")
        live = np.flatnonzero(ix.alive)
        ix.slot_of = dict(zip(ix.ids[live].tolist(), live.tolist(), strict=True))
        ix.n_alive = len(live)
        ix.total_len = int(ix.lens[live].sum())
        blob = a["terms"].tobytes()
        ix.terms = blob.decode("utf-8").split("\n") if blob else []
        ix.term_of = dict(zip(ix.terms, range(len(ix.terms)), strict=True))
        if len(ix.indptr) - 1 > len(ix.terms):
            raise ValueError("inconsistent BM25 vocabulary")
        return ix


def _behind(saved: ChangeMark | None, mark: ChangeMark) -> float:
    """How many passages (added or removed) ``mark`` is ahead of ``saved``."""
    if saved is None or saved.store != mark.store or saved.epoch != mark.epoch:
        return math.inf
    return (mark.passage - saved.passage) + (mark.removed - saved.removed)


class LexicalIndex:
    """BM25 over a store's passages, per language, brought up to date by the store's
    change log at each search. Thread-safe (one lock); share one per store.

    ``rebuilds`` counts whole builds from SQLite (a first open without files, files
    of another store, a reindex): a write never causes one.
    """

    def __init__(self, store: ArchiveStore, folder: Path | None = None) -> None:
        self.store = store
        self.folder = folder or store.path / "lexical"
        self._lock = threading.RLock()
        self._by_lang: dict[str, _Bm25] = {}
        self.mark: ChangeMark | None = None  # what the index holds
        self.saved: ChangeMark | None = None  # what the files this process met hold
        self._dirty = False
        self._tried_files = False
        self._saver: threading.Thread | None = None
        self.rebuilds = 0
        store.keep_saved(self)

    # -- keeping up with the store ------------------------------------------------------
    def refresh(self) -> None:
        """Apply what changed in the store since the index last looked."""
        with self._lock:
            if not self._tried_files:
                self._tried_files = True
                self._load()
            changes = self.store.changes_since(self.mark, content="tokens")
            if not changes:
                self.mark = changes.mark
                return
            if changes.reset:
                self._by_lang = {}
                self.rebuilds += 1
            for pid in changes.removed:  # a passage is in one language: first found
                for ix in self._by_lang.values():
                    if ix.remove([pid]):
                        break
            by_lang: dict[str, tuple[list[int], list[str]]] = {}
            for pid, lang, tokens in changes.added:
                ids, toks = by_lang.setdefault(lang, ([], []))
                ids.append(pid)
                toks.append(tokens)
            for lang, (ids, toks) in by_lang.items():
                self._by_lang.setdefault(lang, _Bm25()).add(ids, toks)
            self.mark = changes.mark
            self._dirty = True
            if _behind(self.saved, self.mark) >= SAVE_BEHIND:
                self._save_soon()

    def _save_soon(self) -> None:
        """Save in the background (a search does not wait for the files)."""
        if self._saver is not None and self._saver.is_alive():
            return
        self._saver = threading.Thread(target=self._save_quietly, name="khabar-bm25-save",
                                       daemon=True)
        self._saver.start()

    def _save_quietly(self) -> None:
        try:
            self.save(force=False)
        except Exception as exc:  # a background thread: log, the next save tries again
            log.warning("BM25 files not saved: %s", exc)

    def wait_saved(self) -> None:
        """Wait for a background save to finish (tests, benchmarks)."""
        saver = self._saver
        if saver is not None:
            saver.join()

    def counts(self) -> dict[str, int]:
        """Passages per language, most first (ties by name): what the store holds, as
        of now, without counting the passages table again (a scan of every passage's
        row: ~2 ms per 10k passages, after every write)."""
        with self._lock:
            self.refresh()
            held = [(lang, ix.n_alive) for lang, ix in self._by_lang.items() if ix.n_alive]
        return dict(sorted(held, key=lambda kv: (-kv[1], kv[0])))

    # -- searching ----------------------------------------------------------------------
    def search(self, lang: str, text: str, k: int, allowed: Allowed | None = None
               ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) in one language; zero scores dropped."""
        tokens = dict.fromkeys(lexical_tokens(text))
        return self.search_groups(lang, [(1.0, [t]) for t in tokens], k, allowed)

    def search_groups(self, lang: str, groups: list[tuple[float, list[str]]], k: int,
                      allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """BM25 where each group of alternative tokens counts once: a passage gets
        ``weight × max(score of the group's tokens)`` per group, summed."""
        groups = [(w, toks) for w, toks in groups if toks]
        if not groups:
            return []
        with self._lock:
            self.refresh()
            ix = self._by_lang.get(lang)
            if ix is None or not ix.n_alive:
                return []
            scores = np.zeros(ix.n, np.float64)
            for w, toks in groups:
                found = [s for t in dict.fromkeys(toks) if (s := ix.token_scores(t)) is not None]
                if len(found) == 1:
                    docs, s = found[0]
                    scores[docs] += w * s  # a token's postings: one per passage
                elif found:
                    best = np.zeros(ix.n, np.float64)
                    for docs, s in found:
                        best[docs] = np.maximum(best[docs], s)
                    scores += w * best
            cand = np.flatnonzero(scores > 0)
            ids = ix.ids[cand]
        if isinstance(allowed, Matching):  # the backend's expression: asked for the best
            return _top_matching(ids, scores[cand], k, allowed)
        if isinstance(allowed, Excluding):  # a chat's scope: drop the few it hides
            keep = np.isin(ids, np.fromiter(allowed.ids, np.int64, len(allowed.ids)),
                           invert=True)
            cand, ids = cand[keep], ids[keep]
        elif allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, np.int64, len(allowed)))
            cand, ids = cand[keep], ids[keep]
        top = scores[cand]
        if len(top) > 4 * k:  # those that can make the top k, ties included
            kth = np.partition(top, len(top) - k)[len(top) - k]
            near = top >= kth
            top, ids = top[near], ids[near]
        order = np.lexsort((ids, -top))[:k]  # best first; ties by id
        return [(int(ids[i]), float(top[i])) for i in order]

    # -- files ----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.folder / "bm25.json"

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_path.read_text())
            ChangeMark.from_dict(state["mark"])
            if state.get("format") != _FORMAT or not isinstance(state["files"], dict):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state if isinstance(state, dict) else None

    def _load(self) -> bool:
        """Load the saved index, however far behind (:meth:`refresh` applies the rest,
        or starts again when the files are of another store or epoch)."""
        for _ in range(3):  # another process may replace the files as they are read
            state = self._read_state()
            if state is None:
                return False
            try:
                by_lang = {}
                for lang, fname in state["files"].items():
                    with np.load(self.folder / fname) as arrays:
                        by_lang[lang] = _Bm25.from_arrays(arrays)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.info("BM25 files changed or unreadable (%s); reading them again", exc)
                continue
            self._by_lang = by_lang
            self.mark = self.saved = ChangeMark.from_dict(state["mark"])
            self._dirty = False
            return True
        log.warning("BM25 files unreadable; building from SQLite")
        return False

    def save(self, *, force: bool) -> bool:
        """Save the index if the files (as far as this process knows) are behind it;
        unless ``force``, only once they are :data:`SAVE_BEHIND` passages behind.
        The arrays are taken under the lock and written without it. Returns whether
        files were written."""
        if force and self._saver is not threading.current_thread():
            self.wait_saved()
        with self._lock:
            mark = self.mark
            if not self._dirty or mark is None:
                return False
            if self.saved is not None and self.saved.covers(mark):
                self._dirty = False
                return False
            if not force and _behind(self.saved, mark) < SAVE_BEHIND:
                return False
            arrays = {lang: ix.arrays() for lang, ix in self._by_lang.items()}
            self._dirty = False
        try:
            written = self._write_files(mark, arrays)
        except OSError as exc:
            log.warning("BM25 files not saved (%s); the next open reads more of SQLite", exc)
            written = False
        with self._lock:
            if written and (self.saved is None or not self.saved.covers(mark)):
                self.saved = mark
            elif not written and self.mark == mark:
                self._dirty = True  # try again at the next save
        return written

    def _write_files(self, mark: ChangeMark, arrays: dict[str, dict[str, np.ndarray]]
                     ) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        with save_lock(self.folder, "bm25.lock") as mine:
            if not mine:
                return False
            state = self._read_state()
            if state is not None and ChangeMark.from_dict(state["mark"]).covers(mark):
                return True  # another process saved as much
            token = f"{mark.epoch}-{mark.passage}-{mark.removed}-{os.getpid()}"
            files = {}
            for lang, a in arrays.items():
                fname = f"bm25-{re.sub(r'[^A-Za-z0-9_-]', '_', lang)}-{token}.npz"
                buf = io.BytesIO()
                np.savez(buf, **a)
                write_atomic(self.folder / fname, buf.getvalue())
                files[lang] = fname
            write_atomic(self._state_path, json.dumps(
                {"format": _FORMAT, "mark": mark.to_dict(), "files": files}).encode())
            keep = set(files.values())
            for f in [*self.folder.glob("bm25-*.npz"), *self.folder.glob("bm25-*.tmp")]:
                if f.name not in keep:
                    with contextlib.suppress(OSError):
                        f.unlink()
            return True


def _top_matching(ids: np.ndarray, scores: np.ndarray, k: int, allowed: Matching
                  ) -> list[tuple[int, float]]:
    """The top ``k`` of the candidates that ``allowed`` selects: the best ones asked
    first, a widening head of the ranking at a time (ties included), until ``k`` match
    or none is left (a filter too broad to list passes most candidates: one round)."""
    kept: list[int] = []
    done, size, n = 0, max(4 * k, 256), len(scores)
    while done < n and len(kept) < k:
        want = min(done + size, n)
        if want < n:  # sort only the head that can hold the next round
            kth = np.partition(scores, n - want)[n - want]
            head = np.flatnonzero(scores >= kth)
        else:
            head = np.arange(n)
        order = head[np.lexsort((ids[head], -scores[head]))]  # best first; ties by id
        part = order[done:]
        ok = allowed.among(ids[part].tolist())
        kept += [int(i) for i in part if int(ids[i]) in ok]
        done, size = len(order), size * 4
    return [(int(ids[i]), float(scores[i])) for i in kept[:k]]
