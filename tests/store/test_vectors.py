"""Vector spaces and the FAISS indexes: search, files by generation, rebuilds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from khabar import ModelMismatchError
from khabar.store import SpaceInfo, Store
from khabar.store._vectors import VectorIndexes
from tests.fakes import HashEncoder
from tests.store._data import (
    BODY,
    FOOTBALL,
    HASH_SPACE,
    article,
    new_article,
    open_index,
    open_store,
)


def test_put_search_and_reopen(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    r = ix.add_articles([article("Strikes", BODY, url="https://x.test/a")])
    assert r.count("added") == 1 and r.passages == 2
    q = ix.model.embed_queries(["strikes continue warnings"])[0]
    hits = ix.store.search("e5", "en", q, 2)
    assert len(hits) == 2
    best = ix.store.passages([hits[0][0]])[hits[0][0]]
    assert "continue" in best.text and best.outlets == ["Reuters"]
    ix.close()
    # A second process (here: a second Store) sees the same, from the saved files.
    again = open_index(tmp_path)
    assert again.store.search("e5", "en", q, 1)[0][0] == hits[0][0]
    assert again.store.check([]) == []


def test_search_keeps_to_its_language_and_the_allowed_ids(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    q = HashEncoder().embed_queries(["strikes"])[0]
    assert store.search("e5", "ar", q, 5) == [] and store.search("use", "en", q, 5) == []
    _, second = (r["id"] for r in store.iter_passages())
    assert [pid for pid, _ in store.search("e5", "en", q, 5, {second})] == [second]
    assert store.search("e5", "en", q, 5, set()) == []
    assert len(store.search("e5", "en", q, 50)) == 2  # k beyond the index: all of it


def test_other_model_is_refused(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY)])
    ix.close()
    with pytest.raises(ModelMismatchError, match="khabar reindex"):
        open_index(tmp_path, encoders=[HashEncoder(dim=32, name="other")])


def test_spaces_are_bound_merged_and_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.spaces() == {}
    other = SpaceInfo("e5", "other:32", 32)
    store.bind_spaces([other])  # an empty store takes any model
    store.bind_spaces([HASH_SPACE])
    use = SpaceInfo("use", "use:16", 16)
    store.bind_spaces([use])
    assert store.spaces() == {"e5": HASH_SPACE, "use": use}
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    with pytest.raises(ModelMismatchError):
        store.bind_spaces([other])
    store.bind_spaces([other], replace=True)  # reindexing
    assert store.spaces() == {"e5": other}


def test_stale_faiss_files_are_rebuilt(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY)])
    ix.close()
    # Simulate a crash after the SQLite commit but before the FAISS save.
    state = tmp_path / "store" / "faiss" / "state.json"
    state.write_text('{"generation": -5, "spaces": {}}')
    store = Store(tmp_path / "store")
    assert store.check([]) == []
    q = HashEncoder().embed_queries(["strikes"])[0]
    assert store.search("e5", "en", q, 1)


def test_files_of_the_current_generation_are_loaded_not_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.flush()
    gen = store.generation()
    assert sorted(f.name for f in (tmp_path / "faiss").glob("*.faiss")) == [f"e5-en-{gen}.faiss"]
    fresh = VectorIndexes(tmp_path / "faiss", "auto", 200_000)

    def rebuild(self: VectorIndexes, db: object) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(VectorIndexes, "_rebuild", rebuild)
    fresh.refresh(store._conn())
    assert fresh.loaded_generation == gen and fresh.by_space["e5"].size() == 2
    q = HashEncoder().embed_queries([BODY[0]])[0]
    assert fresh.search("e5", "en", q, 1) == store.search("e5", "en", q, 1)


def test_auto_index_type_turns_to_hnsw_at_the_threshold(tmp_path: Path) -> None:
    indexes = VectorIndexes(tmp_path, "auto", 3)
    assert (indexes.kind(2), indexes.kind(3)) == ("flat", "hnsw")
    assert VectorIndexes(tmp_path, "flat", 3).kind(10) == "flat"
    assert VectorIndexes(tmp_path, "hnsw", 3).kind(0) == "hnsw"
    store = open_store(tmp_path / "store", hnsw_threshold=3)
    store.put(new_article("Strikes", [*BODY, FOOTBALL], url="https://x.test/a"))
    assert store.stats()["index_type"] == "hnsw"
    store.refresh(force_rebuild=True)
    assert {ix.kind for ix in store._faiss.by_space.values()} == {"hnsw"}
    q = HashEncoder().embed_queries([FOOTBALL])[0]
    top = store.search("e5", "en", q, 1)[0]
    assert store.passages([top[0]])[top[0]].text == FOOTBALL and np.isclose(top[1], 1, atol=1e-5)
    assert store.check([]) == []
