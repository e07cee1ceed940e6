"""Check and stats: every fault named, and the figures of a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from khabar.index import Index

from khabar import Settings
from khabar.store import SpaceInfo, Store
from tests.fakes import HashEncoder
from tests.store import _data
from tests.store._data import BODY, HASH_SPACE, article, new_article, open_index, open_store


def test_check_reports_passages_missing_sentence_vectors(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY, url="https://x.test/a")])
    pid = next(ix.store.iter_passages())["id"]
    ix.store._conn().execute("DELETE FROM sentence_vectors WHERE passage_id = ?", (pid,))
    assert any("no e5 sentence vectors" in f for f in ix.store.check([]))


def test_sentence_vectors_can_be_turned_off(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path, sentence_vectors=False), encoders=[HashEncoder()])
    ix.add_articles([article("Strikes", BODY, url="https://x.test/a")])
    assert ix.store.count_sentence_vectors() == {}
    assert ix.store.check([]) == []  # none at all is a choice, not a fault


def test_check_names_passages_without_vectors_and_the_faiss_gap(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    first = next(store.iter_passages())["id"]
    store._conn().execute("DELETE FROM vectors WHERE passage_id = ?", (first,))
    # Another process's indexes, made from SQLite, lack it.
    assert Store(tmp_path).check([]) == ["1 passage(s) have no e5 vector",
                                         "FAISS e5 index holds 1 vectors for 2 passages"]


def test_check_names_vectors_of_the_wrong_width(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    ids = [r["id"] for r in store.iter_passages()]
    store.add_sentence_vectors("e5", [(pid, np.zeros((1, 3), np.float32)) for pid in ids])
    store.refresh()
    # Behind the store's back: its FAISS indexes stay of this generation (no rebuild).
    store._conn().execute("UPDATE vectors SET vec = ? WHERE passage_id = ?",
                          (np.zeros(3, np.float32).tobytes(), ids[0]))
    assert store.check([]) == ["1 e5 vector(s) have the wrong width",
                               "2 e5 sentence vector matrices have the wrong width"]


def test_check_names_an_article_without_passages(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store._conn().execute("DELETE FROM passages")
    assert "1 article(s) have no passages" in store.check([])


def test_check_compares_the_configured_model(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    other = SpaceInfo("e5", "other:64", 64)
    assert store.check([other]) == []  # an empty store has no model yet
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    assert store.check([HASH_SPACE]) == []
    assert store.check([other]) == [
        "model fingerprint for e5 is 'hash:64', configured 'other:64'"]
    assert store.check([SpaceInfo("use", "use:16", 16)]) == [
        "model fingerprint for use is None, configured 'use:16'"]


def test_stats_count_what_is_stored(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.put(new_article("Copy", [BODY[0]], url="https://x.test/b"))
    stats = store.stats()
    assert {k: stats[k] for k in ("articles", "passages", "outlets", "languages",
                                  "index_type", "sentence_vectors", "linked_duplicates")} == {
        "articles": 2, "passages": 3, "outlets": 1, "languages": {"en": 3},
        "index_type": "flat", "sentence_vectors": {}, "linked_duplicates": 1}
    assert stats["spaces"] == {"e5": {"name": "e5", "fingerprint": "hash:64", "dim": 64}}
    assert stats["path"] == _data.location(tmp_path) and stats["size_bytes"] > 0
    assert (stats["published_from"], stats["published_to"]) == (None, None)


def test_check_names_a_vector_of_the_wrong_width_the_indexes_cannot_hold(
        tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    first = next(store.iter_passages())["id"]
    store._conn().execute("UPDATE vectors SET vec = ? WHERE passage_id = ?",
                          (np.zeros(3, np.float32).tobytes(), first))
    # Another process builds its indexes from SQLite: the vector is left out, and named.
    assert Store(tmp_path).check([]) == ["1 e5 vector(s) have the wrong width",
                                         "FAISS e5 index holds 1 vectors for 2 passages"]
