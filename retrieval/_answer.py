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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from khabar import CitationError
from khabar.model import Encoder
from khabar.store import StoredPassage
from khabar.text import passage_sentences

from ._abstain import AbstentionModel, gather
from ._embed_cache import EmbeddingCache
from ._types import Answer, AnswerSentence, Archive, ContextSentence, Hit, Query, Source

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
    # ``sure`` 0.9 rather than 0.8: on news, half as many plain answers to questions the
    # archive does not cover (NTREX ar->en 0.26 -> 0.14) and fewer to off-topic ones,
    # these going to "probably" (docs/benchmarks.md, "The operating point").
    min_confidence: float = 0.5
    sure: float = 0.9
    model: AbstentionModel = field(default_factory=AbstentionModel.shipped)
    # Answers that span paragraphs (bench/multipara.py, docs/benchmarks.md): a question
    # often matches the paragraph that names a source while what the source said is in
    # the next one. So the sentences of the paragraphs next to the first ``neighbours``
    # shown passages (in their articles) are candidates too, scored as the passage's own
    # less ``neighbour_penalty`` (z units), and shown with the passage they complete;
    # and a sentence inherits ``inherit`` of the lead its preceding sentence in the
    # article has over it (the sentence after the one naming a source is what it said).
    neighbours: int = 3
    neighbour_sides: Literal["both", "next"] = "both"
    neighbour_penalty: float = 0.0
    inherit: float = 0.8
    # Weight of the second encoder's (USE's) cosines beside e5's in sentence scores:
    # e5 tells the answering sentence better (0.5 beat 1: bench/multipara.py).
    second_sentence_weight: float = 0.5


def confidence(index: Archive, query: Query, hits: Sequence[Hit],
               config: AnswerConfig | None = None, bridge: LexicalBridge | None = None,
               query_vectors: Mapping[str, np.ndarray] | None = None,
               bridge_groups: Mapping[str, list[tuple[float, list[str]]]] | None = None
               ) -> float:
    """Estimated probability that the top passages answer the question (``bridge``:
    the searcher's, for the share of the question's words found across languages;
    ``bridge_groups``: its groups for this question where the search made them)."""
    config = config or AnswerConfig()
    return config.model.confidence(gather(index, bridge, query, hits, query_vectors,
                                          bridge_groups=bridge_groups))


def to_source(n: int, hit: Hit) -> Source:
    p = hit.passage
    return Source(n=n, outlets=hit.outlets or p.outlets, title=p.title, published=p.published,
                  url=p.url, position=p.position, n_passages=p.n_passages,
                  article_id=p.article_id, passage_id=p.id, text=p.text, lang=p.lang,
                  score=hit.score)


def compose(index: Archive, query: Query, hits: Sequence[Hit],
            config: AnswerConfig | None = None,
            query_vectors: dict[str, np.ndarray] | None = None,
            bridge: LexicalBridge | None = None,
            bridge_groups: Mapping[str, list[tuple[float, list[str]]]] | None = None
            ) -> Answer:
    config = config or AnswerConfig()
    best = (confidence(index, query, hits, config, bridge, query_vectors, bridge_groups)
            if hits else 0.0)
    if not hits or best < config.min_confidence:
        related = [to_source(i, h) for i, h in enumerate(hits[: config.related], 1)]
        return Answer(query.text, query.lang, query, [], [], abstained=True, related=related,
                      more=list(hits[config.related:]), confidence=best)
    shown = list(hits[: config.shown])
    sources = [to_source(i, h) for i, h in enumerate(shown, 1)]
    sentences = best_sentences(index, query, sources, config.max_sentences, query_vectors,
                               neighbours=config.neighbours, sides=config.neighbour_sides,
                               penalty=config.neighbour_penalty,
                               second_weight=config.second_sentence_weight,
                               inherit=config.inherit)
    for s in sentences:  # shown with its source, cited to the same article
        if s.position is not None:
            sources[s.source - 1].context.append(ContextSentence(s.text, s.position))
    answer = Answer(query.text, query.lang, query, sentences, sources,
                    more=list(hits[config.shown:]), confidence=best,
                    probably=best < config.sure)
    check_citations(answer)
    return answer


def best_sentences(index: Archive, query: Query, sources: Sequence[Source], limit: int,
                   query_vectors: dict[str, np.ndarray] | None = None, *,
                   neighbours: int = 0, sides: Literal["both", "next"] = "both",
                   penalty: float = 0.5, second_weight: float = 1.0, inherit: float = 0.0
                   ) -> list[AnswerSentence]:
    """The sentences closest to the question: of the shown passages, and of the
    paragraphs next to the first ``neighbours`` of them in their articles (those get
    the ``position`` they have there, and score ``penalty`` lower). Each encoder's
    cosines count as z-scores over the shown sentences, the second encoder's times
    ``second_weight``; ``inherit``: see :func:`_inherited`. The defaults are the
    answers before neighbour-aware evidence; :class:`AnswerConfig` holds the shipped."""
    split = [passage_sentences(src.text) for src in sources]
    cands: list[tuple[int, str, int | None]] = [
        (src.n, sent, None) for src, sents in zip(sources, split, strict=True) for sent in sents]
    near = neighbour_paragraphs(index, sources, neighbours, sides) if neighbours else []
    near_split = [passage_sentences(p.text) for _, p in near]
    cands += [(n, sent, p.position) for (n, p), sents in zip(near, near_split, strict=True)
              for sent in sents]
    shown = sum(map(len, split))
    total = np.zeros(len(cands))
    for enc in index.encoders:
        q = (query_vectors or {}).get(enc.space)
        if q is None:
            q = enc.embed_queries([query.search_text])[0]
        sims = _sentence_vectors(index, enc, sources, split) @ q
        if near:
            sims = np.concatenate([sims, np.concatenate(_matrices(
                index, enc, [p.id for _, p in near], near_split)) @ q])
        # Scaled by the shown sentences alone: the neighbours' change no score of theirs.
        sd = float(sims[:shown].std()) or 1.0
        weight = 1.0 if enc.space == "e5" else second_weight
        total += weight * (sims - sims[:shown].mean()) / sd
    if inherit:
        total = _inherited(total, [(src.article_id, src.position, len(sents))
                                   for src, sents in zip(sources, split, strict=True)]
                           + [(p.article_id, p.position, len(sents))
                              for (_, p), sents in zip(near, near_split, strict=True)], inherit)
    # A small prior for the top-ranked passage (and its paragraphs' neighbours):
    # retrieval already weighed it.
    total += np.array([(0.3 if n == 1 else 0.0) - (penalty if at is not None else 0.0)
                       for n, _, at in cands])
    order = list(np.argsort(-total, kind="stable"))
    picked = [order[0]]
    for i in order[1:]:
        if len(picked) >= limit:
            break
        if total[i] >= total[order[0]] - 0.5 and cands[i][1] not in {cands[j][1] for j in picked}:
            picked.append(i)
    home = {src.n: src.position for src in sources}
    picked.sort(key=lambda i: (cands[i][0], _at(cands[i][2], home[cands[i][0]]), i))
    return [AnswerSentence(text, n, at) for n, text, at in (cands[i] for i in picked)]


def _inherited(total: np.ndarray, paragraphs: Sequence[tuple[int, int, int]], share: float
               ) -> np.ndarray:
    """Scores where each sentence gains ``share`` of the lead its preceding sentence in
    the article (across a paragraph break too) has over it: the sentence after the one
    that names a source is what the source said. ``paragraphs``: (article, position,
    sentences) of the candidates' passages, in candidate order."""
    span: dict[tuple[int, int], tuple[int, int]] = {}  # (article, position) -> (first, count)
    start = 0
    for article, position, count in paragraphs:
        span.setdefault((article, position), (start, count))
        start += count
    out = total.copy()
    start = 0
    for article, position, count in paragraphs:
        before = span.get((article, position - 1))
        for k in range(count):
            prev = start + k - 1 if k else (before[0] + before[1] - 1 if before else None)
            if prev is not None:
                out[start + k] += share * max(0.0, total[prev] - total[start + k])
        start += count
    return out


def _at(position: int | None, home: int) -> int:
    return home if position is None else position


def neighbour_paragraphs(index: Archive, sources: Sequence[Source], first: int,
                         sides: Literal["both", "next"] = "both"
                         ) -> list[tuple[int, StoredPassage]]:
    """(citation number, passage) for the paragraphs just before and after each of the
    ``first`` sources in its article (after only, with ``sides="next"``), none of them
    shown already: one indexed read."""
    shown = {src.passage_id for src in sources}
    found = index.store.neighbours([src.passage_id for src in sources[:first]], span=1)
    out: list[tuple[int, StoredPassage]] = []
    for src in sources[:first]:
        for p in found.get(src.passage_id, []):
            if p.id in shown or (sides == "next" and p.position < src.position):
                continue
            shown.add(p.id)
            out.append((src.n, p))
    return out


def _sentence_vectors(index: Archive, encoder: Encoder, sources: Sequence[Source],
                      split: Sequence[list[str]]) -> np.ndarray:
    """The sources' sentence vectors (``split``: each one's passage_sentences), in
    order, as one matrix (see :func:`sentence_matrices`)."""
    return np.concatenate(sentence_matrices(index, encoder, sources, split))


def sentence_matrices(index: Archive, encoder: Encoder, sources: Sequence[Source],
                      split: Sequence[list[str]], *, alone: bool = False) -> list[np.ndarray]:
    """Each source's sentence vectors (``split``: its sentences): stored at ingest,
    else embedded now (a store from before sentence vectors, or one that does not
    keep them). With ``alone``, each sentence's vector as embedded on its own (at
    fp32) even where the store pools them from the passage's run (late chunking) or
    embeds them at int8: what a rule fitted on such vectors needs (the grounding
    check)."""
    return _matrices(index, encoder, [s.passage_id for s in sources], split, alone=alone)


def _matrices(index: Archive, encoder: Encoder, ids: Sequence[int],
              split: Sequence[list[str]], *, alone: bool = False) -> list[np.ndarray]:
    info = index.store.spaces().get(encoder.space) if alone else None
    stored = {} if info is not None and info.sentences != "each" else \
        index.store.sentence_vectors(encoder.space, ids)
    parts = []
    for pid, sents in zip(ids, split, strict=True):
        mat = stored.get(pid)
        parts.append(mat if mat is not None and len(mat) == len(sents)
                     else _SENTENCES.embed(encoder, sents))
    return parts


# Sentence vectors of recently shown passages: popular passages come back for many
# questions (50 chats asking about the same event).
_SENTENCES = EmbeddingCache(20_000)


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
