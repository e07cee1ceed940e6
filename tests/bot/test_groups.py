"""The bot in groups under Telegram's defaults: privacy mode, upgrades, removal, topics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from khabar.index import Index

from tests.bot.conftest import GROUP, USER, RunningBot, buttons, cites_passage_first, until
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


OLD, NEW = -4055, -1004055  # a basic group's id, and its id as a supergroup
POST = ("Floods hit Benghazi\nHeavy floods hit the Libyan city of Benghazi on Monday, the "
        "city's mayor said, cutting power to thousands of homes and closing the port.")


async def _group_with_digest(bot: RunningBot, index: Index, chat: int) -> None:
    fake = bot.fake
    fake.set_admins(chat, [7, BOT_ID])
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%H:%M")  # its window: 3 h ago
    fake.group_text(chat, 7, f"/digest daily {at}", chat_type="group")
    await fake.wait_for_messages(chat, 1)
    await asyncio.to_thread(index.add_telegram_post, POST, channel_title="Libya News",
                            username="libya_news", message_id=42,
                            date=datetime.now(UTC) - timedelta(hours=3), chat_id=-1001500,
                            origin=f"chat:{chat}")


async def test_a_group_upgraded_to_a_supergroup_keeps_its_digest_and_content(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake, db = fresh_bot.fake, fresh_bot.services.db
    await _group_with_digest(fresh_bot, fresh_index, OLD)
    fake.migrate_group(OLD, NEW, 7)
    await until(lambda: db.digest(NEW) is not None, timeout=10)
    assert db.digest(OLD) is None and db.digest(NEW).origin == f"chat:{NEW}"
    jobs = fresh_bot.app.job_queue
    await until(lambda: not jobs.get_jobs_by_name(f"digest:{OLD}"), timeout=5)
    (job,) = jobs.get_jobs_by_name(f"digest:{NEW}")
    assert fresh_index.store.article_ids(origin=f"chat:{NEW}") != []
    assert fresh_index.store.article_ids(origin=f"chat:{OLD}") == []
    await job.run(fresh_bot.app)
    (digest,) = fake.sent_messages(NEW)
    assert "Floods hit Benghazi" in digest["text"]


async def test_a_send_to_the_old_id_moves_the_chat_and_goes_to_the_new(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake, db = fresh_bot.fake, fresh_bot.services.db
    await _group_with_digest(fresh_bot, fresh_index, OLD)
    fake.migrate_group(OLD, NEW, 7, announce=False)  # its service messages never came
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{OLD}")
    await job.run(fresh_bot.app)
    (digest,) = fake.sent_messages(NEW)
    assert "Floods hit Benghazi" in digest["text"]
    assert db.digest(NEW) is not None and db.digest(OLD) is None
    assert len(db.posted_windows(NEW)) == 1


async def test_a_question_in_a_forum_topic_is_answered_there(bot: RunningBot) -> None:
    fake = bot.fake
    fake.group_text(GROUP, 7, "/ask who struck Aleppo?", thread_id=77)
    (answer,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert answer["message_thread_id"] == 77
    actions = fake.calls_to("sendChatAction")
    assert actions and all(a.get("message_thread_id") == 77 for a in actions)  # "typing…" there
