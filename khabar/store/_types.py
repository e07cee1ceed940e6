"""Plain data types that travel from parsing to the store and back out to retrieval."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias


@dataclass
class Article:
    """One news article as parsed, before chunking.

    ``paragraphs`` hold the body as published (cleaned of boilerplate, but not
    normalised): that is what users are shown. ``published`` is the publication
    date (timezone-aware) when the source states it; it is never the ingest date.
    """

    title: str
    paragraphs: list[str]
    outlets: list[str] = field(default_factory=list)
    url: str | None = None
    published: datetime | None = None
    author: str | None = None
    lang: str | None = None
    section: str | None = None
    tags: list[str] = field(default_factory=list)
    source: str | None = None  # where it came from: a file path, URL or t.me link
    site_name: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass
class Chunk:
    """A passage of an article, ready to embed: ``position`` counts from 0."""

    position: int
    text: str
    lang: str


@dataclass
class StoredPassage:
    """A passage as kept in the store, with its article's citation data."""

    id: int
    article_id: int
    position: int
    text: str
    lang: str
    title: str
    outlets: list[str]
    url: str | None
    published: datetime | None
    n_passages: int = 0  # passages in the article, to say "paragraph 3 of 12"
    duplicates: list[int] = field(default_factory=list)  # near-duplicate passage ids
    dup_of: int | None = None  # the passage this one copies (its near-duplicate group)


@dataclass
class StoredArticle:
    """An article as kept in the store, without its passages."""

    id: int
    title: str
    url: str | None
    published: datetime | None  # as the source states it; None when it does not
    ingested: datetime
    lang: str | None
    n_passages: int
    outlets: list[str]

    @property
    def when(self) -> datetime:
        """Publication date; the ingest date for articles that state none."""
        return self.published or self.ingested


class Excluding:
    """Every passage but ``ids``: a chat's scope (all but other chats' private
    passages), so searches filter by the few it hides instead of a set of every passage
    it shows (built per question, ~50 ms at 100k passages)."""

    __slots__ = ("ids",)

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = frozenset(ids)

    def __contains__(self, pid: object) -> bool:
        return pid not in self.ids

    def __bool__(self) -> bool:  # never known to be empty: it allows what is not hidden
        return True

    def __repr__(self) -> str:
        return f"Excluding({sorted(self.ids)!r})"


class Matching(ABC):
    """The passages a backend selects by its own filter expression (Milvus: a boolean
    expression over the passages' copied article fields), too many to hand over as a
    set of ids. Known not to be empty (the backend gives an empty set then). A search
    of that backend filters by the expression itself; anything else asks
    :meth:`among` for the candidates it holds."""

    def __bool__(self) -> bool:
        return True

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and pid in self.among([pid])

    @abstractmethod
    def among(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that match (one query per batch of ids)."""

    @abstractmethod
    def ids(self) -> set[int]:
        """Every matching passage id: for a backend that filters by ids (costly)."""


Allowed: TypeAlias = Set[int] | Excluding | Matching
"""What a search may return: the passages of a set, all but those excluded, or those
a backend's expression selects."""


def allowed_among(allowed: Allowed | None, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that ``allowed`` lets through (all of them when it is None)."""
    if allowed is None:
        return set(ids)
    if isinstance(allowed, Matching):
        return allowed.among(ids)
    return {pid for pid in ids if pid in allowed}
