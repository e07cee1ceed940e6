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
mark it reflects (its vectors as a ``.npy`` file, mapped into memory when loaded)
and an open applies what changed since.

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
from pathlib import Path
from typing import Any

import numpy as np

from khabar._files import save_lock, write_atomic
from khabar.model import Encoder
from khabar.store import ChangeMark, Store
from khabar.text import content_words, lexical_tokens, words_of

log = logging.getLogger(__name__)

STALE_LIMIT = 0.25
"""The vocabulary is compacted once more than this fraction of the passages it has
seen were deleted (it cannot tell which words went with them)."""
SAVE_BEHIND = 2000
"""As for BM25: saved in the background once this many passages ahead of its files."""
_FORMAT = 1


class _Vocab:
    """One language's words and their vectors: ``base`` (loaded or built) and the rows
    appended since, in ``parts``."""

    def __init__(self, words: list[str], base: np.ndarray) -> None:
        self.words = words
        self.index = dict(zip(words, range(len(words)), strict=True))
        self.base = base
        self.parts: list[np.ndarray] = []

    def add(self, words: list[str], vecs: np.ndarray) -> None:
        self.index.update(zip(words, range(len(self.words), len(self.words) + len(words)),
                              strict=True))
        self.words.extend(words)
        self.parts.append(np.asarray(vecs, np.float32))
        if len(self.parts) > 16:  # few matrices to multiply
            self.parts = [np.concatenate(self.parts)]

    def matrices(self) -> list[np.ndarray]:
        return [m for m in (self.base, *self.parts) if len(m)]

    def row(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        if i is None:
            return None
        if i < len(self.base):
            return np.asarray(self.base[i])
        i -= len(self.base)
        for part in self.parts:
            if i < len(part):
                return part[i]
            i -= len(part)
        return None


def _behind(saved: ChangeMark | None, mark: ChangeMark) -> float:
    if saved is None or saved.store != mark.store or saved.epoch != mark.epoch:
        return math.inf
    return (mark.passage - saved.passage) + (mark.removed - saved.removed)


class LexicalBridge:
    """Matches question words to each language's corpus vocabulary. Thread-safe (one
    lock); ``rebuilds`` counts whole vocabulary builds from SQLite (never caused by a
    write), ``compactions`` the dropping of deleted passages' words."""

    def __init__(self, store: Store, encoder: Encoder, cache_dir: Path,
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
        self._vocab = {lang: _Vocab(words, np.stack([vecs[w] for w in words]).astype(np.float32)
                                    if words else np.zeros((0, dim), np.float32))
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
            matrix = np.stack([vecs[w] for w in words]).astype(np.float32)
            vocab = self._vocab.get(lang)
            if vocab is None:
                self._vocab[lang] = _Vocab(words, matrix)
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

    # -- matching -----------------------------------------------------------------------
    def expand(self, text: str, lang: str) -> list[tuple[str, str, float]]:
        """(question word, corpus word in ``lang``, cosine) for the close matches."""
        terms = content_words(text)
        if not terms:
            return []
        with self._lock:
            self.refresh()
            vocab = self._vocab.get(lang)
            if vocab is None or not vocab.words:
                return []
            words, matrices = vocab.words, vocab.matrices()  # appends leave these be
        qvecs = np.asarray(self.encoder.embed_queries(terms), np.float32)
        sims = np.concatenate([qvecs @ m.T for m in matrices], axis=1)
        out = []
        for i, term in enumerate(terms):
            top = np.argsort(-sims[i])[: self.per_word]
            best = float(sims[i, top[0]])
            out += [(term, words[j], float(sims[i, j])) for j in top
                    if sims[i, j] >= max(self.min_sim, best - self.margin)]
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
            if state.get("format") != _FORMAT or not isinstance(state["langs"], dict):
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
                vocab = {}
                for lang, entry in state["langs"].items():
                    text = (self.folder / entry["words"]).read_bytes().decode("utf-8")
                    words = text.split("\n") if text else []
                    matrix = np.load(self.folder / entry["vectors"], mmap_mode="r")
                    if matrix.ndim != 2 or len(matrix) != len(words):
                        raise ValueError(f"{len(words)} words, {matrix.shape} vectors")
                    vocab[lang] = _Vocab(words, matrix)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.info("bridge files changed or unreadable (%s); reading them again", exc)
                continue
            self._vocab = vocab
            self.mark = self.saved = ChangeMark.from_dict(state["mark"])
            self._seen, self._stale = int(state.get("seen", 0)), int(state.get("stale", 0))
            self._dirty = False
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
            if not self._dirty or mark is None:
                return False
            if self.saved is not None and self.saved.covers(mark):
                self._dirty = False
                return False
            if not force and _behind(self.saved, mark) < SAVE_BEHIND:
                return False
            snapshot = {lang: (list(v.words), v.matrices(),
                               next((m.shape[1] for m in v.matrices()), 1))
                        for lang, v in self._vocab.items()}
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
        return written

    def _write_files(self, mark: ChangeMark,
                     snapshot: dict[str, tuple[list[str], list[np.ndarray], int]],
                     counts: dict[str, int]) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        with save_lock(self.folder, f"{self._name}.lock") as mine:
            if not mine:
                return False
            state = self._read_state()
            if state is not None and ChangeMark.from_dict(state["mark"]).covers(mark):
                return True  # another process saved as much
            token = f"{mark.epoch}-{mark.passage}-{mark.removed}-{os.getpid()}"
            langs = {}
            for lang, (words, matrices, dim) in snapshot.items():
                stem = f"{self._name}+{re.sub(r'[^A-Za-z0-9_-]', '_', lang)}+{token}"
                write_atomic(self.folder / f"{stem}.words", "\n".join(words).encode("utf-8"))
                write_atomic(self.folder / f"{stem}.npy", _npy_parts(matrices, len(words), dim))
                langs[lang] = {"words": f"{stem}.words", "vectors": f"{stem}.npy"}
            write_atomic(self._state_path, json.dumps(
                {"format": _FORMAT, "mark": mark.to_dict(), "langs": langs, **counts}).encode())
            keep = {f for entry in langs.values() for f in entry.values()}
            for f in self.folder.glob(f"{self._name}+*"):  # "+": not in a safe name
                if f.name not in keep:
                    with contextlib.suppress(OSError):
                        f.unlink()
            return True


def _npy_parts(matrices: list[np.ndarray], rows: int, dim: int) -> list[bytes | memoryview]:
    """A float32 (rows, dim) ``.npy`` file as parts: its header, then each matrix."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
    return [head.getvalue(), *(memoryview(np.ascontiguousarray(m, "<f4")).cast("B")
                               for m in matrices)]
