"""Hybrid cross-lingual search over the store.

Passages are searched per language and the lists merged, because in one mixed
pool a question's own language dominates the dense scores and pushes every
other-language passage out of the top k. Every candidate is scored whole and by
its best sentence (sentence vectors stored at ingest): a question usually matches
one sentence, which a paragraph's vector dilutes. Within the question's language,
e5 and BM25 are fused by z-scored scores; across languages, where BM25 is noise,
e5 and the second encoder (USE) are, with the lexical bridge, USE carrying the
names e5-small does not align (Aleppo ~ حلب), and closeness to the question's-
language top hit (the same story in the other language) in a mixed archive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from khabar.model import embed_question
from khabar.store import Allowed, allowed_among

from ._bridge import LexicalBridge
from ._fusion import interleave, rrf, zavg
from ._lexical_store import lexical_index
from ._types import Archive, Filters, Hit, Query, Relaxed


@dataclass
class SearchConfig:
    # Per signal and language. What a question's SQLite reads (stored vectors, sentence
    # vectors) and fusion scale with: 100 → 50 took 42 → 25 ms of CPU a question at
    # 100k passages, every anchored quality set within 0.002 nDCG@10 (docs/benchmarks.md).
    candidates: int = 50
    rrf_k: int = 60
    same_lang_weights: tuple[float, float] = (1.0, 1.0)  # e5, BM25
    cross_lang_weights: tuple[float, float] = (1.0, 1.0)  # e5, USE (z-scores)
    bridge: bool = True  # cross-language lexical bridge (needs the second encoder)
    bridge_weight: float = 1.0  # z-avg weight of the bridge's BM25 scores
    # Score each candidate by its best sentence too (stored sentence vectors), with
    # this weight beside its whole-passage cosine, per encoder; 0 turns it off.
    sentence_weight: float = 1.0
    same_lang_fusion: Literal["zavg", "rrf"] = "zavg"  # rrf: ranks only; measured worse
    # Other-language passages close to the question's-language top hit (the same
    # story told in the other language) get this z-avg weight; 0 turns it off.
    feedback_weight: float = 1.0
    # BM25 answered by the store where it can (Milvus's own over the stored tokens),
    # else kept in this process; False: in this process always (benchmarks' A/B).
    store_lexical: bool = True


@dataclass
class _Feedback:
    """The question's-language top hit, as a second query into another language."""

    vectors: dict[str, np.ndarray]  # its passage vector per space
    near: list[int]  # the other language's passages nearest to it: extra candidates


@dataclass
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    query_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # per space
    relaxed: list[Relaxed] = field(default_factory=list)  # filters dropped: see Searcher.search
    # The bridge's groups for the question, per other language searched: the answer's
    # evidence reads them again (LexicalBridge.query_groups costs ~2 ms at 100k).
    bridge_groups: dict[str, list[tuple[float, list[str]]]] = field(default_factory=dict)


class Searcher:
    def __init__(self, index: Archive, config: SearchConfig | None = None) -> None:
        self.index = index
        self.store = index.store
        self.config = config or SearchConfig()
        self.lexical = lexical_index(self.store, own=self.config.store_lexical)
        use = index.encoder("use")
        self.bridge = (LexicalBridge(self.store, use, index.settings.home / "cache")
                       if use is not None and self.config.bridge else None)

    def catch_up(self) -> None:
        """Bring the lexical index and the bridge up to the store now and save their
        files (as a bulk ingest ends: the next reader then loads them instead of
        applying the whole delta from SQLite before its first answer)."""
        self.lexical.refresh()
        self.lexical.save(force=True)
        if self.bridge is not None:
            self.bridge.refresh()
            self.bridge.save(force=True)

    def search(self, query: Query, k: int = 10) -> SearchResult:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        f = query.filters
        allowed = self._allowed(f)
        relaxed: list[Relaxed] = []
        if allowed is not None and not allowed and query.time_from_text:
            # "…yesterday?" over an archive with nothing from yesterday: search every
            # date and say so (the answer's ``relaxed``), rather than answer nothing.
            f = replace(f, since=None, until=None)
            allowed = self._allowed(f)
            relaxed.append("time")
        counts = self.lexical.counts()  # kept, not counted again: see its docstring
        langs = [lg for lg in counts if not f.langs or lg in f.langs]
        langs.sort(key=lambda lg: lg != query.lang)  # its top hit guides the others
        t["filter"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        qvecs = embed_question(self.index.encoders, query.search_text)
        t["embed"] = time.perf_counter() - t0

        n = self.config.candidates
        signals: dict[int, dict[str, float]] = {}
        per_lang: dict[str, list[tuple[int, float]]] = {}
        groups: dict[str, list[tuple[float, list[str]]]] = {}
        anchor: int | None = None
        t_dense = t_lex = t_fuse = 0.0
        for lang in langs:
            same = lang == query.lang or query.lang == "other"
            t0 = time.perf_counter()
            anchor_vecs = None if same else self._anchor_vectors(anchor)
            dense, feedback = self._dense(qvecs, lang, n, allowed, anchor_vecs)
            t_dense += time.perf_counter() - t0
            for space, ranked in dense.items():
                for rank, (pid, score) in enumerate(ranked, 1):
                    sig = signals.setdefault(pid, {})
                    sig[space] = score
                    sig[space + "_rank"] = rank
            if same:
                t0 = time.perf_counter()
                lexical = self.lexical.search(lang, query.search_text, n, allowed)
                t_lex += time.perf_counter() - t0
                for rank, (pid, score) in enumerate(lexical, 1):
                    sig = signals.setdefault(pid, {})
                    sig["bm25"] = score
                    sig["bm25_rank"] = rank
                t0 = time.perf_counter()
                fused = self._same(dense, qvecs, lexical, signals)
                if fused and lang == query.lang and self._is_major(lang, counts):
                    anchor = fused[0][0]
            else:
                t0 = time.perf_counter()
                bridged = self._bridge(query, lang, n, allowed, signals, groups)
                t_lex += time.perf_counter() - t0
                t0 = time.perf_counter()
                fused = self._cross(dense, qvecs, bridged, signals, feedback)
            t_fuse += time.perf_counter() - t0
            for pid, score in fused:
                signals.setdefault(pid, {})["fused"] = score
            per_lang[lang] = fused
        t.update(dense=t_dense, lexical=t_lex, fuse=t_fuse)

        merged = self._merge(query.lang, per_lang, counts)
        t0 = time.perf_counter()
        hits = self._collapse(merged, signals, k, qvecs, allowed)
        if f.recent_first:  # an explicit choice, never a silent bias: newest first,
            # among the relevant results only; undated passages last.
            hits.sort(key=lambda h: h.passage.published.timestamp()
                      if h.passage.published else float("-inf"), reverse=True)
        t["collapse"] = time.perf_counter() - t0
        return SearchResult(hits, t, qvecs, relaxed, groups)

    def _allowed(self, f: Filters) -> Allowed | None:
        return self.store.passage_filter(outlets=f.outlets, since=f.since, until=f.until,
                                         langs=f.langs, origin=f.origin, scope=f.scope)

    @staticmethod
    def _merge(qlang: str, per_lang: dict[str, list[tuple[int, float]]],
               counts: dict[str, int]) -> list[tuple[int, float]]:
        """Interleave the languages' lists, the question's language first.

        Only real pools take turns: a language with a handful of passages (a stray
        quote detected as "other", one English item in an Arabic archive) would
        otherwise own a top slot for every question. Small pools follow the rest.
        """
        major = [lg for lg in per_lang if Searcher._is_major(lg, counts)]
        major.sort(key=lambda lg: lg != qlang)
        minor = [lg for lg in per_lang if lg not in major]
        merged = interleave(*(per_lang[lg] for lg in major)) if major else []
        return merged + interleave(*(per_lang[lg] for lg in minor)) if minor else merged

    @staticmethod
    def _is_major(lang: str, counts: dict[str, int]) -> bool:
        """A real pool of passages, not a handful of strays (see :meth:`_merge`)."""
        largest = max(counts.values(), default=0)
        return lang != "other" and counts.get(lang, 0) >= min(50, 0.05 * largest)

    def _anchor_vectors(self, anchor: int | None) -> dict[str, np.ndarray] | None:
        """The anchor passage's vector per space (None: no feedback)."""
        if anchor is None or not self.config.feedback_weight:
            return None
        vecs = {e.space: v for e in self.index.encoders
                if (v := self.store.search_vectors(e.space, [anchor]).get(anchor)) is not None}
        return vecs or None

    def _dense(self, qvecs: dict[str, np.ndarray], lang: str, n: int,
               allowed: Allowed | None, anchor: dict[str, np.ndarray] | None
               ) -> tuple[dict[str, list[tuple[int, float]]], _Feedback | None]:
        """Each space's top ``n`` for the question in ``lang``; with the anchor's
        vectors, its 10 nearest ``lang`` passages too (:class:`_Feedback`), asked in
        the same search call as the question (same space, language and filter)."""
        dense: dict[str, list[tuple[int, float]]] = {}
        near: list[int] = []
        for space, v in qvecs.items():
            a = anchor.get(space) if anchor else None
            if a is None:
                dense[space] = self.store.search(space, lang, v, n, allowed)
                continue
            mine, theirs = self.store.search_many(space, lang, np.stack([v, a]), n, allowed)
            dense[space] = mine
            near += [pid for pid, _ in theirs[:10]]
        return dense, (_Feedback(anchor, near) if anchor else None)

    def _bridge(self, query: Query, lang: str, n: int, allowed: Allowed | None,
                signals: dict[int, dict[str, float]],
                kept: dict[str, list[tuple[float, list[str]]]]) -> list[tuple[int, float]]:
        """BM25 in ``lang`` with the question's words carried over by the bridge (the
        groups kept in ``kept``)."""
        if self.bridge is None:
            return []
        groups = kept[lang] = self.bridge.query_groups(query.search_text, lang)
        ranked = self.lexical.search_groups(lang, groups, n, allowed)
        for rank, (pid, score) in enumerate(ranked, 1):
            sig = signals.setdefault(pid, {})
            sig["bridge"] = score
            sig["bridge_rank"] = rank
        return ranked

    def _same(self, dense: dict[str, list[tuple[int, float]]], qvecs: dict[str, np.ndarray],
              lexical: list[tuple[int, float]], signals: dict[int, dict[str, float]]
              ) -> list[tuple[int, float]]:
        """The dense list for same-language RRF: e5, rescored by best sentence.

        The second encoder stays out: it is much weaker than e5 within a language.
        """
        cfg = self.config
        e5 = dense.get("e5", [])
        if "e5" not in qvecs:
            return lexical
        cands = sorted({pid for ranked in (e5, lexical) for pid, _ in ranked})
        whole = self._cosines("e5", cands, qvecs["e5"], e5, signals)
        sets, weights = [whole], [1.0]
        if cfg.sentence_weight:
            sets.append(self._best_sentences("e5", cands, qvecs["e5"], whole, signals))
            weights.append(cfg.sentence_weight)
        if cfg.same_lang_fusion == "zavg":
            bm25 = dict(lexical)
            sets.append({pid: bm25.get(pid, 0.0) for pid in cands})
            weights.append(cfg.same_lang_weights[1] * sum(weights))
            return zavg(sets, weights=weights)
        return rrf([zavg(sets, weights=weights), lexical], k=cfg.rrf_k,
                   weights=cfg.same_lang_weights)

    def _cross(self, dense: dict[str, list[tuple[int, float]]], qvecs: dict[str, np.ndarray],
               bridged: list[tuple[int, float]], signals: dict[int, dict[str, float]],
               feedback: _Feedback | None = None) -> list[tuple[int, float]]:
        """e5 and USE cosines, whole and best sentence, bridge BM25 and closeness
        to the question's-language top hit, over the union of candidates, z-averaged."""
        cands = sorted({pid for ranked in [*dense.values(), bridged] for pid, _ in ranked}
                       | set(feedback.near if feedback else []))
        sets: list[dict[int, float]] = []
        weights: list[float] = []
        sw = self.config.sentence_weight
        space_weights = dict(zip(("e5", "use"), self.config.cross_lang_weights, strict=True))
        # The candidates' stored vectors, read once per space: closeness to the
        # anchor needs them all, the cosines those the search did not score.
        stored = ({space: self.store.search_vectors(space, cands) for space in feedback.vectors}
                  if feedback else {})
        sentences = self.store.search_sentence_vectors(list(dense), cands) if sw else {}
        for space in dense:
            w = space_weights.get(space, 1.0)
            whole = self._cosines(space, cands, qvecs[space], dense[space], signals,
                                  stored.get(space))
            sets.append(whole)
            weights.append(w)
            if sw:
                sets.append(self._best_sentences(space, cands, qvecs[space], whole, signals,
                                                 sentences.get(space, {})))
                weights.append(w * sw)
        if bridged:
            scores = dict(bridged)
            sets.append({pid: scores.get(pid, 0.0) for pid in cands})
            weights.append(self.config.bridge_weight)
        if feedback:
            close = np.zeros(len(cands))
            for space, a in feedback.vectors.items():
                got = stored[space]
                close += [float(got[p] @ a) if p in got else 0.0 for p in cands]
            close /= len(feedback.vectors)
            sets.append(dict(zip(cands, close.tolist(), strict=True)))
            weights.append(self.config.feedback_weight)
            for pid, c in sets[-1].items():
                signals.setdefault(pid, {})["feedback"] = c
        return zavg(sets, weights=weights)

    def _cosines(self, space: str, cands: list[int], q: np.ndarray,
                 found: list[tuple[int, float]], signals: dict[int, dict[str, float]],
                 stored: dict[int, np.ndarray] | None = None) -> dict[int, float]:
        """Whole-passage cosines of the candidates: from the search where it found
        them, else from their stored vectors (``stored`` when already read). Kept in
        ``signals``."""
        cos = dict(found)
        missing = [pid for pid in cands if pid not in cos]
        vecs = ({p: stored[p] for p in missing if p in stored} if stored is not None
                else self.store.search_vectors(space, missing))
        cos.update((pid, float(v @ q)) for pid, v in vecs.items())
        for pid, c in cos.items():
            signals.setdefault(pid, {})[space] = c
        return {pid: cos[pid] for pid in cands if pid in cos}

    def _best_sentences(self, space: str, cands: list[int], q: np.ndarray,
                        whole: dict[int, float], signals: dict[int, dict[str, float]],
                        read: dict[int, np.ndarray] | None = None) -> dict[int, float]:
        """Each candidate's best sentence cosine; its whole cosine where the store
        has no sentence vectors (a store from before them, until reindexed).
        ``read``: the sentence vectors, when already read (of every candidate)."""
        if read is None:
            read = self.store.search_sentence_vectors([space], list(whole)).get(space, {})
        out = dict(whole)
        mats = {pid: m for pid in whole if len(m := read.get(pid, ())) > 0}
        if mats:
            ids = list(mats)
            sizes = [len(mats[p]) for p in ids]
            sims = np.concatenate([mats[p] for p in ids]) @ q
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            out.update(zip(ids, np.maximum.reduceat(sims, starts).tolist(), strict=True))
        for pid, c in out.items():
            signals.setdefault(pid, {})[space + "_sent"] = c
        return out

    def _collapse(self, ranked: list[tuple[int, float]], signals: dict[int, dict[str, float]],
                  k: int, qvecs: dict[str, np.ndarray], allowed: Allowed | None = None
                  ) -> list[Hit]:
        """The top ``k`` hits, near-duplicates folded into their first copy (copies the
        filters exclude, e.g. another chat's private ones, neither shown nor named)."""
        head = [pid for pid, _ in ranked[: k * 3]]
        groups = self.store.duplicate_groups(head)
        passages = self.store.passages(head + [m for g in groups.values() for m in g])
        # Every hit gets every encoder's cosine: abstention and :why need them.
        for space, q in qvecs.items():
            missing = [p for p in head if space not in signals.get(p, {})]
            for pid, vec in self.store.search_vectors(space, missing).items():
                signals.setdefault(pid, {})[space] = float(vec @ q)
        # Copies the filters let through, asked once (an expression's: one query).
        shown = allowed_among(allowed, [m for g in groups.values() for m in g[1:]])
        hits: list[Hit] = []
        taken: set[int] = set()
        for pid, score in ranked[: k * 3]:
            if pid in taken or pid not in passages:
                continue
            group = groups.get(pid, [pid])
            taken.update(group)
            copies = [passages[m] for m in group[1:] if m in passages and m in shown]
            outlets = list(dict.fromkeys(
                o for p in [passages[pid], *copies] for o in p.outlets))
            hits.append(Hit(passages[pid], score, dict(signals.get(pid, {})), outlets, copies))
            if len(hits) == k:
                break
        return hits
