"""Outlets and the published range, as ``outlets()`` and ``stats()`` give them, kept
right through puts, new versions, forgetting, origins moved and shared (both
backends; on Milvus from the summary rows the writer commits with its state,
khabar/store/_milvus_summary.py), through crashes, and checked by ``check``; and
``scope_stats``, the same figures over what one chat sees."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khabar.store import ArchiveStore, Chunk, MilvusStore, NewArticle, _milvus_summary, content_hash
from tests.fakes import HashEncoder
from tests.store import _data
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD, article, open_store


def _put(store: ArchiveStore, n: int, outlets: tuple[str, ...], day: int | None,
         origin: str | None = None, body: list[str] | None = None, hour: int = 0):
    text = body or [f"Story number {n} about the harbour, its ships and the weather {n}."]
    art = article(f"Story {n}", text, url=f"https://x.test/{n}", outlets=outlets,
                  published=datetime(2024, 3, day, hour, tzinfo=UTC) if day else None)
    new = NewArticle(art, [Chunk(i, t, "en") for i, t in enumerate(text)],
                     {"e5": HashEncoder().embed_passages(text)}, content_hash(art),
                     origin=origin)
    return store.put(new)


def _seen(store: ArchiveStore) -> tuple[dict[str, int], object, object]:
    stats = store.stats()
    assert stats["outlets"] == len(store.outlets())
    return dict(store.outlets()), stats["published_from"], stats["published_to"]


def test_outlets_and_dates_follow_every_write(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert _seen(store) == ({}, None, None)
    a = _put(store, 1, ("Wire", "Desk"), 5)
    _put(store, 2, ("Wire",), 9, hour=6)
    c = _put(store, 3, ("Desk",), None)  # undated: no date, its outlet counted
    assert _seen(store) == ({"Wire": 2, "Desk": 2}, "2024-03-05T00:00:00+00:00",
                            "2024-03-09T06:00:00+00:00")
    # A new version of the first (same URL, new text): its outlets and date replaced.
    new = _put(store, 1, ("Post",), 7, body=[EXTRA])
    assert new.status == "replaced"
    assert _seen(store) == ({"Wire": 1, "Desk": 1, "Post": 1}, "2024-03-07T00:00:00+00:00",
                            "2024-03-09T06:00:00+00:00")
    late = _put(store, 4, ("Wire",), 9, hour=3, body=[FOOTBALL])  # the last day again
    # Forgetting the last: the day keeps another article, the range comes back to it.
    store.delete_articles(store.article_ids(url="https://x.test/2"))
    assert _seen(store) == ({"Wire": 1, "Desk": 1, "Post": 1}, "2024-03-07T00:00:00+00:00",
                            "2024-03-09T03:00:00+00:00")
    store.delete_articles([late.article_id, new.article_id])
    assert _seen(store) == ({"Desk": 1}, None, None)
    assert store.check() == []
    store.delete_articles([c.article_id])
    assert _seen(store) == ({}, None, None) and a.article_id not in store.article_ids()
    assert store.check() == []


def test_a_scope_sees_the_shared_outlets_and_its_own(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _put(store, 1, ("Wire",), 1)
    _put(store, 2, ("Mine",), 2, origin="chat:-100")
    _put(store, 3, ("Theirs", "Wire"), 3, origin="chat:-200")
    assert dict(store.outlets(scope="chat:-100")) == {"Wire": 1, "Mine": 1}
    assert dict(store.outlets(scope="chat:-200")) == {"Wire": 2, "Theirs": 1}
    assert dict(store.outlets(scope="chat:5")) == {"Wire": 1}
    # Chat -200's article shared (posted again in a public origin): every scope sees it.
    again = _put(store, 3, ("Theirs", "Wire"), 3, origin="operator:1")
    assert again.status == "unchanged"
    assert dict(store.outlets(scope="chat:-100")) == {"Wire": 2, "Mine": 1, "Theirs": 1}
    # A chat's articles moved to another (private) chat: only that one sees them.
    assert store.move_origin("chat:-100", "chat:-300") == 1
    assert dict(store.outlets(scope="chat:-100")) == {"Wire": 2, "Theirs": 1}
    assert dict(store.outlets(scope="chat:-300")) == {"Wire": 2, "Theirs": 1, "Mine": 1}
    assert dict(store.outlets()) == {"Wire": 2, "Theirs": 1, "Mine": 1}
    assert store.check() == []


class Crash(Exception):
    pass


def test_milvus_reads_outlets_from_the_committed_summary_only(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(milvus, 1, ("Wire",), 1, body=BODY)
    scans = []
    monkeypatch.setattr(_milvus_summary, "counted",
                        lambda *a: scans.append(1) or pytest.fail("a scan of articles"))
    reader = _data.reopen(tmp_path)
    assert dict(reader.outlets()) == {"Wire": 1}

    def die(state: dict) -> None:
        raise Crash

    # A put that dies before its commit wrote its summary rows: no reader counts it.
    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(milvus, "_write_state", die)
        _put(milvus, 2, ("Desk",), 2, body=[THIRD])
    for store in (milvus, reader, _data.reopen(tmp_path)):
        assert dict(store.outlets()) == {"Wire": 1}
        assert store.stats()["published_to"] == "2024-03-01T00:00:00+00:00"
    # The next writer's commit replaces them; the rows no state names are gone.
    _put(milvus, 3, ("Post",), 3, body=[FOOTBALL])
    reader.generation()  # as a question starts: the state read again
    assert dict(reader.outlets()) == {"Wire": 1, "Post": 1} and milvus.check() == []
    summaries = milvus._client.query(milvus._name("meta"), filter='key like "summary@%"',
                                     output_fields=["key"])
    assert len(summaries) == 1 and not scans


def test_milvus_check_finds_a_wrong_summary_and_an_old_store_gets_one(
        milvus: MilvusStore) -> None:
    a = _put(milvus, 1, ("Wire",), 1, body=BODY)
    _put(milvus, 2, ("Desk",), 2, body=[THIRD])
    # The summary of a store from before: none in its state; readers count instead.
    with milvus._writing():
        st = milvus._state()
        named = st.pop("summary")
        milvus._write_state(st)
    milvus._summary_cache = None
    assert dict(milvus.outlets()) == {"Wire": 1, "Desk": 1} and milvus.check() == []
    assert _milvus_summary.ensure(milvus) and not _milvus_summary.ensure(milvus)
    assert milvus._state()["summary"] != named and milvus.check() == []
    # A summary that says otherwise than the articles is a fault.
    with milvus._writing():
        st = milvus._state()
        wrong = _milvus_summary.Summary({"Wire": 2}, {"Wire": 2}, {"2024-03-01": 1},
                                        "2024-03-01T00:00:00+00:00", "2024-03-02T00:00:00+00:00")
        _milvus_summary._write(milvus, st, wrong)
        milvus._write_state(st)
    assert milvus.check() == ["the articles' summary is wrong: its outlets differ from "
                              "the articles'", "the articles' summary is wrong: its public "
                              "differ from the articles'", "the articles' summary is wrong: "
                              "its days differ from the articles'"]
    assert a.article_id in milvus.article_ids()


@pytest.mark.parametrize("dies_at", ["the articles' rows", "the commit"])
def test_a_share_that_dies_midway_is_finished_by_the_next_turn(
        milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch, dies_at: str) -> None:
    aid = _put(milvus, 1, ("Reuters",), 5, origin="chat:42").article_id
    assert dict(milvus.outlets(scope="chat:7")) == {}
    real_upsert, real_commit, commits = milvus._client.upsert, MilvusStore._write_state, []

    def upsert(name: str, rows: list, *args: object, **kw: object) -> object:
        if dies_at == "the articles' rows" and name.endswith("articles"):
            raise Crash  # the passages rewritten, not the article
        return real_upsert(name, rows, *args, **kw)

    def commit(self: MilvusStore, st: dict) -> None:
        commits.append(1)
        if dies_at == "the commit" and len(commits) == 2:  # after the intent's
            raise Crash  # every row rewritten, the summary not committed
        real_commit(self, st)

    with monkeypatch.context() as patch:
        patch.setattr(milvus._client, "upsert", upsert)
        patch.setattr(MilvusStore, "_write_state", commit)
        with pytest.raises(Crash):
            milvus.share(aid, "chat:42", None)
    _put(milvus, 2, ("Reuters",), 6)  # the next turn
    assert milvus.article_rows([aid])[0]["origin"] is None  # shared
    assert {r["origin"] for r in milvus._query("passages", f"article_id == {aid}",
                                                ["origin"])} == {""}
    assert dict(milvus.outlets(scope="chat:7")) == {"Reuters": 2}
    assert milvus.check() == []


def test_milvus_keeps_the_ends_without_a_scan_when_their_article_is_replaced_as_dated(
        milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(milvus, 1, ("Wire",), 5)
    _put(milvus, 2, ("Wire",), 9, hour=6)
    scans: list[str] = []
    real = milvus._client.query

    def query(*args: object, **kwargs: object) -> object:
        if "published like" in str(kwargs.get("filter", "")):
            scans.append(str(kwargs["filter"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(milvus._client, "query", query)
    # New versions of the newest and the oldest, dated as they were: no day's scan.
    assert _put(milvus, 2, ("Wire",), 9, hour=6, body=[FOOTBALL]).status == "replaced"
    assert _put(milvus, 1, ("Desk",), 5, body=[THIRD]).status == "replaced"
    assert scans == []  # before: one `published like` query each
    assert _seen(milvus) == ({"Wire": 1, "Desk": 1}, "2024-03-05T00:00:00+00:00",
                             "2024-03-09T06:00:00+00:00")
    # Dated earlier, the newest's new version leaves the last date to a query.
    _put(milvus, 2, ("Wire",), 9, hour=1, body=[EXTRA])
    assert len(scans) == 1
    assert _seen(milvus)[2] == "2024-03-09T01:00:00+00:00" and milvus.check() == []


def _put_mixed(store: ArchiveStore, n: int, day: int | None, origin: str | None,
               outlet: str = "Wire", hour: int = 0):
    """An article of an English and an Arabic passage (two languages to count)."""
    text = [f"Story number {n} about the harbour and its ships {n}.",
            f"القصة رقم {n} عن الميناء وسفنه {n}."]
    art = article(f"Story {n}", text, url=f"https://x.test/{n}", outlets=(outlet,),
                  published=datetime(2024, 3, day, hour, tzinfo=UTC) if day else None)
    new = NewArticle(art, [Chunk(0, text[0], "en"), Chunk(1, text[1], "ar")],
                     {"e5": HashEncoder().embed_passages(text)}, content_hash(art),
                     origin=origin)
    return store.put(new)


def _scope_truth(store: ArchiveStore, scope: str) -> dict[str, object]:
    """What ``scope_stats`` must say, counted the long way from what the scope sees."""
    seen = store.articles_in(scope=scope)
    passages = store.article_passages([a.id for a in seen])
    langs: dict[str, int] = {}
    for p in passages:
        langs[p.lang] = langs.get(p.lang, 0) + 1
    dates = sorted(a.published.isoformat() for a in seen if a.published)
    return {"articles": len(seen), "passages": len(passages), "outlets":
            len(store.outlets(scope)), "languages": langs,
            "published_from": dates[0] if dates else None,
            "published_to": dates[-1] if dates else None}


def test_scope_stats_leave_out_what_other_chats_keep_private(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _put_mixed(store, 1, 10, None)
    _put_mixed(store, 2, 12, "operator:9", outlet="Desk")
    _put_mixed(store, 3, 14, "chat:-100", outlet="Mine")
    # While no other chat keeps anything, a chat sees what stats() counts.
    whole = store.stats()
    figures = ("articles", "passages", "outlets", "languages", "published_from",
               "published_to")
    assert store.scope_stats("chat:-100") == {k: whole[k] for k in figures}
    # Other chats' own hold both ends of the range, two on one date, one undated.
    _put_mixed(store, 4, 2, "chat:-200", outlet="Theirs")
    _put_mixed(store, 5, 2, "chat:-1000", outlet="Theirs")  # sorts between the chats
    last = _put_mixed(store, 6, 20, "chat:-200", outlet="Theirs", hour=5)
    _put_mixed(store, 7, None, "chat:-200", outlet="Theirs")
    _put_mixed(store, 8, 14, "chat:-200", outlet="Theirs", hour=9)  # a seen day's last
    got = store.scope_stats("chat:-100")
    assert got == _scope_truth(store, "chat:-100")
    assert got == {"articles": 3, "passages": 6, "outlets": 3,
                   "languages": {"en": 3, "ar": 3},
                   "published_from": "2024-03-10T00:00:00+00:00",
                   "published_to": "2024-03-14T00:00:00+00:00"}
    # Each chat its own view; a chat with nothing of its own, the shared archive.
    assert store.scope_stats("chat:-200") == _scope_truth(store, "chat:-200")
    assert store.scope_stats("chat:-200")["published_to"] == "2024-03-20T05:00:00+00:00"
    assert store.scope_stats("chat:5") == _scope_truth(store, "chat:5")
    assert store.scope_stats("chat:5")["articles"] == 2
    # After forgetting, the same.
    store.delete_articles([last.article_id])
    assert store.scope_stats("chat:-100") == _scope_truth(store, "chat:-100")
    assert store.scope_stats("chat:-200") == _scope_truth(store, "chat:-200")
    # Every dated article hidden: no range.
    store.delete_articles(store.article_ids(origin="chat:-100")
                          + store.article_ids(origin=None)
                          + store.article_ids(origin="operator:9"))
    assert store.scope_stats("chat:-100") == {
        "articles": 0, "passages": 0, "outlets": 0, "languages": {},
        "published_from": None, "published_to": None}


def test_scope_stats_read_no_passage_text_and_a_fixed_number_of_queries(
        tmp_path: Path) -> None:
    # SQLite: however many passages other chats keep, the same few queries (through the
    # origin and publication indexes), and not one reads a passage's text.
    from khabar.store import Store
    store = Store(tmp_path)
    store.bind_spaces([_data.HASH_SPACE])
    db = store._conn()
    _put_mixed(store, 1, 10, None)
    _put_mixed(store, 2, 1, "chat:-200")

    def queries() -> list[str]:
        run: list[str] = []
        read: set[tuple[str, str]] = set()

        def reads(action: int, table: str | None, column: str | None, *_: object) -> int:
            if action == sqlite3.SQLITE_READ:
                read.add((str(table), str(column)))
            return sqlite3.SQLITE_OK
        db.set_trace_callback(run.append)
        db.set_authorizer(reads)
        try:
            store.scope_stats("chat:-100")
        finally:
            db.set_trace_callback(None)
            db.set_authorizer(None)
        assert not read & {("passages", "text"), ("passages", "norm")}, read
        return run

    few = queries()
    for n in range(3, 40):
        _put_mixed(store, n, n % 28 + 1, f"chat:-{n}")
    assert queries() == few and len(few) <= 10
    store.close()
