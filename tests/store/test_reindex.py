"""Reindexing as one switch: new vectors beside the old ones, resumable after a crash,
then replacing them with the encoders that made them at once, whatever their width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from khabar import StoreError
from khabar.store import ArchiveStore, SpaceInfo
from tests.fakes import HashEncoder
from tests.store._data import BODY, FOOTBALL, HASH_SPACE, new_article, open_store, reopen

WIDE = HashEncoder(dim=96, name="wider")
WIDE_SPACE = SpaceInfo("e5", WIDE.fingerprint, WIDE.dim)


def _write(store: ArchiveStore, rows: list[tuple[int, str]]) -> None:
    ids, texts = [pid for pid, _ in rows], [text for _, text in rows]
    vecs = WIDE.embed_passages(texts)
    store.reindex_write("e5", ids, vecs, [v.reshape(1, -1) for v in vecs])


def test_a_reindex_interrupted_keeps_the_old_vectors_and_goes_on(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.put(new_article("Football", [FOOTBALL], url="https://x.test/f"))
    rows = [(r["id"], r["text"]) for r in store.iter_passages()]
    q_old = HashEncoder().embed_queries([FOOTBALL])[0]
    before = store.search("e5", "en", q_old, 5)
    assert store.reindex_begin([WIDE_SPACE]) == {}
    _write(store, rows[:1])
    # Not all new vectors yet: the switch is refused and nothing changed.
    with pytest.raises(StoreError, match="unfinished"):
        store.reindex_commit([WIDE_SPACE], sentences=True)
    store.close()  # a crash here (the work tables are in SQLite, committed by batch)
    again = reopen(tmp_path)
    assert again.spaces()["e5"] == HASH_SPACE  # the old model still recorded
    assert again.check([HASH_SPACE]) == [] and again.reindex_pending()
    assert again.search("e5", "en", q_old, 5) == before  # readers use the old vectors
    done = again.reindex_begin([WIDE_SPACE])
    assert done == {"e5": {rows[0][0]}}
    # A passage added meanwhile (another process ingesting) is found missing too.
    again.put(new_article("Late", ["A late paragraph on the river and its bridge."],
                          url="https://x.test/late"))
    missing = again.reindex_missing("e5")
    assert {pid for pid, _ in missing} == {pid for pid, _ in rows[1:]} | {
        max(r["id"] for r in again.iter_passages())}
    _write(again, missing)
    reader = reopen(tmp_path)  # another process's handle, answering meanwhile
    old_now = again.search("e5", "en", q_old, 5)
    assert reader.search("e5", "en", q_old, 5) == old_now and old_now[0] == before[0]
    again.reindex_commit([WIDE_SPACE], sentences=True)
    assert again.spaces() == {"e5": WIDE_SPACE} and not again.reindex_pending()
    assert again.check([WIDE_SPACE]) == []
    reader.generation()  # its next question reads the state: the new vectors
    assert reader.spaces() == {"e5": WIDE_SPACE} and reader.check([WIDE_SPACE]) == []
    got = reader.search("e5", "en", WIDE.embed_queries([FOOTBALL])[0], 1)
    assert "football" in reader.passages([got[0][0]])[got[0][0]].text
    reader.close()
    q_new = WIDE.embed_queries([FOOTBALL])[0]
    top = again.search("e5", "en", q_new, 1)[0][0]
    assert "football" in again.passages([top])[top].text
    stored = again.vectors("e5", [top])[top]
    assert stored.shape == (96,)
    np.testing.assert_allclose(stored, WIDE.embed_passages([again.passages([top])[top].text])[0],
                               atol=2e-3)
    again.close()


def test_a_reindex_to_other_encoders_drops_the_unfinished_work(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    rows = [(r["id"], r["text"]) for r in store.iter_passages()]
    store.reindex_begin([WIDE_SPACE])
    _write(store, rows)
    other = SpaceInfo("e5", "other:64", 64)
    assert store.reindex_begin([other]) == {}  # started over for the other model
    with pytest.raises(StoreError):
        store.reindex_commit([WIDE_SPACE], sentences=True)
    assert store.spaces()["e5"] == HASH_SPACE
