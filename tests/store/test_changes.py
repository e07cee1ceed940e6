"""The change log: marks, what changed since one, across stores and processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from khabar.store import ArchiveStore, ChangeMark, _changes
from tests.fakes import HashEncoder
from tests.store._data import (
    BODY,
    EXTRA,
    FOOTBALL,
    THIRD,
    forge_vectors,
    new_article,
    open_store,
    reopen,
)

REPO = Path(__file__).resolve().parents[2]


def _ids(store: ArchiveStore, article_id: int) -> list[int]:
    return [p.id for p in store.article_passages([article_id])]


def test_a_first_read_is_a_reset_with_every_passage(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    empty = store.changes_since(None)
    assert (empty.added, empty.removed, empty.reset) == ([], [], True)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    first = store.changes_since(None)
    assert first.reset and first.removed == []
    assert [(lang, text) for _, lang, text in first.added] == [("en", BODY[0]), ("en", BODY[1])]
    assert first.mark == store.change_mark()
    again = store.changes_since(first.mark)
    assert (again.added, again.removed, again.reset, again.mark) == ([], [], False, first.mark)
    assert not again


def test_another_store_on_the_path_gets_exactly_what_changed(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    reader = reopen(tmp_path)  # as another process would
    a = writer.put(new_article("Strikes", BODY, url="https://x.test/a"))
    b = writer.put(new_article("Football", [FOOTBALL], url="https://x.test/b"))
    mark = reader.changes_since(None).mark
    old_a, old_b = _ids(writer, a.article_id), _ids(writer, b.article_id)

    replaced = writer.put(new_article("Strikes", [*BODY, THIRD], url="https://x.test/a"))
    c = writer.put(new_article("Extra", [EXTRA], url="https://x.test/c"))
    gone = writer.put(new_article("Gone", ["Words of an article deleted at once, never seen."],
                                  url="https://x.test/d"))
    writer.delete_articles([b.article_id, gone.article_id])

    changes = reader.changes_since(mark)
    assert not changes.reset
    new_a, new_c = _ids(writer, replaced.article_id), _ids(writer, c.article_id)
    assert [pid for pid, _, _ in changes.added] == [*new_a, *new_c]
    assert [text for _, _, text in changes.added] == [*BODY, THIRD, EXTRA]
    # The passages of "Gone" came and went after the mark: in neither list.
    assert changes.removed == [*old_a, *old_b]
    assert changes.mark == writer.change_mark() == reader.change_mark()
    held = {pid for pid, _, _ in reader.changes_since(None).added}
    assert held == (set(old_a) | set(old_b)) - set(changes.removed) | set(new_a) | set(new_c)


def test_writes_that_change_nothing_move_no_mark_and_no_generation(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    mark, gen = store.change_mark(), store.generation()
    assert store.put(new_article("Strikes", BODY, url="https://x.test/a")).status == "unchanged"
    assert store.put(new_article("Strikes", BODY, url="https://y.test/b")).status == "duplicate"
    assert store.delete_articles([12345]) == 0
    store.bind_spaces(list(store.spaces().values()))
    reopen(tmp_path)  # opening it again
    assert (store.change_mark(), store.generation()) == (mark, gen)


def test_a_reindex_or_a_compacted_log_or_another_store_is_a_reset(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    mark = store.change_mark()
    vecs = store.vectors("e5", [pid for pid, _, _ in store.changes_since(None).added])
    forge_vectors(store, "e5", list(vecs.items()))
    assert store.change_mark().epoch == mark.epoch + 1
    assert store.changes_since(mark).reset

    mark = store.change_mark()
    first = store.put(new_article("Football", [FOOTBALL], url="https://x.test/b"))
    store.delete_articles([first.article_id])
    later = store.change_mark()
    assert store.changes_since(mark).removed == []  # added and removed since: nothing
    store.put(new_article("Extra", [EXTRA], url="https://x.test/c"))
    assert store.compact_changes(later) == 1
    assert store.changes_since(mark).reset  # its part of the log is gone
    assert not store.changes_since(later).reset  # this one needs none of it
    assert [t for _, _, t in store.changes_since(later).added] == [EXTRA]

    other = open_store(tmp_path / "other")
    other.put(new_article("Strikes", BODY, url="https://x.test/a"))
    assert other.changes_since(store.change_mark()).reset
    ahead = ChangeMark(mark.store, mark.epoch, mark.passage + 100, mark.removed)
    assert store.changes_since(ahead).reset  # a store restored from a backup


_WRITER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from khabar.store import Store
from tests.store._data import BODY, THIRD, new_article
store = Store(Path({path!r}))
store.put(new_article("Strikes", [*BODY, THIRD], url="https://x.test/a"))  # a new version
store.put(new_article("Late", ["A late article from the other process, about the harbour."],
                      url="https://x.test/late"))
store.delete_articles(store.article_ids(url="https://x.test/b"))
store.close()
"""


def test_another_process_s_writes_reach_a_reader_as_a_delta(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.store._vectors import VectorIndexes

    store = open_store(tmp_path)
    a = store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    b = store.put(new_article("Football", [FOOTBALL], url="https://x.test/b"))
    q = HashEncoder().embed_queries(["harbour late article"])[0]
    store.search("e5", "en", q, 5)
    mark, before = store.change_mark(), {*_ids(store, a.article_id), *_ids(store, b.article_id)}

    subprocess.run([sys.executable, "-c", _WRITER.format(repo=str(REPO), path=str(tmp_path))],
                   check=True, timeout=120)

    changes = store.changes_since(mark)
    assert not changes.reset and sorted(changes.removed) == sorted(before)
    assert [t for _, _, t in changes.added] == [*BODY, THIRD,
                                               "A late article from the other process, "
                                               "about the harbour."]

    def rebuild(self: VectorIndexes, db: object) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(VectorIndexes, "_rebuild", rebuild)
    top = store.search("e5", "en", q, 10)
    assert {pid for pid, _ in top} == {pid for pid, _, _ in changes.added}
    assert store._faiss.mark == changes.mark and store.check([]) == []


def test_changes_carry_the_stored_tokens_and_words(tmp_path: Path) -> None:
    from khabar.text import content_words, lexical_tokens

    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    mark = store.change_mark()
    store.put(new_article("Extra", [EXTRA], url="https://x.test/c"))
    tokens = store.changes_since(mark, content="tokens")
    assert [t for _, _, t in tokens.added] == [" ".join(lexical_tokens(EXTRA))]
    words = store.changes_since(None, content="words")
    assert words.reset and [w.split() for _, _, w in words.added] == [
        content_words(t) for t in [*BODY, EXTRA]]
    assert store.check([]) == []


def test_a_passage_without_its_stored_analysis_is_analysed_on_the_way_out(
        tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    mark = store.change_mark()
    store.put(new_article("Extra", [EXTRA], url="https://x.test/c"))
    tokens = store.changes_since(mark, content="tokens")
    db = store._conn()
    pid = tokens.added[0][0]
    db.execute("DELETE FROM passage_tokens WHERE passage_id = ?", (pid,))
    assert store.changes_since(mark, content="tokens").added == tokens.added
    assert store.check([]) == ["1 passage(s) have no lexical tokens (lexical search "
                               "analyses their text whenever it reads them)"]


def test_the_end_of_a_batch_keeps_the_removal_log_to_its_newest_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_changes, "KEEP_REMOVED", 2)
    store = open_store(tmp_path)
    start = store.change_mark()
    ids = [store.put(new_article(f"A{i}", [f"{FOOTBALL} {i}"], url=f"https://x.test/{i}")
                     ).article_id for i in range(5)]
    store.delete_articles(ids[:3])
    store.flush()  # 3 rows: not over 1.5 × 2 yet
    assert store._conn().execute("SELECT count(*) FROM removed_passages").fetchone()[0] == 3
    recent = store.change_mark()
    store.delete_articles(ids[3:])
    store.flush()  # 5 rows: the newest 2 kept
    assert [r[0] for r in store._conn().execute("SELECT seq FROM removed_passages")] == [4, 5]
    assert store.changes_since(start).reset  # too far behind: starts again
    kept = store.changes_since(recent)
    assert not kept.reset and len(kept.removed) == 2
    assert store.check([]) == []
