"""Telegram's sending limits, kept in advance for every Bot API call (``SendLimiter``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from khabar.bot._sendlimit import SendLimiter
from telegram.ext import ExtBot

from tests.bot.conftest import USER, RunningBot, buttons
from tests.bot.fake_telegram import FakeTelegram

GROUP = -1001234567890


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def _bot(fake: FakeTelegram, limiter: SendLimiter) -> ExtBot:  # type: ignore[type-arg]
    bot: ExtBot = ExtBot(fake.token, base_url=fake.base_url,  # type: ignore[type-arg]
                         rate_limiter=limiter)
    await bot.initialize()
    return bot


async def test_a_group_gets_at_most_its_share_and_other_chats_are_not_held(
        fake: FakeTelegram) -> None:
    bot = await _bot(fake, SendLimiter(per_group=3, group_period=1.0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    done: dict[str, float] = {}

    async def send(chat: int, text: str) -> None:
        await bot.send_message(chat, text)
        done[text] = loop.time() - started

    await asyncio.gather(*(send(GROUP, f"g{i}") for i in range(6)), send(USER, "private"),
                         *(bot.send_chat_action(GROUP, "typing") for _ in range(5)))
    await bot.shutdown()
    group = sorted(v for k, v in done.items() if k.startswith("g"))
    assert len(fake.sent_messages(GROUP)) == 6
    # Three went at once; the next three waited for the window (lower bounds only).
    assert group[3] >= 1.0 - 0.05 and group[2] < group[3]
    assert done["private"] < group[3]  # a private chat is not held by the group's limit
    assert bot.rate_limiter is not None


async def test_the_overall_limit_paces_a_burst_across_chats(fake: FakeTelegram) -> None:
    bot = await _bot(fake, SendLimiter(per_second=4))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(bot.send_message(-1000 - i, "digest") for i in range(9)))
    elapsed = loop.time() - started
    await bot.shutdown()
    assert elapsed >= 2.0 - 0.05  # 9 calls at 4 a second: two full windows waited


async def test_every_bot_api_call_of_the_bot_goes_through_it(bot: RunningBot) -> None:
    fake = bot.fake
    limiter = bot.app.bot.rate_limiter
    assert isinstance(limiter, SendLimiter)
    fake.private_text(USER, "who struck Aleppo?")
    (answer,) = await fake.wait_for_messages(USER, 1, timeout=90)
    (more,) = [b for b in buttons(answer) if b.get("callback_data", "").startswith("more:")]
    fake.callback_query(USER, USER, answer, more["callback_data"])
    await fake.wait_for_messages(USER, 2)
    await fake.wait_for_call("editMessageReplyMarkup")
    for endpoint in ("setmycommands", "sendmessage", "answercallbackquery",
                     "editmessagereplymarkup", "sendchataction"):
        assert limiter.calls.get(endpoint), endpoint
