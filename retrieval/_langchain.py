"""khabar inside LangChain: the retriever as ``BaseRetriever``, encoders as ``Embeddings``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from khabar.model import Encoder

from ._types import Filters, Hit


class KhabarEmbeddings(Embeddings):
    """An encoder with its prompts: documents get ``passage:``, queries ``query:``."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.embed_queries([text])[0].tolist()


def hit_to_document(hit: Hit) -> Document:
    p = hit.passage
    return Document(
        page_content=p.text,
        id=str(p.id),
        metadata={
            "passage_id": p.id, "article_id": p.article_id, "title": p.title,
            "outlets": hit.outlets or p.outlets, "url": p.url,
            "published": p.published.isoformat() if p.published else None,
            "position": p.position, "lang": p.lang, "score": hit.score,
            "signals": hit.signals,
        },
    )


class KhabarRetriever(BaseRetriever):
    """Hybrid cross-lingual search over a khabar store, for any LangChain chain.

    ``k`` (at most this many documents) is a field and, as LangChain users expect,
    a per-call keyword too: ``retriever.invoke(query, k=1)`` or ``ainvoke``.
    A blank query, an empty store or filters nothing passes give ``[]``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    khabar: Any  # retrieval.Khabar (Any: pydantic need not know the type)
    k: int = Field(default=5, ge=1)
    filters: Filters | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[Document]:
        k = self._k(k)
        if not query.strip():
            return []
        q = self.khabar.understand(query, filters=self.filters)
        return [hit_to_document(h) for h in self.khabar.search(q, k=k).hits]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None) -> list[Document]:
        # LangChain's default drops per-call keywords; search is blocking (model, SQLite).
        # Its run_in_executor runs it in a copy of this context (contextvars): the
        # question's state on the Milvus store is this call's own.
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k)

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        return k
