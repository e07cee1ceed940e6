"""Reindexing a Milvus store as one switch (as SQLite's ``_reindex``, in collections).

New vectors go beside the old ones, a work collection per space (``khabar_rx_<space>``:
passage id, vector, sentence vectors), batch by batch: a crash keeps what was written,
and the next ``khabar reindex`` with the same encoders goes on from there. When every
passage has its new vectors, a new passages collection is filled from the current one
and the work collections (text, tokens, filter fields copied; the new vectors in place
of the old), and the ``state`` row, the store's one commit point, names it from then
on (with a new epoch: every reader starts again). Readers answer with the old vectors
until that upsert, and with the new ones after it; the old collection is dropped then.

A reader of another process in the middle of a question when the old collection goes
may fail that question once (Milvus has no snapshot reads); its next one reads the new
state. One writer at a time, as for every write of this store (issue #16).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from khabar._errors import StoreError

from ._milvus_filter import id_list
from ._schema import sentence_blob
from ._vectors import SpaceInfo

if TYPE_CHECKING:
    from ._milvus import MilvusStore

TARGET = "reindex_target"  # meta key: the spaces the work collections are for
WORK = "rx_"  # work collections: khabar_rx_<space>
WINDOW = 2000  # passage ids copied per query


def _payload(spaces: Sequence[SpaceInfo]) -> str:
    return json.dumps({s.name: vars(s) for s in spaces}, sort_keys=True)


def _work(space: str) -> str:
    return WORK + space


def begin(store: MilvusStore, spaces: Sequence[SpaceInfo]) -> dict[str, set[int]]:
    """Start (or go on with) a reindex to ``spaces``: the passage ids each space already
    has new vectors for. Work left by a reindex to other encoders is dropped."""
    from pymilvus import DataType

    from ._milvus import TEXT_MAX

    target = _payload(spaces)
    c = store._client
    with store._writing():  # the writer lease (and this client)
        if store._meta(TARGET) != target:
            _drop_work(store)
            _drop_stale(store)
            for s in spaces:
                schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("v", DataType.FLOAT_VECTOR, dim=s.dim)
                schema.add_field("s", DataType.VARCHAR, max_length=TEXT_MAX)
                store._create(_work(s.name), schema, {"v": "IP"})
            store._set_meta(TARGET, target)
        done = {s.name: _done(store, s.name) for s in spaces}
        return {space: ids for space, ids in done.items() if ids}


def _done(store: MilvusStore, space: str) -> set[int]:
    return {int(r["id"]) for r in store._query(_work(space), "id >= 0", ["id"])}


def _drop_work(store: MilvusStore) -> None:
    from ._milvus import PREFIX

    for name in store._client.list_collections():
        if name.startswith(PREFIX + WORK):
            store._client.drop_collection(name)


def _drop_stale(store: MilvusStore) -> None:
    """Passages collections the state does not name: left by a commit that stopped
    after its switch (the old one) or before it (the new one, made again anyway)."""
    from ._milvus import PREFIX

    current = store._name("passages")
    for name in store._client.list_collections():
        if name.startswith(PREFIX + "passages") and name != current:
            store._client.drop_collection(name)


def _spaces_of(store: MilvusStore) -> dict[str, SpaceInfo]:
    raw = store._meta(TARGET)
    if raw is None:
        raise StoreError("no reindex was started on this store")
    return {k: SpaceInfo(**v) for k, v in json.loads(raw).items()}


def write(store: MilvusStore, space: str, ids: Sequence[int], vectors: np.ndarray,
          sentences: Sequence[np.ndarray] | None) -> None:
    """One batch of new vectors (and sentence vectors): one upsert."""
    from ._milvus import NO_SENTENCES, TEXT_MAX

    info = _spaces_of(store).get(space)
    if info is None:
        raise StoreError(f"the reindex under way is not to a {space} space")
    rows: list[dict[str, Any]] = []
    for i, (pid, vec) in enumerate(zip(ids, vectors, strict=True)):
        blob = NO_SENTENCES
        if sentences is not None:
            blob = base64.b64encode(sentence_blob(sentences[i], vec)).decode("ascii")
            blob = blob if len(blob) <= TEXT_MAX else NO_SENTENCES
        rows.append({"id": int(pid), "v": np.asarray(vec, dtype=np.float32).tolist(),
                     "s": blob})
    if rows:
        with store._writing():  # the writer lease (and this client)
            store._client.upsert(store._name(_work(space)), rows)


def _live_ids(store: MilvusStore) -> list[int]:
    st = store._state()
    pending = store._pending_removed(st)
    return sorted(int(r["id"]) for r in store._query("passages", store._live(st), ["id"])
                  if int(r["id"]) not in pending)


def missing(store: MilvusStore, space: str) -> list[tuple[int, str]]:
    """(id, text) of the passages without new ``space`` vectors yet (those added while
    the reindex ran among them)."""
    done = _done(store, space)
    todo = [pid for pid in _live_ids(store) if pid not in done]
    out: list[tuple[int, str]] = []
    for i in range(0, len(todo), WINDOW):
        out += [(int(r["id"]), str(r["text"])) for r in store._query(
            "passages", f"id in {id_list(todo[i:i + WINDOW])}", ["id", "text"])]
    return sorted(out)


def commit(store: MilvusStore, spaces: Sequence[SpaceInfo], sentences: bool) -> None:
    """Switch to the new vectors: a new passages collection, named by the state row in
    one upsert; StoreError (nothing changed) while a passage lacks its new vectors."""
    from ._milvus import NO_SENTENCES

    if store._meta(TARGET) != _payload(spaces):
        raise StoreError("no reindex to these encoders was started on this store")
    with store._writing():  # the writer lease (and this client)
        store._recover()
        live = _live_ids(store)
        for s in spaces:
            lacking = len(set(live) - _done(store, s.name))
            if lacking:
                raise StoreError(f"reindex unfinished: {lacking} passage(s) lack their "
                                 f"new {s.name} vectors")
        st = store._state()
        old = store._passages_name
        old_full = store._name("passages")
        new = _next_name(old)
        c = store._client
        if c.has_collection(store._name(new)):
            c.drop_collection(store._name(new))  # a commit that crashed: again
        infos = {s.name: s for s in spaces}
        store._create_passages(infos, new)
        old_fields = [f"{k}_{name}" for name in store.spaces() for k in ("v", "s")]
        for i in range(0, len(live), WINDOW):
            chunk = live[i:i + WINDOW]
            rows = store._query("passages", f"id in {id_list(chunk)}", ["*"])
            fresh = {s.name: {int(r["id"]): r for r in store._query(
                _work(s.name), f"id in {id_list(chunk)}", ["id", "v", "s"])}
                for s in spaces}
            for r in rows:
                r.pop("sparse", None)  # the BM25 function makes it again
                for f in old_fields:
                    r.pop(f, None)
                for s in spaces:
                    got = fresh[s.name][int(r["id"])]
                    r[f"v_{s.name}"] = got["v"]
                    r[f"s_{s.name}"] = got["s"] if sentences else NO_SENTENCES
            if rows:
                c.insert(store._name(new), rows)
        c.flush(store._name(new))  # sealed: searched by index from the start
        store._set_meta(store._spaces_key(new), _payload(spaces))
        # The switch: one upsert of the state row.
        st["passages"] = new
        st["epoch"] = int(st["epoch"]) + 1
        st["generation"] = int(st["generation"]) + 1
        store._write_state(st)
        store._use_passages(new)
        store._client.delete(store._name("meta"), filter=f'key == "{TARGET}"')
        _drop_work(store)
        c.drop_collection(old_full)
        if old != "passages":
            store._client.delete(store._name("meta"),
                                 filter=f'key == "{store._spaces_key(old)}"')


def _next_name(current: str) -> str:
    """passages -> passages_2 -> passages_3 …"""
    head, _, n = current.partition("_")
    return f"{head}_{int(n) + 1 if n else 2}"


def pending(store: MilvusStore) -> bool:
    """Whether a reindex was started and not finished (a crash, or a stop)."""
    return store._meta(TARGET) is not None
