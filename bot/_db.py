"""The bot's own small database (``KHABAR_HOME/bot.sqlite3``), apart from the store.

It holds what must survive a restart: users' language choices, digest schedules,
and one row per digest window posted. The UNIQUE (chat, window) claim is taken
*before* posting, so two runs (a restart, or two instances on one home) cannot
both post the same window; a failed post gives its claim back.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._texts import UiLang

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_prefs (
    user_id INTEGER PRIMARY KEY,
    lang TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    chat_id INTEGER PRIMARY KEY,
    hour INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    lang TEXT NOT NULL,
    origin TEXT,
    created_by INTEGER,
    created_at TEXT NOT NULL,
    tz TEXT NOT NULL DEFAULT 'UTC', -- an IANA zone ("Asia/Beirut") or an offset ("+03:00")
    thread_id INTEGER               -- the forum topic it posts in (None: the chat itself)
);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,      -- random: a button of one answer can never open another's
    chat_id INTEGER NOT NULL,
    kind TEXT NOT NULL,        -- "answer", "digest" or "forward"
    lang TEXT NOT NULL,
    shown INTEGER NOT NULL DEFAULT 0,  -- citations shown before the "more" pages
    more TEXT NOT NULL DEFAULT '[]',   -- [[passage id, outlets, score], ...], re-read on paging
    context TEXT,              -- what a reply to it is read with (its question, its stories)
    payload TEXT,              -- kind-specific JSON (a forwarded post to index)
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers(created_at);
CREATE TABLE IF NOT EXISTS bot_messages (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE TABLE IF NOT EXISTS approved_chats (  -- served besides KHABAR_ALLOWED_CHATS
    chat_id INTEGER PRIMARY KEY,
    approved_by INTEGER,       -- the operator who sent /allow
    approved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digest_posts (
    chat_id INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    UNIQUE (chat_id, window_start)
);
"""


@dataclass(frozen=True)
class Digest:
    chat_id: int
    hour: int
    minute: int
    lang: UiLang
    origin: str | None  # None: the whole index (private chats)
    tz: str = "UTC"  # the chat's time zone: an IANA name or a fixed offset ("+03:00")
    thread: int | None = None  # the forum topic it was scheduled in, where it posts
    created_by: int | None = None  # who scheduled it: told if it has to stop
    created_at: str | None = None  # ISO time: no window before it is "missed"

    @property
    def time(self) -> str:
        """When it is posted, with its zone: "08:00 Asia/Beirut"."""
        return f"{self.hour:02d}:{self.minute:02d} {self.tz}"

    @property
    def zone(self) -> tzinfo:
        return zone_of(self.tz)


def zone_of(name: str) -> tzinfo:
    """The tzinfo for a stored zone name; UTC for one this system no longer knows."""
    m = _OFFSET.fullmatch(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


class BotDB:
    """Thread-safe; every call is one short statement."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._kept = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(digests)")}
        if "tz" not in columns:  # a bot.sqlite3 from before time zones: they were UTC
            self._db.execute("ALTER TABLE digests ADD COLUMN tz TEXT NOT NULL DEFAULT 'UTC'")
        if "thread_id" not in columns:  # from before forum topics: the chat itself
            self._db.execute("ALTER TABLE digests ADD COLUMN thread_id INTEGER")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # -- language -----------------------------------------------------------------
    def lang(self, user_id: int) -> UiLang | None:
        row = self._run("SELECT lang FROM user_prefs WHERE user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def set_lang(self, user_id: int, lang: UiLang | None) -> None:
        if lang is None:
            self._run("DELETE FROM user_prefs WHERE user_id = ?", (user_id,))
        else:
            self._run("INSERT INTO user_prefs(user_id, lang) VALUES (?, ?) ON CONFLICT(user_id)"
                      " DO UPDATE SET lang = excluded.lang", (user_id, lang))

    # -- chats an operator approved -------------------------------------------------
    def approved(self, chat_id: int) -> bool:
        return self._run("SELECT 1 FROM approved_chats WHERE chat_id = ?",
                         (chat_id,)).fetchone() is not None

    def approve(self, chat_id: int, by: int | None) -> bool:
        """True when newly approved."""
        return self._run("INSERT OR IGNORE INTO approved_chats(chat_id, approved_by,"
                         " approved_at) VALUES (?, ?, ?)",
                         (chat_id, by, datetime.now(UTC).isoformat())).rowcount == 1

    def revoke(self, chat_id: int) -> bool:
        return self._run("DELETE FROM approved_chats WHERE chat_id = ?",
                         (chat_id,)).rowcount > 0

    def approved_chats(self) -> list[int]:
        return [r[0] for r in self._run("SELECT chat_id FROM approved_chats ORDER BY chat_id")]

    # -- answers, for their buttons and replies -----------------------------------
    KEEP_ANSWERS = timedelta(days=30)  # older buttons say "this answer has expired"

    def keep_answer(self, chat_id: int, kind: str, lang: UiLang, *, shown: int = 0,
                    more: list[tuple[int, list[str], float]] | None = None,
                    context: str | None = None,
                    payload: dict[str, object] | None = None) -> str:
        """Store an answer; its key (random, so never one of an older answer) is returned."""
        now = datetime.now(UTC)
        while True:
            key = secrets.token_urlsafe(9)  # 12 characters: callback data stays short
            cur = self._run(
                "INSERT OR IGNORE INTO answers(key, chat_id, kind, lang, shown, more, context,"
                " payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, chat_id, kind, lang, shown, json.dumps(more or [], ensure_ascii=False),
                 context, None if payload is None else json.dumps(payload, ensure_ascii=False),
                 now.isoformat()))
            if cur.rowcount == 1:
                break
        self._kept += 1
        if self._kept % 500 == 1:  # now and then, not on every answer
            self.forget_answers(now - self.KEEP_ANSWERS)
        return key

    def answer(self, chat_id: int, key: str) -> Kept | None:
        row = self._run("SELECT key, chat_id, kind, lang, shown, more, context, payload"
                        " FROM answers WHERE key = ? AND chat_id = ?", (key, chat_id)).fetchone()
        return _kept(row) if row else None

    def link_messages(self, chat_id: int, message_ids: list[int], key: str) -> None:
        """The messages an answer was sent as: a reply to any of them is about it."""
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO bot_messages(chat_id, message_id, key)"
                                 " VALUES (?, ?, ?)", [(chat_id, m, key) for m in message_ids])

    def answer_of_message(self, chat_id: int, message_id: int) -> Kept | None:
        row = self._run(
            "SELECT a.key, a.chat_id, a.kind, a.lang, a.shown, a.more, a.context, a.payload"
            " FROM bot_messages m JOIN answers a ON a.key = m.key"
            " WHERE m.chat_id = ? AND m.message_id = ?", (chat_id, message_id)).fetchone()
        return _kept(row) if row else None

    def forget_answers(self, before: datetime) -> int:
        with self._lock:
            keys = "SELECT key FROM answers WHERE created_at < ?"
            self._db.execute(f"DELETE FROM bot_messages WHERE key IN ({keys})",
                             (before.isoformat(),))
            return self._db.execute("DELETE FROM answers WHERE created_at < ?",
                                    (before.isoformat(),)).rowcount

    # -- digests ------------------------------------------------------------------
    _DIGEST = ("SELECT chat_id, hour, minute, lang, origin, tz, thread_id, created_by,"
               " created_at FROM digests")

    def digests(self) -> list[Digest]:
        rows = self._run(self._DIGEST + " ORDER BY chat_id").fetchall()
        return [Digest(*r) for r in rows]

    def digest(self, chat_id: int) -> Digest | None:
        row = self._run(self._DIGEST + " WHERE chat_id = ?", (chat_id,)).fetchone()
        return Digest(*row) if row else None

    def set_digest(self, digest: Digest, created_by: int | None) -> None:
        self._run(
            "INSERT INTO digests(chat_id, hour, minute, lang, origin, created_by, created_at, tz,"
            " thread_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET"
            " hour = excluded.hour, minute = excluded.minute, lang = excluded.lang,"
            " origin = excluded.origin, created_by = excluded.created_by,"
            " created_at = excluded.created_at, tz = excluded.tz,"
            " thread_id = excluded.thread_id",
            (digest.chat_id, digest.hour, digest.minute, digest.lang, digest.origin, created_by,
             digest.created_at or datetime.now(UTC).isoformat(), digest.tz, digest.thread))

    def remove_digest(self, chat_id: int) -> bool:
        return self._run("DELETE FROM digests WHERE chat_id = ?", (chat_id,)).rowcount > 0

    def move_chat(self, old: int, new: int, old_origin: str, new_origin: str) -> int:
        """Everything kept for chat ``old`` is ``new``'s (a group upgraded to a supergroup);
        a digest the new chat already has wins. Returns the rows moved."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                n = db.execute("UPDATE OR IGNORE digests SET chat_id = ?, origin = CASE"
                               " WHEN origin = ? THEN ? ELSE origin END WHERE chat_id = ?",
                               (new, old_origin, new_origin, old)).rowcount
                db.execute("DELETE FROM digests WHERE chat_id = ?", (old,))
                for table in ("digest_posts", "answers", "bot_messages", "approved_chats"):
                    n += db.execute(f"UPDATE OR IGNORE {table} SET chat_id = ?"
                                    " WHERE chat_id = ?", (new, old)).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return n

    def claim_window(self, chat_id: int, window_start: datetime) -> bool:
        """True for exactly one caller per (chat, window), ever (until released)."""
        cur = self._run("INSERT OR IGNORE INTO digest_posts(chat_id, window_start, claimed_at)"
                        " VALUES (?, ?, ?)", (chat_id, _key(window_start),
                                              datetime.now(UTC).isoformat()))
        return cur.rowcount == 1

    def window_claimed(self, chat_id: int, window_start: datetime) -> bool:
        return self._run("SELECT 1 FROM digest_posts WHERE chat_id = ? AND window_start = ?",
                         (chat_id, _key(window_start))).fetchone() is not None

    def release_window(self, chat_id: int, window_start: datetime) -> None:
        self._run("DELETE FROM digest_posts WHERE chat_id = ? AND window_start = ?",
                  (chat_id, _key(window_start)))

    def posted_windows(self, chat_id: int) -> list[str]:
        return [r[0] for r in self._run("SELECT window_start FROM digest_posts WHERE chat_id = ?"
                                        " ORDER BY window_start", (chat_id,))]


@dataclass(frozen=True)
class Kept:
    """An answer (or digest) kept for its buttons and for replies to it."""

    key: str
    chat_id: int
    kind: str
    lang: UiLang
    shown: int
    more: list[tuple[int, list[str], float]]
    context: str | None
    payload: dict[str, object] | None


def _kept(row: tuple[Any, ...]) -> Kept:
    key, chat_id, kind, lang, shown, more, context, payload = row
    return Kept(key, chat_id, kind, lang, shown,
                [(int(i), list(o), float(s)) for i, o, s in json.loads(more)],
                context, None if payload is None else json.loads(payload))


def _key(moment: datetime) -> str:
    """One spelling per instant, whatever the timezone it comes in."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
