"""A question's state on Milvus is its own (khabar/store/_milvus.py, ``_QUESTION``): the
commit its ``generation()`` read, for all its reads, whatever other questions of the
same process read meanwhile; the bot's search pool gives each question its own context.
Milvus Lite lets one process open its file: the other writer is another client."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from khabar.store import MilvusStore
from tests.fakes import HashEncoder
from tests.store import _data
from tests.store._data import BODY, FOOTBALL, THIRD, new_article


def _seen(store: MilvusStore, ids: list[int]) -> tuple[list[int], list[int]]:
    """What a read of the question sees of these passages: by id, and as changes."""
    added = [pid for pid, *_ in store.changes_since(None).added]
    return sorted(store.passages(ids)), sorted(p for p in added if p in ids)


def _two_stores(tmp_path: Path, milvus: MilvusStore) -> tuple[MilvusStore, list[int]]:
    """A reader (another client) of a store with one article; its passage ids."""
    first = milvus.put(new_article("Strikes", BODY, url="https://q.test/1"))
    reader = _data.reopen(tmp_path)
    assert isinstance(reader, MilvusStore)
    return reader, [p.id for p in milvus.article_passages([first.article_id])]


def test_two_questions_in_one_process_read_their_own_states(
        tmp_path: Path, milvus: MilvusStore) -> None:
    reader, old = _two_stores(tmp_path, milvus)
    early, late = contextvars.copy_context(), contextvars.copy_context()
    g1 = early.run(reader.generation)
    new = milvus.put(new_article("Football", [FOOTBALL, THIRD], url="https://q.test/2"))
    fresh = [p.id for p in milvus.article_passages([new.article_id])]
    g2 = late.run(reader.generation)
    assert g2 == g1 + 1
    # Interleaved: the earlier question still reads its commit, the later one its own.
    assert early.run(_seen, reader, old + fresh) == (old, old)
    assert late.run(_seen, reader, old + fresh) == (old + fresh, old + fresh)
    assert early.run(reader.language_counts) == {"en": 2}
    assert late.run(reader.language_counts) == {"en": 4}
    query = HashEncoder().embed_queries([FOOTBALL])
    assert {pid for pid, _ in early.run(reader.search_many, "e5", "en", query, 5)[0]} \
        <= set(old)
    assert set(fresh) <= {pid for pid, _ in late.run(reader.search_many, "e5", "en", query,
                                                     5)[0]}


def test_a_question_never_sees_a_commit_made_midway(
        tmp_path: Path, milvus: MilvusStore) -> None:
    reader, old = _two_stores(tmp_path, milvus)
    reader.generation()  # this thread's question starts
    new = milvus.put(new_article("Football", [FOOTBALL], url="https://q.test/2"))
    fresh = [p.id for p in milvus.article_passages([new.article_id])]
    other: list[tuple[list[int], list[int]]] = []

    def another_question() -> None:  # a thread of the same process, after the commit
        reader.generation()
        other.append(_seen(reader, old + fresh))

    thread = threading.Thread(target=another_question)
    thread.start()
    thread.join()
    assert other == [(old + fresh, old + fresh)]
    assert _seen(reader, old + fresh) == (old, old)  # midway: still its own commit
    reader.generation()  # the next question: the new article
    assert _seen(reader, old + fresh) == (old + fresh, old + fresh)
    # A write in a question's context ends it: what it reads next is the write.
    put = reader.put(new_article("Third", [THIRD], url="https://q.test/3"))
    assert [p.id for p in reader.article_passages([put.article_id])]


def test_the_bot_s_search_pool_gives_each_question_its_own_context(
        tmp_path: Path, milvus: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    services = pytest.importorskip("khabar.bot._services")
    reader, old = _two_stores(tmp_path, milvus)
    # One thread: the second search runs where the first ran.
    monkeypatch.setattr(services, "_SEARCHES", ThreadPoolExecutor(max_workers=1))

    async def run() -> None:
        await services.searched(reader.generation)  # a question, in the pool's thread
        new = milvus.put(new_article("Football", [FOOTBALL], url="https://q.test/2"))
        fresh = [p.id for p in milvus.article_passages([new.article_id])]
        # A read outside any question, on the same pool thread: the newest commit.
        seen = await services.searched(_seen, reader, old + fresh)
        assert seen == (old + fresh, old + fresh)  # without the copied context: old

    asyncio.run(run())


def test_an_earlier_question_does_not_rebuild_the_process_s_lexical_index(
        tmp_path: Path, milvus: MilvusStore) -> None:
    """Retrieval's own BM25 (and the lexical bridge) are one per process and follow
    ``changes_since``: a question begun before a commit, refreshing after a later
    question moved the index past its state, must not read the index's mark as a
    reset (a rebuild from every passage, and the index back at the older commit)."""
    from khabar.retrieval._lexical import LexicalIndex

    reader, _ = _two_stores(tmp_path, milvus)
    lexical = LexicalIndex(reader, tmp_path / "lexical")
    early, late = contextvars.copy_context(), contextvars.copy_context()
    early.run(reader.generation)
    early.run(lexical.refresh)
    built = lexical.rebuilds
    new = milvus.put(new_article("Football", [FOOTBALL, THIRD], url="https://q.test/2"))
    late.run(reader.generation)
    late.run(lexical.refresh)  # the index at the new commit, incrementally
    ahead = lexical.mark
    assert lexical.rebuilds == built and ahead is not None
    early.run(lexical.refresh)  # the earlier question, still at its commit
    assert lexical.rebuilds == built  # before: a rebuild from every passage
    assert lexical.mark == ahead  # never back to an older commit
    football = milvus.article_passages([new.article_id])[0].id
    assert football in {pid for pid, _ in late.run(lexical.search, "en", "football", 5)}
