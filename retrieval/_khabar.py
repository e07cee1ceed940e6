"""The one object front ends talk to: questions in, answers out."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

from khabar import KhabarError

from ._answer import AnswerConfig, check_citations, compose
from ._query import understand
from ._search import SearchConfig, Searcher, SearchResult
from ._types import Answer, Archive, Filters, Query

if TYPE_CHECKING:  # LangChain is imported when used: a one-shot question spares ~0.5 s
    from langchain_core.language_models import BaseChatModel

    from ._langchain import KhabarEmbeddings, KhabarRetriever

log = logging.getLogger(__name__)


class Khabar:
    """Question answering over an :class:`Archive` (an opened index). Thread-safe; share one."""

    def __init__(self, index: Archive, *, search: SearchConfig | None = None,
                 answer: AnswerConfig | None = None, llm: BaseChatModel | None = None) -> None:
        self.index = index
        self.searcher = Searcher(index, search)
        self.answer_config = answer or AnswerConfig(shown=index.settings.top_k)
        if llm is None and index.settings.llm:
            from ._generate import load_chat_model

            llm = load_chat_model(index.settings.llm, index.settings.llm_api_key)
        self.llm = llm
        self._outlets: tuple[int, list[str]] | None = None

    def understand(self, text: str, *, previous: str | None = None,
                   filters: Filters | None = None, now: datetime | None = None,
                   read_filters: bool = True) -> Query:
        return understand(text, previous=previous, known_outlets=self._known_outlets(),
                          filters=filters, now=now, read_filters=read_filters)

    def _known_outlets(self) -> list[str]:
        """The store's outlets, listed again only after a write (a count over every
        article's outlets: milliseconds at 100k passages, tens at a million)."""
        generation = self.index.store.generation()
        cached = self._outlets
        if cached is None or cached[0] != generation:
            cached = self._outlets = (generation,
                                      [name for name, _ in self.index.store.outlets()])
        return cached[1]

    def search(self, query: Query, k: int = 10) -> SearchResult:
        return self.searcher.search(query, k)

    def ask(self, text: str, *, previous: str | None = None, filters: Filters | None = None,
            now: datetime | None = None, k: int = 10, read_filters: bool = True) -> Answer:
        """Answer a question; ``previous`` is the asker's previous question;
        ``read_filters=False``: no period or outlet read from its words."""
        t0 = time.perf_counter()
        query = self.understand(text, previous=previous, filters=filters, now=now,
                                read_filters=read_filters)
        result = self.search(query, k=k)
        t1 = time.perf_counter()
        answer = compose(self.index, query, result.hits, self.answer_config,
                         result.query_vectors, self.searcher.bridge, result.bridge_groups)
        answer.timings = {**result.timings, "answer": time.perf_counter() - t1}
        answer.relaxed = list(result.relaxed)
        if self.llm is not None and not answer.abstained:
            from ._generate import generate

            t2 = time.perf_counter()
            try:
                answer.generated = generate(self.llm, query.text, query.lang, answer.sources,
                                            self.index)
            except KhabarError:
                raise
            except Exception as exc:  # the provider's errors: fall back to extractive
                log.warning("LLM answer failed, extractive only: %s", exc)
            answer.timings["generate"] = time.perf_counter() - t2
            check_citations(answer)
        answer.timings["total"] = time.perf_counter() - t0
        return answer

    def retriever(self, k: int = 5, filters: Filters | None = None) -> KhabarRetriever:
        from ._langchain import KhabarRetriever

        return KhabarRetriever(khabar=self, k=k, filters=filters)

    def embeddings(self) -> KhabarEmbeddings:
        from ._langchain import KhabarEmbeddings

        return KhabarEmbeddings(self.index.model)
