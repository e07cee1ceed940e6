"""What a summary hands to front ends: stories, their citations, a timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._types import AnswerSentence, Source


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


@dataclass
class Version:
    """One text of a story: an article, with the wire copies that carry the same text
    under other outlets' names (near-duplicates of most of its passages)."""

    article_id: int
    title: str
    lang: str
    outlets: list[str]  # the article's, then its copies'
    url: str | None
    when: datetime
    copies: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "title": self.title, "lang": self.lang,
                "outlets": self.outlets, "url": self.url, "when": self.when.isoformat(),
                "copies": self.copies}


@dataclass
class Story:
    """One event as covered by one or more articles, possibly in several languages.

    ``sentences`` cite ``sources`` by their digest-wide number ``[n]``. ``first`` and
    ``last`` are publication dates; for articles without one, the ingest date
    (``undated`` counts them).
    """

    id: str  # stable for the same member articles
    headline: str  # the most central article's title, as published
    headline_article_id: int
    url: str | None  # the headline article's link
    lang: str  # the headline's language
    sentences: list[AnswerSentence]
    sources: list[Source]
    outlets: list[str]  # most articles first
    article_ids: list[int]  # oldest first
    first: datetime | None
    last: datetime | None
    langs: list[str] = field(default_factory=list)
    undated: int = 0
    generated: str | None = None  # an LLM's phrasing, citations checked
    versions: list[Version] = field(default_factory=list)  # oldest first
    # Coverage gaps: the story's only language when the period's news has others; told by
    # one outlet when the period has others (in a one-outlet archive that is no gap).
    only_lang: str | None = None
    single_outlet: bool = False

    @property
    def n_articles(self) -> int:
        return len(self.article_ids)

    @property
    def n_outlets(self) -> int:
        return len(self.outlets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "headline": self.headline, "url": self.url, "lang": self.lang,
            "headline_article_id": self.headline_article_id,
            "sentences": [{"text": s.text, "source": s.source} for s in self.sentences],
            "generated": self.generated,
            "outlets": self.outlets, "n_outlets": self.n_outlets,
            "n_articles": self.n_articles, "single_outlet": self.single_outlet,
            "article_ids": self.article_ids, "langs": self.langs,
            "first": _iso(self.first), "last": _iso(self.last), "undated": self.undated,
            "sources": [s.n for s in self.sources],
            "versions": [v.to_dict() for v in self.versions], "only_lang": self.only_lang,
        }


@dataclass
class Summary:
    """The stories of a period, ranked by coverage; ``sources`` numbered 1..n."""

    since: datetime
    until: datetime
    stories: list[Story]  # the shown ones, at most ``limit``
    n_articles: int  # articles summarised: of the period, after every filter and the cap
    n_stories: int  # stories found, shown or not
    n_outlets: int
    undated: int = 0  # selected by ingest date: they state no publication date
    omitted: int = 0  # the period's oldest articles beyond the clustering cap, left out
    topic: str | None = None
    outlets: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    origin: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.stories

    @property
    def sources(self) -> list[Source]:
        return [s for story in self.stories for s in story.sources]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since), "until": _iso(self.until), "empty": self.empty,
            "topic": self.topic, "outlets_filter": self.outlets, "langs": self.langs,
            "origin": self.origin,
            "counts": {"articles": self.n_articles, "stories": self.n_stories,
                       "shown": len(self.stories), "outlets": self.n_outlets,
                       "undated": self.undated, "omitted": self.omitted},
            "undated_note": ("articles without a publication date are placed by the date "
                             "khabar indexed them") if self.undated else None,
            "stories": [s.to_dict() for s in self.stories],
            "sources": [s.to_dict() for s in self.sources],
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }


@dataclass
class TimelineEntry:
    """One article of a story, for its timeline."""

    article_id: int
    when: datetime  # publication date, or the ingest date when ``dated`` is False
    dated: bool
    outlets: list[str]
    title: str
    url: str | None
    lang: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "when": self.when.isoformat(),
                "dated": self.dated, "outlets": self.outlets, "title": self.title,
                "url": self.url, "lang": self.lang}
