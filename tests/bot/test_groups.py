"""The bot in groups under Telegram's defaults: privacy mode, upgrades, removal, topics."""

from __future__ import annotations

import asyncio

from tests.bot.conftest import GROUP, USER, RunningBot, buttons, cites_passage_first
from tests.bot.fake_telegram import BOT_ID, BOT_USERNAME

TIMEOUT = 90


async def test_privacy_mode_hides_mentions_and_the_bot_says_how_to_see_them(
        bot: RunningBot) -> None:
    fake = bot.fake
    fake.added_to_group(GROUP, 7)
    (hello,) = await fake.wait_for_messages(GROUP, 1)
    # Not an administrator, privacy mode on: the greeting promises only what works.
    assert f"/ask@{BOT_USERNAME}" in hello["text"]
    assert "make me an administrator" in hello["text"] and "/setprivacy" in hello["text"]

    mention = fake.group_text(GROUP, 7, f"@{BOT_USERNAME} who struck Aleppo?")
    assert mention in fake.privacy_dropped  # Telegram never sends it to the bot
    fake.group_text(GROUP, 7, f"/ask@{BOT_USERNAME} who struck Aleppo?")
    _, answer = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert cites_passage_first(answer["text"])

    fake.group_text(GROUP, 7, "/help")
    *_, helped = await fake.wait_for_messages(GROUP, 3)
    assert "make me an administrator" in helped["text"]

    # Once an administrator, it sees (and answers) mentions, and says so.
    fake.set_admins(GROUP, [7, BOT_ID])
    fake.group_text(GROUP, 7, f"@{BOT_USERNAME} who struck Aleppo?")
    *_, mentioned = await fake.wait_for_messages(GROUP, 4, timeout=TIMEOUT)
    assert cites_passage_first(mentioned["text"])
    fake.group_text(GROUP, 7, f"/help@{BOT_USERNAME}")
    *_, full = await fake.wait_for_messages(GROUP, 5)
    assert "I see every message in this group" in full["text"]
    assert "make me an administrator" not in full["text"]


async def test_private_start_links_to_adding_the_bot_to_a_group(bot: RunningBot) -> None:
    fake = bot.fake
    fake.private_text(USER, "/start")
    (start,) = await fake.wait_for_messages(USER, 1)
    (link,) = buttons(start)
    assert link["url"] == f"https://t.me/{BOT_USERNAME}?startgroup=start"
    # The link adds the bot and sends "/start@bot start" in the group.
    fake.group_text(GROUP, USER, f"/start@{BOT_USERNAME} start")
    (hello,) = await fake.wait_for_messages(GROUP, 1)
    assert f"/ask@{BOT_USERNAME}" in hello["text"] and "/setprivacy" in hello["text"]
    await asyncio.sleep(0)
