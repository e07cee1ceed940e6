"""Vector spaces and the FAISS indexes: search, deltas, files with their mark, HNSW deletes."""

from __future__ import annotations

import json
import sqlite3
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


def test_faiss_files_of_another_layout_or_store_are_rebuilt(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY)])
    ix.close()
    state = tmp_path / "store" / "faiss" / "state.json"
    state.write_text('{"generation": -5, "spaces": {}}')  # as khabar wrote them before marks
    store = Store(tmp_path / "store")
    assert store.check([]) == []
    q = HashEncoder().embed_queries(["strikes"])[0]
    assert store.search("e5", "en", q, 1)
    store.close()
    other = open_store(tmp_path / "other")
    other.put(new_article("Football", [FOOTBALL], url="https://x.test/f"))
    other.close()
    # Files of another store (same ids, other passages) are never applied.
    (tmp_path / "store" / "faiss" / "state.json").write_text(
        (tmp_path / "other" / "faiss" / "state.json").read_text())
    for f in (tmp_path / "other" / "faiss").glob("*.faiss"):
        (tmp_path / "store" / "faiss" / f.name).write_bytes(f.read_bytes())
    again = Store(tmp_path / "store")
    assert again.check([]) == [] and again._faiss.rebuilds == 1


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[VectorIndexes]:
    """Every whole rebuild of FAISS indexes from SQLite, by whom."""
    calls: list[VectorIndexes] = []
    original = VectorIndexes._rebuild

    def counting(self: VectorIndexes, db: sqlite3.Connection) -> None:
        calls.append(self)
        original(self, db)

    monkeypatch.setattr(VectorIndexes, "_rebuild", counting)
    return calls


def test_saved_files_are_loaded_and_brought_up_to_date_not_rebuilt(
        tmp_path: Path, rebuilds: list[VectorIndexes]) -> None:
    store = open_store(tmp_path)
    first = store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.close()
    state = json.loads((tmp_path / "faiss" / "state.json").read_text())
    assert state["mark"] == store.change_mark().to_dict()
    assert sorted(f.name for f in (tmp_path / "faiss").glob("*.faiss")) == sorted(
        state["spaces"]["e5"]["files"].values())
    assert len(rebuilds) == 1  # the empty store's, once
    # Another process writes on without saving: the files fall behind.
    writer = Store(tmp_path)
    writer.put(new_article("Football", [FOOTBALL], url="https://x.test/f"))
    writer.delete_articles([first.article_id])
    fresh = VectorIndexes(tmp_path / "faiss", "auto", 200_000)
    fresh.refresh(writer._conn())
    assert len(rebuilds) == 1
    assert fresh.mark == writer.change_mark() and fresh.by_space["e5"].size() == 1
    q = HashEncoder().embed_queries([FOOTBALL])[0]
    assert fresh.search("e5", "en", q, 5) == writer.search("e5", "en", q, 5)
    assert len(writer.search("e5", "en", q, 5)) == 1


def test_writes_and_other_processes_writes_never_rebuild(
        tmp_path: Path, rebuilds: list[VectorIndexes]) -> None:
    writer = open_store(tmp_path)
    reader = Store(tmp_path)
    q = HashEncoder().embed_queries(["topic consequences"])[0]
    ids = []
    for i in range(12):
        ids.append(writer.put(new_article(f"A{i}", [
            f"Article {i} about topic {i} and its consequences for the town of {i}.",
            f"A second paragraph of article {i}, on the river {i} and the bridge."],
            url=f"https://x.test/{i}")).article_id)
        reader.search("e5", "en", q, 3)
        if i % 4 == 3:
            writer.delete_articles([ids[i - 2]])
            reader.search("e5", "en", q, 3)
    assert writer.put(new_article("A4", [FOOTBALL], url="https://x.test/4")).status == "replaced"
    assert rebuilds == [writer._faiss]  # the empty store's, once
    assert reader.check([]) == [] and writer.check([]) == []
    got = reader.search("e5", "en", q, 30)
    assert got == writer.search("e5", "en", q, 30)
    # The same as indexes built anew from SQLite: same ids, same scores.
    fresh = Store(tmp_path)
    fresh.refresh(force_rebuild=True)
    assert fresh.search("e5", "en", q, 30) == got and len(got) == 2 * 12 - 2 * 3 - 1


def test_flush_saves_when_far_behind_and_close_always(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store import _vectors

    store = open_store(tmp_path)
    state = tmp_path / "faiss" / "state.json"

    def saved() -> int:
        return json.loads(state.read_text())["mark"]["passage"]

    for i in range(3):
        store.put(new_article(f"A{i}", [f"Article {i} about the river and bridge {i}."],
                              url=f"https://x.test/{i}"))
        store.flush()  # the end of a batch of one article: not worth rewriting the files
    assert saved() == 0
    monkeypatch.setattr(_vectors, "SAVE_BEHIND", 3)
    store.flush()
    assert saved() == store.change_mark().passage == 3
    store.put(new_article("Late", [FOOTBALL], url="https://x.test/late"))
    store.flush()
    assert saved() == 3
    store.close()
    assert saved() == 4
    assert len(list((tmp_path / "faiss").glob("*.faiss"))) == 1  # old files removed
    assert not list((tmp_path / "faiss").glob("*.tmp"))


def test_a_large_archive_saves_its_files_less_often() -> None:
    from khabar.store._vectors import SAVE_BEHIND, SAVE_BEHIND_MAX, save_behind

    # Each save writes every index whole: bytes written a passage must not grow with
    # the archive, so the interval grows with it (up to a bound on what readers replay).
    assert save_behind(0) == save_behind(10_000) == SAVE_BEHIND
    assert save_behind(100_000) == 5_000
    assert save_behind(1_000_000) == save_behind(10_000_000) == SAVE_BEHIND_MAX
    sizes = [10_000, 100_000, 400_000, 1_000_000]
    assert [save_behind(n) for n in sizes] == sorted(save_behind(n) for n in sizes)


def _passage(store: Store, article_id: int) -> int:
    return store.article_passages([article_id])[0].id


def test_hnsw_keeps_deleted_passages_out_and_rebuilds_past_a_fifth(tmp_path: Path) -> None:
    store = open_store(tmp_path, index_type="hnsw")
    arts = [store.put(new_article(f"A{i}", [f"Article {i} about topic {i} and its "
                                            f"consequences for the town of {i}."],
                                  url=f"https://x.test/{i}")).article_id for i in range(10)]
    q = HashEncoder().embed_queries(["Article 3 about topic 3"])[0]
    gone = _passage(store, arts[3])
    assert store.search("e5", "en", q, 1)[0][0] == gone
    assert store._faiss.save(force=True)  # the recent additions join the graph
    store.delete_articles([arts[3]])
    index = store._faiss.by_space["e5"]
    assert index.by_lang["en"].ntotal == 10 and index.deleted == {"en": {gone}}
    hits = store.search("e5", "en", q, 10)
    assert len(hits) == 9 and gone not in {pid for pid, _ in hits}
    assert store.search("e5", "en", q, 10, {gone}) == []
    assert store.check([]) == []
    store.close()
    again = Store(tmp_path, index_type="hnsw")  # the deleted ids are saved with the files
    assert again.search("e5", "en", q, 10) == hits
    assert again._faiss.rebuilds == 0
    assert again._faiss.by_space["e5"].deleted == {"en": {gone}}
    again.delete_articles([arts[0], arts[1]])  # 3 of 10: past a fifth
    index = again._faiss.by_space["e5"]
    assert index.deleted == {} and index.by_lang["en"].ntotal == 7
    assert len(again.search("e5", "en", q, 10)) == 7 and again.check([]) == []
    assert again._faiss.rebuilds == 0  # that index alone, from its own vectors


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
    assert store.passages([top[0]])[top[0]].text == FOOTBALL and np.isclose(top[1], 1, atol=1e-3)
    assert store.check([]) == []


def test_the_index_kind_is_the_same_built_whole_or_grown(tmp_path: Path) -> None:
    store = open_store(tmp_path, hnsw_threshold=3)
    first = store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.put(new_article("Arabic", ["قال الجيش إنه ضرب أهدافا قرب المدينة الشمالية.",
                                     "وقال مسؤولون إن الضربات ستستمر رغم التحذيرات."],
                          url="https://x.test/ar", lang="ar"))

    def kinds(s: Store) -> set[str]:
        return {ix.kind for ix in s._faiss.by_space.values()}

    def rebuilt() -> set[str]:
        fresh = Store(tmp_path, hnsw_threshold=3)
        fresh.refresh(force_rebuild=True)
        return kinds(fresh)

    assert kinds(store) == rebuilt() == {"flat"}  # 4 passages, at most 2 of a language
    store.put(new_article("Football", [FOOTBALL], url="https://x.test/f"))
    assert kinds(store) == rebuilt() == {"hnsw"}  # 3 English ones
    assert store.stats()["index_type"] == "hnsw"
    store.delete_articles([first.article_id])
    assert kinds(store) == rebuilt() == {"flat"}
    q = HashEncoder().embed_queries([FOOTBALL])[0]
    assert store.search("e5", "en", q, 5)[0][0] == next(
        r["id"] for r in store.iter_passages("en"))
    assert store.check([]) == []


def test_saved_files_of_another_index_type_are_converted_not_rebuilt(
        tmp_path: Path, rebuilds: list[VectorIndexes]) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", [*BODY, FOOTBALL], url="https://x.test/a"))
    q = HashEncoder().embed_queries([FOOTBALL])[0]
    flat = store.search("e5", "en", q, 3)
    store.close()
    hnsw = Store(tmp_path, index_type="hnsw")
    got = hnsw.search("e5", "en", q, 3)
    assert [pid for pid, _ in got] == [pid for pid, _ in flat]
    assert [s for _, s in got] == pytest.approx([s for _, s in flat], abs=1e-5)
    assert {ix.kind for ix in hnsw._faiss.by_space.values()} == {"hnsw"}
    hnsw.close()
    assert json.loads((tmp_path / "faiss" / "state.json").read_text()
                      )["spaces"]["e5"]["kind"] == "hnsw"
    assert len(rebuilds) == 1  # the empty store's


def test_additions_after_loading_wait_beside_the_loaded_index_until_a_save(
        tmp_path: Path) -> None:
    # A FAISS index read from a file has no room to grow: its first add would copy
    # every vector. Additions wait in a small index beside it; a save merges them.
    writer = open_store(tmp_path)
    for i in range(6):
        writer.put(new_article(f"A{i}", [f"Article {i} about the river {i} and its bridge."],
                               url=f"https://x.test/{i}"))
    writer.close()
    reader = Store(tmp_path)
    q = HashEncoder().embed_queries(["the river and its bridge"])[0]
    before = reader.search("e5", "en", q, 20)
    loaded = reader._faiss.by_space["e5"].by_lang["en"]
    held = loaded.ntotal
    writer = Store(tmp_path)
    new = writer.put(new_article("A6", ["Article 6 about the river 6 and its bridge."],
                                 url="https://x.test/6"))
    gone = writer.put(new_article("A7", ["Article 7 about the river 7 and its bridge."],
                                  url="https://x.test/7"))
    writer.delete_articles([gone.article_id])
    after = reader.search("e5", "en", q, 20)
    index = reader._faiss.by_space["e5"]
    assert index.by_lang["en"] is loaded and loaded.ntotal == held  # untouched
    assert index.fresh["en"].ntotal == 1  # A6; A7 came and went
    assert len(after) == len(before) + 1
    assert {pid for pid, _ in after} - {pid for pid, _ in before} == set(
        p.id for p in reader.article_passages([new.article_id]))
    assert [s for _, s in after] == sorted((s for _, s in after), reverse=True)
    assert reader.check([]) == []
    rebuilt = Store(tmp_path)
    rebuilt.refresh(force_rebuild=True)
    assert sorted(rebuilt.search("e5", "en", q, 20)) == sorted(after)
    # The allowed ids reach the recent additions too.
    mine = next(pid for pid, _ in after if pid not in {p for p, _ in before})
    assert [pid for pid, _ in reader.search("e5", "en", q, 5, {mine})] == [mine]
    assert reader._faiss.save(force=True)
    assert "en" not in index.fresh and index.by_lang["en"].ntotal == held + 1
    assert reader.search("e5", "en", q, 20) == after
    writer.close()
    reader.close()


def _with_sentences(title: str, sentences: list[str], url: str):
    """An article of two passages: the sentences, then the last one alone (stored as
    "its passage vector"), with their sentence vectors."""
    enc = HashEncoder()
    art = new_article(title, [" ".join(sentences), sentences[-1]], url=url)
    art.sentence_vectors = {"e5": [enc.embed_passages(sentences),
                                   enc.embed_passages(sentences[-1:])]}
    return art


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_a_search_reads_the_vectors_its_indexes_hold_as_sqlite_holds_them(
        tmp_path: Path, index_type: str) -> None:
    writer = open_store(tmp_path, index_type=index_type)
    arts = [writer.put(_with_sentences(f"A{i}", [f"Article {i} about the river {i}.",
                                                 f"The bridge {i} was closed on day {i}."],
                                       url=f"https://x.test/{i}")).article_id
            for i in range(8)]
    writer.close()
    reader = Store(tmp_path, index_type=index_type)  # the saved files, then more
    reader.search("e5", "en", HashEncoder().embed_queries(["river"])[0], 1)
    writer = Store(tmp_path, index_type=index_type)
    arts.append(writer.put(_with_sentences("A8", [FOOTBALL, "And the cup final."],
                                           url="https://x.test/8")).article_id)
    gone = _passage(writer, arts[2])
    writer.delete_articles([arts[2]])
    ids = [r["id"] for r in writer.iter_passages()]
    want = writer.vectors("e5", [*ids, gone, 10**6])
    got = reader.search_vectors("e5", [*ids, gone, 10**6])  # the index and its fresh one
    assert set(got) == set(want) == set(ids) and gone not in got
    for pid in ids:  # the same float16, rounded alike but for a rare tie (one ulp)
        np.testing.assert_allclose(got[pid], want[pid], atol=1e-3, rtol=0)
    index = reader._faiss.by_space["e5"]
    assert index.fresh["en"].ntotal == 2 and (index_type == "flat" or index.deleted)
    sentences = reader.search_sentence_vectors(["e5", "use"], [*ids, gone])
    stored = writer.sentence_vectors("e5", ids)
    assert set(sentences["e5"]) == set(stored) == set(ids) and sentences["use"] == {}
    assert {len(m) for m in stored.values()} == {1, 2}
    for pid in ids:
        np.testing.assert_allclose(sentences["e5"][pid], stored[pid], atol=1e-3, rtol=0)
    # After another process's write, a search's read brings the indexes up to it.
    last = writer.put(new_article("A9", ["A river article, the tenth."],
                                  url="https://x.test/9"))
    new = writer.article_passages([last.article_id])[0].id
    assert new in reader.search_vectors("e5", [new])
    assert reader._faiss.by_space["e5"].fresh["en"].ntotal == 3
    writer.close()
    reader.close()


def test_a_searchs_reads_of_vectors_are_the_stored_ones_on_every_backend(
        tmp_path: Path) -> None:
    store = open_store(tmp_path)
    arts = [store.put(_with_sentences(f"A{i}", [f"Article {i} about the river {i}.",
                                                f"The bridge {i} was closed on day {i}."],
                                      url=f"https://x.test/{i}")).article_id
            for i in range(3)]
    gone = store.article_passages([arts[1]])[0].id
    store.delete_articles([arts[1]])
    ids = [r["id"] for r in store.iter_passages()]
    want = store.vectors("e5", ids)
    got = store.search_vectors("e5", [*ids, gone, 10**6])
    assert set(got) == set(want) == set(ids)  # never a removed passage's
    for pid in ids:
        np.testing.assert_allclose(got[pid], want[pid], atol=1e-3, rtol=0)
    sentences = store.search_sentence_vectors(["e5", "use"], [*ids, gone])
    stored = store.sentence_vectors("e5", ids)
    assert set(sentences["e5"]) == set(stored) == set(ids) and sentences["use"] == {}
    assert {len(m) for m in stored.values()} == {1, 2}  # "its passage vector" as a matrix
    for pid in ids:
        np.testing.assert_allclose(sentences["e5"][pid], stored[pid], atol=1e-3, rtol=0)
    store.close()
