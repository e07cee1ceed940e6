"""/summary and /digest through the fake Bot API, on the real model and store."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from khabar.index import Index
from khabar.retrieval import Khabar

from tests.bot.conftest import ADMIN, GROUP, USER, RunningBot, run_bot, until
from tests.bot.fake_telegram import BOT_ID

TIMEOUT = 90
CHANNEL = -1001500
POST = (
    "Floods hit Benghazi\n"
    "Heavy floods hit the Libyan city of Benghazi on Monday, the city's mayor said, "
    "cutting power to thousands of homes and closing the port."
)

SHARED = ("Storm closes Tripoli port\nA storm closed the port of Tripoli on Monday, port "
          "officials said, stranding dozens of ships and halting fuel deliveries.")


async def test_summary_covers_the_shared_archive_and_the_chats_own(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.private_text(USER, "/summary")
    (empty,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert "Nothing was covered in this period." in empty["text"]

    # The channel's own post is the channel's: no other chat's summary shows it.
    fake.channel_post(CHANNEL, "libya_news", 42, POST, title="Libya News")
    await until(lambda: fresh_index.store.count_articles() == 1)
    fake.private_text(USER, "/summary 7d")
    fake.group_text(GROUP, 7, "/summary")
    _, private = await fake.wait_for_messages(USER, 2, timeout=TIMEOUT)
    (group,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    for text in (private["text"], group["text"]):
        assert "Nothing was covered in this period." in text

    # A channel's /summary covers its own posts and is answered in the channel.
    fake.add_channel(CHANNEL, "libya_news", title="Libya News")
    fake.channel_post(CHANNEL, "libya_news", 43, "/summary")
    (channel,) = await fake.wait_for_messages(CHANNEL, 1, timeout=TIMEOUT)
    assert "Floods hit Benghazi" in channel["text"]
    assert fresh_index.store.count_articles() == 1  # the command was not indexed

    # The shared archive (here: an operator's) is everyone's.
    await asyncio.to_thread(fresh_index.add_telegram_post, SHARED, channel_title="Wire",
                            username="wire_news", message_id=50,
                            date=datetime.now(UTC) - timedelta(hours=2), origin="operator:1")
    fake.private_text(USER, "/summary 7d")
    *_, private = await fake.wait_for_messages(USER, 3, timeout=TIMEOUT)
    assert "Storm closes Tripoli port" in private["text"]
    assert "https://t.me/wire_news/50" in private["raw_text"]
    assert "Floods hit Benghazi" not in private["text"]


async def test_timeline_of_a_story(fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake = fresh_bot.fake
    await asyncio.to_thread(fresh_index.add_telegram_post, POST, channel_title="Libya News",
                            username="libya_news", message_id=42,
                            date=datetime.now(UTC) - timedelta(hours=2))  # shared
    fake.private_text(USER, "/timeline Benghazi floods")
    (timeline,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    text = re.sub("[\u200e\u200f\u2068\u2069]", "", timeline["text"])  # direction marks
    assert text.startswith("Timeline: Floods hit Benghazi")
    assert re.search(r"^\[1\] \d{4}-\d\d-\d\d \d\d:\d\d · en — Libya News — Floods", text, re.M)
    assert "https://t.me/libya_news/42" in timeline["raw_text"]
    fake.private_text(USER, "/timeline 7d cricket")
    _, nothing = await fake.wait_for_messages(USER, 2, timeout=TIMEOUT)
    assert "Nothing about" in nothing["text"]
    # A group sees the shared archive too; another group's own story it would not.
    fake.group_text(GROUP, 7, "/timeline")
    (group,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert "Floods hit Benghazi" in group["text"]


def _digest_time(now: datetime) -> str:
    return (now - timedelta(hours=1)).strftime("%H:%M")


async def test_digest_scheduled_by_admins_and_posted_once_by_overlapping_runs(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.set_admins(GROUP, [7, BOT_ID])
    at = _digest_time(datetime.now(UTC))
    fake.group_text(GROUP, 8, f"/digest daily {at}")
    (refused,) = await fake.wait_for_messages(GROUP, 1)
    assert refused["text"] == "Sorry, only administrators can do that."
    assert fresh_bot.services.db.digests() == []

    fake.group_text(GROUP, 7, f"/digest daily {at}")
    _, scheduled = await fake.wait_for_messages(GROUP, 2)
    assert scheduled["text"] == f"Daily digest scheduled at {at} UTC."
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")

    # The group's admin forwards a post from three hours ago: the group's only source.
    three_hours_ago = int(time.time()) - 3 * 3600
    fake.forwarded_channel_post(7, CHANNEL, "libya_news", 42, POST,
                                original_date=three_hours_ago)
    # (forwarded_channel_post builds a private chat: re-send it into the group)
    update = fake.pending_updates[-1]
    update["message"]["chat"] = {"id": GROUP, "type": "supergroup", "title": "Test group"}
    await until(lambda: fresh_index.store.article_ids(origin=f"chat:{GROUP}") != [])

    # Two overlapping runs of the job: one digest.
    await asyncio.gather(job.run(fresh_bot.app), job.run(fresh_bot.app))
    digests = [m for m in fake.sent_messages(GROUP) if m["text"].startswith("Daily digest —")]
    assert len(digests) == 1
    assert "Floods hit Benghazi" in digests[0]["text"]
    assert len(fresh_bot.services.db.posted_windows(GROUP)) == 1


async def test_digest_schedule_survives_a_restart_and_never_reposts(
        telegram, tg_settings, fresh_index: Index) -> None:  # type: ignore[no-untyped-def]
    telegram.set_admins(GROUP, [7, BOT_ID])
    at = _digest_time(datetime.now(UTC))
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    await asyncio.to_thread(fresh_index.add_telegram_post, POST, channel_title="Libya News",
                            username="libya_news", message_id=42, date=three_hours_ago,
                            chat_id=CHANNEL, origin=f"chat:{GROUP}")
    khabar = Khabar(fresh_index)
    async with run_bot(telegram, tg_settings, khabar, fresh_index) as first:
        telegram.group_text(GROUP, 7, f"/digest daily {at}")
        await telegram.wait_for_messages(GROUP, 1)
        (job,) = first.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
        await job.run(first.app)
    assert not first.errors
    assert len(telegram.sent_messages(GROUP)) == 2  # the confirmation and the digest

    # Restarted on the same home: the schedule is back, the window is not posted again.
    async with run_bot(telegram, tg_settings, khabar, fresh_index) as second:
        (job,) = second.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
        assert job.next_t is not None
        await job.run(second.app)
        telegram.group_text(GROUP, 7, "/digest off")
        *_, off = await telegram.wait_for_messages(GROUP, 3)
        assert off["text"] == "Daily digest stopped."
        await until(lambda: not second.app.job_queue.get_jobs_by_name(f"digest:{GROUP}"))
    assert not second.errors
    assert sum(m["text"].startswith("Daily digest —") for m in
               telegram.sent_messages(GROUP)) == 1


async def test_digest_usage_and_private_digest(fresh_bot: RunningBot) -> None:
    fake = fresh_bot.fake
    fake.private_text(ADMIN, "/digest")
    fake.private_text(USER, "/digest daily 25:00")
    (usage,) = await fake.wait_for_messages(ADMIN, 1)
    (bad,) = await fake.wait_for_messages(USER, 1)
    assert usage["text"].startswith("Use /digest daily HH:MM [time zone]")
    assert bad["text"].startswith("Use /digest daily HH:MM [time zone]")
    # A private chat's user is its only administrator; its digest covers what it sees.
    fake.private_text(USER, "/digest daily 07:30")
    _, ok = await fake.wait_for_messages(USER, 2)
    assert ok["text"] == "Daily digest scheduled at 07:30 UTC."
    (digest,) = fresh_bot.services.db.digests()
    assert (digest.chat_id, digest.origin) == (USER, f"chat:{USER}")
    # A newsroom's morning, in its own time zone (daylight saving included).
    fake.private_text(USER, "/digest daily 07:30 asia/beirut")
    *_, local = await fake.wait_for_messages(USER, 3)
    assert local["text"] == "Daily digest scheduled at 07:30 Asia/Beirut."
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{USER}")
    beirut = job.next_t.astimezone(ZoneInfo("Asia/Beirut"))
    assert (beirut.hour, beirut.minute) == (7, 30)
    assert fresh_bot.services.db.digests()[0].tz == "Asia/Beirut"
    fake.private_text(USER, "/digest daily 07:30 Mars/Olympus")
    *_, unknown = await fake.wait_for_messages(USER, 4)
    assert unknown["text"].startswith("Use /digest daily HH:MM [time zone]")
    assert "Now: daily at 07:30 Asia/Beirut." in unknown["text"]
