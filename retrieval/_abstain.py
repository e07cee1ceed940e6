"""What the decision to answer reads: the evidence of the top passages.

Gathered once per question from what search already has (signals, query vectors)
and a few store reads (stored BM25 tokens, sentence vectors of the top passages),
so that the rule can be scored offline on cached evidence (bench/abstention.py)
exactly as it runs in :func:`~khabar.retrieval._answer.compose`.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from khabar.text import lexical_tokens, passage_sentences

from . import _cues as cues
from ._types import Archive, Hit, Query

if TYPE_CHECKING:
    from ._bridge import LexicalBridge
    from ._search import Searcher, SearchResult

TOP = 3  # passages whose evidence counts


@dataclass
class PassageEvidence:
    lang: str
    signals: dict[str, float]  # the search's, per encoder, whole and best sentence, fused
    tokens: frozenset[str]  # its BM25 tokens as stored at ingest
    sentences: dict[str, np.ndarray]  # per encoder space, each sentence's cosine
    text: str = ""  # the passage's (its sentences, as split for the cosines above)


@dataclass
class Evidence:
    lang: str  # the question's
    words: list[str]  # the question's BM25 tokens
    # Per other language of a top passage: the bridge's groups (weight, tokens), one
    # per question word, its translations as that language's BM25 tokens.
    bridge: dict[str, list[tuple[float, list[str]]]] = field(default_factory=dict)
    hits: list[PassageEvidence] = field(default_factory=list)
    # The question's vector per encoder space (for its cosines' background, below).
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    text: str = ""  # the question as searched (its names, numbers and type: _cues)


def gather(index: Archive, bridge: LexicalBridge | None, query: Query, hits: Sequence[Hit],
           query_vectors: Mapping[str, np.ndarray] | None = None, top: int = TOP,
           bridge_groups: Mapping[str, list[tuple[float, list[str]]]] | None = None
           ) -> Evidence:
    """The evidence of ``hits[:top]`` (``query_vectors``, ``bridge_groups``: the
    search's, per space and per other language, so neither is computed again)."""
    head = list(hits[:top])
    ids = [h.passage.id for h in head]
    stored = index.store.passage_tokens(ids)
    qvecs = dict(query_vectors or {})
    sentences: dict[int, dict[str, np.ndarray]] = {pid: {} for pid in ids}
    for space, q in qvecs.items():
        for pid, mat in index.store.sentence_vectors(space, ids).items():
            if len(mat):
                sentences[pid][space] = mat @ q
    out = Evidence(query.lang, lexical_tokens(query.search_text), vectors=qvecs,
                   text=query.search_text)
    for h in head:
        tok = stored.get(h.passage.id)
        tokens = frozenset(tok.split() if tok is not None else lexical_tokens(h.passage.text))
        out.hits.append(PassageEvidence(h.passage.lang, dict(h.signals), tokens,
                                        sentences[h.passage.id], h.passage.text))
    if bridge is not None:
        for lang in {p.lang for p in out.hits} - {query.lang}:
            known = (bridge_groups or {}).get(lang)
            out.bridge[lang] = (known if known is not None
                                else bridge.query_groups(query.search_text, lang))
    return out


def gather_evidence(index: Archive, searcher: Searcher, query: Query, result: SearchResult,
                    top: int = 5) -> Evidence:
    """:func:`gather` after :meth:`Searcher.search` (the bench keeps 5 to try depths)."""
    return gather(index, searcher.bridge, query, result.hits, result.query_vectors, top,
                  result.bridge_groups)


# -- features ---------------------------------------------------------------------------
def _window(cos: np.ndarray) -> float:
    """The best sentence taken with its better neighbour (an answer introduced in one
    sentence and given in the next), as the mean of the two."""
    if len(cos) < 2:
        return float(cos.max()) if len(cos) else 0.0
    nxt = np.maximum(np.r_[cos[1:], -1.0], np.r_[-1.0, cos[:-1]])
    return float(((cos + nxt) / 2).max())


def _coverage(ev: Evidence, p: PassageEvidence, tokens: frozenset[str] | None = None
              ) -> float:
    """Share of the question's words found in the passage (``tokens``: in those of a
    part of it): its own tokens in its language, else through the bridge (a word
    counts when one of its translations is there). Bridge groups are weighted by
    their cosine (names double)."""
    tokens = p.tokens if tokens is None else tokens
    if p.lang == ev.lang:
        words = set(ev.words)
        return len(words & tokens) / len(words) if words else 0.0
    groups = ev.bridge.get(p.lang) or []
    # Out of every question word: one the bridge found no translation for ("Cairo" in
    # an archive that never names it) counts as missing, not as absent from the
    # question. A found word counts by its cosine (a name's doubled), out of 1 (2).
    total = sum(2.0 if w > 1.0 else 1.0 for w, _ in groups) + max(
        len(set(ev.words)) - len(groups), 0)
    if not total:
        return 0.0
    return sum(w for w, toks in groups if tokens.intersection(toks)) / total


def all_features(ev: Evidence, top: int = TOP) -> dict[str, float]:
    """Every measured feature of the best evidence among the top passages (the bench
    tries subsets; the shipped model names the ones it reads)."""
    head = ev.hits[:top]
    if not head:
        return {}
    f: dict[str, float] = {}
    for space in ("e5", "use"):
        f[space] = max(p.signals.get(space, 0.0) for p in head)
        sent = [p.sentences.get(space) for p in head]
        f[space + "_sent"] = max(float(s.max()) if s is not None and len(s)
                                 else p.signals.get(space + "_sent", p.signals.get(space, 0.0))
                                 for p, s in zip(head, sent, strict=True))
        f[space + "_win"] = max(_window(s) if s is not None and len(s)
                                else p.signals.get(space, 0.0)
                                for p, s in zip(head, sent, strict=True))
        # how far the top passage stands out from the next ones (pool-size dependent)
        tops = sorted((p.signals.get(space + "_sent", p.signals.get(space, 0.0))
                       for p in ev.hits[:5]), reverse=True)
        f[space + "_gap"] = tops[0] - tops[1] if len(tops) > 1 else 0.0
    cross = 1.0 if head[0].lang != ev.lang else 0.0
    f["cross"] = cross
    for pair in ("en_en", "ar_ar", "en_ar", "ar_en"):
        f["pair_" + pair] = 1.0 if f"{ev.lang}_{head[0].lang}" == pair else 0.0
    same = [p for p in head if p.lang == ev.lang]
    words = set(ev.words)
    f["coverage_same"] = max((len(words & p.tokens) / len(words) for p in same),
                             default=0.0) if words else 0.0
    f["coverage"] = max(_coverage(ev, p) for p in head)
    f["coverage_top"] = _coverage(ev, head[0])
    f["n_words"] = float(len(words))
    top1 = head[0].signals
    f["fused"] = top1.get("fused", 0.0)
    second = ev.hits[1].signals.get("fused", 0.0) if len(ev.hits) > 1 else 0.0
    f["fused_gap"] = f["fused"] - second
    ranks = [top1.get(k) for k in ("e5_rank", "use_rank", "bm25_rank", "bridge_rank")]
    ranks = [r for r in ranks if r is not None]
    f["agree"] = float(np.mean([r == 1 for r in ranks])) if ranks else 0.0
    f["agree_rr"] = float(np.mean([1.0 / r for r in ranks])) if ranks else 0.0
    for k in ("e5", "use", "e5_sent", "use_sent", "e5_win", "use_win"):
        f[k + "_cross"] = f[k] * cross
    return f


def passage_features(ev: Evidence, p: PassageEvidence, need: Collection[str] | None = None
                     ) -> dict[str, float]:
    """One top passage's evidence, calibrated by its language pair: a passage in the
    question's language and one across languages score on different scales (e5's
    cross-language cosines sit lower; BM25 needs a shared language, the bridge not).
    ``need``: the features to be read (``cue_features``); every one by default."""
    f: dict[str, float] = {}
    for space in ("e5", "use"):
        whole = p.signals.get(space, 0.0)
        s = p.sentences.get(space)
        f[space] = whole
        f[space + "_sent"] = float(s.max()) if s is not None and len(s) else \
            p.signals.get(space + "_sent", whole)
        f[space + "_win"] = _window(s) if s is not None and len(s) else whole
    background = Background.shipped()
    for space in ("e5", "use"):
        # The same cosines as z-scores against the question's cosines with a fixed
        # sample of passages in the passage's language: a question's baseline (how
        # close it sits to any passage) taken out, whatever the archive's size.
        mu, sd = background.stats(space, p.lang, ev.vectors.get(space))
        for k in ("", "_sent", "_win"):
            f[space + k + "_bz"] = (f[space + k] - mu) / sd if sd else 0.0
        # Against each domain's sample alone (news, Wikipedia), the lowest z: the
        # question read against the kind of text it is closest to (a news sentence
        # stands higher above Wikipedia than above news).
        per = [background.stats(space, f"{p.lang}.{d}", ev.vectors.get(space))
               for d in background.domains(space, p.lang)]
        for k in ("", "_sent", "_win"):
            zs = [(f[space + k] - m) / s for m, s in per if s]
            f[space + k + "_dz"] = min(zs) if zs else f[space + k + "_bz"]
    cross = 1.0 if p.lang != ev.lang else 0.0
    f["cross"] = cross
    for pair in ("en_ar", "ar_en", "ar_ar"):
        f["pair_" + pair] = 1.0 if f"{ev.lang}_{p.lang}" == pair else 0.0
    f["coverage"] = _coverage(ev, p)
    # How specific the question is: the rarity of its rarest words in a fixed sample of
    # its own language. A generic question ("متى عين وزيرا للدفاع؟", "من امها؟") sits
    # close to many passages, so its cosines overstate; a question naming something rare
    # (حلب) is answered at a lower cosine. The same at any archive size.
    rare = _rarity(ev, background)
    f["rarity"] = float(rare[0]) if len(rare) else 0.0
    f["rarity3"] = float(rare[:3].sum())
    f["rarity_coverage"] = f["rarity"] * f["coverage"]
    # BM25 in its language (the bridge's across): rare words weigh, so a question of
    # common words ("what can I do now?") that matches everything gains little.
    f["lexical"] = p.signals.get("bm25" if not cross else "bridge", 0.0)
    n = len(set(ev.words))
    f["lexical_word"] = f["lexical"] / max(n, 1)
    f["short"] = 1.0 / (n + 1)
    f["fused"] = p.signals.get("fused", 0.0)
    ranks = [r for k in ("e5_rank", "use_rank", "bm25_rank", "bridge_rank")
             if (r := p.signals.get(k)) is not None]
    f["agree"] = float(np.mean([1.0 / r for r in ranks])) if ranks else 0.0
    f.update(cue_features(ev, p, need))
    for k in ("e5", "use", "e5_sent", "use_sent", "e5_win", "use_win", "coverage", "fused",
              "agree", "lexical", "lexical_word", "short", "e5_bz", "use_bz", "e5_sent_bz",
              "use_sent_bz", "e5_win_bz", "use_win_bz", "e5_dz", "use_dz", "e5_sent_dz",
              "use_sent_dz", "e5_win_dz", "use_win_dz", *CUES):
        f[k + "_cross"] = f[k] * cross
    return f


def _rarity(ev: Evidence, background: Background) -> np.ndarray:
    """The rarity of the question's words in its language (:meth:`Background.idf`),
    rarest first."""
    words = sorted(set(ev.words))
    return np.sort(background.idf(ev.lang, words))[::-1] if words else np.zeros(0)


def _coverage_idf(ev: Evidence, p: PassageEvidence, background: Background
                  ) -> tuple[float, float]:
    """(share of the question's rarity the passage holds, whether it holds the rarest
    word): :func:`_coverage` with each word weighed by its rarity in a fixed sample
    (the passage's language; across languages a bridge group weighs as its rarest
    translation, a word the bridge cannot translate as the rarest of all)."""
    if p.lang == ev.lang:
        words = sorted(set(ev.words))
        if not words:
            return 0.0, 0.0
        idf = background.idf(p.lang, words)
        held = np.array([w in p.tokens for w in words])
        return float(idf[held].sum() / idf.sum()), float(held[int(np.argmax(idf))])
    groups = [(w, toks) for w, toks in ev.bridge.get(p.lang) or [] if toks]
    if not groups:
        return 0.0, 0.0
    idf = np.array([float(background.idf(p.lang, toks).max()) * (2.0 if w > 1.0 else 1.0)
                    for w, toks in groups])
    held = np.array([bool(p.tokens.intersection(toks)) for _, toks in groups])
    missing = max(len(set(ev.words)) - len(groups), 0) * float(idf.max())
    return (float(idf[held].sum() / (idf.sum() + missing)),
            float(held[int(np.argmax(idf))]) if not missing else 0.0)


CUES = ("coverage_idf", "rare_found", "coverage_win", "type_ok", "type_miss", "num_found",
        "num_miss", "names_found", "names_miss", "e5_focus", "use_focus", "agree_sent")


def cue_features(ev: Evidence, p: PassageEvidence, need: Collection[str] | None = None
                 ) -> dict[str, float]:
    """Whether the passage holds this question's particulars (``_cues``): its words
    in the best sentence and its neighbours, its numbers, its names across scripts,
    and a date or number near the best sentence when it asks when or how many.
    ``need``: the features a model reads (the others, measured in the bench only,
    are left at 0: reading the text costs ~0.5 ms a passage for all of them)."""
    f = dict.fromkeys(CUES, 0.0)

    def wanted(*names: str) -> bool:
        return need is None or any(n in need or n + "_cross" in need for n in names)

    if wanted("names_found", "names_miss") and p.lang != ev.lang and ev.text and p.text:
        n, share = cues.names_across(ev.text, ev.lang, p.text)
        f["names_found"] = share
        f["names_miss"] = 1.0 if ev.lang == "en" and n and not share else 0.0
    if wanted("num_found", "num_miss") and ev.text and p.text:
        n, share = cues.numbers_found(ev.text, [p.text])
        f["num_found"], f["num_miss"] = share, (1.0 - share) if n else 0.0
    if not wanted("e5_focus", "use_focus", "agree_sent", "coverage_idf", "rare_found",
                  "coverage_win", "type_ok", "type_miss"):
        return f
    best_of = {}
    for space in ("e5", "use"):
        c = p.sentences.get(space)
        if c is not None and len(c) > 1:  # how far the best sentence stands out
            f[space + "_focus"] = float(c.max() - c.mean())
            best_of[space] = int(np.argmax(c))
    if len(best_of) == 2:  # both encoders pick the same sentence
        f["agree_sent"] = float(best_of["e5"] == best_of["use"])
    f["coverage_idf"], f["rare_found"] = _coverage_idf(ev, p, Background.shipped())
    if not p.text or not ev.text:
        return f
    split = passage_sentences(p.text)
    cos = p.sentences.get("e5")
    best = int(np.argmax(cos)) if cos is not None and len(cos) == len(split) else -1
    near = cues.window(split, best) if best >= 0 else split
    f["coverage_win"] = _coverage(ev, p, frozenset(lexical_tokens(" ".join(near))))
    kind = cues.asks(ev.text)
    if kind:
        ok = cues.holds_type(kind, " ".join(near))
        f["type_ok"], f["type_miss"] = float(ok), float(not ok)
    return f


# -- the background of a question's cosines ---------------------------------------------
BACKGROUND_FILE = "abstention_background.npz"


@dataclass(frozen=True)
class Background:
    """Per encoder space and passage language, the distribution of cosines with a fixed
    sample of passages (Wikipedia and news, bench/abstention.py ``--write-background``):
    their mean vector and covariance, the latter as its leading eigenvectors plus one
    variance for every other direction. A question ``q``'s cosines with the sample have
    mean ``q·m`` and variance ``qᵀΣq``: no pass over passages, the same at any archive
    size (a z-score over the search's own candidates grows with their number)."""

    arrays: Mapping[str, np.ndarray]  # "<space>/<lang>/{mean,vectors,values,rest}"

    def stats(self, space: str, lang: str, q: np.ndarray | None) -> tuple[float, float]:
        """Mean and standard deviation of ``q``'s cosines with the sample (0, 0 when
        the space or language has none, no question vector is known, or the vector is
        of another encoder: the tests' hash encoder under the name "e5")."""
        key = f"{space}/{lang}/"
        if q is None or key + "mean" not in self.arrays:
            return 0.0, 0.0
        q = np.asarray(q, dtype=np.float32)
        if q.shape != self.arrays[key + "mean"].shape:
            return 0.0, 0.0
        proj = self.arrays[key + "vectors"] @ q
        var = float(proj ** 2 @ self.arrays[key + "values"]) + float(
            self.arrays[key + "rest"]) * max(float(q @ q) - float(proj @ proj), 0.0)
        return float(self.arrays[key + "mean"] @ q), float(np.sqrt(max(var, 0.0)))

    def idf(self, lang: str, tokens: Sequence[str]) -> np.ndarray:
        """Each BM25 token's rarity in the sample's language, log((n + 1) / (df + 0.5)),
        its document frequency read from a table of hashed buckets (no vocabulary
        shipped; a collision only makes a word look commoner). 1 for every token
        when the language has no table."""
        table = self.arrays.get(f"df/{lang}")
        if table is None:
            return np.ones(len(tokens))
        n = float(self.arrays[f"df/{lang}/n"])
        df = table[[zlib.crc32(t.encode()) % len(table) for t in tokens]].astype(float)
        return np.log((n + 1) / (df + 0.5))

    def domains(self, space: str, lang: str) -> list[str]:
        """The languages' samples kept per domain ("news", "wiki"), for :meth:`stats`."""
        return sorted(k.split("/")[1].split(".", 1)[1] for k in self.arrays
                      if k.startswith(f"{space}/{lang}.") and k.endswith("/mean"))

    @classmethod
    def fit(cls, samples: Mapping[tuple[str, str], np.ndarray], rank: int = 32,
            texts: Mapping[str, Sequence[frozenset[str]]] | None = None,
            buckets: int = 1 << 16) -> Background:
        """From each (space, lang)'s sample of passage vectors (rows); a language
        written "lang.domain" ("ar.news") is one domain's sample of that language.
        ``texts``: per language, passages' BM25 tokens, for :meth:`idf`."""
        arrays: dict[str, np.ndarray] = {}
        for lang, docs in (texts or {}).items():
            df = np.zeros(buckets, np.uint16)
            for doc in docs:
                hashed = np.unique([zlib.crc32(t.encode()) % buckets for t in doc])
                df[hashed] = np.minimum(df[hashed].astype(np.int64) + 1, 65535)
            arrays[f"df/{lang}"] = df
            arrays[f"df/{lang}/n"] = np.int64(len(docs))
        for (space, lang), x in samples.items():
            x = np.asarray(x, dtype=np.float64)
            mean = x.mean(axis=0)
            values, vectors = np.linalg.eigh(np.cov(x - mean, rowvar=False, bias=True))
            order = np.argsort(values)[::-1]
            keep = order[:rank]
            rest = values[order[rank:]]
            key = f"{space}/{lang}/"
            arrays[key + "mean"] = mean.astype(np.float32)
            arrays[key + "vectors"] = vectors[:, keep].T.astype(np.float32)
            arrays[key + "values"] = values[keep].astype(np.float32)
            arrays[key + "rest"] = np.float32(rest.mean() if len(rest) else 0.0)
            arrays[key + "n"] = np.int64(len(x))
        return cls(arrays)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in self.arrays.items()})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Background:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    @classmethod
    def shipped(cls) -> Background:
        return _background()


@cache
def _background() -> Background:
    res = resources.files("khabar.retrieval").joinpath(BACKGROUND_FILE)
    return Background.from_bytes(res.read_bytes()) if res.is_file() else Background({})


# -- the shipped model --------------------------------------------------------------------
MODEL_FILE = "abstention_model.json"


@dataclass(frozen=True)
class AbstentionModel:
    """Logistic regression over one passage's standardised features: the probability
    that it answers. A question's confidence is its best top passage's. Fitted and
    written by bench/abstention.py (``--write``) on the shareable benchmark sets."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> AbstentionModel:
        def floats(key: str) -> tuple[float, ...]:
            value = d[key]
            assert isinstance(value, list)
            return tuple(float(v) for v in value)

        features = d["features"]
        assert isinstance(features, list)
        model = cls(tuple(str(f) for f in features), floats("mean"), floats("scale"),
                     floats("coef"), float(d["intercept"]))  # type: ignore[arg-type]
        if not len(model.features) == len(model.mean) == len(model.scale) == len(model.coef):
            raise ValueError("abstention model: features and coefficients differ in length")
        return model

    @classmethod
    def shipped(cls) -> AbstentionModel:
        return _shipped()

    def passage_probability(self, ev: Evidence, p: PassageEvidence) -> float:
        f = passage_features(ev, p, frozenset(self.features))
        x = (np.array([f.get(n, 0.0) for n in self.features]) - self.mean) / self.scale
        z = float(x @ np.asarray(self.coef)) + self.intercept
        return float(1.0 / (1.0 + np.exp(-z)))

    def confidence(self, ev: Evidence, top: int = TOP) -> float:
        """Estimated probability that the best of the top passages answers."""
        return max((self.passage_probability(ev, p) for p in ev.hits[:top]), default=0.0)


@cache
def _shipped() -> AbstentionModel:
    text = resources.files("khabar.retrieval").joinpath(MODEL_FILE).read_text("utf-8")
    data = json.loads(text)
    return AbstentionModel.from_dict(data["model"])
