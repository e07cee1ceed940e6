"""BM25 over the normalised, stemmed passages, one index per passage language.

Names, numbers and places ("حلب", "Konashenkov", "2012") are found exactly here
when the dense encoders blur them. Rebuilt lazily when the store changes; the
token lists are cached per passage so a rebuild does not re-stem everything.
"""

from __future__ import annotations

import threading

import bm25s
import numpy as np

from index import Store, lexical_tokens


class LexicalIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._tokens: dict[int, list[str]] = {}
        self._by_lang: dict[str, tuple[bm25s.BM25 | None, np.ndarray]] = {}

    def _refresh(self) -> None:
        gen = self.store.generation()
        if gen == self._generation:
            return
        by_lang: dict[str, tuple[list[int], list[list[str]]]] = {}
        seen: dict[int, list[str]] = {}
        for row in self.store.iter_passages():
            pid = row["id"]
            toks = self._tokens.get(pid)
            if toks is None:
                toks = lexical_tokens(row["text"])
            seen[pid] = toks
            ids, docs = by_lang.setdefault(row["lang"], ([], []))
            ids.append(pid)
            docs.append(toks)
        self._tokens = seen
        self._by_lang = {}
        for lang, (ids, docs) in by_lang.items():
            model = None
            if any(docs):
                model = bm25s.BM25()
                model.index([d or [""] for d in docs], show_progress=False)
            self._by_lang[lang] = (model, np.asarray(ids, dtype=np.int64))
        self._generation = gen

    def search(self, lang: str, text: str, k: int, allowed: set[int] | None = None
               ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) in one language; zero scores dropped."""
        return self.search_weighted(lang, {t: 1.0 for t in lexical_tokens(text)}, k, allowed)

    def search_weighted(self, lang: str, weights: dict[str, float], k: int,
                        allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """BM25 with a weight per query token (each token's score times its weight)."""
        if not weights:
            return []
        with self._lock:
            self._refresh()
            model, ids = self._by_lang.get(lang, (None, np.zeros(0, np.int64)))
            if model is None:
                return []
            if all(w == 1.0 for w in weights.values()):
                scores = np.asarray(model.get_scores(list(weights)), dtype=np.float32)
            else:
                scores = np.zeros(len(ids), dtype=np.float32)
                for token, w in weights.items():
                    scores += w * np.asarray(model.get_scores([token]), dtype=np.float32)
        if allowed is not None:
            scores = np.where(np.isin(ids, np.fromiter(allowed, np.int64)), scores, 0.0)
        top = np.argsort(-scores)[:k]
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]
