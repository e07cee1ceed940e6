"""Answers: the sentences that best answer, the passages they come from, citations.

Extractive by default: nothing is said that an outlet did not publish. The top
passages are split into sentences; each is scored against the question by both
encoders (so an English question can pick an Arabic sentence) and the best one
or two lead the answer, each with its ``[n]``. When the best evidence is too weak
the answer abstains and shows at most a few passages as "related"; when it is
neither weak nor sure, the answer is given as "probably" (``Answer.probably``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from khabar import CitationError
from khabar.model import Encoder
from khabar.text import passage_sentences

from ._abstain import AbstentionModel, gather
from ._types import Answer, AnswerSentence, Archive, Hit, Query, Source

if TYPE_CHECKING:
    from ._bridge import LexicalBridge

CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass
class AnswerConfig:
    shown: int = 3  # passages shown with the answer
    max_sentences: int = 2
    related: int = 3  # passages shown as "related" when abstaining
    # The estimated probability that the best top passage answers (a model fitted by
    # bench/abstention.py over per-passage evidence, see docs/benchmarks.md) decides:
    # below ``min_confidence`` the news does not cover it (related passages shown);
    # from there to ``sure`` the answer is given as "probably"; above, plainly.
    min_confidence: float = 0.5
    sure: float = 0.8
    model: AbstentionModel = field(default_factory=AbstentionModel.shipped)


def confidence(index: Archive, query: Query, hits: Sequence[Hit],
               config: AnswerConfig | None = None, bridge: LexicalBridge | None = None,
               query_vectors: Mapping[str, np.ndarray] | None = None) -> float:
    """Estimated probability that the top passages answer the question (``bridge``:
    the searcher's, for the share of the question's words found across languages)."""
    config = config or AnswerConfig()
    return config.model.confidence(gather(index, bridge, query, hits, query_vectors))


def to_source(n: int, hit: Hit) -> Source:
    p = hit.passage
    return Source(n=n, outlets=hit.outlets or p.outlets, title=p.title, published=p.published,
                  url=p.url, position=p.position, n_passages=p.n_passages,
                  article_id=p.article_id, passage_id=p.id, text=p.text, lang=p.lang,
                  score=hit.score)


def compose(index: Archive, query: Query, hits: Sequence[Hit],
            config: AnswerConfig | None = None,
            query_vectors: dict[str, np.ndarray] | None = None,
            bridge: LexicalBridge | None = None) -> Answer:
    config = config or AnswerConfig()
    best = confidence(index, query, hits, config, bridge, query_vectors) if hits else 0.0
    if not hits or best < config.min_confidence:
        related = [to_source(i, h) for i, h in enumerate(hits[: config.related], 1)]
        return Answer(query.text, query.lang, query, [], [], abstained=True, related=related,
                      more=list(hits[config.related:]), confidence=best)
    shown = list(hits[: config.shown])
    sources = [to_source(i, h) for i, h in enumerate(shown, 1)]
    sentences = best_sentences(index, query, sources, config.max_sentences, query_vectors)
    answer = Answer(query.text, query.lang, query, sentences, sources,
                    more=list(hits[config.shown:]), confidence=best,
                    probably=best < config.sure)
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
                      split: Sequence[list[str]]) -> list[np.ndarray]:
    """Each source's sentence vectors (``split``: its sentences): stored at ingest,
    else embedded now (a store from before sentence vectors, or one that does not
    keep them)."""
    stored = index.store.sentence_vectors(encoder.space, [s.passage_id for s in sources])
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
