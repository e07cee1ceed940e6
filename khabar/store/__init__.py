"""The store: SQLite as the source of truth and FAISS indexes derived from it.

:mod:`khabar.index` writes it, :mod:`khabar.retrieval` reads it. :class:`Store` is
the one entry point; its work is split by operation over private modules
(``_schema``, ``_changes``, ``_write``, ``_read``, ``_vectors``, ``_check``).
"""

from ._changes import ChangeMark, Changes
from ._store import Store
from ._types import Allowed, Article, Chunk, Excluding, StoredArticle, StoredPassage
from ._vectors import LATE_SENTENCES, IndexType, SpaceInfo
from ._write import NewArticle, PutResult, PutStatus, content_hash

__all__ = [
    "LATE_SENTENCES",
    "Allowed",
    "Article",
    "ChangeMark",
    "Changes",
    "Chunk",
    "Excluding",
    "IndexType",
    "NewArticle",
    "PutResult",
    "PutStatus",
    "SpaceInfo",
    "Store",
    "StoredArticle",
    "StoredPassage",
    "content_hash",
]
