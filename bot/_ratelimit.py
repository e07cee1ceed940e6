"""Our limit on users, and the order of what is sent to a chat.

``RateLimiter`` keeps each user to N questions a minute (a sliding window), and
says when to tell them so only once per wait, so a flood of messages does not get
a flood of refusals. ``FloodGate`` keeps the parts of one answer together. Telegram's
limits on the bot (and its ``RetryAfter``, per chat) are ``_sendlimit.SendLimiter``'s,
which every Bot API call goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from telegram.error import RetryAfter

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Verdict:
    allowed: bool
    retry_after: float = 0.0  # seconds until the next question is allowed
    notify: bool = False  # tell the user (the first refusal of a wait)


class RateLimiter:
    def __init__(self, per_minute: int, *, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self._hits: dict[int, deque[float]] = {}
        self._told: dict[int, float] = {}  # user -> end of the wait they were told about

    def check(self, user_id: int) -> Verdict:
        if self.per_minute <= 0:  # 0 or less: no limit
            return Verdict(True)
        now = self.clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.per_minute:
            hits.append(now)
            self._told.pop(user_id, None)
            self._prune(now)
            return Verdict(True)
        until = hits[0] + self.window
        told = self._told.get(user_id)
        notify = told is None or told <= now
        if notify:
            self._told[user_id] = until
        return Verdict(False, max(until - now, 0.0), notify)

    def _prune(self, now: float) -> None:
        # Forget idle users now and then so the table does not grow without end.
        if len(self._hits) > 10_000:
            for uid in [u for u, h in self._hits.items() if not h or h[-1] <= now - self.window]:
                del self._hits[uid]


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form; accept both
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class FloodGate:
    """One sender at a time per chat, so the parts of two answers do not interleave.
    (Telegram's limits and its ``RetryAfter`` are kept by ``_sendlimit.SendLimiter``.)"""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def chat(self, chat_id: int) -> AsyncIterator[None]:
        """Hold the chat while sending several parts, so two answers do not interleave."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:
                del self._users[chat_id], self._locks[chat_id]
