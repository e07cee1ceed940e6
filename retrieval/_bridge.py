"""A cross-language lexical bridge: question words → the other language's corpus words.

e5-small does not align rare names across languages (for "Aleppo" it finds
nothing like "حلب"), but USE's word vectors do (Aleppo→حلب 0.86, lawmakers→
لمشرعين 0.82). So each content word of the question is matched against the
vocabulary of the passages in the other language by USE cosine, and the close
matches are searched with BM25 there: BM25's precision on names and numbers,
across languages, without a translation model.

The vocabulary's vectors are cached on disk (``KHABAR_HOME/cache``), keyed by
encoder fingerprint, so only words new to the corpus are ever embedded.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import numpy as np

from khabar.model import Encoder
from khabar.store import Store
from khabar.text import lexical_tokens

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|[\u064b-\u065f\u0670\u0640'’-])*[^\W\d_]")


def content_words(text: str) -> list[str]:
    """Words that carry meaning, as written (USE is case- and spelling-sensitive:
    "Aleppo" finds حلب, "aleppo" barely): not stopwords, not numbers."""
    words = [w for w in _WORD.findall(text) if lexical_tokens(w)]
    return list(dict.fromkeys(words))


class LexicalBridge:
    def __init__(self, store: Store, encoder: Encoder, cache_dir: Path,
                 *, min_sim: float = 0.5, per_word: int = 3, margin: float = 0.1,
                 name_boost: float = 2.0) -> None:
        self.store = store
        self.encoder = encoder
        self.min_sim = min_sim
        self.per_word = per_word
        self.margin = margin  # keep matches within this cosine of a word's best match
        self.name_boost = name_boost
        self._lock = threading.Lock()
        self._generation = -1
        self._vocab: dict[str, tuple[list[str], np.ndarray]] = {}
        self._words: dict[int, list[str]] = {}  # per passage, so a refresh reads only new ones
        self._known: dict[str, np.ndarray] = {}  # the vocabulary's vectors, in memory
        cache_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^\w.-]", "_", encoder.fingerprint)
        self._db = sqlite3.connect(cache_dir / f"words-{safe}.sqlite3", check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS words (word TEXT PRIMARY KEY, vec BLOB)")

    def _vectors(self, words: list[str]) -> dict[str, np.ndarray]:
        known = {w: v for w, v in ((w, self._known.get(w)) for w in words) if v is not None}
        out = self._from_disk([w for w in words if w not in known])
        out.update(known)
        self._known = out
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

    def _refresh(self) -> None:
        gen = self.store.generation()
        if gen == self._generation:
            return
        by_lang: dict[str, set[str]] = {}
        seen: dict[int, list[str]] = {}
        for row in self.store.iter_passages():
            words = self._words.get(row["id"])
            if words is None:
                words = content_words(row["text"])
            seen[row["id"]] = words
            by_lang.setdefault(row["lang"], set()).update(words)
        self._words = seen
        vocab = {}
        for lang, words in by_lang.items():
            ordered = sorted(words)
            vecs = self._vectors(ordered)
            if ordered:
                vocab[lang] = (ordered, np.stack([vecs[w] for w in ordered]))
        self._vocab = vocab
        self._generation = gen

    def expand(self, text: str, lang: str) -> list[tuple[str, str, float]]:
        """(question word, corpus word in ``lang``, cosine) for the close matches."""
        terms = content_words(text)
        if not terms:
            return []
        with self._lock:
            self._refresh()
            words, matrix = self._vocab.get(lang, ([], np.zeros((0, 1), np.float32)))
        if not words:
            return []
        qvecs = self.encoder.embed_queries(terms)
        sims = qvecs @ matrix.T
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
        names = {w for w in _WORD.findall(text)[1:] if w[:1].isupper()}
        groups: dict[str, tuple[float, list[str]]] = {}
        for term, word, sim in self.expand(text, lang):
            weight, tokens = groups.get(term, (0.0, []))
            groups[term] = (max(weight, sim * (self.name_boost if term in names else 1.0)),
                            [*tokens, *lexical_tokens(word)])
        return list(groups.values())
