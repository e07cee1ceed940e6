"""A writer's turn starts from the newest commit even when Milvus returns an older
version of the ``state`` row (Milvus 2.3 did, now and then, to a Strong read just after
an upsert): the commit log (khabar/store/_milvus_log.py). The stale read is simulated by
a client whose reads of the ``state`` row return an old version of it; the real race is
rare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from khabar.store import MilvusStore
from khabar.store._milvus_commit import LeasedClient
from tests.store import _data
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD, new_article


class StaleState:
    """A MilvusClient whose reads of the ``state`` row return ``old`` (an earlier version
    of it), as a Milvus 2.3 server now and then did; everything else as it is."""

    def __init__(self, bare: Any, old: str) -> None:
        self._bare = bare
        self.old = old
        self.stale_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bare, name)

    def query(self, collection: str, *args: Any, **kwargs: Any) -> Any:
        rows = self._bare.query(collection, *args, **kwargs)
        if collection.endswith("_meta") and '"state"' in str(kwargs.get("filter", "")):
            self.stale_reads += 1
            return [{"value": self.old}]
        return rows


def _stale_writer(path: Path, old: str) -> tuple[MilvusStore, StaleState]:
    """Another process's writer that never saw a newer state than ``old``."""
    store = _data.reopen(path)
    assert isinstance(store, MilvusStore)
    stale = StaleState(store._client._bare, old)  # type: ignore[attr-defined]
    store._client = LeasedClient(stale, store._lease)  # type: ignore[assignment]
    store._state_cache = None  # no floor: it read the old version from the start
    return store, stale


def test_a_writer_that_reads_an_old_state_row_keeps_every_commit_and_gives_new_ids(
        tmp_path: Path, milvus: MilvusStore) -> None:
    first = milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    old = milvus.meta("state")
    assert old is not None and json.loads(old)["article"] == first.article_id
    later = [milvus.put(new_article("Football", [FOOTBALL], url="https://a.test/2")),
             milvus.put(new_article("Third", [THIRD], url="https://a.test/3"))]
    kept = {first.article_id, *(r.article_id for r in later)}
    passages = {p.id for p in milvus.article_passages(sorted(kept))}

    writer, stale = _stale_writer(tmp_path, old)
    put = writer.put(new_article("Extra", [EXTRA], url="https://a.test/4"))
    assert stale.stale_reads >= 1  # it was read old
    # Read old, the turn would have dropped the later commits' rows as a crashed put's
    # and given the second article's ids again.
    assert put.status == "added" and put.article_id not in kept
    new = {p.id for p in writer.article_passages([put.article_id])}
    assert new and not new & passages and min(new) > max(passages)
    reader = _data.reopen(tmp_path)
    assert set(reader.article_ids()) == {*kept, put.article_id}
    assert {p.id for p in reader.article_passages(sorted(kept))} == passages
    assert reader.find_article(url="https://a.test/2") is not None
    assert reader.check() == []
    # Its dedupe saw the later commits too.
    again = writer.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    assert (again.status, again.article_id) == ("unchanged", later[0].article_id)


def test_a_commit_whose_writer_died_before_the_state_row_is_kept_by_the_next_writer(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log row is the commit point: a writer that dies after it, before the
    ``state`` row, leaves a commit readers see once the next writer's turn writes the
    row again."""
    milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))

    class Crash(Exception):
        pass

    def die(key: str, value: str) -> None:
        raise Crash

    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(milvus, "_set_meta", die)
        milvus.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    reader = _data.reopen(tmp_path)
    assert reader.find_article(url="https://a.test/2") is None  # the row says before
    writer = _data.reopen(tmp_path)
    put = writer.put(new_article("Third", [THIRD], url="https://a.test/3"))
    assert put.status == "added"
    fresh = _data.reopen(tmp_path)
    assert fresh.find_article(url="https://a.test/2") is not None
    assert len(fresh.article_ids()) == 3 and fresh.check() == []
