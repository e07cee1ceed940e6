"""Load: 30 chats asking at once through the fake Bot API (the bench runs 200: see
``bench/reliability.py load``). Every question answered, none dropped; a flood from one
user answered up to the limit and refused once; Telegram's RetryAfter for one chat and a
dropped connection for another hold up no one else. The scenario is tests/bot/load.py."""

from __future__ import annotations

import pytest
from khabar.retrieval import Khabar

from tests.bot.conftest import bot_settings, run_bot
from tests.bot.load import FLOOD_USER, TimedTelegram, run_load

QUESTIONS = ["who struck Aleppo?", "من قصف حلب؟", "what did the US official say?"]


# PTB itself warns when it builds RetryAfter from Telegram's integer.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_thirty_chats_at_once_with_a_flood_a_retry_after_and_a_dropped_connection(
        tg_settings, seed_khabar: Khabar, seed_index) -> None:
    async with TimedTelegram(webhook_retry_delay=0.05) as fake:
        settings = bot_settings(tg_settings.home, fake, rate_limit_per_minute=3)
        async with run_bot(fake, settings, seed_khabar, seed_index) as running:
            res = await run_load(fake, QUESTIONS, chats=30, flood=12, per_minute=3,
                                 retry_after=10, timeout=300)
        # The dropped connection is the one error a handler saw, and it was told politely.
        assert [type(e).__name__ for e in running.errors] == ["NetworkError"]
    assert res.dropped == 0 and not res.wrong, (res.dropped, res.wrong)
    assert res.answered == 30
    assert res.flooded_answered and res.others_during_wait > 0, res
    assert res.dropped_told and res.dropped_next_answered, res
    assert (res.flood_answers, res.flood_refusals, res.flood_other) == (3, 1, 0), res
    assert len(fake.sent_messages(FLOOD_USER)) == 4
    assert res.ok
