"""Writes: atomic puts and their statuses, near-duplicate links, deletes, vectors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from khabar import StoreError
from tests.fakes import HashEncoder
from tests.store._data import (
    BODY,
    EXTRA,
    FOOTBALL,
    THIRD,
    article,
    forge_sentence_vectors,
    forge_vectors,
    new_article,
    open_index,
    open_store,
)


def test_same_url_unchanged_or_replaced_and_same_text_duplicate(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    a = article("Strikes", BODY, url="https://x.test/a")
    assert ix.add_articles([a]).count("added") == 1
    assert ix.add_articles([a]).count("unchanged") == 1
    changed = article("Strikes", [*BODY, THIRD],
                      url="https://x.test/a")
    assert ix.add_articles([changed]).count("replaced") == 1
    assert ix.store.count_articles() == 1 and ix.store.count_passages() == 3
    copy = article("Strikes", [*BODY, THIRD],
                   url="https://y.test/copy", outlets=("AFP",))
    assert ix.add_articles([copy]).count("duplicate") == 1
    assert ix.store.check([]) == []


def test_put_reports_each_status_with_the_stored_article(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    first = store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    assert (first.status, first.passages) == ("added", 2)
    again = store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    assert (again.status, again.article_id, again.passages) == ("unchanged", first.article_id, 0)
    copy = store.put(new_article("Strikes", BODY, url="https://y.test/copy"))
    assert (copy.status, copy.article_id) == ("duplicate", first.article_id)
    changed = store.put(new_article("Strikes", [*BODY, THIRD], url="https://x.test/a"))
    assert (changed.status, changed.passages) == ("replaced", 3)
    assert store.find_article(url="https://x.test/a")["id"] == changed.article_id
    assert store.check([]) == []


def test_a_malformed_article_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    empty = new_article("Empty", BODY)
    empty.chunks = []
    with pytest.raises(StoreError, match="no passages"):
        store.put(empty)
    short = new_article("Short", BODY)
    short.vectors["e5"] = short.vectors["e5"][:1]
    with pytest.raises(StoreError, match="1 vectors for 2 passages"):
        store.put(short)
    assert store.count_articles() == 0 and store.check([]) == []


def test_near_duplicate_passages_are_linked(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY, url="https://a.test/1")])
    # Syndicated copy: same paragraphs, other headline and outlet.
    ix.add_articles([article("Air strikes go on", [*BODY, EXTRA],
                             url="https://b.test/2", outlets=("AFP",))])
    stats = ix.store.stats()
    assert stats["linked_duplicates"] == 2
    pid = next(r["id"] for r in ix.store.iter_passages() if r["dup_of"])
    group = ix.store.duplicate_groups([pid])[pid]
    assert len(group) == 2


def test_near_duplicates_link_to_the_root_of_their_group_or_not_at_all(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    root = store.put(new_article("One", BODY, url="https://a.test/1"))
    store.put(new_article("Two", [*BODY, EXTRA], url="https://b.test/2"))
    third = store.put(new_article("Three", [*BODY, FOOTBALL], url="https://c.test/3"))
    assert third.linked_duplicates == 2
    roots = {r["dup_of"] for r in store.iter_passages() if r["dup_of"]}
    assert roots == {p.id for p in store.article_passages([root.article_id])}
    unlinked = store.put(new_article("Four", [*BODY, THIRD], url="https://d.test/4"),
                         dup_threshold=None)
    assert (unlinked.status, unlinked.linked_duplicates) == ("added", 0)


def test_delete_by_outlet_and_date(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    old = datetime(2015, 9, 30, tzinfo=UTC)
    new = datetime(2024, 1, 2, tzinfo=UTC)
    ix.add_articles([article("Old", BODY, url="https://a.test/old", published=old),
                     article("New", [FOOTBALL],
                             url="https://a.test/new", outlets=("BBC",), published=new)])
    assert ix.store.delete_articles(ix.store.article_ids(before=datetime(2020, 1, 1,
                                                                        tzinfo=UTC))) == 1
    assert [a for a, _ in ix.store.outlets()] == ["BBC"]
    assert ix.store.delete_articles(ix.store.article_ids(outlet="bbc")) == 1
    assert ix.store.count_passages() == 0
    assert ix.store.check([]) == []
    q = ix.model.embed_queries(["football"])[0]
    assert ix.store.search("e5", "en", q, 5) == []


def test_replaced_vectors_are_what_search_finds(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    first, second = (r["id"] for r in store.iter_passages())
    q = HashEncoder().embed_queries([BODY[0]])[0]
    assert store.search("e5", "en", q, 1)[0][0] == first
    forge_vectors(store, "e5", [(first, -q), (second, q)])  # now the second is nearest
    assert store.search("e5", "en", q, 1)[0][0] == second
    assert np.allclose(store.vectors("e5", [second])[second], q, atol=1e-3)  # float16
    assert store.check([]) == []


def test_sentence_vectors_added_to_the_passages_that_lack_them(tmp_path: Path) -> None:
    ix = open_index(tmp_path, sentence_vectors=False)
    ix.add_articles([article("Strikes", BODY, url="https://x.test/a")])
    missing = ix.store.passages_without_sentence_vectors("e5")
    assert [text for _, text in missing] == BODY
    ix.store.add_sentence_vectors("e5", [(missing[0][0], np.ones((2, 64), np.float32))])
    assert [pid for pid, _ in ix.store.passages_without_sentence_vectors("e5")] == [missing[1][0]]
    assert any("sentence vectors" in f for f in ix.store.check([]))  # half done is a fault
    forge_sentence_vectors(ix.store, "e5", [])
    assert ix.store.count_sentence_vectors() == {} and ix.store.check([]) == []


def test_ids_are_never_reused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    newest = store.put(new_article("Football", [FOOTBALL], url="https://x.test/b"))
    gone = [p.id for p in store.article_passages([newest.article_id])]
    store.delete_articles([newest.article_id])  # the newest rows: SQLite would reuse them
    again = store.put(new_article("Extra", [EXTRA], url="https://x.test/c"))
    assert again.article_id > newest.article_id
    assert min(p.id for p in store.article_passages([again.article_id])) > max(gone)
    # A new version of the newest article is another article, with other passages.
    before = [p.id for p in store.article_passages([again.article_id])]
    replaced = store.put(new_article("Extra", [EXTRA, THIRD], url="https://x.test/c"))
    assert replaced.status == "replaced" and replaced.article_id > again.article_id
    assert min(p.id for p in store.article_passages([replaced.article_id])) > max(before)


def test_a_copied_passage_deleted_meanwhile_is_not_linked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store import Store, _write

    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://a.test/1"))
    copied = store.put(new_article("Wire", [THIRD], url="https://a.test/2"))
    found = _write.near_duplicates

    def meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        links = found(*args, **kwargs)
        # Between the search and the write, another process deletes the copied
        # article and stores an unrelated one.
        other = Store(tmp_path)
        other.delete_articles([copied.article_id])
        other.put(new_article("Football", [FOOTBALL], url="https://a.test/3"),
                  dup_threshold=None)
        return links

    monkeypatch.setattr(_write, "near_duplicates", meanwhile)
    result = store.put(new_article("Copy", [THIRD, EXTRA], url="https://b.test/1"))
    assert result.linked_duplicates == 0
    assert all(p.dup_of is None for p in store.article_passages([result.article_id]))


def test_a_new_version_that_is_another_article_s_text_keeps_the_old_one(
        tmp_path: Path) -> None:
    store = open_store(tmp_path)
    a = store.put(new_article("Strikes", BODY, url="https://a.test/1"))
    b = store.put(new_article("Football", [FOOTBALL], url="https://b.test/2"))
    gen = store.generation()
    again = store.put(new_article("Football", [FOOTBALL], url="https://a.test/1"))
    assert (again.status, again.article_id) == ("duplicate", b.article_id)
    assert store.find_article(url="https://a.test/1")["id"] == a.article_id
    assert [p.text for p in store.article_passages([a.article_id])] == BODY
    assert store.generation() == gen and store.check([]) == []


def test_unchanged_and_duplicate_puts_write_nothing_and_rebuild_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store._vectors import VectorIndexes

    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://a.test/1"))
    gen = store.generation()

    def rebuild(self: VectorIndexes, db: object) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(VectorIndexes, "_rebuild", rebuild)
    for _ in range(2):
        assert store.put(new_article("Strikes", BODY, url="https://a.test/1")).status \
            == "unchanged"
        assert store.put(new_article("Strikes", BODY, url="https://b.test/2")).status \
            == "duplicate"
    store.put(new_article("Football", [FOOTBALL], url="https://a.test/3"))
    assert store.generation() == gen + 1


def test_near_duplicates_search_holds_the_indexes_lock(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://a.test/1"))
    indexes = store._faiss
    seen: list[bool] = []

    class Watched:
        def __init__(self, ix: object) -> None:
            self._ix = ix

        def __getattr__(self, name: str) -> object:
            return getattr(self._ix, name)

        def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(indexes.lock._is_owned())  # type: ignore[attr-defined]
            return self._ix.search(*args, **kwargs)

    by_lang = indexes.by_space["e5"].by_lang
    by_lang["en"] = Watched(by_lang["en"])
    store.put(new_article("Copy", [BODY[0], EXTRA], url="https://b.test/2"))
    assert seen and all(seen)


def test_the_store_is_on_the_backend_this_run_is_for(tmp_path: Path, store_backend: str
                                                     ) -> None:
    from khabar.store import MilvusStore, Store

    store = open_store(tmp_path)
    assert isinstance(store, MilvusStore if store_backend == "milvus-lite" else Store)
    assert isinstance(open_index(tmp_path / "home").store, type(store))
