"""khabar's retrieval: question → answer with citations, over an :class:`Archive`.

Plain functions and types any front end can call: :class:`Khabar` answers,
:class:`KhabarRetriever` and :class:`KhabarEmbeddings` plug into LangChain.
"""

from typing import TYPE_CHECKING, Any

from khabar import CitationError

from ._answer import AnswerConfig, check_citations, confidence, to_source
from ._khabar import Khabar
from ._query import looks_like_follow_up, parse_filters, understand
from ._search import SearchConfig, Searcher, SearchResult
from ._summary import SummaryConfig, parse_duration, summarize, timeline
from ._summary_types import Story, Summary, TimelineEntry, Version
from ._types import Answer, AnswerSentence, Archive, ContextSentence, Filters, Hit, Query, Source

if TYPE_CHECKING:
    from ._langchain import KhabarEmbeddings, KhabarRetriever, hit_to_document

# LangChain's classes are imported on first use: a one-shot question spares ~0.5 s.
_LANGCHAIN = ("KhabarEmbeddings", "KhabarRetriever", "hit_to_document")


def __getattr__(name: str) -> Any:
    if name in _LANGCHAIN:
        from . import _langchain

        return getattr(_langchain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Answer",
    "AnswerConfig",
    "AnswerSentence",
    "Archive",
    "CitationError",
    "ContextSentence",
    "Filters",
    "Hit",
    "Khabar",
    "KhabarEmbeddings",
    "KhabarRetriever",
    "Query",
    "SearchConfig",
    "SearchResult",
    "Searcher",
    "Source",
    "Story",
    "Summary",
    "SummaryConfig",
    "TimelineEntry",
    "Version",
    "check_citations",
    "confidence",
    "hit_to_document",
    "looks_like_follow_up",
    "parse_duration",
    "parse_filters",
    "summarize",
    "timeline",
    "to_source",
    "understand",
]
