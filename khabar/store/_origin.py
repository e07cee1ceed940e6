"""Origins: who brought an article, and what a chat may see of them.

Origin is an article's label only (no vector, passage or change-log entry holds it;
filters read it from SQLite at query time), so moving it is one UPDATE, indexed.

An origin ``chat:<id>`` is that Telegram chat's own addition, private to it; every
other origin (None for the CLI and folders, ``operator:<id>`` for what an operator
added in private) is the shared archive. A *scope* is a chat's view: the shared
archive plus its own additions, never another chat's.
"""

from __future__ import annotations

import sqlite3

from ._schema import transaction

PRIVATE = "chat:"  # the prefix of an origin only its own chat sees
_PRIVATE_END = "chat;"  # the first string after every "chat:..." (";" follows ":")


def move_origin(db: sqlite3.Connection, old: str, new: str) -> int:
    """Relabel every article of origin ``old`` as ``new``; how many were moved."""
    with transaction(db):
        return db.execute("UPDATE articles SET origin = ? WHERE origin = ?",
                          (new, old)).rowcount


def scope_clause(scope: str) -> tuple[str, list[object]]:
    """SQL (over ``articles a``) for the articles the chat of ``scope`` may see."""
    return ("(a.origin IS NULL OR a.origin < ? OR a.origin >= ? OR a.origin = ?)",
            [PRIVATE, _PRIVATE_END, scope])


def others_private(db: sqlite3.Connection, scope: str) -> bool:
    """Whether any article is private to a chat other than ``scope``'s: when none is,
    the scope hides nothing and searches need no filter. Two probes of the origin
    index, whatever the store's size."""
    return db.execute(
        "SELECT 1 FROM articles WHERE (origin >= ? AND origin < ?) OR (origin > ? AND"
        " origin < ?) LIMIT 1", (PRIVATE, scope, scope, _PRIVATE_END)).fetchone() is not None


def others_clause(scope: str) -> tuple[str, tuple[str, ...]]:
    """SQL (over articles as ``a``) and its arguments: the article is private to a chat
    other than ``scope``'s. A range of the origin index less one value."""
    return ("a.origin >= ? AND a.origin < ? AND a.origin != ?",
            (PRIVATE, _PRIVATE_END, scope))


def others_private_passages(db: sqlite3.Connection, scope: str) -> list[int]:
    """Ids of the passages private to chats other than ``scope``'s: what its searches
    hide, read through the origin index (as many rows as there are such passages)."""
    others, args = others_clause(scope)
    return [r[0] for r in db.execute(
        f"SELECT p.id FROM articles a JOIN passages p ON p.article_id = a.id WHERE {others}",
        args)]


def is_private(origin: str | None) -> bool:
    return origin is not None and origin.startswith(PRIVATE)


def shared_again(db: sqlite3.Connection, article_id: int, current: str | None,
                 new: str | None) -> None:
    """The same text came again from the shared archive while only one chat had it: it
    becomes the shared archive's (every chat may see it now), not left hidden."""
    if is_private(current) and not is_private(new):
        db.execute("UPDATE articles SET origin = ? WHERE id = ?", (new, article_id))
