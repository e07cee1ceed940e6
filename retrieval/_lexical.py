"""BM25 over the normalised, stemmed passages, one index per passage language.

Names, numbers and places ("حلب", "Konashenkov", "2012") are found exactly here
when the dense encoders blur them. Rebuilt lazily when the store changes; the
token lists are cached per passage so a rebuild does not re-stem everything.
"""

from __future__ import annotations

import threading

import bm25s
import numpy as np

from khabar.store import Store
from khabar.text import lexical_tokens


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
        tokens = dict.fromkeys(lexical_tokens(text))
        return self.search_groups(lang, [(1.0, [t]) for t in tokens], k, allowed)

    def search_groups(self, lang: str, groups: list[tuple[float, list[str]]], k: int,
                      allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """BM25 where each group of alternative tokens counts once: a passage gets
        ``weight × max(score of the group's tokens)`` per group, summed."""
        groups = [(w, toks) for w, toks in groups if toks]
        if not groups:
            return []
        with self._lock:
            self._refresh()
            model, ids = self._by_lang.get(lang, (None, np.zeros(0, np.int64)))
            if model is None:
                return []
            if all(w == 1.0 and len(toks) == 1 for w, toks in groups):
                scores = np.asarray(model.get_scores([t[0] for _, t in groups]),
                                    dtype=np.float32)
            else:
                scores = np.zeros(len(ids), dtype=np.float32)
                for w, toks in groups:
                    best = np.max([np.asarray(model.get_scores([t]), dtype=np.float32)
                                   for t in dict.fromkeys(toks)], axis=0)
                    scores += w * best
        if allowed is not None:
            scores = np.where(np.isin(ids, np.fromiter(allowed, np.int64)), scores, 0.0)
        top = np.argsort(-scores)[:k]
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]
