"""What the Milvus at the other end can do, from its version string."""

from __future__ import annotations

import re


def _version(version: str) -> tuple[int, int] | None:
    found = re.match(r"v?(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else None


def vector_fields(version: str) -> int | None:
    """How many vector fields a collection may have (None: no limit known): one before
    Milvus 2.4, so khabar's two spaces (e5 and USE) need 2.4 or later."""
    v = _version(version)
    return 1 if v is not None and not version.startswith("milvus_lite") and v < (2, 4) \
        else None


def has_bm25(version: str) -> bool:
    """Whether the server has the BM25 function and sparse vectors (Milvus 2.5 on, and
    Milvus Lite 3): a 2.3 or 2.4 server gets the passages without the ``sparse`` field
    (khabar's own BM25 serves the lexical search anyway)."""
    if version.startswith("milvus_lite"):
        return True
    v = _version(version)
    return v is None or v >= (2, 5)
