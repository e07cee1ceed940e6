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
