"""Which index a Milvus passages collection gives its dense vectors, how it is searched,
and whether the language is its partition key (docs/milvus.md, *Scale*).

* **A server: HNSW.** Milvus builds an index per sealed segment, and only for segments
  of 1,024 rows or more (``indexNode.minSegmentNumRowsToEnableIndex``); growing segments
  are searched by brute force. So an HNSW collection is exact while small and HNSW from
  a size on, as the SQLite store switches from 20k passages a language: nothing to
  decide per store. Measured on a Milvus 2.3 server (bench/milvus_scale.py).
* **Milvus Lite: FLAT.** Lite's HNSW measured slower than its FLAT with the language
  filter (20k passages: 46 against 22 ms of CPU a search; 100k: 298 against 124 ms).
* **Language as the partition key** on new collections, so a search of one language
  reads that language's partitions only, not every row with a ``lang ==`` bitset over
  them (the filter stays in the expression: two languages may hash to one partition).
  A collection made before keeps its layout; ``khabar reindex`` or ``khabar migrate``
  into a new store makes the new one.

``index_type`` is :class:`khabar.Settings`'s (``KHABAR_INDEX_TYPE``): ``auto`` as above,
``flat`` or ``hnsw`` on either backend.
"""

from __future__ import annotations

from typing import Any

HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_EF = 128  # search breadth (at least k), as the SQLite store's efSearch: 64 lost
# 2 to 4 points of Recall@10 here and there (docs/benchmarks.md, *Milvus at scale*)
IVF_BUILD = {"nlist": 1024}  # measured beside HNSW only (index_type "ivf", the bench)
IVF_PROBE = 16
EF_MAX = 32_768  # Milvus's upper bound for ef


def dense_index(lite: bool, index_type: str) -> tuple[str, dict[str, Any]]:
    """(Milvus index type, build parameters) for a dense vector field."""
    if index_type == "flat" or (index_type == "auto" and lite):
        return "FLAT", {}
    if index_type == "ivf":
        return "IVF_FLAT", dict(IVF_BUILD)
    return "HNSW", dict(HNSW_BUILD)


def search_params(kind: str, k: int) -> dict[str, Any]:
    """A dense search's parameters on an index of ``kind`` (inner product)."""
    params: dict[str, Any] = {"metric_type": "IP"}
    if kind == "HNSW":
        params["params"] = {"ef": min(max(HNSW_EF, k), EF_MAX)}
    elif kind.startswith("IVF"):
        params["params"] = {"nprobe": IVF_PROBE}
    return params


def kind_of(description: dict[str, Any] | None) -> str:
    """The index type of a field as ``describe_index`` tells it ("FLAT" without one)."""
    return str((description or {}).get("index_type") or "FLAT").upper()
