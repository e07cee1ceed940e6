"""khabar's index: articles in, passages with vectors out to the store.

Parse (text, Markdown, HTML, JSON/JSONL, RSS/Atom, Telegram posts), clean, chunk,
embed, deduplicate, and persist in FAISS + SQLite. Everything else in khabar reads
from the :class:`Store` this package fills.
"""

from ._config import DEFAULT_MODEL, Settings
from ._embedder import (
    Encoder,
    SentenceTransformerEncoder,
    USEEncoder,
    embed_sentences,
    load_encoders,
    model_info,
    resolve_model_path,
    space_info,
)
from ._errors import (
    BlockedURLError,
    ConfigError,
    FetchError,
    IngestError,
    KhabarError,
    ModelError,
    ModelMismatchError,
    ParseError,
    StoreError,
)
from ._ingest import Index, IngestReport, ItemResult
from ._outlets import canonical_outlet
from ._store import SpaceInfo, Store
from ._text import (
    detect_lang,
    lexical_tokens,
    normalize_for_search,
    passage_sentences,
    split_sentences,
)
from ._types import Article, Chunk, StoredPassage

__all__ = [
    "DEFAULT_MODEL",
    "Article",
    "BlockedURLError",
    "Chunk",
    "ConfigError",
    "Encoder",
    "FetchError",
    "Index",
    "IngestError",
    "IngestReport",
    "ItemResult",
    "KhabarError",
    "ModelError",
    "ModelMismatchError",
    "ParseError",
    "SentenceTransformerEncoder",
    "Settings",
    "SpaceInfo",
    "Store",
    "StoreError",
    "StoredPassage",
    "USEEncoder",
    "canonical_outlet",
    "detect_lang",
    "embed_sentences",
    "lexical_tokens",
    "load_encoders",
    "model_info",
    "normalize_for_search",
    "passage_sentences",
    "resolve_model_path",
    "space_info",
    "split_sentences",
]
