"""The database: its layout, opened without a write, transactions that bump the
generation when they change something, dates."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from khabar import StoreError
from khabar.store import Store
from khabar.store._schema import SCHEMA_VERSION, batches, iso, parse_iso, transaction
from tests.fakes import HashEncoder
from tests.store._data import BODY, new_article, open_store


def test_a_new_store_has_its_tables_and_meta_and_reopens(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.db_path == tmp_path / "khabar.sqlite3" and (tmp_path / "faiss").is_dir()
    assert store.meta("schema") == str(SCHEMA_VERSION) == "4"
    assert store._conn().execute("PRAGMA user_version").fetchone()[0] == 4
    tables = {r[0] for r in store._conn().execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "articles", "outlets", "article_outlets", "passages", "vectors",
                      "sentence_vectors", "removed_passages", "passage_tokens",
                      "sqlite_sequence"}
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn().execute("PRAGMA page_size").fetchone()[0] == 16384
    assert store._conn().execute("PRAGMA foreign_keys").fetchone()[0] == 1
    store.close()
    assert Store(tmp_path).meta("schema") == str(SCHEMA_VERSION)


def test_a_transaction_bumps_the_generation_only_when_it_commits(tmp_path: Path) -> None:
    store = Store(tmp_path)
    db, gen = store._conn(), store.generation()
    with transaction(db):
        db.execute("INSERT INTO meta(key, value) VALUES ('x', '1')")
    assert store.generation() == gen + 1 and store.meta("x") == "1"
    with pytest.raises(sqlite3.IntegrityError), transaction(db):
        db.execute("INSERT INTO meta(key, value) VALUES ('y', '1')")
        db.execute("INSERT INTO meta(key, value) VALUES ('x', '2')")  # key taken
    assert store.generation() == gen + 1 and store.meta("y") is None


def test_a_transaction_that_changes_nothing_leaves_the_generation(tmp_path: Path) -> None:
    store = Store(tmp_path)
    db, gen = store._conn(), store.generation()
    with transaction(db):
        db.execute("DELETE FROM articles WHERE id = 42")
        db.execute("SELECT count(*) FROM passages")
    assert store.generation() == gen


def test_opening_a_current_store_writes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("Strikes", BODY, url="https://x.test/a"))
    store.close()
    watcher = sqlite3.connect(tmp_path / "khabar.sqlite3")
    seen = watcher.execute("PRAGMA data_version").fetchone()[0]
    again = open_store(tmp_path)
    q = HashEncoder().embed_queries(["strikes"])[0]
    assert again.search("e5", "en", q, 1)
    again.close()
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == seen  # no commit


def test_a_store_of_a_newer_khabar_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "khabar.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=r"made by a newer khabar.*upgrade"):
        Store(tmp_path)


def test_something_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "khabar.sqlite3").write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(tmp_path)


def test_dates_are_stored_in_utc_and_read_back_aware() -> None:
    cairo = timezone(timedelta(hours=2))
    assert iso(datetime(2024, 3, 1, 14, tzinfo=cairo)) == "2024-03-01T12:00:00+00:00"
    assert iso(datetime(2024, 3, 1, 12)) == "2024-03-01T12:00:00+00:00"  # naive: UTC
    assert iso(None) is None and parse_iso(None) is None and parse_iso("") is None
    assert parse_iso("2024-03-01T12:00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert parse_iso("2024-03-01T14:00:00+02:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_batches_cut_a_list_in_slices() -> None:
    assert list(batches(list(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batches([], 500)) == []
