"""A period's articles with their passages and vectors, as summaries work on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from khabar.store import ArchiveStore


@dataclass
class Passage:
    id: int
    position: int
    text: str
    lang: str
    root: int  # its near-duplicate group: the passage it copies, or itself
    vecs: dict[str, np.ndarray] = field(default_factory=dict)
    words: frozenset[str] | None = None  # its BM25 tokens as stored (``attach_words``)


@dataclass
class Doc:
    """An article of the period, with the passages that passed the filters."""

    id: int
    title: str
    url: str | None
    published: datetime | None
    ingested: datetime
    lang: str | None
    n_passages: int
    outlets: list[str]
    passages: list[Passage] = field(default_factory=list)
    vecs: dict[str, np.ndarray] = field(default_factory=dict)  # mean of its passages

    @property
    def when(self) -> datetime:
        """Publication date; the ingest date for articles that state none."""
        return self.published or self.ingested


def aware(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so every comparison is well defined."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def load_docs(store: ArchiveStore, *, since: datetime | None = None, until: datetime | None = None,
              outlets: Sequence[str] = (),
              langs: Sequence[str] = (), origin: str | None = None,
              article_ids: Sequence[int] | None = None, scope: str | None = None
              ) -> list[Doc]:
    """Articles published (or, undated, ingested) in ``[since, until)``, oldest first,
    with their passages (in ``langs``); articles left without passages are dropped.

    Without a period, every article (of ``article_ids`` when given) that passes the
    other filters.
    """
    docs = {a.id: Doc(id=a.id, title=a.title, url=a.url, published=a.published,
                      ingested=a.ingested, lang=a.lang, n_passages=a.n_passages,
                      outlets=a.outlets)
            for a in store.articles_in(since=since, until=until, origin=origin,
                                       outlets=outlets, ids=article_ids, scope=scope)}
    for p in store.article_passages(list(docs), langs) if docs else []:
        docs[p.article_id].passages.append(
            Passage(p.id, p.position, p.text, p.lang, p.dup_of or p.id))
    return sorted((d for d in docs.values() if d.passages), key=lambda d: (d.when, d.id))


def attach_vectors(store: ArchiveStore, docs: Sequence[Doc], spaces: Sequence[str]) -> list[str]:
    """Fill every passage's vectors; returns the spaces every passage has."""
    pids = [p.id for d in docs for p in d.passages]
    have: list[str] = []
    for space in spaces:
        vecs = store.vectors(space, pids)
        if len(vecs) < len(pids):
            continue  # a space not (fully) stored: leave it out rather than guess
        for d in docs:
            for p in d.passages:
                p.vecs[space] = vecs[p.id]
        have.append(space)
    return have


def attach_words(store: ArchiveStore, docs: Sequence[Doc]) -> None:
    """Each passage's BM25 tokens as stored at ingest (the second pass's lexical check);
    passages without stored tokens (a wire copy's) are analysed when needed."""
    stored = store.passage_tokens([p.id for d in docs for p in d.passages])
    for d in docs:
        for p in d.passages:
            text = stored.get(p.id)
            if text is not None:
                p.words = frozenset(text.split())
