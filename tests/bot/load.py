"""Many chats asking at once through FakeTelegram: the scenario behind the load promise of
issue #13, shared by tests/bot/test_load.py (30 chats) and ``bench/reliability.py load``.

One run, on the real bot (PTB's real client, ``SendLimiter``, the per-user ``RateLimiter``):

* ``chats`` chats ask one question each at the same moment (every fifth one a group, with
  ``/ask``), after one of them (the *flooded* chat) was already told ``RetryAfter`` by
  Telegram, so its answer waits ``retry_after`` seconds while the others must go on;
* one more chat's answer has its connection dropped (a network error): it must be told
  politely that something went wrong, and answer its next question;
* one user floods ``flood`` questions at once: answered up to the per-user limit,
  refused once, politely, and the rest ignored.

Latency is from the update being queued to the answer reaching the fake (wall time).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from khabar.bot._texts import t

from tests.bot.fake_telegram import ApiError, FakeTelegram

FLOOD_USER = 990_001
FLOODED = 900_000  # the chat Telegram already answered RetryAfter
DROPPED = 900_001  # the chat whose answer's connection is dropped
_GROUP_BASE = -1_009_000_000_000


class TimedTelegram(FakeTelegram):
    """FakeTelegram noting when each chat's messages arrive and when a call failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: dict[int, list[float]] = {}
        self.failed_at: dict[int, list[float]] = {}

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = super()._send_message(params)
        self.sent_at.setdefault(msg["chat"]["id"], []).append(asyncio.get_running_loop().time())
        return msg

    def _check_injected_failure(self, method: str, params: dict[str, Any]) -> None:
        try:
            super()._check_injected_failure(method, params)
        except ApiError:
            chat = int(params.get("chat_id", 0))
            self.failed_at.setdefault(chat, []).append(asyncio.get_running_loop().time())
            raise


@dataclass
class LoadResult:
    chats: int
    answered: int = 0  # chats whose question got an answer
    dropped: int = 0  # chats that got nothing at all
    wrong: list[str] = field(default_factory=list)  # chats that got something else
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered chat
    wall_s: float = 0.0
    first_s: float = float("inf")  # the first answer's latency
    others_during_wait: int = 0  # other chats answered while the flooded chat waited
    flooded_answered: bool = False
    flooded_waited_s: float = 0.0
    dropped_told: bool = False  # the network-error chat was told politely
    dropped_next_answered: bool = False  # and its next question was answered
    flood_sent: int = 0
    flood_answers: int = 0
    flood_refusals: int = 0
    flood_other: int = 0

    @property
    def ok(self) -> bool:
        return (not self.dropped and not self.wrong and self.answered == self.chats
                and self.flooded_answered and self.others_during_wait > 0
                and self.dropped_told and self.dropped_next_answered
                and self.flood_refusals == 1 and self.flood_other == 0)


def _kind(text: str) -> str:
    if any(text.startswith(t(lang, "rate_limited", seconds=0)[:25]) for lang in ("en", "ar")):
        return "refused"
    if any(text == t(lang, "error") for lang in ("en", "ar")):
        return "error"
    return "answer"


def _texts(fake: FakeTelegram, chat: int) -> list[str]:
    return [m.get("text", "") for m in fake.sent_messages(chat)]


async def _until(condition: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_load(fake: TimedTelegram, questions: list[str], *, chats: int, flood: int,
                   per_minute: int, retry_after: int = 8, timeout: float = 600) -> LoadResult:
    """Drive the scenario against a bot already polling ``fake``; the bot's per-user
    limit must be ``per_minute`` (below ``flood``)."""
    loop = asyncio.get_running_loop()
    res = LoadResult(chats=chats)
    qs = itertools.cycle(questions)
    # The flooded chat: its answer is refused once with RetryAfter, before the crowd comes.
    fake.flood(FLOODED, times=1, retry_after=retry_after)
    fake.private_text(FLOODED, next(qs))
    if not await _until(lambda: FLOODED in fake.failed_at, timeout):
        res.wrong.append("the flooded chat never tried to answer")
        return res
    fake.drop_next("sendMessage", chat_id=DROPPED)
    fake.private_text(DROPPED, next(qs))
    chat_ids: list[int] = []
    started: dict[int, float] = {}
    t0 = loop.time()
    for i in range(chats):
        question = next(qs)
        if i % 5 == 4:
            chat = _GROUP_BASE - i
            fake.group_text(chat, 800_000 + i, f"/ask {question}")
        else:
            chat = 800_000 + i
            fake.private_text(chat, question)
        chat_ids.append(chat)
        started[chat] = loop.time()
    for _ in range(flood):
        fake.private_text(FLOOD_USER, next(qs))
    res.flood_sent = flood

    def done() -> bool:
        return all(fake.sent_at.get(c) for c in [*chat_ids, FLOODED, DROPPED]) and len(
            fake.sent_at.get(FLOOD_USER, [])) >= min(flood, per_minute) + 1

    await _until(done, timeout)
    res.wall_s = loop.time() - t0
    await asyncio.sleep(1.0)  # anything more (a second refusal, a duplicate) shows up now
    for chat in chat_ids:
        texts = _texts(fake, chat)
        if not texts:
            res.dropped += 1
        elif _kind(texts[0]) != "answer":
            res.wrong.append(f"{chat}: {texts[0][:80]!r}")
        else:
            res.answered += 1
            res.first_s = min(res.first_s, fake.sent_at[chat][0] - started[chat])
            res.latencies.append(fake.sent_at[chat][0] - started[chat])
    # The flooded chat got its answer after the wait, while the others went on.
    failed = fake.failed_at[FLOODED][0]
    flooded = fake.sent_at.get(FLOODED, [])
    res.flooded_answered = bool(flooded) and _kind(_texts(fake, FLOODED)[0]) == "answer"
    if flooded:
        res.flooded_waited_s = flooded[0] - failed
    # Answered before the wait was over (a second to spare): not held by that chat's wait.
    res.others_during_wait = sum(times[0] < failed + retry_after - 1.0
                                 for c, times in fake.sent_at.items() if c in started and times)
    told = _texts(fake, DROPPED)
    res.dropped_told = bool(told) and _kind(told[0]) == "error"
    if res.dropped_told:
        fake.private_text(DROPPED, next(qs))
        await _until(lambda: len(fake.sent_at.get(DROPPED, [])) >= 2, timeout)
        res.dropped_next_answered = _kind(_texts(fake, DROPPED)[-1]) == "answer"
    kinds = [_kind(x) for x in _texts(fake, FLOOD_USER)]
    res.flood_answers = kinds.count("answer")
    res.flood_refusals = kinds.count("refused")
    res.flood_other = kinds.count("error") + max(0, res.flood_answers - per_minute)
    return res
