"""Writes: an article in (linked to its near-duplicates), articles out, vectors replaced.

Each write is one SQLite transaction, so an article is either fully in or not at
all. Writes that change passages then bring this process's FAISS indexes up to
date with the delta they made (see ``VectorIndexes.refresh``), as other processes
do at their next search; only a reindex (new vectors for every passage) makes
them start again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from khabar._errors import StoreError
from khabar.text._analysis import normalize_for_search

from ._origin import shared_again
from ._schema import (
    batches,
    f16,
    from_f16,
    iso,
    passage_fields,
    sentence_blob,
    transaction,
)
from ._types import Article, Chunk
from ._vectors import VectorIndexes

PutStatus = Literal["added", "replaced", "unchanged", "duplicate"]
"""What :meth:`khabar.store.Store.put` did with an article (these strings are shown
and written to JSON as they are)."""


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
    # A copy from another store (``khabar migrate``): its ids there, kept when they are
    # above every id this store has given (else its own), and when it was ingested.
    kept: Kept | None = None


@dataclass(frozen=True)
class Kept:
    """An article's ids and ingest date in the store it is copied from."""

    article_id: int
    passage_ids: tuple[int, ...]
    ingested: datetime

    def usable(self, last_article: int, last_passage: int) -> bool:
        """Whether these ids are above the last ones a store gave (so ids still only
        grow there, and none is taken)."""
        return self.article_id > last_article and min(self.passage_ids) > last_passage \
            and len(set(self.passage_ids)) == len(self.passage_ids)


@dataclass
class PutResult:
    status: PutStatus
    article_id: int
    passages: int = 0
    linked_duplicates: int = 0
    replaced: int | None = None  # the id of the older version this one replaced


def content_hash(article: Article) -> str:
    """Hash of an article's normalised title and body: equal for the same text."""
    body = normalize_for_search(article.title + "\n" + "\n".join(article.paragraphs))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


# -- an article in ----------------------------------------------------------------------
def find_article(db: sqlite3.Connection, *, url: str | None = None,
                 content_hash: str | None = None) -> sqlite3.Row | None:
    """The stored article with this URL, else with this text: what a put would meet."""
    if url:
        row = db.execute("SELECT * FROM articles WHERE url = ?", (url,)).fetchone()
        if row:
            return row
    if content_hash:
        return db.execute("SELECT * FROM articles WHERE content_hash = ?",
                          (content_hash,)).fetchone()
    return None


def shape_error(new: NewArticle) -> StoreError | None:
    """What makes an article unstorable on any backend by its own shape (no passages,
    or vectors not one a passage), or None."""
    if not new.chunks:
        return StoreError(f"article {new.article.title!r} has no passages")
    for space, vecs in new.vectors.items():
        if len(vecs) != len(new.chunks):
            return StoreError(f"{space}: {len(vecs)} vectors for {len(new.chunks)} passages")
    for space, mats in new.sentence_vectors.items():
        if len(mats) != len(new.chunks):
            return StoreError(f"{space}: sentence vectors for {len(mats)} of "
                              f"{len(new.chunks)} passages")
    return None


def put(db: sqlite3.Connection, indexes: VectorIndexes, new: NewArticle, *,
        dup_threshold: float | None) -> PutResult:
    """Store one article with its passages and vectors, atomically (see
    :meth:`khabar.store.Store.put`)."""
    if (wrong := shape_error(new)) is not None:
        raise wrong
    dup_links = near_duplicates(db, indexes, new, dup_threshold) if dup_threshold else {}
    # Text analysis for lexical search, before taking the write lock.
    analysed = [passage_fields(c.text) for c in new.chunks]
    with transaction(db):
        result = _insert(db, new, dup_links, analysed)
    if result.status in ("added", "replaced"):
        indexes.refresh(db)  # the delta: this article (and whatever others wrote)
    return result


def _insert(db: sqlite3.Connection, new: NewArticle, dup_links: dict[int, int],
            analysed: list[tuple[str, str]]) -> PutResult:
    """The rows of one put, inside its transaction; an unchanged article or a
    duplicate writes nothing. ``analysed``: each chunk's lexical tokens and content
    words (``passage_tokens``)."""
    art = new.article
    old = db.execute("SELECT id, content_hash, origin FROM articles WHERE url = ?",
                     (art.url,)).fetchone() if art.url else None
    if old and old["content_hash"] == new.content_hash:
        shared_again(db, old["id"], old["origin"], new.origin)
        return PutResult("unchanged", old["id"])
    if old and old["origin"] != new.origin:
        # The URL is one article's (UNIQUE: citations and /forget go by it), and only
        # who brought it may change it: another chat cannot overwrite a newsroom's copy.
        raise StoreError(f"{art.url} is already indexed from another source; "
                         "not replaced (only the chat or folder that added it can update it)")
    # The same text as another article: not stored twice. A new version of an
    # article that is another one's text is a duplicate too, and the old version
    # stays: deleting it would leave its URL with nothing.
    same = db.execute("SELECT id, origin FROM articles WHERE content_hash = ?",
                      (new.content_hash,)).fetchone()
    if same:
        shared_again(db, same["id"], same["origin"], new.origin)
        return PutResult("duplicate", same["id"])
    if old:
        db.execute("DELETE FROM articles WHERE id = ?", (old["id"],))
    kept = new.kept
    ids = kept if kept and kept.usable(_last_id(db, "articles"), _last_id(db, "passages")) \
        else None
    ingested = kept.ingested if kept else datetime.now(UTC)
    cur = db.execute(
        "INSERT INTO articles(id, url, content_hash, title, author, published, ingested,"
        " lang, section, tags, source, site_name, origin, n_passages)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (ids.article_id if ids else None, art.url, new.content_hash, art.title,
         art.author, iso(art.published), ingested.isoformat(timespec="seconds"),
         art.lang, art.section, json.dumps(art.tags, ensure_ascii=False), art.source,
         art.site_name, new.origin, len(new.chunks)),
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
            # The passage it copied was deleted meanwhile (ids are never reused, so
            # one that exists is the one found).
            dup = None
        linked += dup is not None
        pid = int(db.execute(
            "INSERT INTO passages(id, article_id, position, text, lang, dup_of)"
            " VALUES (?,?,?,?,?,?)",
            (ids.passage_ids[i] if ids else None, article_id, chunk.position, chunk.text,
             chunk.lang, dup),
        ).lastrowid or 0)
        db.execute("INSERT INTO passage_tokens(passage_id, tokens, words) VALUES (?,?,?)",
                   (pid, *analysed[i]))
        for space, vecs in new.vectors.items():
            db.execute("INSERT INTO vectors(passage_id, space, vec) VALUES (?,?,?)",
                       (pid, space, f16(vecs[i])))
        for space, mats in new.sentence_vectors.items():
            whole = new.vectors.get(space)
            db.execute("INSERT INTO sentence_vectors(passage_id, space, vecs)"
                       " VALUES (?,?,?)", (pid, space, sentence_blob(
                           mats[i], None if whole is None else whole[i])))
    status: PutStatus = "replaced" if old else "added"
    return PutResult(status, article_id, len(new.chunks), linked,
                     replaced=int(old["id"]) if old else None)


def _last_id(db: sqlite3.Connection, table: str) -> int:
    """The last id ``table`` gave (AUTOINCREMENT's, so a deleted one counts)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    top = db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
    return max(int(row[0]) if row else 0, int(top or 0))


def near_duplicates(db: sqlite3.Connection, indexes: VectorIndexes, new: NewArticle,
                    threshold: float) -> dict[int, int]:
    """chunk index -> id of an existing near-identical passage (same language).

    Near-identical: within ``threshold`` (cosine) in the "e5" space, in another
    article; the link goes to the root of that passage's group.
    """
    vecs = new.vectors.get("e5")
    if vecs is None:
        return {}
    indexes.refresh(db)
    links: dict[int, int] = {}
    hits: dict[int, list[tuple[int, float]]] = {}
    for lang in dict.fromkeys(c.lang for c in new.chunks):
        rows = [i for i, c in enumerate(new.chunks) if c.lang == lang]
        found = indexes.search_many("e5", lang, np.asarray(vecs)[rows], 1, one_thread=True)
        hits.update(zip(rows, found, strict=True))
    for i in range(len(new.chunks)):
        if hits[i] and hits[i][0][1] >= threshold:
            root = db.execute(
                "SELECT COALESCE(p.dup_of, p.id) AS root, a.url FROM passages p"
                " JOIN articles a ON a.id = p.article_id WHERE p.id = ?",
                (hits[i][0][0],)).fetchone()
            if root and (root["url"] is None or root["url"] != new.article.url):
                links[i] = int(root["root"])
    return links


# -- articles out -----------------------------------------------------------------------
def article_ids(db: sqlite3.Connection, *, outlet: str | None = None,
                before: datetime | None = None, url: str | None = None,
                origin: str | None = None) -> list[int]:
    """Ids of the articles matching every filter given (all of them without one)."""
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
        args.append(iso(before))
    if url:
        where.append("a.url = ?")
        args.append(url)
    if origin:
        where.append("a.origin = ?")
        args.append(origin)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [r[0] for r in db.execute(sql, args)]


def delete_articles(db: sqlite3.Connection, indexes: VectorIndexes, ids: Iterable[int]
                    ) -> int:
    """Delete these articles (passages and vectors go with them, and the passages
    are logged as removed) and outlets left without articles; the FAISS indexes drop
    them. Returns how many were deleted."""
    ids = list(ids)
    if not ids:
        return 0
    with transaction(db):
        n = 0
        for chunk in batches(ids, 500):
            marks = ",".join("?" * len(chunk))
            n += db.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk).rowcount
        db.execute("DELETE FROM outlets WHERE id NOT IN "
                   "(SELECT outlet_id FROM article_outlets)")
    if n:
        indexes.refresh(db)
    return n


# -- sentence vectors added later ----------------------------------------------------
def passages_without_sentence_vectors(db: sqlite3.Connection, space: str
                                      ) -> list[tuple[int, str]]:
    """(id, text) of the passages that have no ``space`` sentence vectors yet."""
    return [(r[0], r[1]) for r in db.execute(
        "SELECT p.id, p.text FROM passages p WHERE NOT EXISTS (SELECT 1 FROM"
        " sentence_vectors s WHERE s.passage_id = p.id AND s.space = ?) ORDER BY p.id",
        (space,))]


def add_sentence_vectors(db: sqlite3.Connection, space: str,
                         rows: Iterable[tuple[int, np.ndarray]]) -> None:
    """Store sentence vectors for passages that have none yet, in one transaction."""
    with transaction(db):
        db.executemany("INSERT OR REPLACE INTO sentence_vectors(passage_id, space, vecs)"
                       " VALUES (?,?,?)", list(_sentence_rows(db, space, rows)))


def _sentence_rows(db: sqlite3.Connection, space: str,
                   rows: Iterable[tuple[int, np.ndarray]]
                   ) -> Iterable[tuple[int, str, bytes]]:
    """(passage id, space, stored matrix): a one-sentence matrix is compared with the
    stored passage vector (see ``sentence_blob``)."""
    for pid, mat in rows:
        whole = None
        if len(mat) == 1:
            row = db.execute("SELECT vec FROM vectors WHERE passage_id = ? AND space = ?",
                             (pid, space)).fetchone()
            whole = from_f16(row[0]) if row else None
        yield pid, space, sentence_blob(mat, whole)
