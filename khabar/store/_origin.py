"""Moving what one origin brought to another: a Telegram group upgraded to a supergroup.

Origin is an article's label only (no vector, passage or change-log entry holds it;
filters read it from SQLite at query time), so moving it is one UPDATE, indexed.
"""

from __future__ import annotations

import sqlite3

from ._schema import transaction


def move_origin(db: sqlite3.Connection, old: str, new: str) -> int:
    """Relabel every article of origin ``old`` as ``new``; how many were moved."""
    with transaction(db):
        return db.execute("UPDATE articles SET origin = ? WHERE origin = ?",
                          (new, old)).rowcount
