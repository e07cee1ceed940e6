"""Answers: the sentences that best answer, the passages they come from, citations.

Extractive by default: nothing is said that an outlet did not publish. The top
passages are split into sentences; each is scored against the question by both
encoders (so an English question can pick an Arabic sentence) and the best one
or two lead the answer, each with its ``[n]``. When the best evidence is too weak
the answer abstains and shows at most a few passages as "related".
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from khabar import CitationError
from khabar.model import Encoder
from khabar.text import lexical_tokens, passage_sentences

from ._types import Answer, AnswerSentence, Archive, Hit, Query, Source

CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass
class AnswerConfig:
    shown: int = 3  # passages shown with the answer
    max_sentences: int = 2
    related: int = 3  # passages shown as "related" when abstaining
    # Abstain when the estimated probability that the top passages answer is below
    # this. The model is fitted by bench/abstention.py (see docs/benchmarks.md).
    min_confidence: float = 0.5
    # Fitted on 1,400 questions of 7 benchmark directions by bench/abstention.py
    # (answerable vs about articles held out of the index); held-out AUC 0.79-0.99.
    coef: tuple[float, ...] = (2.404, 2.36, 1.318, 0.12, 0.173, 5.286,
                               1.889, 4.308, -0.282, 2.121)
    intercept: float = -7.914


FEATURES = ("e5", "use", "cross", "e5_cross", "use_cross", "coverage",
            "e5_sent", "use_sent", "e5_sent_cross", "use_sent_cross")


def evidence_features(query: Query, hits: Sequence[Hit], top: int = 3,
                      tokens: Mapping[int, str] | None = None) -> list[float]:
    """The best evidence among the top passages, as the abstention model sees it.

    e5's cosines are compressed (0.75-0.85 for anything news-like) and lower
    across languages; USE's separate on- and off-topic text better; the share
    of the question's words found in a same-language passage adds lexical proof;
    the best single sentence's cosines tell a passage that answers from one that
    is merely about the topic (whole-passage cosines where there are none).
    """
    head = list(hits[:top])
    if not head:
        return [0.0] * len(FEATURES)
    e5 = max(h.signals.get("e5", 0.0) for h in head)
    use = max(h.signals.get("use", 0.0) for h in head)
    cross = 1.0 if head[0].passage.lang != query.lang else 0.0
    q = set(lexical_tokens(query.search_text))
    tokens = tokens or {}

    def passage_tokens(h: Hit) -> set[str]:  # as stored at ingest where given
        stored = tokens.get(h.passage.id)
        return set(stored.split()) if stored is not None else set(lexical_tokens(h.passage.text))

    coverage = max((len(q & passage_tokens(h)) / len(q)
                    for h in head if h.passage.lang == query.lang), default=0.0) if q else 0.0
    e5_sent = max(h.signals.get("e5_sent", h.signals.get("e5", 0.0)) for h in head)
    use_sent = max(h.signals.get("use_sent", h.signals.get("use", 0.0)) for h in head)
    return [e5, use, cross, e5 * cross, use * cross, coverage,
            e5_sent, use_sent, e5_sent * cross, use_sent * cross]


def confidence(query: Query, hits: Sequence[Hit], config: AnswerConfig,
               tokens: Mapping[int, str] | None = None) -> float:
    """Estimated probability that the top passages answer the question (``tokens``:
    passages' stored BM25 tokens, else they are analysed again)."""
    x = np.asarray(evidence_features(query, hits, tokens=tokens), dtype=np.float64)
    z = float(x @ np.asarray(config.coef)) + config.intercept
    return 1.0 / (1.0 + np.exp(-z))


def to_source(n: int, hit: Hit) -> Source:
    p = hit.passage
    return Source(n=n, outlets=hit.outlets or p.outlets, title=p.title, published=p.published,
                  url=p.url, position=p.position, n_passages=p.n_passages,
                  article_id=p.article_id, passage_id=p.id, text=p.text, lang=p.lang,
                  score=hit.score)


def compose(index: Archive, query: Query, hits: Sequence[Hit],
            config: AnswerConfig | None = None,
            query_vectors: dict[str, np.ndarray] | None = None) -> Answer:
    config = config or AnswerConfig()
    # The stored tokens of the passages the coverage feature reads: no analysis of
    # their text again.
    tokens = index.store.passage_tokens(
        [h.passage.id for h in hits[:3] if h.passage.lang == query.lang])
    best = confidence(query, hits, config, tokens) if hits else 0.0
    if not hits or best < config.min_confidence:
        related = [to_source(i, h) for i, h in enumerate(hits[: config.related], 1)]
        return Answer(query.text, query.lang, query, [], [], abstained=True, related=related,
                      more=list(hits[config.related:]), confidence=best)
    shown = list(hits[: config.shown])
    sources = [to_source(i, h) for i, h in enumerate(shown, 1)]
    sentences = best_sentences(index, query, sources, config.max_sentences, query_vectors)
    answer = Answer(query.text, query.lang, query, sentences, sources,
                    more=list(hits[config.shown:]), confidence=best)
    check_citations(answer)
    return answer


def best_sentences(index: Archive, query: Query, sources: Sequence[Source], limit: int,
                   query_vectors: dict[str, np.ndarray] | None = None
                   ) -> list[AnswerSentence]:
    """The sentences of the shown passages closest to the question."""
    split = [passage_sentences(src.text) for src in sources]
    cands = [(src.n, sent) for src, sents in zip(sources, split, strict=True) for sent in sents]
    total = np.zeros(len(cands))
    for enc in index.encoders:
        q = (query_vectors or {}).get(enc.space)
        if q is None:
            q = enc.embed_queries([query.search_text])[0]
        sims = _sentence_vectors(index, enc, sources, split) @ q
        sd = float(sims.std()) or 1.0
        total += (sims - sims.mean()) / sd
    # A small prior for the top-ranked passage: retrieval already weighed it.
    total += np.array([0.3 if n == 1 else 0.0 for n, _ in cands])
    order = list(np.argsort(-total))
    picked = [order[0]]
    for i in order[1:]:
        if len(picked) >= limit:
            break
        if total[i] >= total[order[0]] - 0.5 and cands[i][1] not in {cands[j][1] for j in picked}:
            picked.append(i)
    picked.sort(key=lambda i: (cands[i][0], i))  # reading order
    return [AnswerSentence(cands[i][1], cands[i][0]) for i in picked]


def _sentence_vectors(index: Archive, encoder: Encoder, sources: Sequence[Source],
                      split: Sequence[list[str]]) -> np.ndarray:
    """The sources' sentence vectors (``split``: each one's passage_sentences), in
    order, as one matrix (see :func:`sentence_matrices`)."""
    return np.concatenate(sentence_matrices(index, encoder, sources, split))


def sentence_matrices(index: Archive, encoder: Encoder, sources: Sequence[Source],
                      split: Sequence[list[str]], *, alone: bool = False) -> list[np.ndarray]:
    """Each source's sentence vectors (``split``: its sentences): stored at ingest,
    else embedded now (a store from before sentence vectors, or one that does not
    keep them). With ``alone``, each sentence's vector as embedded on its own even
    where the store pools them from the passage's run (late chunking): what a rule
    fitted on such vectors needs (the grounding check)."""
    info = index.store.spaces().get(encoder.space) if alone else None
    stored = {} if info is not None and info.sentences == "late" else \
        index.store.sentence_vectors(encoder.space, [s.passage_id for s in sources])
    parts = []
    for src, sents in zip(sources, split, strict=True):
        mat = stored.get(src.passage_id)
        parts.append(mat if mat is not None and len(mat) == len(sents)
                     else _SENTENCES.embed(encoder, sents))
    return parts


class _SentenceCache:
    """Sentence vectors of recently shown passages: popular passages come back
    for many questions (50 chats asking about the same event)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, encoder: Encoder, texts: list[str]) -> np.ndarray:
        key = encoder.fingerprint
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if (key, t) not in self._data]
        fresh = dict(zip(missing, encoder.embed_passages(missing), strict=True)) \
            if missing else {}
        with self._lock:
            self._data.update({(key, t): v for t, v in fresh.items()})
            out = []
            for t in texts:
                v = fresh.get(t)
                if v is None:
                    v = self._data.get((key, t))
                if v is None:  # evicted by another thread meanwhile
                    v = encoder.embed_passages([t])[0]
                self._data[(key, t)] = v
                self._data.move_to_end((key, t))
                out.append(v)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return np.stack(out)


_SENTENCES = _SentenceCache()


def check_citations(answer: Answer) -> None:
    """Every ``[n]`` refers to a shown source; every shown source is cited.

    Sources are numbered 1..n in order; each is cited by an answer sentence, by
    the generated text, or by being shown as passage ``[n]`` itself.
    """
    numbers = [s.n for s in answer.sources]
    if numbers != list(range(1, len(numbers) + 1)):
        raise CitationError(f"sources are not numbered 1..n: {numbers}")
    valid = set(numbers)
    used = {s.source for s in answer.sentences}
    if answer.generated:
        used |= {int(m) for m in CITATION.findall(answer.generated)}
    if not used <= valid:
        raise CitationError(f"cited {sorted(used - valid)} but shows only {sorted(valid)}")
    if answer.sentences and not valid:
        raise CitationError("answer sentences without sources")
