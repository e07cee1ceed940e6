"""Hybrid cross-lingual search over the store.

Passages are searched per language and the lists merged, because in one mixed
pool a question's own language dominates the dense scores and pushes every
other-language passage out of the top k. Within the question's language, dense
(e5) and lexical (BM25) results are fused by reciprocal rank; across languages,
where BM25 is noise, e5 and the second encoder (USE) are fused by z-scored
cosines, USE carrying the names e5-small does not align (Aleppo ~ حلب).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from index import Index

from ._bridge import LexicalBridge
from ._fusion import interleave, rrf, zavg
from ._lexical import LexicalIndex
from ._types import Hit, Query


@dataclass
class SearchConfig:
    candidates: int = 100  # per signal and language
    rrf_k: int = 60
    same_lang_weights: tuple[float, float] = (1.0, 1.0)  # e5, BM25
    cross_lang_weights: tuple[float, float] = (1.0, 1.0)  # e5, USE (z-scores)
    bridge: bool = True  # cross-language lexical bridge (needs the second encoder)
    bridge_weight: float = 1.0  # RRF weight of the bridge list against the z-avg list


@dataclass
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    query_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # per space


class Searcher:
    def __init__(self, index: Index, config: SearchConfig | None = None) -> None:
        self.index = index
        self.store = index.store
        self.config = config or SearchConfig()
        self.lexical = LexicalIndex(self.store)
        use = index.encoder("use")
        self.bridge = (LexicalBridge(self.store, use, index.settings.home / "cache")
                       if use is not None and self.config.bridge else None)

    def search(self, query: Query, k: int = 10) -> SearchResult:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        f = query.filters
        allowed = self.store.passage_filter(outlets=f.outlets, since=f.since, until=f.until,
                                            langs=f.langs, origin=f.origin)
        counts = self.store.language_counts()
        langs = [lg for lg in counts if not f.langs or lg in f.langs]
        t["filter"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        qvecs = {e.space: e.embed_queries([query.search_text])[0] for e in self.index.encoders}
        t["embed"] = time.perf_counter() - t0

        n = self.config.candidates
        signals: dict[int, dict[str, float]] = {}
        per_lang: dict[str, list[tuple[int, float]]] = {}
        t_dense = t_lex = t_fuse = 0.0
        for lang in langs:
            t0 = time.perf_counter()
            dense = {s: self.store.search(s, lang, v, n, allowed) for s, v in qvecs.items()}
            t_dense += time.perf_counter() - t0
            for space, ranked in dense.items():
                for rank, (pid, score) in enumerate(ranked, 1):
                    sig = signals.setdefault(pid, {})
                    sig[space] = score
                    sig[space + "_rank"] = rank
            same = lang == query.lang or query.lang == "other"
            if same:
                t0 = time.perf_counter()
                lexical = self.lexical.search(lang, query.search_text, n, allowed)
                t_lex += time.perf_counter() - t0
                for rank, (pid, score) in enumerate(lexical, 1):
                    sig = signals.setdefault(pid, {})
                    sig["bm25"] = score
                    sig["bm25_rank"] = rank
                t0 = time.perf_counter()
                fused = rrf([dense.get("e5", []), lexical], k=self.config.rrf_k,
                            weights=self.config.same_lang_weights)
            else:
                t0 = time.perf_counter()
                bridged = self._bridge(query, lang, n, allowed, signals)
                t_lex += time.perf_counter() - t0
                t0 = time.perf_counter()
                fused = self._cross(dense, qvecs, bridged, signals)
            t_fuse += time.perf_counter() - t0
            for pid, score in fused:
                signals.setdefault(pid, {})["fused"] = score
            per_lang[lang] = fused
        t.update(dense=t_dense, lexical=t_lex, fuse=t_fuse)

        merged = self._merge(query.lang, per_lang, counts)
        t0 = time.perf_counter()
        hits = self._collapse(merged, signals, k, qvecs)
        if f.recent_first:  # an explicit choice, never a silent bias: newest first,
            # among the relevant results only; undated passages last.
            hits.sort(key=lambda h: h.passage.published.timestamp()
                      if h.passage.published else float("-inf"), reverse=True)
        t["collapse"] = time.perf_counter() - t0
        return SearchResult(hits, t, qvecs)

    @staticmethod
    def _merge(qlang: str, per_lang: dict[str, list[tuple[int, float]]],
               counts: dict[str, int]) -> list[tuple[int, float]]:
        """Interleave the languages' lists, the question's language first.

        Only real pools take turns: a language with a handful of passages (a stray
        quote detected as "other", one English item in an Arabic archive) would
        otherwise own a top slot for every question. Small pools follow the rest.
        """
        largest = max(counts.values(), default=0)
        major = [lg for lg in per_lang
                 if lg != "other" and counts.get(lg, 0) >= min(50, 0.05 * largest)]
        major.sort(key=lambda lg: lg != qlang)
        minor = [lg for lg in per_lang if lg not in major]
        merged = interleave(*(per_lang[lg] for lg in major)) if major else []
        return merged + interleave(*(per_lang[lg] for lg in minor)) if minor else merged

    def _bridge(self, query: Query, lang: str, n: int, allowed: set[int] | None,
                signals: dict[int, dict[str, float]]) -> list[tuple[int, float]]:
        """BM25 in ``lang`` with the question's words carried over by the bridge."""
        if self.bridge is None:
            return []
        groups = self.bridge.query_groups(query.search_text, lang)
        ranked = self.lexical.search_groups(lang, groups, n, allowed)
        for rank, (pid, score) in enumerate(ranked, 1):
            sig = signals.setdefault(pid, {})
            sig["bridge"] = score
            sig["bridge_rank"] = rank
        return ranked

    def _cross(self, dense: dict[str, list[tuple[int, float]]], qvecs: dict[str, np.ndarray],
               bridged: list[tuple[int, float]], signals: dict[int, dict[str, float]]
               ) -> list[tuple[int, float]]:
        """e5 and USE cosines (and bridge BM25) over the union of candidates, z-averaged.

        Each encoder's cosines come from its own search where it found the candidate;
        only the others' vectors are read, and every cosine is kept in ``signals``.
        """
        if len(dense) < 2:
            return list(dense.get("e5", []))
        cands = sorted({pid for ranked in [*dense.values(), bridged] for pid, _ in ranked})
        sets = []
        for space in ("e5", "use"):
            cos = dict(dense[space])
            missing = [pid for pid in cands if pid not in cos]
            q = qvecs[space]
            cos.update((pid, float(v @ q))
                       for pid, v in self.store.vectors(space, missing).items())
            for pid, c in cos.items():
                signals.setdefault(pid, {})[space] = c
            sets.append({pid: cos[pid] for pid in cands if pid in cos})
        weights = list(self.config.cross_lang_weights)
        if bridged:
            scores = dict(bridged)
            sets.append({pid: scores.get(pid, 0.0) for pid in cands})
            weights.append(self.config.bridge_weight)
        return zavg(sets, weights=weights)

    def _collapse(self, ranked: list[tuple[int, float]], signals: dict[int, dict[str, float]],
                  k: int, qvecs: dict[str, np.ndarray]) -> list[Hit]:
        """The top ``k`` hits, near-duplicates folded into their first copy."""
        head = [pid for pid, _ in ranked[: k * 3]]
        groups = self.store.duplicate_groups(head)
        passages = self.store.passages(head + [m for g in groups.values() for m in g])
        # Every hit gets every encoder's cosine: abstention and :why need them.
        for space, q in qvecs.items():
            missing = [p for p in head if space not in signals.get(p, {})]
            for pid, vec in self.store.vectors(space, missing).items():
                signals.setdefault(pid, {})[space] = float(vec @ q)
        hits: list[Hit] = []
        taken: set[int] = set()
        for pid, score in ranked[: k * 3]:
            if pid in taken or pid not in passages:
                continue
            group = groups.get(pid, [pid])
            taken.update(group)
            copies = [passages[m] for m in group[1:] if m in passages]
            outlets = list(dict.fromkeys(
                o for p in [passages[pid], *copies] for o in p.outlets))
            hits.append(Hit(passages[pid], score, dict(signals.get(pid, {})), outlets, copies))
            if len(hits) == k:
                break
        return hits
