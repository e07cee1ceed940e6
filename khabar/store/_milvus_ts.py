"""Reads at the last commit's timestamp: a reader's one Strong read a question (the
``state`` row), every other read at the timestamp the commit recorded, instead of
Strong everywhere (a Strong read waits for the server's next time tick: 215 ms at
Milvus's default 200 ms tick, docs/benchmarks.md).

**What the timestamp must cover.** A reader that read state *S* needs every row that *S*
commits: the passages, articles and removal-log rows of *S*'s put and of every commit
before it. A read at a timestamp *G* sees every write acknowledged at or before *G*, so
*G* must be at least the server timestamp of each of those rows. The commit records
``ts`` = the larger of the previous state's ``ts`` (which covers every earlier commit)
and the last write of this process to any of the archive's collections (pymilvus keeps
each collection's last mutation timestamp), taken just before the state is written:
every row of this put was written before that. A ``ts`` from one collection alone
(say the passages) is not enough: the article row written after them would be missing
at *G* while its passages are there, and a passage whose article is missing is left
out (a deletion under way, to the reader), so a question about the newest article could
find nothing; the longer the time tick, the likelier the read lands after both rows
anyway, which is how it can pass at 200 ms and fail one question in fifty at 20 ms.

The writer reads Strong under its lease (it must see its own rows above the commit);
Milvus Lite has no time ticks (every read sees every write), so nothing changes there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def last_write(client: Any, prefix: str) -> int:
    """The server timestamp of this process's last write to any collection named
    ``prefix…`` on ``client``'s server (0: none)."""
    from pymilvus.client.cache import GlobalCache

    try:
        endpoint = client._get_connection().server_address
    except Exception:  # a client without pymilvus's gRPC handler: no timestamps
        return 0
    cache = GlobalCache.collection_ts
    with cache._lock:
        items = list(cache._cache.items())
    return max((int(ts) for (end, _db, name), ts in items
                if end == endpoint and str(name).startswith(prefix)), default=0)


def read_at(ts: int | None) -> dict[str, Any]:
    """A read's keywords: at ``ts`` (a commit's), or the collection's Strong when none."""
    if not ts:
        return {}
    return {"consistency_level": "Customized", "guarantee_timestamp": int(ts)}


def order(state: Mapping[str, Any]) -> tuple[int, ...]:
    """Which of two versions of the ``state`` row is newer: each commit raises ``seq``
    (states from before it have 0: then the generation, ids and removals decide)."""
    return (int(state.get("epoch", 0)), int(state.get("seq", 0)),
            int(state.get("generation", 0)), int(state.get("passage", 0)),
            int(state.get("removed", 0)), int(state.get("removed_done", 0)))


def newest(values: Sequence[str], held: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The state to go by, from the ``state`` row(s) a query returned: the newest of
    them, and never older than ``held`` (this process's last, of the same store).

    Milvus 2.3 can return more than one version of an upserted row (an upsert is a
    delete and an insert; the delete not yet applied to the old row), and in no set
    order: taking the first one read the archive's very first state now and then (no
    passages, generation 0: measured, docs/benchmarks.md), so a reader that had seen
    the archive found it empty, threw its BM25 index away and answered nothing. The
    newest of what came back is the commit; the one this process saw last is a floor
    (reads never go back in time within a process)."""
    states = [json.loads(v) for v in values]
    best = max(states, key=order, default=None)
    if held is not None and (best is None or (held.get("store") == best.get("store")
                                              and order(held) > order(best))):
        return dict(held)
    return best
