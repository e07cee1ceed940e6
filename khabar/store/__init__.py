"""The store: the archive that :mod:`khabar.index` writes and :mod:`khabar.retrieval` reads.

:class:`ArchiveStore` is its interface (``_base``); :func:`open_store` opens the one
``KHABAR_STORE`` names. Two backends: :class:`Store`, SQLite as the source of truth and
FAISS indexes derived from it, its work split by operation over private modules
(``_schema``, ``_changes``, ``_write``, ``_read``, ``_vectors``, ``_check``); and
:class:`MilvusStore` (``_milvus``: Milvus Lite or a server, the milvus extra).
"""

from ._base import ArchiveStore, LexicalSearch, SavedIndex, lexical_search_of
from ._changes import ChangeMark, Changes
from ._milvus import MilvusStore
from ._open import open_store
from ._store import Store
from ._types import (
    Allowed,
    Article,
    Chunk,
    Excluding,
    Matching,
    StoredArticle,
    StoredPassage,
    allowed_among,
)
from ._vectors import INT8_SENTENCES, LATE_SENTENCES, SENTENCE_SUFFIXES, IndexType, SpaceInfo
from ._write import Kept, NewArticle, PutResult, PutStatus, content_hash

__all__ = [
    "INT8_SENTENCES",
    "LATE_SENTENCES",
    "SENTENCE_SUFFIXES",
    "Allowed",
    "ArchiveStore",
    "Article",
    "ChangeMark",
    "Changes",
    "Chunk",
    "Excluding",
    "IndexType",
    "Kept",
    "LexicalSearch",
    "Matching",
    "MilvusStore",
    "NewArticle",
    "PutResult",
    "PutStatus",
    "SavedIndex",
    "SpaceInfo",
    "Store",
    "StoredArticle",
    "StoredPassage",
    "allowed_among",
    "content_hash",
    "lexical_search_of",
    "open_store",
]
