"""Stores of older layouts migrated: layout 1 (as khabar wrote it before layouts were
versioned) and layout 2 (before passages kept their lexical tokens).

``fixtures/v1.sql`` is the dump of a store written by khabar's own store code of
layout 1 (see its header): six articles put, one replaced, one deleted, one passage
linked as a near-duplicate, with passage and sentence vectors of the hash encoder.
``fixtures/v2.sql`` is one of layout 2: English and Arabic articles, one replaced and
one deleted (so its removal log has rows).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from khabar.store import Store, _schema
from khabar.store._changes import current_mark
from khabar.text import content_words, lexical_tokens
from tests.fakes import HashEncoder
from tests.store._data import BODY, EXTRA, HASH_SPACE, new_article

FIXTURE = Path(__file__).parent / "fixtures" / "v1.sql"
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "v2.sql"
TABLES = ("meta", "articles", "outlets", "article_outlets", "passages", "vectors",
          "sentence_vectors")


def v1_store(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path / _schema.DB_NAME)
    db.executescript(FIXTURE.read_text())
    db.close()
    return path


def v2_store(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path / _schema.DB_NAME)
    db.executescript(FIXTURE_V2.read_text())
    db.execute("PRAGMA user_version = 2")  # iterdump leaves it out
    db.close()
    return path


def analysed(path: Path) -> dict[int, tuple[str, str]]:
    """passage id -> (tokens, words) as ``passage_tokens`` holds them."""
    db = sqlite3.connect(path / _schema.DB_NAME)
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute(
            "SELECT passage_id, tokens, words FROM passage_tokens ORDER BY 1")}
    finally:
        db.close()


def expected_analysis(path: Path) -> dict[int, tuple[str, str]]:
    db = sqlite3.connect(path / _schema.DB_NAME)
    try:
        return {pid: (" ".join(lexical_tokens(text)), " ".join(content_words(text)))
                for pid, text in db.execute("SELECT id, text FROM passages ORDER BY id")}
    finally:
        db.close()


def rows(path: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path / _schema.DB_NAME)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        db.close()


def test_a_layout_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = v1_store(tmp_path / "store")
    before = rows(path)
    assert [r[0] for r in before["passages"]] == [3, 4, 5, 7, 8, 9, 10]
    store = Store(path)
    db = store._conn()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3 and store.meta("schema") == "3"
    after = rows(path)
    meta = dict(after.pop("meta"))
    assert {k: meta[k] for k in ("schema", "generation", "spaces")} == {
        **dict(before.pop("meta")), "schema": "3"}
    assert after == before  # every row as it was, ids and links included
    assert "AUTOINCREMENT" in db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'passages'").fetchone()[0]
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.check([HASH_SPACE]) == []
    assert store.duplicate_groups([10]) == {10: [10, 8]}
    assert analysed(path) == expected_analysis(path) and len(analysed(path)) == 7
    q = HashEncoder().embed_queries([BODY[1]])[0]
    assert {pid for pid, _ in store.search("e5", "en", q, 2)} == {8, 10}

    # From now on ids go on from the highest and are never reused, and removals are
    # logged.
    mark = store.change_mark()
    store.delete_articles([6])  # the newest article: passage 10
    assert store.changes_since(mark).removed == [10]
    extra = new_article("Extra", [EXTRA], url="https://x.test/extra")
    extra.sentence_vectors = {"e5": [HashEncoder().embed_passages([EXTRA])]}
    again = store.put(extra)
    assert again.article_id == 7 and store.article_passages([7])[0].id == 11
    assert store.check([HASH_SPACE]) == []


def test_a_failed_migration_leaves_the_store_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = v1_store(tmp_path / "store")
    before = rows(path)

    def half_done(db: sqlite3.Connection) -> None:
        _schema._to_v2(db)
        raise OSError("disk full")

    monkeypatch.setattr(_schema, "MIGRATIONS", [(1, _schema._to_v1), (2, half_done)])
    with pytest.raises(OSError, match="disk full"):
        Store(path)
    assert rows(path) == before
    db = sqlite3.connect(path / _schema.DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'removed_passages'"
                          ).fetchone()
    db.close()
    monkeypatch.undo()
    assert Store(path).check([HASH_SPACE]) == []


def test_two_stores_opening_a_layout_1_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = v1_store(tmp_path / "store")
    first, second = Store(path), Store(path)
    assert first.change_mark() == second.change_mark()
    assert second.meta("schema") == "3" and first.check([]) == []


def test_a_layout_2_store_gets_its_passages_lexical_tokens(tmp_path: Path) -> None:
    path = v2_store(tmp_path / "store")
    before = rows(path)
    assert [r[0] for r in before["passages"]] == [3, 4, 5, 6, 8, 9]
    raw = sqlite3.connect(path / _schema.DB_NAME)
    old_mark = current_mark(raw)  # where a reader of the layout 2 store stood
    raw.close()
    store = Store(path)
    db = store._conn()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3 and store.meta("schema") == "3"
    after = rows(path)
    meta = dict(after.pop("meta"))
    old_meta = dict(before.pop("meta"))
    assert meta == {**old_meta, "schema": "3"}  # store id, epoch, generation kept
    assert after == before  # every row as it was
    got = analysed(path)
    assert got == expected_analysis(path) and set(got) == {3, 4, 5, 6, 8, 9}
    assert got[8][0].split() == lexical_tokens(before["passages"][4][3])
    assert "حلب" in got[8][1].split()  # content words as written
    assert store.check([HASH_SPACE]) == []

    # The change log goes on: a reader's mark from before the migration is still good
    # (no reset), and what it gets carries the stored tokens.
    assert store.change_mark() == old_mark
    extra = new_article("Extra", [EXTRA], url="https://x.test/extra")
    store.put(extra)
    store.delete_articles([2])  # Football: passage 3
    reader = Store(path)
    changes = reader.changes_since(old_mark, content="tokens")
    assert not changes.reset and changes.removed == [3]
    assert changes.added == [(10, "en", " ".join(lexical_tokens(EXTRA)))]
    assert reader.changes_since(old_mark, content="words").added == [
        (10, "en", " ".join(content_words(EXTRA)))]
    assert analysed(path)[10] == expected_analysis(path)[10]
    assert 3 not in analysed(path)  # gone with its passage


def test_a_failed_layout_3_migration_leaves_the_layout_2_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = v2_store(tmp_path / "store")
    before = rows(path)

    def half_done(db: sqlite3.Connection) -> None:
        _schema._to_v3(db)
        raise OSError("disk full")

    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS[:2], (3, half_done)])
    with pytest.raises(OSError, match="disk full"):
        Store(path)
    assert rows(path) == before
    db = sqlite3.connect(path / _schema.DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'passage_tokens'"
                          ).fetchone()
    db.close()
    monkeypatch.undo()
    assert Store(path).check([HASH_SPACE]) == []
