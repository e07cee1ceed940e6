"""``put_many``: a batch of articles stored as one put after another would store them
(on Milvus in one writer's turn and one commit, khabar/store/_milvus_put.py): the same
statuses and ids, the same near-duplicate links (to earlier articles of the batch too),
a refused article its own error while the others go in. Both backends."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from khabar import StoreError
from khabar.store import ArchiveStore, MilvusStore, NewArticle, PutResult
from tests.store import _data
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD, new_article, open_store

PRIVATE = "chat:42"


def _batch() -> list[NewArticle]:
    """Every case of a put, some meeting earlier articles of the same batch."""
    copy = new_article("A copy", [BODY[0], EXTRA], url="https://b.test/copy")  # links
    private = new_article("Private", [THIRD, "Only one chat has this paragraph now."],
                          url="https://b.test/private")
    private.origin = PRIVATE
    shared = new_article("Private", [THIRD, "Only one chat has this paragraph now."],
                         url="https://b.test/shared")  # its text again, from the archive
    other_source = new_article("Football", [FOOTBALL, THIRD], url="https://b.test/1")
    other_source.origin = PRIVATE
    return [
        new_article("Strikes", BODY, url="https://b.test/1"),              # added
        new_article("Football", [FOOTBALL], url="https://b.test/2"),       # added
        new_article("Strikes", BODY, url="https://b.test/1"),              # unchanged
        new_article("Strikes", BODY, url="https://b.test/amp"),            # duplicate
        copy,                                                              # added, linked
        new_article("Strikes", [*BODY, THIRD], url="https://b.test/1"),    # replaced
        other_source,                                                      # refused
        new_article("Empty", [], url="https://b.test/empty"),              # refused
        new_article("Strikes", BODY, url="https://b.test/again"),          # added: text free
        private, shared,                                          # added; duplicate, shared
        new_article("Football", [FOOTBALL], url="https://b.test/2"),       # unchanged
    ]


def _outcome(results: list) -> list[tuple]:
    return [("error", type(r).__name__) if isinstance(r, Exception) else
            (r.status, r.article_id, r.passages, r.linked_duplicates, r.replaced)
            for r in results]


def _contents(store: ArchiveStore) -> list[tuple]:
    ids = sorted(a.id for a in store.articles_in())
    rows = {r["id"]: r for r in store.article_rows(ids)}
    return [(i, rows[i]["url"], rows[i]["title"], rows[i]["origin"],
             sorted((p.id, p.position, p.text, p.dup_of)
                    for p in store.article_passages([i]))) for i in ids]


@pytest.mark.parametrize("search_in_turn", [False, True], ids=["searched-first", "in-turn"])
def test_a_batch_is_stored_as_one_put_after_another(
        tmp_path: Path, store_backend: str, search_in_turn: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if search_in_turn:  # Milvus: the near-duplicate search of none before the turn
        if store_backend != "milvus-lite":
            pytest.skip("Milvus's search before the writer's turn")
        from khabar.store import _milvus_put

        monkeypatch.setattr(_milvus_put, "_search_before", lambda *args: None)
    one = open_store(tmp_path / "one")
    many = open_store(tmp_path / "many")
    for store in (one, many):  # a stored article for the batch to meet
        store.put(new_article("Earlier", [EXTRA, "The mayor spoke later."],
                              url="https://b.test/earlier"))
    singly = []
    for new in _batch():
        try:
            singly.append(one.put(new))
        except StoreError as exc:
            singly.append(exc)
    together = many.put_many(_batch())
    assert _outcome(together) == _outcome(singly)
    statuses = [s for s, *_ in _outcome(together)]
    assert statuses == ["added", "added", "unchanged", "duplicate", "added", "replaced",
                        "error", "error", "added", "added", "duplicate", "unchanged"]
    assert _contents(many) == _contents(one)
    # The copy's first passage is linked to the batch's own first article (not yet
    # committed when it was compared), its second to the stored "Earlier".
    copy = together[4]
    assert not isinstance(copy, Exception) and copy.linked_duplicates == 2
    # The private article was shared by the later copy of its text: on both.
    assert many.find_article(url="https://b.test/private")["origin"] is None
    assert many.check() == [] and one.check() == []
    assert many.count_articles() == one.count_articles()


def test_a_batch_of_refusals_writes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    gen = store.generation()
    got = store.put_many([new_article("Empty", [], url="https://b.test/e")])
    assert isinstance(got[0], StoreError) and store.generation() == gen
    assert store.put_many([]) == []


@pytest.mark.parametrize("size", [40])
def test_a_large_batch_gives_consecutive_ids_in_order(tmp_path: Path, size: int) -> None:
    store = open_store(tmp_path)
    news = [new_article(f"Story {i}", [f"Paragraph one of story number {i} about {i * 7}.",
                                       f"Paragraph two of story {i}: the council met."],
                        url=f"https://b.test/s{i}") for i in range(size)]
    got = store.put_many(news)
    ids = [r.article_id for r in got if not isinstance(r, Exception)]
    assert len(ids) == size and ids == sorted(ids) and len(set(ids)) == size
    pids = [p.id for p in store.article_passages(ids)]
    assert len(pids) == 2 * size and len(set(pids)) == 2 * size
    assert store.check() == []


def test_find_articles_finds_what_find_article_finds_for_each(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    a = store.put(new_article("Strikes", BODY, url="https://b.test/1"))
    b = store.put(new_article("Football", [FOOTBALL], url="https://b.test/2"))
    urls = ["https://b.test/1", "https://b.test/2", "https://b.test/none"]
    hashes = [new_article("Strikes", BODY).content_hash, "0" * 64]
    by_url, by_hash = store.find_articles(urls=urls, content_hashes=hashes)
    assert {u: r["id"] for u, r in by_url.items()} == {urls[0]: a.article_id,
                                                       urls[1]: b.article_id}
    assert {h: r["id"] for h, r in by_hash.items()} == {hashes[0]: a.article_id}
    for url in urls:
        one = store.find_article(url=url)
        assert (one or {}).get("id") == (by_url.get(url) or {}).get("id")
        assert one is None or dict(by_url[url]) == one
    store.delete_articles([a.article_id])
    assert store.find_articles(urls=urls[:1], content_hashes=hashes[:1]) == ({}, {})


def test_an_article_added_and_replaced_in_one_batch_is_counted_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)  # empty: nothing else of the outlet hides a lost count
    got = store.put_many([new_article("Strikes", BODY, url="https://b.test/1"),
                          new_article("Strikes", [FOOTBALL], url="https://b.test/1")])
    assert [r.status for r in got] == ["added", "replaced"]
    assert store.count_articles() == 1
    assert dict(store.outlets()) == {"Reuters": 1}
    assert store.check() == []


# -- Milvus: the near-duplicate search made before the writer's turn ---------------------
def _before_the_turn(store: MilvusStore, monkeypatch: pytest.MonkeyPatch,
                     meanwhile: Callable[[], None]) -> None:
    """``meanwhile`` runs once, after the batch's search and before its writer's turn
    (as another writer's commit would land in between)."""
    real = store._writing
    pending = [meanwhile]

    @contextlib.contextmanager
    def writing() -> Iterator[None]:
        while pending:
            pending.pop()()
        with real():
            yield

    monkeypatch.setattr(store, "_writing", writing)


def _searches(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``where`` of each dense search the store makes from now on."""
    calls: list[str] = []
    real = store._search_many

    def search(*args: Any) -> Any:
        calls.append(args[5] if len(args) > 5 else "")
        return real(*args)

    monkeypatch.setattr(store, "_search_many", search)
    return calls


def test_a_near_copy_another_writer_commits_before_the_turn_is_linked(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    milvus.put(new_article("Earlier", [FOOTBALL], url="https://c.test/earlier"))
    other = _data.reopen(tmp_path)
    wire: list[PutResult] = []
    _before_the_turn(milvus, monkeypatch, lambda: wire.append(other.put(
        new_article("Wire", [BODY[0], EXTRA], url="https://c.test/wire"))))
    calls = _searches(milvus, monkeypatch)
    got = milvus.put_many([new_article("Copy", [BODY[0], THIRD], url="https://c.test/copy"),
                           new_article("Other", [BODY[1]], url="https://c.test/other")])
    copy = got[0]
    assert isinstance(copy, PutResult) and copy.status == "added"
    assert copy.linked_duplicates == 1  # without the catch-up in the turn: 0
    first = min(p.id for p in milvus.article_passages([wire[0].article_id]))
    assert [p.dup_of for p in milvus.article_passages([copy.article_id])] == [first, None]
    # The turn searched only the passages committed since: the wire's.
    assert calls == ["", f"id > {first - 1}"] and milvus.check() == []
    # Nothing moved between the search and the turn: no search in the turn.
    calls.clear()
    monkeypatch.setattr(milvus, "_writing", type(milvus)._writing.__get__(milvus))
    milvus.put_many([new_article("Again", [BODY[0], "Yet another paragraph."],
                                 url="https://c.test/again"),
                     new_article("More", ["More words on schools."], url="https://c.test/m")])
    assert calls == [""]


def _with_vectors(new: NewArticle, vecs: np.ndarray) -> NewArticle:
    new.vectors = {"e5": np.asarray(vecs, np.float32)}
    return new


def _best_and_second(milvus: MilvusStore) -> tuple[np.ndarray, PutResult, PutResult]:
    """A vector, and two articles stored: one at that vector (the best match of a copy
    at it) and one near it (the next best)."""
    rng = np.random.default_rng(7)
    u = rng.normal(size=64)
    u /= np.linalg.norm(u)
    near = u + 0.15 * rng.normal(size=64) / 8
    near /= np.linalg.norm(near)
    assert 0.96 < float(u @ near) < 0.999
    best = milvus.put(_with_vectors(new_article("Best", [BODY[0]], url="https://c.test/b"),
                                    u[None]))
    second = milvus.put(_with_vectors(new_article("Second", [BODY[1]],
                                                  url="https://c.test/s"), near[None]))
    assert isinstance(best, PutResult) and isinstance(second, PutResult)
    return u, best, second


def _copy_is_linked_to(milvus: MilvusStore, u: np.ndarray, second: PutResult) -> None:
    """A copy at ``u`` put in a batch is linked to ``second``'s passage; the store sound."""
    got = milvus.put_many([
        _with_vectors(new_article("Copy", [THIRD], url="https://c.test/copy"), u[None]),
        new_article("Other", [FOOTBALL], url="https://c.test/other")])
    copy = got[0]
    assert isinstance(copy, PutResult) and copy.linked_duplicates == 1  # without: 0
    root = milvus.article_passages([second.article_id])[0].id
    assert [p.dup_of for p in milvus.article_passages([copy.article_id])] == [root]
    assert milvus.check() == []


def test_a_near_copy_whose_best_match_another_writer_deletes_is_linked_to_the_next(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    u, best, second = _best_and_second(milvus)
    other = _data.reopen(tmp_path)
    _before_the_turn(milvus, monkeypatch, lambda: other.delete_articles([best.article_id]))
    _copy_is_linked_to(milvus, u, second)


def test_a_near_copy_whose_best_match_is_a_pending_removal_is_linked_to_the_next(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delete committed but not yet carried out (its writer midway, or dead after its
    commit) when the search before the turn runs: that search leaves the passage out
    (no hit at all, k = 1); the turn finishes the removal, and the chunk must be
    searched again there, as one put after the other would (linked to the next best)."""
    u, best, second = _best_and_second(milvus)
    other = _data.reopen(tmp_path)
    assert isinstance(other, MilvusStore)

    def die(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(other._client, "delete", die)  # logged and committed, rows kept
        other.delete_articles([best.article_id])
    _copy_is_linked_to(milvus, u, second)
