"""What only the Milvus backend has to show: writes without transactions that a crash
never leaves half visible, Milvus's own BM25 over khabar's tokens, and opening it from
``KHABAR_STORE``. (Everything else of the interface: tests/store on both backends.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from khabar.retrieval._lexical import LexicalIndex

from khabar import Settings, StoreError
from khabar.store import MilvusStore
from khabar.store import open_store as open_archive
from khabar.text import lexical_tokens
from tests.store import _data
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD, new_article


class Crash(Exception):
    pass


def test_a_put_that_dies_before_its_commit_is_never_seen_and_is_cleaned_up(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    mark, gen = milvus.change_mark(), milvus.generation()

    def die(state: dict) -> None:
        raise Crash

    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(milvus, "_write_state", die)
        # Its passages and article row are written, not committed.
        milvus.put(new_article("Football", [FOOTBALL, EXTRA], url="https://a.test/2"))
    reader = _data.reopen(tmp_path)  # another client: what other readers see
    for store in (milvus, reader):
        assert (store.change_mark(), store.generation()) == (mark, gen)
        assert store.article_ids() == [kept.article_id]
        assert store.find_article(url="https://a.test/2") is None
        assert not store.changes_since(mark)
        hits = {p for p, _ in store.search("e5", "en", _vector(FOOTBALL), 10)}
        assert hits <= {p.id for p in store.article_passages([kept.article_id])}
    # The next writer drops the rows above the commit before its first write (readers
    # leave them: they may be a write under way); then the store is whole.
    assert "uncommitted" in " ".join(reader.check())
    again = _data.reopen(tmp_path)
    added = again.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    assert added.status == "added" and again.check() == [] and reader.check() == []
    assert again.changes_since(mark).added == [
        (p.id, "en", FOOTBALL) for p in again.article_passages([added.article_id])]


def test_a_delete_that_dies_after_its_commit_hides_the_article_and_is_finished(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    a = milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    b = milvus.put(new_article("Football", [FOOTBALL, THIRD], url="https://a.test/2"))
    mark = milvus.change_mark()
    gone = [p.id for p in milvus.article_passages([b.article_id])]

    def die(*args: object, **kwargs: object) -> None:
        raise Crash

    # The removals are logged and committed; the rows are still all there.
    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(milvus._client, "delete", die)
        milvus.delete_articles([b.article_id])
    reader = _data.reopen(tmp_path)
    for store in (milvus, reader):
        assert store.article_ids() == [a.article_id]
        assert store.passages(gone) == {}
        assert [x.id for x in store.articles_in()] == [a.article_id]
        assert store.changes_since(mark).removed == gone
        assert store.count_articles() == 1 and store.count_passages() == 2
        hits = {p for p, _ in store.search("e5", "en", _vector(FOOTBALL), 10)}
        assert not hits & set(gone)
    again = _data.reopen(tmp_path)
    again.put(new_article("Extra", [EXTRA], url="https://a.test/3"))  # finishes it first
    assert again.check() == [] and again.changes_since(mark).removed == gone
    assert again.passages(gone) == {} and again.count_passages() == 3


def test_milvus_bm25_reads_khabar_s_own_tokens(milvus: MilvusStore) -> None:
    milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    football = milvus.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    arabic = milvus.put(new_article("غزة", ["أعلنت الحكومة وقف إطلاق النار في غزة مساء الأحد."],
                                    url="https://a.test/3", lang="ar"))
    [fid] = [p.id for p in milvus.article_passages([football.article_id])]
    [aid] = [p.id for p in milvus.article_passages([arabic.article_id])]
    # The question analysed as the passages were (stemmed): "transfer" meets "transfers".
    assert milvus.lexical_search("en", lexical_tokens("league transfer"), 5)[0][0] == fid
    assert milvus.lexical_search("ar", lexical_tokens("إطلاق النار"), 5)[0][0] == aid
    assert milvus.lexical_search("en", lexical_tokens("league"), 5, allowed={1}) == []


NEWS = ["The army struck targets near the northern city on Wednesday, officials said.",
        "Officials said the strikes hit the city and its airport; the army denied it.",
        "Residents of the northern city fled the fighting, the mayor said on Thursday.",
        "The league tables after the weekend's football games and the transfers.",
        "Fighting near the airport stopped on Friday, the army and the officials said.",
        "The mayor of the city said the airport would reopen after the strikes."]


def test_milvus_bm25_ranks_groups_as_retrieval_s_own(milvus: MilvusStore) -> None:
    """The store's BM25 (retrieval's lexical search on Milvus) against retrieval's
    in-process BM25 over the same passages: the same ranking and scores (to a factor), for a
    question's words and for the lexical bridge's groups (alternatives counted once by
    the best, weighted), one language, one segment (the same IDF on both)."""
    for i, text in enumerate(NEWS):
        milvus.put(new_article(f"News {i}", [text], url=f"https://a.test/{i}"))
    assert milvus.has_lexical_search()
    own = LexicalIndex(milvus)
    words = lexical_tokens("strikes near the airport city officials")
    groups = [(1.0, lexical_tokens("airport city")), (2.0, lexical_tokens("mayor")),
              (0.7, lexical_tokens("army fighting strikes"))]
    for got, want in ((milvus.lexical_search("en", words, 4),
                       own.search("en", "strikes near the airport city officials", 4)),
                      (milvus.lexical_search_groups("en", groups, 5),
                       own.search_groups("en", groups, 5))):
        assert [p for p, _ in got] == [p for p, _ in want] and len(got) >= 4
        # Milvus scales BM25 by (k1 + 1), bm25s does not: the same up to one factor.
        ratio = got[0][1] / want[0][1]
        assert [s for _, s in got] == pytest.approx([ratio * s for _, s in want], rel=1e-4)
    ranked = [p for p, _ in milvus.lexical_search_groups("en", groups, 5)]
    # Filtered (Milvus Lite takes IDF over the passages the filter lets through).
    assert [p for p, _ in milvus.lexical_search_groups(
        "en", groups, 5, allowed=set(ranked[1:3]))] == ranked[1:3]
    assert milvus.lexical_search_groups("en", groups, 5, allowed=set()) == []


def test_khabar_store_opens_milvus_lite(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, store=f"milvus-lite://{tmp_path}/m/khabar.db")
    store = open_archive(settings)
    assert isinstance(store, MilvusStore) and (tmp_path / "m" / "khabar.db").exists()
    assert store.path.is_relative_to(tmp_path) and store.count_passages() == 0
    store.close()


def _vector(text: str):  # type: ignore[no-untyped-def]
    from tests.fakes import HashEncoder

    return HashEncoder().embed_passages([text])[0]


def test_opening_milvus_leaves_the_environment_as_it_was(tmp_path: Path) -> None:
    """pymilvus loads ``.env`` into the environment when imported; khabar reads ``.env``
    by its own rules, so nothing of it may stay there."""
    import subprocess
    import sys

    (tmp_path / ".env").write_text("KHABAR_TELEGRAM_TOKEN=1:secret\nOTHER_TOOL=1\n",
                                   encoding="utf-8")
    code = ("import os, sys; from pathlib import Path; from khabar.store import MilvusStore;"
            "MilvusStore(sys.argv[1], cache=Path(sys.argv[2])).close();"
            "print(sorted(k for k in os.environ if k in ('KHABAR_TELEGRAM_TOKEN', "
            "'OTHER_TOOL')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "k.db"),
                          str(tmp_path / "cache")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# -- many writers (the lease of khabar/store/_milvus_commit.py; processes on a server:
# tests/store/test_milvus_writers.py) ---------------------------------------------------
def _texts(i: int) -> list[str]:
    return [f"Report number {i} on the harbour: the {i}th meeting of the port council.",
            f"Paragraph two of report {i}, about buses and schools in district {i}."]


def test_writer_clients_in_threads_take_turns_and_store_each_article_once(
        tmp_path: Path, milvus: MilvusStore) -> None:
    """Two clients of one archive writing at once (threads: Milvus Lite lets one process
    open its file), the same articles in opposite orders: each stored once."""
    import threading

    other = _data.reopen(tmp_path)
    results: dict[str, list[str]] = {"a": [], "b": []}
    order = {"a": list(range(8)), "b": list(reversed(range(8)))}

    def write(name: str, store: MilvusStore) -> None:
        for i in order[name]:
            put = store.put(new_article(f"Report {i}", _texts(i), url=f"https://a.test/{i}"))
            results[name].append(put.status)

    threads = [threading.Thread(target=write, args=(n, s))
               for n, s in (("a", milvus), ("b", other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results["a"] + results["b"]) == ["added"] * 8 + ["unchanged"] * 8
    for store in (milvus, other):
        assert sorted(a.title for a in store.articles_in()) == sorted(
            f"Report {i}" for i in range(8))
        assert store.count_passages() == 16 and store.check() == []


def test_a_writer_waits_for_a_dead_writer_s_lease_then_cleans_up_after_it(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store import _milvus_commit

    kept = milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    monkeypatch.setattr(_milvus_commit, "TTL", 1.0)  # the dead writer's ticket: 1 s

    def die(state: dict) -> None:
        raise Crash

    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(milvus, "_write_state", die)
        patch.setattr(milvus._lease, "_release", lambda: None)  # dies holding the lease
        milvus.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    again = _data.reopen(tmp_path)
    added = again.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    assert again._lease.waits > 0  # it waited for the ticket to expire
    assert added.status == "added" and again.check() == []
    assert again.article_ids() == [kept.article_id, added.article_id]


def test_a_writer_that_stalled_past_half_its_lease_writes_nothing(
        milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store import _milvus_commit, _milvus_put

    milvus.put(new_article("Strikes", BODY, url="https://a.test/1"))
    mark = milvus.change_mark()
    real = _milvus_put._insert

    def stall(*args: object, **kwargs: object) -> object:
        milvus._lease._since -= _milvus_commit.TTL  # as if paused for a whole TTL
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_milvus_put, "_insert", stall)
    with pytest.raises(StoreError, match="stalled"):
        milvus.put(new_article("Football", [FOOTBALL], url="https://a.test/2"))
    assert milvus.change_mark() == mark and milvus.find_article(url="https://a.test/2") is None


def test_what_a_milvus_server_can_do_by_its_version() -> None:
    from khabar.store._milvus_compat import has_bm25, vector_fields

    assert not has_bm25("v2.3.5-lite") and not has_bm25("v2.4.9") and has_bm25("v2.5.4")
    assert has_bm25("milvus_lite-3.2.2") and vector_fields("milvus_lite-3.2.2") is None
    assert vector_fields("v2.3.5-lite") == 1 and vector_fields("v2.4.0") is None


def test_the_newest_version_of_the_state_row_is_the_state() -> None:
    """Milvus 2.3 can return several versions of the upserted ``state`` row, in no set
    order (seen on the server: the first one read was the archive's very first state,
    and a reader answered nothing): the newest counts, and a process never goes back
    to an older state than it saw."""
    import json

    from khabar.store._milvus_ts import newest

    first = {"store": "s", "epoch": 1, "seq": 1, "generation": 0, "passage": 0}
    later = {"store": "s", "epoch": 1, "seq": 7, "generation": 5, "passage": 12}
    reindexed = {"store": "s", "epoch": 2, "seq": 8, "generation": 6, "passage": 12}
    rows = [json.dumps(s) for s in (first, later)]
    assert newest(rows, None) == later and newest(rows[::-1], None) == later
    assert newest([json.dumps(first)], later) == later  # an old version alone
    assert newest([json.dumps(reindexed)], later) == reindexed
    assert newest([json.dumps(first)], {**later, "store": "other"}) == first
    assert newest([], None) is None
