"""The types retrieval hands to front ends: queries, hits, sources and answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from khabar.store import StoredPassage
from khabar.text import Lang

if TYPE_CHECKING:
    from khabar import Settings
    from khabar.model import Encoder
    from khabar.store import ArchiveStore


class Archive(Protocol):
    """What retrieval reads: a store and the encoders that embedded it.

    ``khabar.index.Index`` is one; retrieval never imports the index package, so data
    flows one way (index → store ← retrieval).
    """

    settings: Settings
    store: ArchiveStore

    @property  # read-only: Index's list of encoders is one
    def encoders(self) -> Sequence[Encoder]: ...

    @property
    def model(self) -> Encoder: ...

    def encoder(self, space: str) -> Encoder | None: ...


# A filter read from the question that matched nothing and was dropped.
Relaxed = Literal["time"]


@dataclass
class Filters:
    """Restrictions on what may be retrieved. Empty means no restriction."""

    outlets: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    langs: list[str] = field(default_factory=list)
    origin: str | None = None  # e.g. "chat:-100123": only what that chat brought
    recent_first: bool = False  # order the relevant results by publication date
    # A chat's view, e.g. "chat:-100123": the shared archive and that chat's own
    # additions, never another chat's (khabar.store._origin).
    scope: str | None = None

    def __bool__(self) -> bool:
        return bool(self.outlets or self.since or self.until or self.langs or self.origin
                    or self.recent_first or self.scope)

    def merged(self, other: Filters) -> Filters:
        """``other``'s settings where given, else this one's."""
        return Filters(
            outlets=other.outlets or self.outlets,
            since=other.since or self.since,
            until=other.until or self.until,
            langs=other.langs or self.langs,
            origin=other.origin or self.origin,
            recent_first=other.recent_first or self.recent_first,
            scope=other.scope or self.scope,
        )

    def describe(self) -> str:
        parts = []
        if self.outlets:
            parts.append("outlet=" + ",".join(self.outlets))
        if self.since:
            parts.append("since=" + self.since.date().isoformat())
        if self.until:
            parts.append("until=" + self.until.date().isoformat())
        if self.langs:
            parts.append("lang=" + ",".join(self.langs))
        if self.recent_first:
            parts.append("recent-first")
        return " ".join(parts)


@dataclass
class Query:
    """A question as understood: its language, the text to search and its filters."""

    text: str  # as asked
    search_text: str  # what is searched (filters removed, follow-ups expanded)
    lang: Lang
    filters: Filters = field(default_factory=Filters)
    follow_up_of: str | None = None  # the previous question it was expanded with
    # The time bounds were read from the question's words ("yesterday"), not set
    # explicitly: when nothing indexed falls in them, search may drop them.
    time_from_text: bool = False

    @property
    def conversation(self) -> str:
        """What the asker's next question is read with, if it is a follow-up: chained
        follow-ups ("and Homs?", then "and when?") keep the original subject."""
        text = f"{self.follow_up_of} {self.text}" if self.follow_up_of else self.text
        return text[-500:]


@dataclass
class Hit:
    """One retrieved passage, with the evidence for its rank."""

    passage: StoredPassage
    score: float  # fused score used for ranking (higher is better)
    signals: dict[str, float] = field(default_factory=dict)  # per-signal scores and ranks
    outlets: list[str] = field(default_factory=list)  # its own and its near-duplicates'
    copies: list[StoredPassage] = field(default_factory=list)  # near-duplicates collapsed


@dataclass
class ContextSentence:
    """A sentence of a neighbouring paragraph of a source's article, shown with it
    because it completes the answer (the quote a paragraph introduces, say)."""

    text: str
    position: int  # 0-based paragraph index in the article (the source's is another)


@dataclass
class Source:
    """A numbered citation: what ``[n]`` refers to."""

    n: int
    outlets: list[str]
    title: str
    published: datetime | None
    url: str | None
    position: int  # 0-based paragraph index in the article
    n_passages: int
    article_id: int
    passage_id: int
    text: str
    lang: str
    score: float
    # Sentences of the paragraphs next to it in the same article that the answer
    # quotes, in reading order (shown before or after the passage by position).
    context: list[ContextSentence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["published"] = self.published.isoformat() if self.published else None
        return d


@dataclass
class AnswerSentence:
    text: str
    source: int  # the citation number it comes from
    # Set when it comes from a neighbouring paragraph of the source's article (its
    # 0-based position there), not from the cited passage itself.
    position: int | None = None


@dataclass
class Answer:
    """What a question gets: answering sentences, then the cited passages.

    Every ``[n]`` used in ``sentences`` or ``generated`` is one of ``sources``,
    and every source is cited (``check_citations`` enforces it).
    """

    question: str
    lang: Lang
    query: Query
    sentences: list[AnswerSentence]
    sources: list[Source]
    abstained: bool = False
    related: list[Source] = field(default_factory=list)  # shown when abstaining
    generated: str | None = None  # an LLM's answer, citations checked
    more: list[Hit] = field(default_factory=list)  # further passages, for paging
    timings: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    # Answered, but the evidence is not sure: shown as "probably…" with the passages.
    probably: bool = False
    # Filters read from the question that matched nothing and were dropped ("time").
    relaxed: list[Relaxed] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "lang": self.lang,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "probably": self.probably,
            "filters": self.query.filters.describe(),
            "relaxed": list(self.relaxed),
            "search_text": self.query.search_text,
            "answer": [{"text": s.text, "source": s.source, "position": s.position}
                       for s in self.sentences],
            "generated": self.generated,
            "passages": [s.to_dict() for s in self.sources],
            "related": [s.to_dict() for s in self.related],
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }
