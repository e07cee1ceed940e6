"""khabar's index: articles in, passages with vectors out to the store.

Parse (text, Markdown, HTML, JSON/JSONL, RSS/Atom, Telegram posts), clean, chunk,
embed, deduplicate, and write to :mod:`khabar.store`, which everything else reads.
"""

from khabar.store import Article, Chunk

from ._ingest import ITEM_STATUSES, Index, IngestReport, ItemResult, ItemStatus

__all__ = ["ITEM_STATUSES", "Article", "Chunk", "Index", "IngestReport", "ItemResult", "ItemStatus"]
