"""The store: SQLite as the source of truth and FAISS indexes derived from it.

:mod:`khabar.index` writes it, :mod:`khabar.retrieval` reads it.
"""

from ._store import NewArticle, PutResult, SpaceInfo, Store, content_hash
from ._types import Article, Chunk, StoredArticle, StoredPassage

__all__ = [
    "Article",
    "Chunk",
    "NewArticle",
    "PutResult",
    "SpaceInfo",
    "Store",
    "StoredArticle",
    "StoredPassage",
    "content_hash",
]
