"""``check()`` on Milvus while another writer commits during its scans
(khabar/store/_milvus_check.py): no fault of two states mixed, and a real fault still
reported. Milvus Lite lets one process open its file: the other writer is another
client of it, in this process, as in tests/store/test_milvus.py."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khabar.store import MilvusStore, _milvus_summary
from tests.store import _data
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD, new_article


def _during_scans(monkeypatch: pytest.MonkeyPatch, write: Callable[[int], None],
                  times: int) -> list[int]:
    """``write(i)`` runs inside the next ``times`` scans of the articles, after their
    first batch (as another writer's commit lands while ``check`` reads)."""
    real = _milvus_summary.scan
    done: list[int] = []

    def scan(store: MilvusStore, what: str, *args: Any) -> Iterator[list[dict[str, Any]]]:
        for i, rows in enumerate(real(store, what, *args)):
            yield rows
            if i == 0 and what == "articles" and len(done) < times:
                done.append(len(done))
                write(done[-1])

    monkeypatch.setattr(_milvus_summary, "scan", scan)
    return done


def _stored(store: MilvusStore) -> list[int]:
    ids = []
    for i, body in enumerate([BODY, [FOOTBALL], [THIRD], [EXTRA]]):
        ids.append(store.put(new_article(f"Story {i}", body,
                                         url=f"https://k.test/{i}")).article_id)
    return ids


@pytest.mark.parametrize("write", ["put", "delete", "share"])
def test_a_commit_during_check_s_scans_is_no_fault(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch,
        write: str) -> None:
    ids = _stored(milvus)
    private = new_article("Private", ["Only one chat keeps this paragraph."],
                          url="https://k.test/p")
    private.origin = "chat:42"
    kept = milvus.put(private).article_id
    assert milvus.check() == []
    checker = _data.reopen(tmp_path)  # no summary in memory: it reads the state's rows
    assert isinstance(checker, MilvusStore)

    def commit(i: int) -> None:
        if write == "put":
            milvus.put(new_article(f"New {i}", [f"A new story number {i} on the port."],
                                   url=f"https://k.test/new{i}"))
        elif write == "delete":
            milvus.delete_articles([ids[i]])
        else:
            milvus.share(kept, "chat:42", None)

    done = _during_scans(monkeypatch, commit, 1)
    assert checker.check() == []  # before: the summary's rows missing, new passages
    assert done == [0]  # "uncommitted", counts of two states


@pytest.mark.parametrize("write", ["put", "delete"])
def test_check_reports_a_wrong_summary_while_another_writer_commits_all_along(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch,
        write: str) -> None:
    ids = _stored(milvus)
    with milvus._writing():  # a summary that says otherwise than the articles
        st = milvus._state()
        wrong = _milvus_summary.Summary.from_json(_milvus_summary.current(milvus).as_json())
        wrong.outlets["Reuters"] += 5
        _milvus_summary._write(milvus, st, wrong)
        milvus._write_state(st)
    checker = _data.reopen(tmp_path)
    assert isinstance(checker, MilvusStore)

    def commit(i: int) -> None:  # at every scan but the one under the lease
        if write == "put":
            milvus.put(new_article(f"New {i}", [f"A new story number {i} on the port."],
                                   url=f"https://k.test/new{i}"))
        else:
            milvus.delete_articles([ids[i]])

    done = _during_scans(monkeypatch, commit, 2)
    assert checker.check() == ["the articles' summary is wrong: its outlets differ from "
                               "the articles'"]
    # Puts: the second lands while the summary is compared at the first's state, which
    # is compared again at the second's. Deletes: two runs, then one under the lease.
    assert done == [0, 1]


@pytest.mark.parametrize("write", ["put", "delete"])
def test_a_write_under_way_during_check_is_no_fault(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch,
        write: str) -> None:
    """Another writer midway in its turn while ``check`` runs without the lease: a put's
    rows written above the commit, or a delete committed whose rows are not yet gone.
    Neither is a fault of any state: the check waits for the lease (the writer ends
    its turn) rather than report "uncommitted passages" or counts of a half-done
    delete."""
    ids = _stored(milvus)
    checker = _data.reopen(tmp_path)
    assert isinstance(checker, MilvusStore)
    midway, go = threading.Event(), threading.Event()
    step = "_write_state" if write == "put" else "_finish_removals"
    real = getattr(milvus, step)

    def paused(st: dict[str, Any]) -> None:
        if not midway.is_set() and (write == "put" or st["removed_done"] != st["removed"]):
            midway.set()
            assert go.wait(60)
        real(st)

    monkeypatch.setattr(milvus, step, paused)
    writer = threading.Thread(target=lambda: milvus.put(new_article(
        "New", ["A new story on the port."], url="https://k.test/new"))
        if write == "put" else milvus.delete_articles([ids[0]]))
    writer.start()
    assert midway.wait(60)
    took = checker._writing

    @contextlib.contextmanager
    def writing() -> Iterator[None]:  # the check's run under the lease: the writer ends
        go.set()
        with took():
            yield

    monkeypatch.setattr(checker, "_writing", writing)
    try:
        assert checker.check() == []  # before: "1 uncommitted passage(s)"; the counts
    finally:
        go.set()
        writer.join(60)
