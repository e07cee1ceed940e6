"""Telegram's limits on what the bot sends, applied to every Bot API call in advance.

PTB routes every request through the Application's ``BaseRateLimiter``, so this
sees answers, edits, ``answerCallbackQuery`` and ``setMyCommands`` alike. It keeps
Telegram's published limits, so 40 digests due at 08:00 go out paced instead of
in a burst that ends in 429s:

* about 30 requests a second overall (``per_second``);
* 20 messages a minute in one group or channel (``per_group``), counted
  for the calls that post or change a message there;
* and when Telegram still answers ``RetryAfter``, only that chat waits (and its
  later sends wait out the same deadline) while every other chat goes on; the
  call is retried up to ``max_retries`` times, unless told to wait too long.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from ._ratelimit import retry_seconds

log = logging.getLogger("bot")

# Calls that read or poll: they send nothing to anyone, so no limit applies.
_FREE = frozenset({"getupdates", "getme", "getwebhookinfo", "setwebhook", "deletewebhook",
                   "getfile", "getchat", "getchatmember", "getchatadministrators", "logout",
                   "close", "getmycommands"})
# Calls that count against a group's messages a minute.
_POSTS = ("send", "edit", "copy", "forward")
_NOT_POSTS = frozenset({"sendchataction"})
Result = bool | dict[str, Any] | list[dict[str, Any]]


class _Window:
    """At most ``limit`` acquisitions in any ``period`` seconds (a sliding window)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._times: deque[float] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._times and self._times[0] <= now - self.period:
                self._times.popleft()
            if len(self._times) < self.limit:  # no await since the check: no race
                self._times.append(now)
                return
            await asyncio.sleep(self._times[0] + self.period - now)

    def idle(self, now: float) -> bool:
        return not self._times or self._times[-1] <= now - self.period


class SendLimiter(BaseRateLimiter[int]):
    def __init__(self, *, per_second: int = 30, per_group: int = 20,
                 group_period: float = 60.0, max_retries: int = 3,
                 max_wait: float = 120.0) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._overall = _Window(per_second, 1.0)
        self._per_group, self._group_period = per_group, group_period
        self._groups: dict[int | str, _Window] = {}
        self._not_before: dict[int | str | None, float] = {}  # chat -> end of its RetryAfter
        self.calls: dict[str, int] = {}  # endpoint -> calls made through the limiter

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self, callback: Callable[..., Coroutine[Any, Any, Result]], args: Any,
        kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        name = endpoint.lower()
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in _FREE:
            return await callback(*args, **kwargs)
        chat = _chat_key(data.get("chat_id"))
        group = chat if _is_group(chat) and name.startswith(_POSTS) \
            and name not in _NOT_POSTS else None
        loop = asyncio.get_running_loop()
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(retries + 1):
            wait = self._not_before.get(chat, 0.0) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if group is not None:
                await self._group(group).acquire()
            await self._overall.acquire()
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self._not_before[chat] = loop.time() + seconds
                if attempt == retries or seconds > self.max_wait:
                    raise
                log.warning("flood control: waiting %.1fs before sending to the chat", seconds,
                            extra={"chat_id": chat, "event": "retry_after",
                                   "endpoint": endpoint})
            else:
                if self._not_before.get(chat, 0.0) <= loop.time():
                    self._not_before.pop(chat, None)
                return result
        raise AssertionError("unreachable")

    def _group(self, chat: int | str) -> _Window:
        window = self._groups.get(chat)
        if window is None:
            if len(self._groups) > 10_000:  # forget quiet groups now and then
                now = asyncio.get_running_loop().time()
                self._groups = {k: w for k, w in self._groups.items() if not w.idle(now)}
            window = self._groups[chat] = _Window(self._per_group, self._group_period)
        return window


def _chat_key(value: Any) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value).lower()  # "@channel"


def _is_group(chat: int | str | None) -> bool:
    """Groups and channels have negative ids ("@name" is always a channel or group)."""
    return isinstance(chat, str) or (isinstance(chat, int) and chat < 0)
