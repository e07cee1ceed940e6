"""Looking at a whole store: every fault in it (``khabar check``), and its figures.

Both read everything and bring the FAISS indexes up to date first, so they are
for the command line and the bot's admin, not for answering.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ._origin import others_clause, others_private, scope_clause
from ._read import count_articles, count_passages, count_sentence_vectors, outlets
from ._schema import q8_width
from ._vectors import SpaceInfo, VectorIndexes, fingerprint_faults, read_spaces


def check(db: sqlite3.Connection, indexes: VectorIndexes,
          expected: Sequence[SpaceInfo] = ()) -> list[str]:
    """Every fault found: an empty list means the store is whole."""
    faults: list[str] = []
    if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
        faults.append("SQLite integrity check failed")
    spaces = read_spaces(db)
    n = count_passages(db)
    for name, info in spaces.items():
        missing = db.execute(
            "SELECT count(*) FROM passages p WHERE NOT EXISTS (SELECT 1 FROM vectors v"
            " WHERE v.passage_id = p.id AND v.space = ?)", (name,)).fetchone()[0]
        if missing:
            faults.append(f"{missing} passage(s) have no {name} vector")
        bad = db.execute("SELECT count(*) FROM vectors WHERE space = ? AND length(vec) != ?",
                         (name, info.dim * 2)).fetchone()[0]
        if bad:
            faults.append(f"{bad} {name} vector(s) have the wrong width")
    for name, info in spaces.items():
        have = db.execute("SELECT count(*) FROM sentence_vectors WHERE space = ?",
                          (name,)).fetchone()[0]
        if 0 < have < n:  # all or none: a store from before sentence vectors has none
            faults.append(f"{n - have} passage(s) have no {name} sentence vectors")
        # An empty matrix is a passage of one sentence, whose vector is the passage's.
        bad = db.execute("SELECT count(*) FROM sentence_vectors WHERE space = ? AND"
                         " length(vecs) % ? != 0", (name, q8_width(info.dim))).fetchone()[0]
        if bad:
            faults.append(f"{bad} {name} sentence vector matrices have the wrong width")
    orphans = db.execute("SELECT count(*) FROM vectors v WHERE NOT EXISTS (SELECT 1 FROM"
                         " passages p WHERE p.id = v.passage_id)").fetchone()[0]
    if orphans:
        faults.append(f"{orphans} vector(s) belong to no passage")
    unanalysed = db.execute("SELECT count(*) FROM passages p WHERE NOT EXISTS (SELECT 1"
                            " FROM passage_tokens t WHERE t.passage_id = p.id)").fetchone()[0]
    if unanalysed:
        faults.append(f"{unanalysed} passage(s) have no lexical tokens (lexical search "
                      "analyses their text whenever it reads them)")
    empty = db.execute("SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM"
                       " passages p WHERE p.article_id = a.id)").fetchone()[0]
    if empty:
        faults.append(f"{empty} article(s) have no passages")
    indexes.refresh(db)
    faults += indexes.faults(db, spaces, n)
    faults += fingerprint_faults(spaces, expected, n)
    return faults


def stats(db: sqlite3.Connection, indexes: VectorIndexes, path: Path) -> dict[str, object]:
    """What ``khabar stats`` shows: counts, languages, dates, spaces, size on disk."""
    langs = dict(db.execute("SELECT lang, count(*) FROM passages GROUP BY lang").fetchall())
    first, last = db.execute("SELECT min(published), max(published) FROM articles").fetchone()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    indexes.refresh(db)
    return {
        "articles": count_articles(db),
        "passages": count_passages(db),
        "outlets": len(outlets(db)),
        "languages": langs,
        "published_from": first,
        "published_to": last,
        "index_type": indexes.built_kind(),
        "spaces": {k: vars(v) for k, v in read_spaces(db).items()},
        "sentence_vectors": count_sentence_vectors(db),
        "linked_duplicates": db.execute(
            "SELECT count(*) FROM passages WHERE dup_of IS NOT NULL").fetchone()[0],
        "size_bytes": size,
        "path": str(path),
    }


def scope_stats(db: sqlite3.Connection, scope: str) -> dict[str, object]:
    """:func:`stats`' counts, languages and dates over what the chat of ``scope`` sees
    (never what other chats keep private): the whole store's less those chats'
    articles and passages, counted through the origin index, and each end of the
    publication range the first dated article it sees along ``articles_published``
    (past the hidden ones only). A few indexed queries, never a passage's text."""
    langs = dict(db.execute("SELECT lang, count(*) FROM passages GROUP BY lang").fetchall())
    articles = count_articles(db)
    if not others_private(db, scope):
        first, last = db.execute(
            "SELECT min(published), max(published) FROM articles").fetchone()
        return {"articles": articles, "passages": sum(langs.values()),
                "outlets": len(outlets(db)), "languages": langs,
                "published_from": first, "published_to": last}
    others, args = others_clause(scope)
    articles -= db.execute(f"SELECT count(*) FROM articles a WHERE {others}",
                           args).fetchone()[0]
    for lang, n in db.execute("SELECT p.lang, count(*) FROM articles a JOIN passages p"
                              f" ON p.article_id = a.id WHERE {others} GROUP BY p.lang", args):
        langs[lang] -= n
    where, more = scope_clause(scope)
    ends = [db.execute(  # INDEXED BY: the planner would take the origin index for the OR
        "SELECT a.published FROM articles a INDEXED BY articles_published WHERE"
        f" a.published IS NOT NULL AND {where} ORDER BY a.published {order} LIMIT 1",
        more).fetchone() for order in ("ASC", "DESC")]
    return {"articles": articles, "passages": sum(langs.values()),
            "outlets": len(outlets(db, scope)),
            "languages": {k: n for k, n in langs.items() if n > 0},
            "published_from": ends[0][0] if ends[0] else None,
            "published_to": ends[1][0] if ends[1] else None}
