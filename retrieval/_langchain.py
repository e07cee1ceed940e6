"""khabar inside LangChain: the retriever as ``BaseRetriever``, encoders as ``Embeddings``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

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
    """Hybrid cross-lingual search over a khabar store, for any LangChain chain."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    khabar: Any  # retrieval.Khabar (Any: pydantic need not know the type)
    k: int = 5
    filters: Filters | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        q = self.khabar.understand(query, filters=self.filters)
        return [hit_to_document(h) for h in self.khabar.search(q, k=self.k).hits]
