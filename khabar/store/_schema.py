"""The SQLite database under the store: its tables, its connections, its transactions.

Every other store module works on a connection opened here and writes inside
:func:`transaction`, which bumps the *generation* that tells FAISS indexes (and
any other process's readers) that SQLite changed. How values sit in columns
(UTC ISO 8601 dates, float16 sentence matrices) is decided here too.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    url TEXT UNIQUE,
    content_hash TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    author TEXT,
    published TEXT,            -- ISO 8601 in UTC, from the date the source states
    ingested TEXT NOT NULL,    -- when khabar stored it; never shown as publication date
    lang TEXT,
    section TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    source TEXT,
    site_name TEXT,
    origin TEXT,               -- who brought it: e.g. "chat:-100123" for a Telegram chat
    n_passages INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE INDEX IF NOT EXISTS articles_origin ON articles(origin);
CREATE TABLE IF NOT EXISTS outlets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS article_outlets (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    outlet_id INTEGER NOT NULL REFERENCES outlets(id),
    PRIMARY KEY (article_id, outlet_id)
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    norm TEXT NOT NULL,
    lang TEXT NOT NULL,
    dup_of INTEGER REFERENCES passages(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS passages_article ON passages(article_id);
CREATE INDEX IF NOT EXISTS passages_dup ON passages(dup_of);
CREATE TABLE IF NOT EXISTS vectors (
    passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (passage_id, space)
);
-- One row per passage and space: the vectors of its passage_sentences(), as a
-- float16 matrix (half the bytes; cosines move by < 1e-3).
CREATE TABLE IF NOT EXISTS sentence_vectors (
    passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vecs BLOB NOT NULL,
    PRIMARY KEY (passage_id, space)
);
"""

SCHEMA_VERSION = "1"
DB_NAME = "khabar.sqlite3"


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with foreign keys on, rows addressable by name.

    Autocommit (``isolation_level=None``): writes go through :func:`transaction`.
    """
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


def create(db: sqlite3.Connection) -> None:
    """Create the tables that are missing and the meta rows a new store starts with."""
    db.executescript(SCHEMA)  # DDL is idempotent; executescript commits
    with transaction(db):
        db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?), ('generation', '0')",
            (SCHEMA_VERSION,),
        )


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; bumps the generation so readers reload."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                   "WHERE key = 'generation'")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def generation(db: sqlite3.Connection) -> int:
    """The count of write transactions so far: what FAISS files are stamped with."""
    return int(meta(db, "generation") or 0)


# -- column values --------------------------------------------------------------------
def iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601: stored dates compare correctly as strings in SQL."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    """Stored dates; a naive one (written by an old version) is taken as UTC."""
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def f16(matrix: np.ndarray) -> bytes:
    """A sentence-vector matrix as stored: float16 bytes."""
    return np.ascontiguousarray(matrix, dtype=np.float16).tobytes()


def batches(items: list, size: int) -> Iterator[list]:
    """``items`` in slices of ``size``: SQLite caps the ``?`` of one statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
