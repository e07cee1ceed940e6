"""What the Milvus at the other end can do, from its version string."""

from __future__ import annotations

import re


def has_bm25(version: str) -> bool:
    """Whether the server has the BM25 function and sparse vectors (Milvus 2.5 on, and
    Milvus Lite 3): a 2.3 or 2.4 server gets the passages without the ``sparse`` field
    (khabar's own BM25 serves the lexical search anyway)."""
    if version.startswith("milvus_lite"):
        return True
    found = re.match(r"v?(\d+)\.(\d+)", version)
    return found is None or (int(found[1]), int(found[2])) >= (2, 5)
