"""What changed in a store since a reader last looked: the change log and its marks.

Passage ids are handed out in increasing order and never reused (``AUTOINCREMENT``),
and every passage deleted is logged in ``removed_passages`` by a trigger, in the
deleting transaction. So a :class:`ChangeMark` (the last passage id handed out and
the last removal logged, as one snapshot saw them) says exactly which passages a
reader holds, and what changed since follows from it: the passages with a higher
id, and the removals logged later of passages it held.

A passage is never changed in place (a new version of an article is a delete and
an insert), so added and removed are all there is, except when the vectors are
replaced wholesale (reindexing) or the vector spaces change: that bumps the
store's *epoch*, and readers of an older epoch start again (``reset``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from ._schema import snapshot, tokens_text, transaction, words_text

Content = Literal["text", "tokens", "words"]
"""What :class:`Changes` carries of each passage added: its text, its lexical tokens or
its content words (both space-separated, as stored in ``passage_tokens``)."""


@dataclass(frozen=True)
class ChangeMark:
    """Where a reader of the store stands; compare marks with ``==``."""

    store: str  # the store's id: a mark of another store (or of this path made anew)
    epoch: int  # bumped by reindexing and by changes of the vector spaces
    passage: int  # the last passage id handed out
    removed: int  # the last removal logged

    def covers(self, other: ChangeMark) -> bool:
        """Whether this mark has seen everything ``other`` has (same store and epoch)."""
        return (self.store == other.store and self.epoch == other.epoch
                and self.passage >= other.passage and self.removed >= other.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "epoch": self.epoch, "passage": self.passage,
                "removed": self.removed}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ChangeMark:
        return cls(str(raw["store"]), int(raw["epoch"]), int(raw["passage"]),
                   int(raw["removed"]))


@dataclass(frozen=True)
class Changes:
    """What changed between two marks; see :meth:`khabar.store.Store.changes_since`."""

    added: list[tuple[int, str, str]]  # (passage id, language, text or tokens), by id
    removed: list[int]  # passage ids
    mark: ChangeMark  # where the reader stands once it has applied these
    reset: bool  # drop everything held first: ``added`` is then the whole store

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.reset)


_MARK_SQL = (
    "SELECT (SELECT value FROM meta WHERE key = 'store_id'),"
    " (SELECT value FROM meta WHERE key = 'epoch'),"
    " (SELECT seq FROM sqlite_sequence WHERE name = 'passages'),"
    " (SELECT seq FROM sqlite_sequence WHERE name = 'removed_passages')")


def current_mark(db: sqlite3.Connection) -> ChangeMark:
    """The mark of the database as it is now (one statement: one state)."""
    store, epoch, passage, removed = db.execute(_MARK_SQL).fetchone()
    return ChangeMark(store or "", int(epoch or 0), int(passage or 0), int(removed or 0))


def needs_reset(db: sqlite3.Connection, mark: ChangeMark | None, now: ChangeMark) -> bool:
    """Whether a reader at ``mark`` must start again rather than apply a delta."""
    if mark is None or mark.store != now.store or mark.epoch != now.epoch:
        return True
    if mark.passage > now.passage or mark.removed > now.removed:
        return True  # a mark from the future: the database was restored from a backup
    floor = db.execute("SELECT value FROM meta WHERE key = 'removed_floor'").fetchone()
    return mark.removed < int(floor[0] if floor else 0)  # the log it needs was compacted


def changes_since(db: sqlite3.Connection, mark: ChangeMark | None,
                  content: Content = "text") -> Changes:
    """What changed since ``mark``, read in one snapshot (or in the caller's
    transaction). See :meth:`khabar.store.Store.changes_since`."""
    with snapshot(db):
        now = current_mark(db)
        if needs_reset(db, mark, now):
            return Changes(_added(db, 0, content), [], now, True)
        assert mark is not None
        if mark == now:
            return Changes([], [], now, False)
        added = _added(db, mark.passage, content)
        removed = [pid for pid, _ in removed_since(db, mark)]
        return Changes(added, removed, now, False)


def _added(db: sqlite3.Connection, after: int, content: Content
           ) -> list[tuple[int, str, str]]:
    """(id, language, content) of the passages above id ``after``, by id."""
    if content == "text":
        return [(r[0], r[1], r[2]) for r in db.execute(
            "SELECT id, lang, text FROM passages WHERE id > ? ORDER BY id", (after,))]
    # The text only where the stored analysis is missing (``check`` names such
    # passages): analysed here then.
    rows = db.execute(
        f"SELECT p.id, p.lang, t.{content}, CASE WHEN t.passage_id IS NULL THEN p.text END"
        " FROM passages p LEFT JOIN passage_tokens t ON t.passage_id = p.id"
        " WHERE p.id > ? ORDER BY p.id", (after,))
    analyse = tokens_text if content == "tokens" else words_text
    return [(r[0], r[1], r[2] if r[3] is None else analyse(r[3])) for r in rows]


def removed_since(db: sqlite3.Connection, mark: ChangeMark) -> list[tuple[int, str]]:
    """(id, language) of the passages held at ``mark`` and removed since, in order.

    Passages added and removed after the mark were never held: not listed.
    """
    return [(r[0], r[1]) for r in db.execute(
        "SELECT passage_id, lang FROM removed_passages WHERE seq > ? AND passage_id <= ?"
        " ORDER BY seq", (mark.removed, mark.passage))]


def bump_epoch(db: sqlite3.Connection) -> None:
    """Tell every reader to start again (inside the writing transaction)."""
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'epoch'")


def compact(db: sqlite3.Connection, upto: ChangeMark) -> int:
    """Forget the removals ``upto`` has seen (inside a transaction): readers at an
    older mark start again. Returns how many log rows were dropped."""
    upto_seq = min(upto.removed, current_mark(db).removed)
    n = db.execute("DELETE FROM removed_passages WHERE seq <= ?", (upto_seq,)).rowcount
    db.execute("UPDATE meta SET value = ? WHERE key = 'removed_floor'"
               " AND CAST(value AS INTEGER) < ?", (str(upto_seq), upto_seq))
    return n


KEEP_REMOVED = 100_000
"""The removal log keeps the newest this many rows; :func:`trim` (called at the end
of every batch of writes) drops older ones once there are half as many again. A reader
further behind than that starts again (``reset``), which costs it about what applying
that many removals would."""


def trim(db: sqlite3.Connection, keep: int = KEEP_REMOVED) -> int:
    """Forget all but the newest ``keep`` removals, in a transaction of its own, once
    the log holds more than 1.5 × ``keep`` rows (so that the log stays small without a
    write at every batch). Returns how many rows were dropped."""
    last = current_mark(db).removed
    floor = db.execute("SELECT value FROM meta WHERE key = 'removed_floor'").fetchone()
    if last - int(floor[0] if floor else 0) <= keep * 3 // 2:
        return 0
    with transaction(db):
        upto = current_mark(db)
        return compact(db, ChangeMark(upto.store, upto.epoch, upto.passage,
                                      max(0, upto.removed - keep)))
