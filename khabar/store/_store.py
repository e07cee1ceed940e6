"""The store: SQLite for articles, passages, outlets and vectors; FAISS for search.

SQLite is the source of truth, vectors included (as float32 blobs), and every
ingest is one SQLite transaction, so an article is either fully in or not at all.
Each passage's sentences have vectors too (kept in SQLite only: they rescore
the candidates that passage-level search found, and pick answer sentences).
The FAISS indexes are derived from it: one per vector space ("e5", "use") and
passage language, saved next to the database together with the *generation*
(a counter bumped by every write transaction) they reflect. A process that finds
files of another generation (a crash between commit and save, or another
process wrote since) rebuilds them from SQLite, so the two can never disagree
for long and a crash never leaves a half-written index behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np

from khabar._errors import ModelMismatchError, StoreError
from khabar.store._types import Article, Chunk, StoredArticle, StoredPassage
from khabar.text._analysis import normalize_for_search

log = logging.getLogger(__name__)

_SCHEMA = """
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


@dataclass(frozen=True)
class SpaceInfo:
    """A vector space: which encoder made its vectors, and their width."""

    name: str  # "e5" (the configured model) or "use" (the second encoder)
    fingerprint: str
    dim: int


@dataclass
class NewArticle:
    """What the indexer hands the store: an article, its chunks and their vectors."""

    article: Article
    chunks: list[Chunk]
    vectors: dict[str, np.ndarray]  # space -> (len(chunks), dim) float32, L2-normalised
    content_hash: str
    origin: str | None = None
    # space -> one (n_sentences, dim) array per chunk; empty when not computed
    sentence_vectors: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass
class PutResult:
    status: str  # "added" | "replaced" | "unchanged" | "duplicate"
    article_id: int
    passages: int = 0
    linked_duplicates: int = 0


def content_hash(article: Article) -> str:
    """Hash of an article's normalised title and body: equal for the same text."""
    body = normalize_for_search(article.title + "\n" + "\n".join(article.paragraphs))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601: stored dates compare correctly as strings in SQL."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _parse_iso(value: str | None) -> datetime | None:
    """Stored dates; a naive one (written by an old version) is taken as UTC."""
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


_OUTLETS_OF_A = ("(SELECT group_concat(o.name, char(31)) FROM article_outlets ao"
                 " JOIN outlets o ON o.id = ao.outlet_id WHERE ao.article_id = a.id) AS outlets")


def _outlet_list(value: str | None) -> list[str]:
    return sorted(value.split("\x1f")) if value else []


class _VectorIndex:
    """FAISS indexes of one space, one per passage language, kept with their ids."""

    def __init__(self, dim: int, kind: str) -> None:
        self.dim = dim
        self.kind = kind
        self.by_lang: dict[str, faiss.Index] = {}

    def _new(self) -> faiss.Index:
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 128
            inner.hnsw.efConstruction = 80
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def add(self, lang: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        if lang not in self.by_lang:
            self.by_lang[lang] = self._new()
        self.by_lang[lang].add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                        ids.astype(np.int64))

    def size(self) -> int:
        return sum(ix.ntotal for ix in self.by_lang.values())


class Store:
    """Articles and passages on disk, searchable by vector.

    Open one per process; it is safe to share between threads. Several processes
    may open the same store: SQLite (WAL) serialises the writers, and readers pick
    up other processes' writes on their next search.
    """

    def __init__(
        self,
        path: Path,
        *,
        index_type: str = "auto",
        hnsw_threshold: int = 200_000,
    ) -> None:
        self.path = Path(path)
        self.index_type = index_type
        self.hnsw_threshold = hnsw_threshold
        self._lock = threading.RLock()
        self._local = threading.local()
        self._indexes: dict[str, _VectorIndex] = {}
        self._loaded_generation = -1
        self._dirty = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "faiss").mkdir(exist_ok=True)
            self._conn().executescript(_SCHEMA)  # DDL is idempotent; executescript commits
            with self._tx() as db:
                db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?), "
                    "('generation', '0')",
                    (SCHEMA_VERSION,),
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    # -- connections -------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / "khabar.sqlite3"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; bumps the generation so readers reload."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                       "WHERE key = 'generation'")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self.flush()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta and model fingerprints --------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def generation(self) -> int:
        return int(self.meta("generation") or 0)

    def spaces(self) -> dict[str, SpaceInfo]:
        raw = self.meta("spaces")
        return {k: SpaceInfo(**v) for k, v in json.loads(raw).items()} if raw else {}

    def bind_spaces(self, spaces: Sequence[SpaceInfo], *, replace: bool = False) -> None:
        """Record which encoders make this store's vectors, or refuse a different one.

        An empty store takes whatever it is given. A store with passages refuses an
        encoder with another fingerprint (``ModelMismatchError``): its vectors would
        be meaningless beside the old ones. ``replace`` is for reindexing.
        """
        current = self.spaces()
        if not replace and self.count_passages() > 0:
            for space in spaces:
                old = current.get(space.name)
                if old is not None and old.fingerprint != space.fingerprint:
                    raise ModelMismatchError(
                        f"the store at {self.path} was built with model {old.fingerprint!r}, "
                        f"but the configured model is {space.fingerprint!r}. "
                        "Set KHABAR_MODEL back to the store's model, or run "
                        "`khabar reindex` to rebuild the vectors with the new one."
                    )
        merged = {} if replace else dict(current)
        merged.update({s.name: s for s in spaces})
        payload = json.dumps({k: vars(v) for k, v in merged.items()}, sort_keys=True)
        if payload != self.meta("spaces"):
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('spaces', ?)",
                           (payload,))

    # -- writing ------------------------------------------------------------------
    def find_article(self, *, url: str | None = None, content_hash: str | None = None
                     ) -> sqlite3.Row | None:
        db = self._conn()
        if url:
            row = db.execute("SELECT * FROM articles WHERE url = ?", (url,)).fetchone()
            if row:
                return row
        if content_hash:
            return db.execute("SELECT * FROM articles WHERE content_hash = ?",
                              (content_hash,)).fetchone()
        return None

    def put(self, new: NewArticle, *, dup_threshold: float | None = 0.96) -> PutResult:
        """Store one article with its passages and vectors, atomically.

        Same URL and same text: unchanged. Same URL, changed text: the old version
        is replaced. Same text under another URL: a duplicate, not stored twice.
        Passages whose "e5" vector is within ``dup_threshold`` (cosine) of a
        passage of another article in the same language are linked to it
        (``dup_of``), so answers can show one passage with all its outlets.
        """
        art = new.article
        if not new.chunks:
            raise StoreError(f"article {art.title!r} has no passages")
        for space, vecs in new.vectors.items():
            if len(vecs) != len(new.chunks):
                raise StoreError(f"{space}: {len(vecs)} vectors for {len(new.chunks)} passages")
        for space, mats in new.sentence_vectors.items():
            if len(mats) != len(new.chunks):
                raise StoreError(f"{space}: sentence vectors for {len(mats)} of "
                                 f"{len(new.chunks)} passages")
        dup_links = self._near_duplicates(new, dup_threshold) if dup_threshold else {}
        removed: list[int] = []
        added: list[tuple[int, str]] = []
        with self._lock:
            with self._tx() as db:
                gen_before = int(db.execute(
                    "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
                replaced = False
                if art.url:
                    old = db.execute("SELECT id, content_hash FROM articles WHERE url = ?",
                                     (art.url,)).fetchone()
                    if old and old["content_hash"] == new.content_hash:
                        return PutResult("unchanged", old["id"])
                    if old:
                        removed = [r[0] for r in db.execute(
                            "SELECT id FROM passages WHERE article_id = ?", (old["id"],))]
                        db.execute("DELETE FROM articles WHERE id = ?", (old["id"],))
                        replaced = True
                same = db.execute("SELECT id FROM articles WHERE content_hash = ?",
                                  (new.content_hash,)).fetchone()
                if same:
                    return PutResult("duplicate", same["id"])
                cur = db.execute(
                    "INSERT INTO articles(url, content_hash, title, author, published, ingested,"
                    " lang, section, tags, source, site_name, origin, n_passages)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (art.url, new.content_hash, art.title, art.author, _iso(art.published),
                     datetime.now(UTC).isoformat(timespec="seconds"), art.lang, art.section,
                     json.dumps(art.tags, ensure_ascii=False), art.source, art.site_name,
                     new.origin, len(new.chunks)),
                )
                article_id = int(cur.lastrowid or 0)
                for name in dict.fromkeys(o.strip() for o in art.outlets if o.strip()):
                    db.execute("INSERT OR IGNORE INTO outlets(name) VALUES (?)", (name,))
                    db.execute("INSERT OR IGNORE INTO article_outlets SELECT ?, id FROM outlets"
                               " WHERE name = ?", (article_id, name))
                linked = 0
                for i, chunk in enumerate(new.chunks):
                    dup = dup_links.get(i)
                    if dup is not None and not db.execute(
                            "SELECT 1 FROM passages WHERE id = ?", (dup,)).fetchone():
                        dup = None  # the passage it copied was replaced meanwhile
                    linked += dup is not None
                    pid = int(db.execute(
                        "INSERT INTO passages(article_id, position, text, norm, lang, dup_of)"
                        " VALUES (?,?,?,?,?,?)",
                        (article_id, chunk.position, chunk.text,
                         normalize_for_search(chunk.text), chunk.lang, dup),
                    ).lastrowid or 0)
                    added.append((pid, chunk.lang))
                    for space, vecs in new.vectors.items():
                        db.execute("INSERT INTO vectors(passage_id, space, vec) VALUES (?,?,?)",
                                   (pid, space, np.asarray(vecs[i], dtype=np.float32).tobytes()))
                    for space, mats in new.sentence_vectors.items():
                        db.execute("INSERT INTO sentence_vectors(passage_id, space, vecs)"
                                   " VALUES (?,?,?)", (pid, space, _f16(mats[i])))
            self._apply(gen_before, removed, added, new.vectors)
        return PutResult("replaced" if replaced else "added", article_id, len(new.chunks), linked)

    def _apply(self, gen_before: int, removed: list[int], added: list[tuple[int, str]],
               vectors: dict[str, np.ndarray]) -> None:
        """Mirror a committed write in the in-memory FAISS indexes.

        Incremental when this process was up to date before the write, otherwise a
        full refresh. Files are saved by :meth:`flush` (end of a batch); until then
        a crash only costs a rebuild from SQLite at the next open.
        """
        spaces = self.spaces()
        hnsw = any(ix.kind == "hnsw" for ix in self._indexes.values())
        if (self._loaded_generation != gen_before or set(spaces) != set(vectors)
                or (removed and hnsw)):
            self.refresh()
            return
        for space, vecs in vectors.items():
            index = self._indexes.setdefault(
                space, _VectorIndex(spaces[space].dim, self._kind(self.count_passages())))
            if removed:
                for ix in index.by_lang.values():
                    ix.remove_ids(np.asarray(removed, dtype=np.int64))
            for lang in dict.fromkeys(lang for _, lang in added):
                rows = [i for i, (_, lg) in enumerate(added) if lg == lang]
                ids = np.asarray([added[i][0] for i in rows], dtype=np.int64)
                index.add(lang, ids, np.asarray(vecs, dtype=np.float32)[rows])
        self._loaded_generation = gen_before + 1
        self._dirty = True

    def flush(self) -> None:
        """Save the FAISS indexes if writes since the last save changed them."""
        with self._lock:
            if self._dirty and self._loaded_generation == self.generation():
                self._save_files(self._loaded_generation)
            self._dirty = False

    def _near_duplicates(self, new: NewArticle, threshold: float) -> dict[int, int]:
        """chunk index -> id of an existing near-identical passage (same language)."""
        vecs = new.vectors.get("e5")
        if vecs is None:
            return {}
        self.refresh()
        links: dict[int, int] = {}
        index = self._indexes.get("e5")
        if index is None:
            return links
        for i, chunk in enumerate(new.chunks):
            ix = index.by_lang.get(chunk.lang)
            if ix is None or ix.ntotal == 0:
                continue
            scores, ids = ix.search(np.asarray(vecs[i:i + 1], dtype=np.float32), 1)
            if ids[0, 0] >= 0 and scores[0, 0] >= threshold:
                root = self._conn().execute(
                    "SELECT COALESCE(p.dup_of, p.id) AS root, a.url FROM passages p"
                    " JOIN articles a ON a.id = p.article_id WHERE p.id = ?",
                    (int(ids[0, 0]),)).fetchone()
                if root and (root["url"] is None or root["url"] != new.article.url):
                    links[i] = int(root["root"])
        return links

    def delete_articles(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._lock, self._tx() as db:
            n = 0
            for chunk in _batches(ids, 500):
                marks = ",".join("?" * len(chunk))
                n += db.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk).rowcount
            db.execute("DELETE FROM outlets WHERE id NOT IN "
                       "(SELECT outlet_id FROM article_outlets)")
        self.refresh(force_rebuild=True)
        return n

    def article_ids(self, *, outlet: str | None = None, before: datetime | None = None,
                    url: str | None = None, origin: str | None = None) -> list[int]:
        sql = "SELECT DISTINCT a.id FROM articles a"
        where: list[str] = []
        args: list[object] = []
        if outlet:
            sql += (" JOIN article_outlets ao ON ao.article_id = a.id"
                    " JOIN outlets o ON o.id = ao.outlet_id")
            where.append("lower(o.name) = lower(?)")
            args.append(outlet)
        if before:
            # Articles without a publication date are judged by their ingest date.
            where.append("COALESCE(a.published, a.ingested) < ?")
            args.append(_iso(before))
        if url:
            where.append("a.url = ?")
            args.append(url)
        if origin:
            where.append("a.origin = ?")
            args.append(origin)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [r[0] for r in self._conn().execute(sql, args)]

    def clear(self) -> int:
        return self.delete_articles(self.article_ids())

    def replace_vectors(self, space: str, rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Overwrite one space's vectors (reindexing), in one transaction."""
        with self._lock, self._tx() as db:
            db.execute("DELETE FROM vectors WHERE space = ?", (space,))
            db.executemany("INSERT INTO vectors(passage_id, space, vec) VALUES (?,?,?)",
                           ((pid, space, np.asarray(v, np.float32).tobytes()) for pid, v in rows))
        self.refresh(force_rebuild=True)

    def add_sentence_vectors(self, space: str, rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Store sentence vectors for passages that have none yet, in one transaction."""
        with self._lock, self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO sentence_vectors(passage_id, space, vecs)"
                           " VALUES (?,?,?)", ((pid, space, _f16(m)) for pid, m in rows))

    def passages_without_sentence_vectors(self, space: str) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT p.id, p.text FROM passages p WHERE NOT EXISTS (SELECT 1 FROM"
            " sentence_vectors s WHERE s.passage_id = p.id AND s.space = ?) ORDER BY p.id",
            (space,))]

    def replace_sentence_vectors(self, space: str,
                                 rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Overwrite one space's sentence vectors (reindexing), in one transaction."""
        with self._lock, self._tx() as db:
            db.execute("DELETE FROM sentence_vectors WHERE space = ?", (space,))
            db.executemany("INSERT INTO sentence_vectors(passage_id, space, vecs) VALUES (?,?,?)",
                           ((pid, space, _f16(m)) for pid, m in rows))

    # -- reading ------------------------------------------------------------------
    def count_passages(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM passages").fetchone()[0])

    def count_articles(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM articles").fetchone()[0])

    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        """Passages with their article's citation data, by id."""
        out: dict[int, StoredPassage] = {}
        for chunk in _batches(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for p in self._passage_rows(f"p.id IN ({marks})", chunk):
                out[p.id] = p
        return out

    def _passage_rows(self, where: str, args: Sequence[object]) -> list[StoredPassage]:
        rows = self._conn().execute(
            "SELECT p.id, p.article_id, p.position, p.text, p.lang, p.dup_of,"
            f" a.title, a.url, a.published, a.n_passages, {_OUTLETS_OF_A}"
            f" FROM passages p JOIN articles a ON a.id = p.article_id WHERE {where}"
            " ORDER BY p.article_id, p.position", list(args)).fetchall()
        return [StoredPassage(
            id=r["id"], article_id=r["article_id"], position=r["position"], text=r["text"],
            lang=r["lang"], title=r["title"], outlets=_outlet_list(r["outlets"]), url=r["url"],
            published=_parse_iso(r["published"]), n_passages=r["n_passages"],
            dup_of=r["dup_of"]) for r in rows]

    # -- periods (coverage summaries) -----------------------------------------------
    def articles_in(self, *, since: datetime | None = None, until: datetime | None = None,
                    origin: str | None = None, outlets: Sequence[str] = (),
                    ids: Sequence[int] | None = None) -> list[StoredArticle]:
        """Articles published (or, undated, ingested) in ``[since, until)``, oldest first.

        Without a period, every article (of ``ids`` when given) that passes the other
        filters.
        """
        where: list[str] = []
        args: list[object] = []
        if ids is not None:
            where.append(f"a.id IN ({','.join('?' * len(ids))})")
            args += list(ids)
        if since is not None and until is not None:
            # Dates from old versions may carry their source's offset, so the text
            # comparison is a coarse prefilter (a day either side); exact test below.
            where += ["COALESCE(a.published, a.ingested) >= ?",
                      "COALESCE(a.published, a.ingested) < ?"]
            args += [(since - timedelta(days=1)).date().isoformat(),
                     (until + timedelta(days=1)).date().isoformat()]
        if origin:
            where.append("a.origin = ?")
            args.append(origin)
        if outlets:
            marks = ",".join("?" * len(outlets))
            where.append("a.id IN (SELECT ao.article_id FROM article_outlets ao JOIN outlets o"
                         f" ON o.id = ao.outlet_id WHERE lower(o.name) IN ({marks}))")
            args += [o.lower() for o in outlets]
        rows = self._conn().execute(
            "SELECT a.id, a.title, a.url, a.published, a.ingested, a.lang, a.n_passages, "
            f"{_OUTLETS_OF_A} FROM articles a WHERE {' AND '.join(where) or '1'}", args)
        out = [StoredArticle(
            id=r["id"], title=r["title"], url=r["url"], published=_parse_iso(r["published"]),
            ingested=_parse_iso(r["ingested"]) or datetime.now(UTC), lang=r["lang"],
            n_passages=r["n_passages"], outlets=_outlet_list(r["outlets"])) for r in rows]
        if since is not None and until is not None:
            out = [a for a in out if since <= a.when < until]
        return sorted(out, key=lambda a: (a.when, a.id))

    def article_passages(self, article_ids: Sequence[int], langs: Sequence[str] = ()
                         ) -> list[StoredPassage]:
        """The passages of these articles (in these languages), in reading order."""
        out: list[StoredPassage] = []
        for chunk in _batches(list(article_ids), 500):
            where = f"p.article_id IN ({','.join('?' * len(chunk))})"
            args: list[object] = list(chunk)
            if langs:
                where += f" AND p.lang IN ({','.join('?' * len(langs))})"
                args += list(langs)
            out += self._passage_rows(where, args)
        return out

    def recent_mean_vector(self, space: str, lang: str, sample: int
                           ) -> tuple[np.ndarray, int] | None:
        """Mean ``space`` vector of the ``sample`` most recent ``lang`` passages, and
        how many there were."""
        rows = self._conn().execute(
            "SELECT v.vec FROM passages p JOIN vectors v ON v.passage_id = p.id AND v.space = ?"
            " WHERE p.lang = ? ORDER BY p.id DESC LIMIT ?", (space, lang, sample)).fetchall()
        if not rows:
            return None
        vecs = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32)
        return vecs.reshape(len(rows), -1).mean(axis=0), len(rows)

    def duplicate_groups(self, ids: Sequence[int]) -> dict[int, list[int]]:
        """For each id, every passage of its near-duplicate group (itself first)."""
        out: dict[int, list[int]] = {}
        db = self._conn()
        for pid in ids:
            row = db.execute("SELECT COALESCE(dup_of, id) FROM passages WHERE id = ?",
                             (pid,)).fetchone()
            if row is None:
                continue
            root = row[0]
            members = [r[0] for r in db.execute(
                "SELECT id FROM passages WHERE id = ? OR dup_of = ? ORDER BY id", (root, root))]
            out[pid] = [pid, *[m for m in members if m != pid]]
        return out

    def iter_passages(self, lang: str | None = None) -> Iterator[sqlite3.Row]:
        sql = "SELECT id, article_id, position, text, norm, lang, dup_of FROM passages"
        args: tuple[object, ...] = ()
        if lang:
            sql += " WHERE lang = ?"
            args = (lang,)
        yield from self._conn().execute(sql + " ORDER BY id", args)

    def passage_filter(self, *, outlets: Sequence[str] = (), since: datetime | None = None,
                       until: datetime | None = None, langs: Sequence[str] = (),
                       origin: str | None = None) -> set[int] | None:
        """Ids of passages matching the filters, or None when there are none."""
        if not (outlets or since or until or langs or origin):
            return None
        sql = "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id"
        where: list[str] = []
        args: list[object] = []
        if outlets:
            marks = ",".join("?" * len(outlets))
            where.append("a.id IN (SELECT ao.article_id FROM article_outlets ao JOIN outlets o"
                         f" ON o.id = ao.outlet_id WHERE lower(o.name) IN ({marks}))")
            args += [o.lower() for o in outlets]
        if since:
            where.append("a.published >= ?")
            args.append(_iso(since))
        if until:
            where.append("a.published < ?")
            args.append(_iso(until))
        if langs:
            where.append(f"p.lang IN ({','.join('?' * len(langs))})")
            args += list(langs)
        if origin:
            where.append("a.origin = ?")
            args.append(origin)
        return {r[0] for r in self._conn().execute(sql + " WHERE " + " AND ".join(where), args)}

    def outlets(self) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT o.name, count(*) FROM outlets o JOIN article_outlets ao"
            " ON ao.outlet_id = o.id GROUP BY o.id ORDER BY count(*) DESC, o.name")]

    def stats(self) -> dict[str, object]:
        db = self._conn()
        langs = dict(db.execute("SELECT lang, count(*) FROM passages GROUP BY lang").fetchall())
        first, last = db.execute("SELECT min(published), max(published) FROM articles").fetchone()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        self.refresh()
        return {
            "articles": self.count_articles(),
            "passages": self.count_passages(),
            "outlets": len(self.outlets()),
            "languages": langs,
            "published_from": first,
            "published_to": last,
            "index_type": self._kind(max(langs.values(), default=0)),
            "spaces": {k: vars(v) for k, v in self.spaces().items()},
            "sentence_vectors": self.count_sentence_vectors(),
            "linked_duplicates": db.execute(
                "SELECT count(*) FROM passages WHERE dup_of IS NOT NULL").fetchone()[0],
            "size_bytes": size,
            "path": str(self.path),
        }

    # -- vector search --------------------------------------------------------------
    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Top ``k`` passages of one language by inner product in ``space``."""
        self.refresh()
        with self._lock:
            index = self._indexes.get(space)
            ix = index.by_lang.get(lang) if index else None
            if ix is None or ix.ntotal == 0 or (allowed is not None and not allowed):
                return []
            params = None
            if allowed is not None:
                sel = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
                params = faiss.SearchParameters(sel=sel)
            k = min(k, ix.ntotal)
            q = np.asarray(query, dtype=np.float32).reshape(1, -1)
            scores, ids = ix.search(q, k, params=params) if params else ix.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return {pid: np.frombuffer(blob, dtype=np.float32)
                for pid, blob in self._blobs("vectors", "vec", space, ids)}

    def sentence_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Each passage's sentence vectors, (n_sentences, dim) float32, where stored."""
        info = self.spaces().get(space)
        if info is None:
            return {}
        return {pid: np.frombuffer(blob, dtype=np.float16).astype(np.float32).reshape(
                    -1, info.dim)
                for pid, blob in self._blobs("sentence_vectors", "vecs", space, ids)}

    def _blobs(self, table: str, column: str, space: str, ids: Sequence[int]
               ) -> Iterator[tuple[int, bytes]]:
        db = self._conn()
        for chunk in _batches(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            yield from db.execute(f"SELECT passage_id, {column} FROM {table} WHERE space = ?"
                                  f" AND passage_id IN ({marks})", [space, *chunk])

    def count_sentence_vectors(self) -> dict[str, int]:
        """Passages with sentence vectors, per space."""
        return dict(self._conn().execute(
            "SELECT space, count(*) FROM sentence_vectors GROUP BY space"))

    def languages(self) -> list[str]:
        return list(self.language_counts())

    def language_counts(self) -> dict[str, int]:
        """Passages per language, most first."""
        return dict(self._conn().execute(
            "SELECT lang, count(*) FROM passages GROUP BY lang ORDER BY count(*) DESC"))

    def _kind(self, size: int) -> str:
        if self.index_type in ("flat", "hnsw"):
            return self.index_type
        return "hnsw" if size >= self.hnsw_threshold else "flat"

    def refresh(self, *, force_rebuild: bool = False) -> None:
        """Bring the in-memory FAISS indexes up to the database's generation."""
        with self._lock:
            gen = self.generation()
            if gen == self._loaded_generation and not force_rebuild:
                return
            if not force_rebuild and self._load_files(gen):
                self._loaded_generation = gen
                return
            self._rebuild()
            self._loaded_generation = gen
            self._save_files(gen)

    def _rebuild(self) -> None:
        db = self._conn()
        self._indexes = {}
        langs = self.language_counts()
        kind = self._kind(max(langs.values(), default=0))
        for space, info in self.spaces().items():
            index = _VectorIndex(info.dim, kind)
            for lang in langs:
                rows = db.execute(
                    "SELECT v.passage_id, v.vec FROM vectors v JOIN passages p"
                    " ON p.id = v.passage_id WHERE v.space = ? AND p.lang = ? ORDER BY p.id",
                    (space, lang)).fetchall()
                if not rows:
                    continue
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                index.add(lang, ids, vecs.reshape(len(rows), info.dim))
            self._indexes[space] = index

    def _state_path(self) -> Path:
        return self.path / "faiss" / "state.json"

    def _load_files(self, gen: int) -> bool:
        try:
            state = json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            return False
        if state.get("generation") != gen:
            return False
        indexes: dict[str, _VectorIndex] = {}
        try:
            for space, entry in state["spaces"].items():
                index = _VectorIndex(entry["dim"], entry["kind"])
                for lang, fname in entry["files"].items():
                    index.by_lang[lang] = faiss.read_index(str(self.path / "faiss" / fname))
                indexes[space] = index
        except (OSError, RuntimeError, KeyError) as exc:
            log.warning("FAISS files unreadable (%s); rebuilding from SQLite", exc)
            return False
        self._indexes = indexes
        return True

    def _save_files(self, gen: int) -> None:
        folder = self.path / "faiss"
        state: dict[str, object] = {"generation": gen, "spaces": {}}
        for space, index in self._indexes.items():
            files = {}
            for lang, ix in index.by_lang.items():
                fname = f"{space}-{lang}-{gen}.faiss"
                tmp = folder / f"{fname}.{os.getpid()}-{threading.get_ident()}.tmp"
                faiss.write_index(ix, str(tmp))
                os.replace(tmp, folder / fname)
                files[lang] = fname
            state["spaces"][space] = {"dim": index.dim, "kind": index.kind,  # type: ignore[index]
                                      "files": files}
        # Unique temp names: another process may be saving the same generation.
        tmp = self._state_path().with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._state_path())
        # Files of older generations are garbage now; readers that still hold them
        # have them open or will rebuild.
        for f in folder.glob("*.faiss"):
            if not f.name.endswith(f"-{gen}.faiss"):
                with contextlib.suppress(OSError):
                    f.unlink()

    # -- integrity --------------------------------------------------------------
    def check(self, expected: Sequence[SpaceInfo] = ()) -> list[str]:
        """Every fault found: an empty list means the store is whole."""
        faults: list[str] = []
        db = self._conn()
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            faults.append("SQLite integrity check failed")
        spaces = self.spaces()
        n = self.count_passages()
        for name, info in spaces.items():
            missing = db.execute(
                "SELECT count(*) FROM passages p WHERE NOT EXISTS (SELECT 1 FROM vectors v"
                " WHERE v.passage_id = p.id AND v.space = ?)", (name,)).fetchone()[0]
            if missing:
                faults.append(f"{missing} passage(s) have no {name} vector")
            bad = db.execute("SELECT count(*) FROM vectors WHERE space = ? AND length(vec) != ?",
                             (name, info.dim * 4)).fetchone()[0]
            if bad:
                faults.append(f"{bad} {name} vector(s) have the wrong width")
        for name, info in spaces.items():
            have = db.execute("SELECT count(*) FROM sentence_vectors WHERE space = ?",
                              (name,)).fetchone()[0]
            if 0 < have < n:  # all or none: a store from before sentence vectors has none
                faults.append(f"{n - have} passage(s) have no {name} sentence vectors")
            bad = db.execute("SELECT count(*) FROM sentence_vectors WHERE space = ? AND"
                             " (length(vecs) = 0 OR length(vecs) % ? != 0)",
                             (name, info.dim * 2)).fetchone()[0]
            if bad:
                faults.append(f"{bad} {name} sentence vector matrices have the wrong width")
        orphans = db.execute("SELECT count(*) FROM vectors v WHERE NOT EXISTS (SELECT 1 FROM"
                             " passages p WHERE p.id = v.passage_id)").fetchone()[0]
        if orphans:
            faults.append(f"{orphans} vector(s) belong to no passage")
        empty = db.execute("SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM"
                           " passages p WHERE p.article_id = a.id)").fetchone()[0]
        if empty:
            faults.append(f"{empty} article(s) have no passages")
        self.refresh()
        for name in spaces:
            index = self._indexes.get(name)
            size = index.size() if index else 0
            if size != n:
                faults.append(f"FAISS {name} index holds {size} vectors for {n} passages")
            elif index:
                for lang, ix in index.by_lang.items():
                    ids = set(faiss.vector_to_array(ix.id_map).tolist())
                    want = {r[0] for r in db.execute("SELECT id FROM passages WHERE lang = ?",
                                                     (lang,))}
                    if ids != want:
                        faults.append(f"FAISS {name}/{lang} ids differ from SQLite's passages")
        for space in expected:
            have = spaces.get(space.name)
            if n and (have is None or have.fingerprint != space.fingerprint):
                faults.append(f"model fingerprint for {space.name} is "
                              f"{have.fingerprint if have else None!r}, configured "
                              f"{space.fingerprint!r}")
        return faults


def _f16(matrix: np.ndarray) -> bytes:
    return np.ascontiguousarray(matrix, dtype=np.float16).tobytes()


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
