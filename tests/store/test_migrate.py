"""Stores of older layouts migrated: layout 1 (as khabar wrote it before layouts were
versioned), layout 2 (before passages kept their lexical tokens) and layout 3 (float32
passage vectors and float16 sentence vectors, before layout 4 made them a third of the
size).

``fixtures/v1.sql`` is the dump of a store written by khabar's own store code of
layout 1 (see its header): six articles put, one replaced, one deleted, one passage
linked as a near-duplicate, with passage and sentence vectors of the hash encoder.
``fixtures/v2.sql`` is one of layout 2: English and Arabic articles, one replaced and
one deleted (so its removal log has rows). ``fixtures/v3.sql`` is one of layout 3 (see
its header), with two vector spaces and passages of one and of several sentences.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from khabar.store import SpaceInfo, Store, _schema
from khabar.store._changes import current_mark
from khabar.text import content_words, lexical_tokens
from tests.fakes import HashEncoder
from tests.store._data import BODY, EXTRA, HASH_SPACE, new_article

FIXTURE = Path(__file__).parent / "fixtures" / "v1.sql"
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "v2.sql"
FIXTURE_V3 = Path(__file__).parent / "fixtures" / "v3.sql"
TABLES = ("meta", "articles", "outlets", "article_outlets", "passages", "vectors",
          "sentence_vectors")


def v1_store(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path / _schema.DB_NAME)
    db.executescript(FIXTURE.read_text())
    db.close()
    return path


def dumped_store(path: Path, fixture: Path, version: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path / _schema.DB_NAME)
    db.executescript(fixture.read_text())
    db.execute(f"PRAGMA user_version = {version}")  # iterdump leaves it out
    db.close()
    return path


def v2_store(path: Path) -> Path:
    return dumped_store(path, FIXTURE_V2, 2)


def v3_store(path: Path) -> Path:
    return dumped_store(path, FIXTURE_V3, 3)


def as_layout_4(before: dict[str, list[tuple]], dims: dict[str, int]) -> dict[str, list[tuple]]:
    """The rows of a layout 1-3 store as layout 4 holds them: passages without ``norm``,
    passage vectors float16, sentence vectors int8 (empty for a passage of one sentence
    whose sentence vector is its passage vector)."""
    whole = {(pid, space): np.frombuffer(vec, np.float32) for pid, space, vec in before["vectors"]}
    return {
        **before,
        "passages": [r[:4] + r[5:] for r in before["passages"]],
        "vectors": [(pid, space, _schema.f16(v)) for (pid, space), v in whole.items()],
        "sentence_vectors": [(pid, space, _schema.sentence_blob(
            np.frombuffer(m, np.float16).astype(np.float32).reshape(-1, dims[space]),
            _schema.from_f16(_schema.f16(whole[pid, space])) if (pid, space) in whole else None))
            for pid, space, m in before["sentence_vectors"]],
    }


def assert_close_to(store: Store, before: dict[str, list[tuple]], dims: dict[str, int]) -> None:
    """The migrated store's vectors, as read, are within float16's and int8's rounding of
    the old ones."""
    for pid, space, vec in before["vectors"]:
        got = store.vectors(space, [pid])[pid]
        assert np.allclose(got, np.frombuffer(vec, np.float32), atol=1e-3)
    for pid, space, m in before["sentence_vectors"]:
        old = np.frombuffer(m, np.float16).astype(np.float32).reshape(-1, dims[space])
        got = store.sentence_vectors(space, [pid])[pid]
        cos = (got * old).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(old, axis=1)
        assert got.shape == old.shape and (cos > 0.999).all()


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
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4 and store.meta("schema") == "4"
    after = rows(path)
    meta = dict(after.pop("meta"))
    assert {k: meta[k] for k in ("schema", "generation", "spaces")} == {
        **dict(before.pop("meta")), "schema": "4"}
    dims = {"e5": HASH_SPACE.dim}
    assert after == as_layout_4(before, dims)  # every row as it was, ids and links included
    assert_close_to(store, before, dims)
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
    assert second.meta("schema") == "4" and first.check([]) == []


def test_a_layout_2_store_gets_its_passages_lexical_tokens(tmp_path: Path) -> None:
    path = v2_store(tmp_path / "store")
    before = rows(path)
    assert [r[0] for r in before["passages"]] == [3, 4, 5, 6, 8, 9]
    raw = sqlite3.connect(path / _schema.DB_NAME)
    old_mark = current_mark(raw)  # where a reader of the layout 2 store stood
    raw.close()
    store = Store(path)
    db = store._conn()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4 and store.meta("schema") == "4"
    after = rows(path)
    meta = dict(after.pop("meta"))
    old_meta = dict(before.pop("meta"))
    assert meta == {**old_meta, "schema": "4"}  # store id, epoch, generation kept
    assert after == as_layout_4(before, {"e5": HASH_SPACE.dim})  # every row as it was
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


def test_a_layout_3_store_takes_a_third_of_the_bytes_and_readers_go_on(tmp_path: Path) -> None:
    path = v3_store(tmp_path / "store")
    before = rows(path)
    assert [r[0] for r in before["passages"]] == [2, 3, 5]
    tokens_before = analysed(path)
    raw = sqlite3.connect(path / _schema.DB_NAME)
    old_mark = current_mark(raw)  # where a reader of the layout 3 store stood
    raw.close()
    use = HashEncoder("use", 48, "hash2")
    spaces = [HASH_SPACE, SpaceInfo("use", use.fingerprint, use.dim)]
    store = Store(path)
    db = store._conn()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4 and store.meta("schema") == "4"
    after = rows(path)
    meta = dict(after.pop("meta"))
    assert meta == {**dict(before.pop("meta")), "schema": "4"}  # id, epoch, generation kept
    dims = {"e5": 64, "use": 48}
    assert after == as_layout_4(before, dims)
    assert_close_to(store, before, dims)
    assert analysed(path) == tokens_before
    assert "norm" not in {r[1] for r in db.execute("PRAGMA table_info(passages)")}
    # Vacuumed into larger pages (the fixture has SQLite's default, 4096), WAL again.
    assert db.execute("PRAGMA page_size").fetchone()[0] == _schema.PAGE_SIZE
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    sizes = {(pid, space): n for pid, space, n in db.execute(
        "SELECT passage_id, space, length(vecs) FROM sentence_vectors")}
    assert sizes[2, "e5"] == sizes[2, "use"] == 0  # one sentence: its passage vector
    assert sizes[5, "e5"] == 3 * (64 + 4) and sizes[5, "use"] == 3 * (48 + 4)
    assert [tuple(r) for r in db.execute(
        "SELECT DISTINCT length(vec) FROM vectors WHERE space = 'e5'")] == [(128,)]
    assert store.check(spaces) == []

    # Readers go on from their mark: no reset, only the delta; the FAISS files the old
    # layout saved (float32) are taken and turned to float16 in memory, not rebuilt.
    assert store.change_mark() == old_mark
    extra = new_article("Extra", [EXTRA], url="https://x.test/extra")
    extra.vectors["use"] = use.embed_passages([EXTRA])
    extra.sentence_vectors = {"e5": [HashEncoder().embed_passages([EXTRA])],
                              "use": [use.embed_passages([EXTRA])]}
    store.put(extra)
    changes = Store(path).changes_since(old_mark, content="tokens")
    assert not changes.reset and [a[0] for a in changes.added] == [6]
    q = HashEncoder().embed_queries([EXTRA])[0]
    assert store.search("e5", "en", q, 1)[0][0] == 6
    assert store.check(spaces) == []


def test_float32_faiss_files_of_layout_3_are_read_and_saved_as_float16(tmp_path: Path) -> None:
    path = tmp_path / "store"
    old = Store(path)
    old.bind_spaces([HASH_SPACE])
    old.put(new_article("Strikes", BODY, url="https://x.test/a"))
    index = old._faiss.by_space["e5"]
    ids, vecs = index.live_vectors("en")
    # What layout 3 saved: float32 flat indexes.
    index.by_lang["en"] = faiss.IndexIDMap2(faiss.IndexFlatIP(HASH_SPACE.dim))
    index.by_lang["en"].add_with_ids(vecs, ids)
    old._faiss.dirty, old._faiss.saved = True, None
    old.close()
    state_path = path / "faiss" / "state.json"
    state = json.loads(state_path.read_text())
    del state["spaces"]["e5"]["storage"]  # as layout 3 wrote it
    state_path.write_text(json.dumps(state))
    again = Store(path)
    q = HashEncoder().embed_queries([BODY[1]])[0]
    assert again.search("e5", "en", q, 1)[0][0] == ids[1]
    assert again._faiss.rebuilds == 0 and again._faiss.by_space["e5"].float16()
    again.close()
    third = Store(path)
    third.refresh()
    assert third._faiss.by_space["e5"].float16() and not third._faiss.dirty
