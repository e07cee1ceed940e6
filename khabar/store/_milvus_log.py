"""The commit log: an insert-only copy of every ``state`` a writer commits, so that a
writer's turn starts from the newest state even when Milvus returns an older version
of the ``state`` row.

Milvus 2.3 returned, now and then, an older version of the just-upserted ``state`` row
to a Strong read (an upsert is a delete and an insert; docs/milvus.md). Readers keep
the newest state they saw as a floor; a writer process that never saw the newer one has
none, and read old it would give ids again and, at recovery, delete committed rows as a
crashed put's. Log rows are only ever inserted (keyed by the commit's ``seq``, which
each commit raises by one) and never rewritten, so they have no older version to
return: a Strong read sees every one acknowledged before it.

**The log row is the commit point** (:func:`append` before the ``state`` upsert): a
writer that dies between the two leaves a commit the ``state`` row does not show yet;
the next writer's turn finds it here and writes the ``state`` row again
(:meth:`khabar.store.MilvusStore._state`). Readers go on reading the ``state`` row
alone (one read a question), which at worst is the commit before.

Old rows are dropped (``KEEP`` kept): the newest row is never among them, and a stale
``state`` read, however old, then finds at most ``KEEP`` + ``TRIM_EVERY`` newer rows.
"""

from __future__ import annotations

import json
from typing import Any

from ._milvus_commit import DUMMY_DIM

KEEP = 64  # log rows kept below the newest
TRIM_EVERY = 64  # commits between trims


def schema(client: Any) -> Any:
    """A commit's ``seq`` (the key), its state as JSON."""
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("seq", DataType.INT64, is_primary=True)
    s.add_field("value", DataType.VARCHAR, max_length=65_535)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DUMMY_DIM)
    return s


def append(client: Any, name: str, seq: int, value: str) -> None:
    """Log the commit ``seq`` (its state JSON); old rows go every ``TRIM_EVERY``."""
    client.insert(name, [{"seq": int(seq), "value": value, "v": [0.0] * DUMMY_DIM}])
    if seq % TRIM_EVERY == 0 and seq > KEEP:
        client.delete(name, filter=f"seq < {int(seq) - KEEP}")


def newer(client: Any, name: str, seq: int) -> list[dict[str, Any]]:
    """The logged states above commit ``seq`` (Strong: the collection's level)."""
    rows = client.query(name, filter=f"seq > {int(seq)}", output_fields=["value"])
    return [json.loads(str(r["value"])) for r in rows]
