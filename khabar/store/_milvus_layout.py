"""An existing Milvus store moved to today's passages layout without embedding again
(``khabar reindex --layout``): the dense index this store would make now
(:mod:`._milvus_index`: HNSW on a server) and the language as partition key. Milvus
sets both when a collection is made, so the passages are copied, vectors and all, into
a new collection (``khabar_passages_2``, …) which the state row then names, as a
reindex's switch does (:mod:`._milvus_reindex`): one upsert, a new epoch (every reader
starts again), the old collection dropped after. Writers wait for the copy (it holds
the writer lease); a stop before the switch leaves the old collection in use, and the
next run (or reindex) drops the unfinished copy.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ._milvus_filter import id_list
from ._milvus_index import dense_index
from ._milvus_reindex import WINDOW, _drop_stale, _live_ids, _next_name

if TYPE_CHECKING:
    from ._milvus import MilvusStore


def current(store: MilvusStore) -> bool:
    """Whether the passages collection has the layout this store would make now."""
    if not store._has_passages():
        return True
    want = dense_index(store._lite, store._index_type)[0]
    if any(kind != want for kind in store.dense_index_kinds().values()):
        return False
    with store._lock:
        fields = store._client.describe_collection(store._name("passages"))["fields"]
    lang = next(f for f in fields if f["name"] == "lang")
    return bool(lang.get("is_partition_key")) == store._lang_partitions


def relayout(store: MilvusStore) -> int | None:
    """Copy the passages into today's layout and switch to it: the passages copied,
    or None when the layout is today's already."""
    with store._writing():
        store._recover()
        if current(store):
            return None
        _drop_stale(store)
        st = store._state()
        old = store._passages_name
        old_full = store._name("passages")
        new = _next_name(old)
        spaces = store.spaces()
        c = store._client
        store._create_passages(spaces, new)
        live = _live_ids(store)
        for i in range(0, len(live), WINDOW):
            rows = store._query("passages", f"id in {id_list(live[i:i + WINDOW])}", ["*"])
            for r in rows:
                r.pop("sparse", None)  # the BM25 function makes it again
            if rows:
                c.insert(store._name(new), rows)
        c.flush(store._name(new))  # sealed: indexed from the start
        store._set_meta(store._spaces_key(new), json.dumps(
            {k: vars(v) for k, v in spaces.items()}, sort_keys=True))
        st["passages"] = new
        st["epoch"] = int(st["epoch"]) + 1
        st["generation"] = int(st["generation"]) + 1
        store._write_state(st)  # the switch
        store._use_passages(new)
        c.drop_collection(old_full)
        if old != "passages":
            c.delete(store._name("meta"), filter=f'key == "{store._spaces_key(old)}"')
        return len(live)
