"""Reindexing as one switch.

New vectors are written beside the old ones, in work tables, batch by batch: a crash
keeps what was written, and the next ``khabar reindex`` with the same model goes on
from there. When every passage has its new vectors, one transaction replaces the old
vectors with them and records the encoders that made them, so a store is never seen
with some vectors of one model and some of another, or with vectors of a width its
recorded model does not have. Readers meanwhile search the old vectors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import numpy as np

from khabar._errors import StoreError

from ._changes import bump_epoch
from ._schema import f16, meta, sentence_blob, transaction

_TARGET = "reindex_target"  # meta key: the spaces the work tables are for

_TABLES = [
    "CREATE TABLE IF NOT EXISTS reindex_vectors (passage_id INTEGER NOT NULL,"
    " space TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (passage_id, space))",
    "CREATE TABLE IF NOT EXISTS reindex_sentence_vectors (passage_id INTEGER NOT NULL,"
    " space TEXT NOT NULL, vecs BLOB NOT NULL, PRIMARY KEY (passage_id, space))",
]


def _payload(spaces: Sequence[object]) -> str:
    return json.dumps({s.name: vars(s) for s in spaces}, sort_keys=True)  # type: ignore[attr-defined]


def begin(db: sqlite3.Connection, spaces: Sequence[object]) -> dict[str, set[int]]:
    """Start (or go on with) a reindex to ``spaces``: the passage ids each space
    already has new vectors for. Work left by a reindex to other encoders is dropped."""
    target = _payload(spaces)
    with transaction(db):
        for ddl in _TABLES:
            db.execute(ddl)
        if meta(db, _TARGET) != target:
            db.execute("DELETE FROM reindex_vectors")
            db.execute("DELETE FROM reindex_sentence_vectors")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                       (_TARGET, target))
    done: dict[str, set[int]] = {}
    for pid, space in db.execute("SELECT passage_id, space FROM reindex_vectors"):
        done.setdefault(space, set()).add(int(pid))
    return done


def write(db: sqlite3.Connection, space: str, ids: Sequence[int], vectors: np.ndarray,
          sentences: Sequence[np.ndarray] | None) -> None:
    """One batch of new vectors (and sentence vectors), in one transaction."""
    with transaction(db):
        db.executemany("INSERT OR REPLACE INTO reindex_vectors(passage_id, space, vec)"
                       " VALUES (?,?,?)", ((pid, space, f16(v)) for pid, v in
                                           zip(ids, vectors, strict=True)))
        if sentences is not None:
            db.executemany(
                "INSERT OR REPLACE INTO reindex_sentence_vectors(passage_id, space, vecs)"
                " VALUES (?,?,?)", ((pid, space, sentence_blob(m, v)) for pid, m, v in
                                    zip(ids, sentences, vectors, strict=True)))


def missing(db: sqlite3.Connection, space: str) -> list[tuple[int, str]]:
    """(id, text) of the passages without new ``space`` vectors yet (those added
    while the reindex ran among them)."""
    return [(int(r[0]), r[1]) for r in db.execute(
        "SELECT p.id, p.text FROM passages p WHERE NOT EXISTS (SELECT 1 FROM"
        " reindex_vectors r WHERE r.passage_id = p.id AND r.space = ?) ORDER BY p.id",
        (space,))]


def commit(db: sqlite3.Connection, spaces: Sequence[object], sentences: bool) -> None:
    """Replace every vector with the new ones and record ``spaces``, in one
    transaction; StoreError (nothing changed) while a passage lacks its new vectors."""
    target = _payload(spaces)
    names = [s.name for s in spaces]  # type: ignore[attr-defined]
    with transaction(db):
        if meta(db, _TARGET) != target:
            raise StoreError("no reindex to these encoders was started on this store")
        for name in names:
            lacking = db.execute(
                "SELECT COUNT(*) FROM passages p WHERE NOT EXISTS (SELECT 1 FROM"
                " reindex_vectors r WHERE r.passage_id = p.id AND r.space = ?)",
                (name,)).fetchone()[0]
            if lacking:
                raise StoreError(f"reindex unfinished: {lacking} passage(s) lack their "
                                 f"new {name} vectors")
        db.execute("DELETE FROM vectors")
        db.execute("INSERT INTO vectors(passage_id, space, vec) SELECT r.passage_id,"
                   " r.space, r.vec FROM reindex_vectors r JOIN passages p"
                   " ON p.id = r.passage_id")
        db.execute("DELETE FROM sentence_vectors")
        if sentences:
            db.execute("INSERT INTO sentence_vectors(passage_id, space, vecs) SELECT"
                       " r.passage_id, r.space, r.vecs FROM reindex_sentence_vectors r"
                       " JOIN passages p ON p.id = r.passage_id")
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('spaces', ?)",
                   (target,))
        db.execute("DELETE FROM reindex_vectors")
        db.execute("DELETE FROM reindex_sentence_vectors")
        db.execute("DELETE FROM meta WHERE key = ?", (_TARGET,))
        bump_epoch(db)  # other vectors: every reader rebuilds its indexes once


def pending(db: sqlite3.Connection) -> bool:
    """Whether a reindex was started and not finished (a crash, or a stop)."""
    return meta(db, _TARGET) is not None
