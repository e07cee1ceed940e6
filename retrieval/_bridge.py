"""A cross-language lexical bridge: question words → the other language's corpus words.

e5-small does not align rare names across languages (for "Aleppo" it finds
nothing like "حلب"), but USE's word vectors do (Aleppo→حلب 0.86, lawmakers→
لمشرعين 0.82). So each content word of the question is matched against the
vocabulary of the passages in the other language by USE cosine, and the close
matches are searched with BM25 there: BM25's precision on names and numbers,
across languages, without a translation model.

The vocabulary of each language (its words and their USE vectors) follows the
store's change log (``Store.changes_since(mark, content="words")``, each passage's
content words as stored with it): the words of new passages that are new to the
vocabulary are appended. Words whose last passage was deleted stay until more
than :data:`STALE_LIMIT` of the passages seen have been deleted; then the
vocabulary is compacted from the words SQLite holds (their vectors are reused,
nothing is embedded). The vocabulary is saved under ``<store>/lexical/`` with the
mark it reflects (its vectors as a float16 ``.npy`` file, mapped into memory when
loaded) and an open applies what changed since.

Word vectors are cached on disk (``KHABAR_HOME/cache``), keyed by encoder
fingerprint, so only words new to every store are ever embedded.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from threadpoolctl import ThreadpoolController

from khabar._files import save_lock, write_atomic
from khabar.model import Encoder
from khabar.store import ArchiveStore, ChangeMark
from khabar.text import content_words, lexical_tokens, words_of

log = logging.getLogger(__name__)

STALE_LIMIT = 0.25
"""The vocabulary is compacted once more than this fraction of the passages it has
seen were deleted (it cannot tell which words went with them)."""
SAVE_BEHIND = 2000
"""As for BM25: saved in the background once this many passages ahead of its files."""
_FORMAT = 2
"""2: a vocabulary with a graph has no ``.npy`` (its rows are the graph's); 1 is read."""


ANN_MIN = 20_000
"""From this many words a language's vocabulary is matched through an HNSW graph of
its vectors (built once, appended to, saved with the vocabulary) instead of against
every word: a question's ten words cost ~11 ms of CPU against 39k words exactly, and
~1.3 ms through the graph, 99 % of the exact top 3 (docs/benchmarks.md)."""
ANN_M = 32
ANN_EF_CONSTRUCTION = 80
ANN_EF_SEARCH = 64
ANN_EXTRA = 3
"""The graph is asked for this many times ``per_word`` rows, rescored exactly."""


WORD_DTYPE = np.float16
"""How the vocabulary holds its word vectors, in memory and in its files: half of
float32's bytes (a word's cosines move by < 1e-3, docs/benchmarks.md). Products are
taken in float32: a row at a time when rescoring the graph's matches, the whole
vocabulary (kept converted) only while it is matched exactly."""


class _Vocab:
    """One language's words and their vectors (:data:`WORD_DTYPE`): ``base`` (loaded or
    built) and the rows appended since, in ``parts``; ``ann``, once there are
    :data:`ANN_MIN` words, an HNSW graph over every row (fp16 vectors; matches
    rescored from the rows)."""

    def __init__(self, words: list[str], base: np.ndarray, lock: threading.RLock,
                 ann: faiss.Index | None = None) -> None:
        self.words = words
        self.index = dict(zip(words, range(len(words)), strict=True))
        self.base = base
        self.parts: list[np.ndarray] = []
        self.lock = lock  # the bridge's: appends and matches hold it
        self.ann = ann if ann is not None and ann.ntotal == len(words) else None
        self.ann_saved = self.ann is not None  # the files hold this graph
        self.builder: threading.Thread | None = None
        self._exact: np.ndarray | None = None  # every row in float32, while matched exactly

    def add(self, words: list[str], vecs: np.ndarray) -> None:
        self.index.update(zip(words, range(len(self.words), len(self.words) + len(words)),
                              strict=True))
        self.words.extend(words)
        self.parts.append(np.asarray(vecs, WORD_DTYPE))
        if len(self.parts) > 16:  # few matrices to keep
            self.parts = [np.concatenate(self.parts)]
        if self.ann is not None:
            with _one_thread():
                self.ann.add(np.asarray(self.parts[-1][-len(words):], np.float32))
            self.ann_saved = False

    def match(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows closest to each query, best first: (rows, cosines). Call
        with :attr:`lock` held."""
        if self.ann is None and len(self.words) >= ANN_MIN and self.builder is None:
            self.builder = threading.Thread(target=self._build_ann, daemon=True,
                                            name="khabar-bridge-graph")
            self.builder.start()
        if self.ann is None:  # exact until the graph is there
            return _best_rows(queries, [self._float32()], k)
        self._exact = None
        with _one_thread():
            _, found = self.ann.search(queries, min(len(self.words), k * ANN_EXTRA))
        rows = np.maximum(found, 0)  # -1: fewer rows found than asked for
        vecs = np.stack([self.row_at(int(i)) for i in rows.ravel()]).reshape(
            *rows.shape, -1)
        sims = np.einsum("qkd,qd->qk", vecs, queries)
        sims[found < 0] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(rows, order, 1), np.take_along_axis(sims, order, 1)

    def _build_ann(self) -> None:
        """The graph of the rows held now, built on this (background) thread, then
        the rows appended meanwhile, under the lock. Files without a graph (saved
        before it was built) cost this once, never a question's wait."""
        try:
            with self.lock:
                matrices, n = self.matrices(), len(self.words)
            ann = _new_ann(matrices)
            with self.lock, _one_thread():
                if len(self.words) > n:
                    ann.add(np.ascontiguousarray(
                        np.concatenate(self.matrices())[n:], np.float32))
                self.ann, self.ann_saved = ann, False
        except Exception as exc:  # a background thread: the exact match goes on
            log.warning("lexical bridge graph not built: %s", exc)

    def _float32(self) -> np.ndarray:
        """Every row in float32, for the exact match (BLAS has no float16 product),
        converted again only for what was appended since."""
        if self._exact is None or len(self._exact) < len(self.words):
            new, skip = [], 0 if self._exact is None else len(self._exact)
            for m in self.matrices():
                if skip >= len(m):
                    skip -= len(m)
                    continue
                new.append(np.asarray(m[skip:], np.float32))
                skip = 0
            held = [] if self._exact is None else [self._exact]
            self._exact = np.concatenate([*held, *new]) if held or new else np.zeros(
                (0, self._dim()), np.float32)
        return self._exact

    def _dim(self) -> int:
        return next((m.shape[1] for m in (self.base, *self.parts)), 1)

    def row_at(self, i: int) -> np.ndarray:
        if i < len(self.base):
            return np.asarray(self.base[i], np.float32)
        i -= len(self.base)
        for part in self.parts:
            if i < len(part):
                return np.asarray(part[i], np.float32)
            i -= len(part)
        raise IndexError(i)

    def matrices(self) -> list[np.ndarray]:
        return [m for m in (self.base, *self.parts) if len(m)]

    def row(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.row_at(i)


class _GraphRows:
    """A vocabulary's rows read from its graph, which holds them as float16 (the very
    values of the rows it was given: they were float16 already), for a vocabulary
    loaded with a graph and no ``.npy`` of the same numbers beside it (403 bytes a
    passage at 100k passages, docs/benchmarks.md)."""

    dtype = np.dtype(np.float16)
    ndim = 2

    def __init__(self, graph: faiss.Index) -> None:
        self.storage = faiss.downcast_index(graph.storage)
        self.shape = (int(graph.ntotal), int(graph.d))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            rows = self.storage.reconstruct_n(start, max(stop - start, 0))[::step]
        else:
            rows = self.storage.reconstruct(int(key))
        return np.asarray(rows, np.float16)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[:], dtype or self.dtype)


def _new_ann(matrices: list[np.ndarray]) -> faiss.Index:
    dim = next((m.shape[1] for m in matrices), 1)
    ann = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, ANN_M,
                            faiss.METRIC_INNER_PRODUCT)
    ann.hnsw.efConstruction = ANN_EF_CONSTRUCTION
    ann.hnsw.efSearch = ANN_EF_SEARCH
    with _one_thread():
        for m in matrices:
            ann.add(np.ascontiguousarray(m, np.float32))
    return ann


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS on the calling thread (OpenMP's setting is per thread): a question's
    words are too few to share, and threads cost more to wake on busy cores."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _behind(saved: ChangeMark | None, mark: ChangeMark) -> float:
    if saved is None or saved.store != mark.store or saved.epoch != mark.epoch:
        return math.inf
    return (mark.passage - saved.passage) + (mark.removed - saved.removed)


class LexicalBridge:
    """Matches question words to each language's corpus vocabulary. Thread-safe (one
    lock); ``rebuilds`` counts whole vocabulary builds from SQLite (never caused by a
    write), ``compactions`` the dropping of deleted passages' words."""

    def __init__(self, store: ArchiveStore, encoder: Encoder, cache_dir: Path,
                 *, min_sim: float = 0.5, per_word: int = 3, margin: float = 0.1,
                 name_boost: float = 2.0, folder: Path | None = None) -> None:
        self.store = store
        self.encoder = encoder
        self.min_sim = min_sim
        self.per_word = per_word
        self.margin = margin  # keep matches within this cosine of a word's best match
        self.name_boost = name_boost
        self.folder = folder or store.path / "lexical"
        self._lock = threading.RLock()
        self._vocab: dict[str, _Vocab] = {}
        self.mark: ChangeMark | None = None
        self.saved: ChangeMark | None = None
        self._dirty = False
        self._tried_files = False
        self._seen = 0  # passages added since the vocabulary was last built whole
        self._stale = 0  # of them, deleted since
        self._saver: threading.Thread | None = None
        self._recent: dict[str, np.ndarray] = {}  # question words neither held nor cached
        self.rebuilds = 0
        self.compactions = 0
        cache_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^\w.-]", "_", encoder.fingerprint)
        self._name = f"bridge-{safe}"
        self._db = sqlite3.connect(cache_dir / f"words-{safe}.sqlite3", check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS words (word TEXT PRIMARY KEY, vec BLOB)")
        store.keep_saved(self)

    # -- word vectors ---------------------------------------------------------------------
    def _vectors(self, words: list[str]) -> dict[str, np.ndarray]:
        """Vectors of ``words``: from the vocabularies held, else the disk cache, else
        the encoder (then cached)."""
        out: dict[str, np.ndarray] = {}
        for w in words:
            for vocab in self._vocab.values():
                v = vocab.row(w)
                if v is not None:
                    out[w] = v
                    break
        out.update(self._from_disk([w for w in words if w not in out]))
        return out

    def _from_disk(self, words: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(words), 500):
            part = words[i:i + 500]
            rows = self._db.execute(
                f"SELECT word, vec FROM words WHERE word IN ({','.join('?' * len(part))})", part)
            out.update({w: np.frombuffer(v, np.float32) for w, v in rows})
        todo = [w for w in words if w not in out]
        for i in range(0, len(todo), 256):
            part = todo[i:i + 256]
            vecs = self.encoder.embed_passages(part)
            self._db.executemany("INSERT OR REPLACE INTO words VALUES (?, ?)",
                                 [(w, np.asarray(v, np.float32).tobytes())
                                  for w, v in zip(part, vecs, strict=True)])
            self._db.commit()
            out.update(zip(part, vecs, strict=True))
        return out

    # -- keeping up with the store ------------------------------------------------------
    def refresh(self) -> None:
        """Apply what changed in the store since the vocabulary last looked."""
        with self._lock:
            if not self._tried_files:
                self._tried_files = True
                self._load()
            changes = self.store.changes_since(self.mark, content="words")
            if not changes:
                self.mark = changes.mark
                return
            if changes.reset:
                self._build(changes.added)
                self.rebuilds += 1
            else:
                self._stale += len(changes.removed)
                self._append(changes.added)
            self.mark = changes.mark
            self._dirty = True
            if self._stale > STALE_LIMIT * max(self._seen, 1):
                self._compact()
            if _behind(self.saved, self.mark) >= SAVE_BEHIND:
                self._save_soon()

    def _build(self, added: list[tuple[int, str, str]]) -> None:
        """The vocabularies anew from every passage's words."""
        by_lang: dict[str, set[str]] = {}
        for _, lang, words in added:
            by_lang.setdefault(lang, set()).update(words.split())
        ordered = {lang: sorted(words) for lang, words in by_lang.items()}
        vecs = self._vectors(sorted({w for ws in ordered.values() for w in ws}))
        dim = next((len(v) for v in vecs.values()), 1)
        self._vocab = {lang: _Vocab(words, np.stack([vecs[w] for w in words]).astype(WORD_DTYPE)
                                    if words else np.zeros((0, dim), WORD_DTYPE), self._lock)
                       for lang, words in ordered.items()}
        self._seen, self._stale = len(added), 0

    def _append(self, added: list[tuple[int, str, str]]) -> None:
        """The words of new passages that their language's vocabulary lacks."""
        new: dict[str, dict[str, None]] = {}
        for _, lang, words in added:
            vocab = self._vocab.get(lang)
            fresh = new.setdefault(lang, {})
            for w in words.split():
                if vocab is None or w not in vocab.index:
                    fresh[w] = None
        self._seen += len(added)
        todo = [w for fresh in new.values() for w in fresh]
        if not todo:
            return
        vecs = self._vectors(list(dict.fromkeys(todo)))
        for lang, fresh in new.items():
            if not fresh:
                continue
            words = list(fresh)
            matrix = np.stack([vecs[w] for w in words]).astype(WORD_DTYPE)
            vocab = self._vocab.get(lang)
            if vocab is None:
                self._vocab[lang] = _Vocab(words, matrix, self._lock)
            else:
                vocab.add(words, matrix)

    def _compact(self) -> None:
        """Drop the words no passage holds any more: the vocabularies from the words
        SQLite holds, every vector reused."""
        changes = self.store.changes_since(None, content="words")
        self._build(changes.added)
        if changes.mark != self.mark:  # written meanwhile: what was read is newer
            self.mark = changes.mark
        self.compactions += 1

    def _save_soon(self) -> None:
        if self._saver is not None and self._saver.is_alive():
            return
        self._saver = threading.Thread(target=self._save_quietly,
                                       name="khabar-bridge-save", daemon=True)
        self._saver.start()

    def _save_quietly(self) -> None:
        try:
            self.save(force=False)
        except Exception as exc:  # a background thread: log, the next save tries again
            log.warning("lexical bridge files not saved: %s", exc)

    def wait_saved(self) -> None:
        saver = self._saver
        if saver is not None:
            saver.join()

    def wait_graphs(self) -> None:
        """Wait for the vocabularies' graphs being built (tests, benchmarks)."""
        for vocab in list(self._vocab.values()):
            if vocab.builder is not None:
                vocab.builder.join()

    # -- matching -----------------------------------------------------------------------
    def _term_vectors(self, terms: list[str]) -> np.ndarray:
        """The vectors of a question's words: from the vocabularies (most are words
        of the archive) or the word cache, else embedded and kept for this process's
        next questions. USE embeds queries as passages, so these are the vectors
        ``embed_queries`` gives (to float rounding); embedding ten words costs ~3 ms of
        CPU, more than the question itself. Call with the lock held."""
        found: dict[str, np.ndarray] = {}
        for w in dict.fromkeys(terms):
            v = self._recent.get(w)
            for vocab in self._vocab.values():
                if v is not None:
                    break
                v = vocab.row(w)
            if v is not None:
                found[w] = v
        rest = [w for w in dict.fromkeys(terms) if w not in found]
        if rest:
            rows = self._db.execute(
                f"SELECT word, vec FROM words WHERE word IN ({','.join('?' * len(rest))})",
                rest)
            found.update((w, np.frombuffer(v, np.float32)) for w, v in rows)
            new = [w for w in rest if w not in found]
            if new:
                vecs = np.asarray(self.encoder.embed_queries(new), np.float32)
                found.update(zip(new, vecs, strict=True))
                if len(self._recent) > 10_000:
                    self._recent.clear()
                self._recent.update(zip(new, vecs, strict=True))
        return np.stack([np.asarray(found[t], np.float32) for t in terms])

    def expand(self, text: str, lang: str) -> list[tuple[str, str, float]]:
        """(question word, corpus word in ``lang``, cosine) for the close matches."""
        terms = content_words(text)
        if not terms:
            return []
        with self._lock:  # an append (another thread's refresh) moves the graph
            self.refresh()
            vocab = self._vocab.get(lang)
            if vocab is None or not vocab.words:
                return []
            qvecs = self._term_vectors(terms)
            words = vocab.words
            rows, sims = vocab.match(qvecs, self.per_word)
        out = []
        for i, term in enumerate(terms):
            best = float(sims[i, 0])
            out += [(term, words[j], float(s)) for j, s in zip(rows[i], sims[i], strict=True)
                    if s >= max(self.min_sim, best - self.margin)]
        return out

    def query_groups(self, text: str, lang: str) -> list[tuple[float, list[str]]]:
        """Per question word, its matches in ``lang`` as BM25 tokens, weighted by the
        best cosine: alternatives of one word (ضربة, ضربت, تضرب) count once.

        Capitalised words past the first (Aleppo, Konashenkov, Reuters) are names:
        the precise evidence the bridge exists for, so they weigh double.
        """
        names = {w for w in words_of(text)[1:] if w[:1].isupper()}
        groups: dict[str, tuple[float, list[str]]] = {}
        for term, word, sim in self.expand(text, lang):
            weight, tokens = groups.get(term, (0.0, []))
            groups[term] = (max(weight, sim * (self.name_boost if term in names else 1.0)),
                            [*tokens, *lexical_tokens(word)])
        return list(groups.values())

    # -- files ----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.folder / f"{self._name}.json"

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_path.read_text())
            ChangeMark.from_dict(state["mark"])
            if state.get("format") not in (1, _FORMAT) or not isinstance(state["langs"], dict):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state if isinstance(state, dict) else None

    def _load(self) -> bool:
        """Load the saved vocabularies (vectors mapped, not read), however far behind."""
        for _ in range(3):  # another process may replace the files as they are read
            state = self._read_state()
            if state is None:
                return False
            try:
                vocab, old = {}, False
                for lang, entry in state["langs"].items():
                    text = (self.folder / entry["words"]).read_bytes().decode("utf-8")
                    words = text.split("\n") if text else []
                    graph = None
                    if "graph" in entry:  # checked against the words by _Vocab
                        graph = faiss.deserialize_index(  # comes back downcast
                            np.fromfile(self.folder / entry["graph"], np.uint8))
                        graph.hnsw.efSearch = ANN_EF_SEARCH
                    if "vectors" in entry:
                        matrix: np.ndarray | _GraphRows = np.load(
                            self.folder / entry["vectors"], mmap_mode="r")
                    elif graph is not None and graph.ntotal == len(words):
                        matrix = _GraphRows(graph)
                    else:
                        raise ValueError(f"no vectors for {len(words)} words")
                    if matrix.ndim != 2 or len(matrix) != len(words):
                        raise ValueError(f"{len(words)} words, {matrix.shape} vectors")
                    if matrix.dtype != WORD_DTYPE:  # float32 files, from before: once
                        matrix, old = np.asarray(matrix, WORD_DTYPE), True
                    vocab[lang] = _Vocab(words, matrix, self._lock, graph)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                log.info("bridge files changed or unreadable (%s); reading them again", exc)
                continue
            self._vocab = vocab
            self.mark = self.saved = ChangeMark.from_dict(state["mark"])
            self._seen, self._stale = int(state.get("seen", 0)), int(state.get("stale", 0))
            self._dirty = False
            if old:  # saved again in the new width at the next save
                self.saved, self._dirty = None, True
            return True
        log.warning("lexical bridge files unreadable; building from SQLite")
        return False

    def save(self, *, force: bool) -> bool:
        """Save the vocabularies if the files are behind them (unless ``force``, only
        once :data:`SAVE_BEHIND` passages behind). Returns whether files were written."""
        if force and self._saver is not threading.current_thread():
            self.wait_saved()
        with self._lock:
            mark = self.mark
            # A graph built here (the files had none): worth saving, however few
            # passages the vocabulary is ahead of them.
            graph = force and any(v.ann is not None and not v.ann_saved
                                  for v in self._vocab.values())
            if (not self._dirty and not graph) or mark is None:
                return False
            if self.saved is not None and self.saved.covers(mark) and not graph:
                self._dirty = False
                return False
            if not force and _behind(self.saved, mark) < SAVE_BEHIND:
                return False
            snapshot = {lang: (list(v.words), v.matrices(),
                               next((m.shape[1] for m in v.matrices()), 1),
                               faiss.serialize_index(v.ann) if v.ann is not None else None)
                        for lang, v in self._vocab.items()}
            graphs = [v for v in self._vocab.values() if v.ann is not None]
            counts = {"seen": self._seen, "stale": self._stale}
            self._dirty = False
        try:
            written = self._write_files(mark, snapshot, counts)
        except OSError as exc:
            log.warning("lexical bridge files not saved (%s)", exc)
            written = False
        with self._lock:
            if written and (self.saved is None or not self.saved.covers(mark)):
                self.saved = mark
            elif not written and self.mark == mark:
                self._dirty = True
            if written and self.mark == mark:
                for v in graphs:
                    v.ann_saved = v.ann is not None and v.ann.ntotal == len(v.words)
        return written

    def _write_files(self, mark: ChangeMark,
                     snapshot: dict[str, tuple[list[str], list[np.ndarray], int,
                                               np.ndarray | None]],
                     counts: dict[str, int]) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        with save_lock(self.folder, f"{self._name}.lock") as mine:
            if not mine:
                return False
            state = self._read_state()
            graphs = {lang for lang, entry in snapshot.items() if entry[3] is not None}
            if state is not None and ChangeMark.from_dict(state["mark"]).covers(mark) and \
                    state.get("dtype") == np.dtype(WORD_DTYPE).name and \
                    graphs <= {lang for lang, e in state["langs"].items() if "graph" in e}:
                return True  # another process saved as much
            token = f"{mark.epoch}-{mark.passage}-{mark.removed}-{os.getpid()}"
            langs = {}
            for lang, (words, matrices, dim, graph) in snapshot.items():
                stem = f"{self._name}+{re.sub(r'[^A-Za-z0-9_-]', '_', lang)}+{token}"
                write_atomic(self.folder / f"{stem}.words", "\n".join(words).encode("utf-8"))
                langs[lang] = {"words": f"{stem}.words"}
                if graph is not None:  # it holds every row, as float16: no .npy beside
                    write_atomic(self.folder / f"{stem}.hnsw", graph.tobytes())
                    langs[lang]["graph"] = f"{stem}.hnsw"
                else:
                    write_atomic(self.folder / f"{stem}.npy",
                                 _npy_parts(matrices, len(words), dim))
                    langs[lang]["vectors"] = f"{stem}.npy"
            write_atomic(self._state_path, json.dumps(
                {"format": _FORMAT, "mark": mark.to_dict(), "langs": langs,
                 "dtype": np.dtype(WORD_DTYPE).name, **counts}).encode())
            keep = {f for entry in langs.values() for f in entry.values()}
            for f in self.folder.glob(f"{self._name}+*"):  # "+": not in a safe name
                if f.name not in keep:
                    with contextlib.suppress(OSError):
                        f.unlink()
            return True


_CONTROLLER: list[ThreadpoolController] = []


def _blas() -> ThreadpoolController:
    """The process's thread pools, found once (finding them costs ~1 ms; limiting a
    found pool ~0.3 ms)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _best_rows(queries: np.ndarray, matrices: list[np.ndarray], k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows (over the stacked ``matrices``) of highest inner product with each
    query, best first: (rows, scores), each (n_queries, k).

    One BLAS thread: a question's few words against a vocabulary is too small to
    share, and waking OpenBLAS's threads on busy cores cost more than the product
    (docs/benchmarks.md); a partial sort, not a whole one, per matrix.
    """
    rows, scores, offset = [], [], 0
    with _blas().limit(limits=1, user_api="blas"):
        for m in matrices:
            sims = queries @ m.T
            if sims.shape[1] > k:
                part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                sims = np.take_along_axis(sims, part, 1)
            else:
                part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            rows.append(part + offset)
            scores.append(sims)
            offset += len(m)
    rows_all, scores_all = np.concatenate(rows, axis=1), np.concatenate(scores, axis=1)
    order = np.argsort(-scores_all, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(rows_all, order, 1), np.take_along_axis(scores_all, order, 1)


def _npy_parts(matrices: list[np.ndarray], rows: int, dim: int) -> list[bytes | memoryview]:
    """A (rows, dim) ``.npy`` file of :data:`WORD_DTYPE` as parts: its header, then each
    matrix."""
    head = io.BytesIO()
    dtype = np.dtype(WORD_DTYPE).newbyteorder("<")
    np.lib.format.write_array_header_1_0(
        head, {"descr": dtype.str, "fortran_order": False, "shape": (rows, dim)})
    return [head.getvalue(), *(memoryview(np.ascontiguousarray(m, dtype)).cast("B")
                               for m in matrices)]
