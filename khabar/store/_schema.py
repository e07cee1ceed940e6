"""The SQLite database under the store: its tables, their migrations, connections, transactions.

The layout is versioned with ``PRAGMA user_version`` and reached by ordered
migrations (:data:`MIGRATIONS`): a store of an older layout is migrated in place
when it is opened, in one transaction, and one made by a newer khabar is refused.
Opening a store whose layout is current writes nothing.

Every other store module works on a connection opened here and writes inside
:func:`transaction`, which bumps the *generation* when (and only when) it wrote
something. How values sit in columns (UTC ISO 8601 dates, float16 sentence
matrices) is decided here too: passage vectors as float16, sentence vectors as int8 with a
scale per sentence (layout 4, see :data:`SCHEMA_V4`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from khabar._errors import StoreError
from khabar.text import content_words, lexical_tokens

log = logging.getLogger(__name__)

# Layout 1, as khabar wrote it before layouts were versioned (it set meta('schema')
# to '1' and left user_version at 0). Frozen: it is the first migration.
SCHEMA_V1 = """
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
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1'), ('generation', '0');
"""

# Layout 2: ids that are never reused (AUTOINCREMENT: SQLite would otherwise hand
# the ids of the newest rows out again once they are deleted), and a log of the
# passages removed, filled by a trigger in the deleting transaction, so a reader
# can apply exactly what changed since it last looked (see ._changes). The tables
# are rebuilt (SQLite cannot add AUTOINCREMENT to a table), foreign keys off.
SCHEMA_V2 = """
CREATE TABLE articles_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO articles_v2(id, url, content_hash, title, author, published, ingested, lang,
                        section, tags, source, site_name, origin, n_passages)
    SELECT id, url, content_hash, title, author, published, ingested, lang,
           section, tags, source, site_name, origin, n_passages FROM articles;
DROP TABLE articles;
ALTER TABLE articles_v2 RENAME TO articles;
CREATE INDEX articles_published ON articles(published);
CREATE INDEX articles_origin ON articles(origin);
CREATE TABLE passages_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    norm TEXT NOT NULL,
    lang TEXT NOT NULL,
    dup_of INTEGER REFERENCES passages(id) ON DELETE SET NULL
);
INSERT INTO passages_v2(id, article_id, position, text, norm, lang, dup_of)
    SELECT id, article_id, position, text, norm, lang, dup_of FROM passages;
DROP TABLE passages;
ALTER TABLE passages_v2 RENAME TO passages;
CREATE INDEX passages_article ON passages(article_id);
CREATE INDEX passages_dup ON passages(dup_of);
-- Every passage deleted, in order: what readers at an older mark must drop.
CREATE TABLE removed_passages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    passage_id INTEGER NOT NULL,
    lang TEXT NOT NULL
);
CREATE TRIGGER passages_removed AFTER DELETE ON passages BEGIN
    INSERT INTO removed_passages(passage_id, lang) VALUES (old.id, old.lang);
END;
UPDATE meta SET value = '2' WHERE key = 'schema';
"""

# Layout 3: each passage's lexical tokens (for BM25) and content words (for the
# lexical bridge), computed once when it is stored, so that no reader ever analyses
# the archive's text again (see retrieval's LexicalIndex and LexicalBridge). Both are
# space-separated (neither ever contains whitespace). A passage and its row are
# written in one transaction and deleted together.
SCHEMA_V3 = """
CREATE TABLE passage_tokens (
    passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
    tokens TEXT NOT NULL,      -- khabar.text.lexical_tokens(text), joined by spaces
    words TEXT NOT NULL        -- khabar.text.content_words(text), joined by spaces
);
INSERT INTO passage_tokens(passage_id, tokens, words)
    SELECT id, khabar_tokens(text), khabar_words(text) FROM passages;
UPDATE meta SET value = '3' WHERE key = 'schema';
"""

# Layout 4: a third of the bytes (issue 12: <= 10 KB of disk per passage). Passage
# vectors become float16 (the FAISS indexes, derived from them, hold float16 too:
# cosines move by < 1e-3); sentence vectors become int8 with a float32 scale per
# sentence (see q8), and a passage of one sentence stores an empty matrix, meaning
# "its passage vector"; ``passages.norm`` (normalised text, written and never read since
# layout 3 keeps the lexical tokens) goes. The vector columns are rewritten in Python
# (:func:`_to_v4`); the file is vacuumed after the migration commits.
SCHEMA_V4 = """
ALTER TABLE passages DROP COLUMN norm;
UPDATE vectors SET vec = khabar_f16(vec);
UPDATE meta SET value = '4' WHERE key = 'schema';
"""

DB_NAME = "khabar.sqlite3"


def _run(db: sqlite3.Connection, script: str) -> None:
    """A script's statements one by one, inside the caller's transaction
    (``executescript`` would commit it)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete statement: {statement!r}")


def _to_v1(db: sqlite3.Connection) -> None:
    _run(db, SCHEMA_V1)


def _to_v2(db: sqlite3.Connection) -> None:
    _run(db, SCHEMA_V2)
    # A store's own id (a mark of another store, or of this path before it was made
    # anew, never applies), the epoch that reindexing bumps, and the oldest removal
    # still logged (see ._changes).
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('store_id', ?),"
               " ('epoch', '0'), ('removed_floor', '0')", (uuid.uuid4().hex,))


def tokens_text(text: str) -> str:
    """A passage's ``passage_tokens.tokens``."""
    return " ".join(lexical_tokens(text))


def words_text(text: str) -> str:
    """A passage's ``passage_tokens.words``."""
    return " ".join(content_words(text))


def passage_fields(text: str) -> tuple[str, str]:
    """``(tokens_text(text), words_text(text))``: what a writer stores for a passage."""
    return " ".join(lexical_tokens(text)), " ".join(content_words(text))


def _to_v3(db: sqlite3.Connection) -> None:
    n = db.execute("SELECT count(*) FROM passages").fetchone()[0]
    if n > 10_000:
        log.warning("analysing the text of %d passages once for lexical search "
                    "(store layout 3); this takes a while", n)
    db.create_function("khabar_tokens", 1, tokens_text, deterministic=True)
    db.create_function("khabar_words", 1, words_text, deterministic=True)
    _run(db, SCHEMA_V3)


def _f32_to_f16(blob: bytes) -> bytes:
    """A layout 3 passage vector (float32) as layout 4 stores it; a blob that is no
    float32 vector is left as it is (``check`` names it)."""
    if not isinstance(blob, bytes) or len(blob) % 4:
        return blob
    return f16(np.frombuffer(blob, dtype=np.float32))


def _to_v4(db: sqlite3.Connection) -> None:
    n = db.execute("SELECT count(*) FROM passages").fetchone()[0]
    if n > 10_000:
        log.warning("rewriting the vectors of %d passages once, at a third of their size "
                    "(store layout 4); this takes a while", n)
    db.create_function("khabar_f16", 1, _f32_to_f16, deterministic=True)
    _run(db, SCHEMA_V4)
    dims = {name: int(info["dim"]) for name, info in
            json.loads(meta(db, "spaces") or "{}").items()}
    # Sentence matrices: float16 -> int8, read and written in slices of rowids.
    last = 0
    while True:
        rows = db.execute(
            "SELECT s.rowid, s.space, s.vecs, v.vec FROM sentence_vectors s LEFT JOIN"
            " vectors v ON v.passage_id = s.passage_id AND v.space = s.space"
            " WHERE s.rowid > ? ORDER BY s.rowid LIMIT 2000", (last,)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        out = []
        for rowid, space, vecs, vec in rows:
            dim = dims.get(space)
            if dim is None or not isinstance(vecs, bytes) or len(vecs) % (2 * dim):
                continue  # not a matrix of this space: left for ``check`` to name
            mat = np.frombuffer(vecs, dtype=np.float16).astype(np.float32).reshape(-1, dim)
            whole = (np.frombuffer(vec, dtype=np.float16).astype(np.float32)
                     if isinstance(vec, bytes) and len(vec) == 2 * dim else None)
            out.append((sentence_blob(mat, whole), rowid))
        db.executemany("UPDATE sentence_vectors SET vecs = ? WHERE rowid = ?", out)


MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _to_v1),
    (2, _to_v2),
    (3, _to_v3),
    (4, _to_v4),
]
"""(layout reached, step from the one before), in order."""
SCHEMA_VERSION = MIGRATIONS[-1][0]


PAGE_SIZE = 16384
"""Pages of a new store (SQLite's default is 4096): rows of a passage's vectors (1-3 KB)
pack into large pages with less left over; measured on 2,680 real passages, 9% fewer
bytes than 4096 (8192: 5%; 65536: 6%). A store made with other pages gets these when
a migration vacuums it (see :func:`_vacuum`)."""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with foreign keys on, rows addressable by name.

    Autocommit (``isolation_level=None``): writes go through :func:`transaction`.
    """
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new database only: else a no-op
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


def layout(db: sqlite3.Connection) -> int:
    """The layout of the database: 0 when it is empty."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version:
        return version
    # Layout 1 predates user_version: it is known by its meta row.
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                  ).fetchone():
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row else 0
    return 0


def open_schema(db: sqlite3.Connection, where: Path) -> None:
    """Make the database's layout current: nothing to do (and nothing written) when it
    is; migrated in place, in one transaction, when it is older; refused when a newer
    khabar made it."""
    version = layout(db)
    if version == SCHEMA_VERSION:
        return
    _refuse_newer(version, where)
    if _migrate(db, where):
        _vacuum(db, where)


def _migrate(db: sqlite3.Connection, where: Path) -> bool:
    """Every step from the layout found to the current one, in one transaction.
    Returns whether there were rows to migrate (not a new, empty store)."""
    # Tables are rebuilt: foreign keys must be off, and that cannot change inside a
    # transaction.
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = layout(db)  # another process may have migrated it meanwhile
            _refuse_newer(version, where)
            for target, step in MIGRATIONS:
                if target > version:
                    step(db)
            if db.execute("PRAGMA foreign_key_check").fetchone():
                log.warning("the store at %s has rows whose article or passage is missing "
                            "(`khabar check` names them)", where)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")
    return 0 < version < SCHEMA_VERSION


def _vacuum(db: sqlite3.Connection, where: Path) -> None:
    """Give the pages a migration freed back to the file system (a migration rewrites
    most rows: without this the file stays as large as before). Best effort: another
    process holding the database open in a transaction makes it wait, then give up;
    the store works either way."""
    started = time.perf_counter()
    try:
        if db.execute("PRAGMA page_size").fetchone()[0] != PAGE_SIZE:
            # Pages change size only outside WAL mode, which needs the database to
            # itself: with another connection open this fails and pages stay as they are.
            with contextlib.suppress(sqlite3.OperationalError):
                if db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete":
                    db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.info("the store at %s was not vacuumed after its migration (%s)", where, exc)
        return
    finally:
        db.execute("PRAGMA journal_mode=WAL")
    log.info("the store at %s vacuumed in %.1f s", where, time.perf_counter() - started)


def _refuse_newer(version: int, where: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(f"the store at {where} was made by a newer khabar (layout "
                         f"{version}; this one reads up to {SCHEMA_VERSION}); upgrade khabar "
                         "to open it")


# SQLite's primary result codes that a user can act on, and what to tell them.
_SQLITE_ADVICE = {
    5: "the store is locked by another khabar process (busy); retry when it is done",
    6: "the store is locked by another khabar process; retry when it is done",
    8: "the store is read-only here; check the folder's permissions",
    10: "the disk failed to read or write the store (I/O error); check the disk",
    11: "the store's database is corrupt; `khabar check` says more",
    13: "the store's disk is full; free some space and run the same command again",
    14: "the store's database file cannot be opened; check the folder and its permissions",
    26: "the store's database file is not a database",
}


def store_error(exc: sqlite3.Error) -> StoreError:
    """An SQLite error as a StoreError that says what happened and what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    advice = _SQLITE_ADVICE.get(code & 0xFF) if isinstance(code, int) else None
    return StoreError(f"{advice} ({exc})" if advice else f"store error: {exc}")


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; bumps the generation if it changed any row.

    The store's one write boundary: SQLite's errors about the store's state leave it
    as StoreError (disk full, locked, I/O, corrupt), after the transaction is rolled
    back.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.total_changes
            yield db
            if db.total_changes != before:
                db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                           "WHERE key = 'generation'")
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does); a failed rollback
            # must not hide the error that caused it.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise  # khabar's own mistakes, not the store's state: shown as they are
    except sqlite3.Error as exc:
        raise store_error(exc) from exc


@contextlib.contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Reads that see one state of the database (inside the caller's transaction when
    there is one)."""
    if db.in_transaction:
        yield db
        return
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


def meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def generation(db: sqlite3.Connection) -> int:
    """The count of write transactions that changed something so far."""
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


def f16(vector: np.ndarray) -> bytes:
    """A passage vector as stored: float16 bytes."""
    return np.ascontiguousarray(vector, dtype=np.float16).tobytes()


def from_f16(blob: bytes) -> np.ndarray:
    """A stored passage vector, float32."""
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


SAME_AS_PASSAGE = 0.9999
"""A one-sentence passage whose sentence vector is within this cosine of its passage
vector (the same text, embedded once) stores an empty sentence matrix."""


def q8(matrix: np.ndarray) -> bytes:
    """A sentence-vector matrix as stored: int8 codes, row by row, then one float32
    scale per row (a value is code × scale). A quarter of float32's bytes; a cosine
    against a unit vector moves by about 1e-3 at most."""
    mat = np.asarray(matrix, dtype=np.float32).reshape(len(matrix), -1)
    scale = np.abs(mat).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    codes = np.rint(mat / scale[:, None]).clip(-127, 127).astype(np.int8)
    return codes.tobytes() + scale.astype(np.float32).tobytes()


def from_q8(blob: bytes, dim: int) -> np.ndarray:
    """A stored sentence-vector matrix (:func:`q8`), (n, dim) float32."""
    n = len(blob) // (dim + 4)
    codes = np.frombuffer(blob, dtype=np.int8, count=n * dim).reshape(n, dim)
    scale = np.frombuffer(blob, dtype=np.float32, offset=n * dim, count=n)
    return codes.astype(np.float32) * scale[:, None]


def q8_width(dim: int) -> int:
    """Bytes per sentence of a stored matrix: a stored one has a multiple of these."""
    return dim + 4


def sentence_blob(matrix: np.ndarray, passage: np.ndarray | None) -> bytes:
    """What ``sentence_vectors.vecs`` holds for a passage's sentence matrix: empty when
    it is one sentence whose vector is the passage vector (``passage``), else
    :func:`q8`."""
    mat = np.asarray(matrix, dtype=np.float32)
    if len(mat) == 1 and passage is not None and len(passage) == mat.shape[1]:
        a, b = mat[0], np.asarray(passage, dtype=np.float32)
        cos = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
        if cos >= SAME_AS_PASSAGE:
            return b""
    return q8(mat)


def batches(items: list, size: int) -> Iterator[list]:
    """``items`` in slices of ``size``: SQLite caps the ``?`` of one statement."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
