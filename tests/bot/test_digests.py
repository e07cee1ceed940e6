"""Digests that never go missing: failures, downtime, language, topics, time zones, channels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from khabar.bot import _digest
from khabar.bot._db import Digest
from khabar.index import Index
from khabar.retrieval import Khabar

from tests.bot.conftest import ADMIN, GROUP, USER, RunningBot, run_bot, settled, until
from tests.bot.fake_telegram import ANONYMOUS_ADMIN, BOT_ID

TIMEOUT = 90
CHANNEL = -1001500
OTHER = -1009876543210
POST = ("Floods hit Benghazi\nHeavy floods hit the Libyan city of Benghazi on Monday, the "
        "city's mayor said, cutting power to thousands of homes and closing the port.")


def _hour_ago() -> str:
    """A digest time whose last window holds a post from three hours ago."""
    return (datetime.now(UTC) - timedelta(hours=1)).strftime("%H:%M")


async def _post(index: Index, origin: str, hours_ago: float = 3) -> datetime:
    when = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0)
    await asyncio.to_thread(index.add_telegram_post, POST, channel_title="Libya News",
                            username="libya_news", message_id=42, date=when,
                            chat_id=CHANNEL, origin=origin)
    return when


def _digests(fake, chat: int) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [m for m in fake.sent_messages(chat)
            if m["text"].startswith(("Daily digest —", "الموجز اليومي —"))]


async def _schedule(bot: RunningBot, args: str, *, thread: int | None = None) -> None:
    fake = bot.fake
    fake.set_admins(GROUP, [7, BOT_ID])
    before = len(fake.sent_messages(GROUP))
    fake.group_text(GROUP, 7, f"/digest {args}", thread_id=thread)
    *_, ok = await fake.wait_for_messages(GROUP, before + 1)
    assert ok["text"].startswith("Daily digest scheduled at"), ok["text"]


async def test_a_failed_post_gives_its_window_back_and_is_retried(
        fresh_bot: RunningBot, fresh_index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_digest, "RETRY_DELAYS", (0.2, 0.2))
    fake = fresh_bot.fake
    await _post(fresh_index, f"chat:{GROUP}")
    await _schedule(fresh_bot, f"daily {_hour_ago()}")
    fake.fail_next("sendMessage", error_code=502, description="Bad Gateway", chat_id=GROUP)
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
    await job.run(fresh_bot.app)
    assert _digests(fake, GROUP) == []
    assert fresh_bot.services.db.posted_windows(GROUP) == []  # given back
    await until(lambda: len(_digests(fake, GROUP)) == 1, timeout=TIMEOUT)
    assert len(fresh_bot.services.db.posted_windows(GROUP)) == 1
    # A reply to the digest asks about its stories.
    (digest,) = _digests(fake, GROUP)
    before = len(fake.sent_messages(GROUP))
    fake.group_text(GROUP, 8, "and the port?", reply_to_bot_message=digest)
    *_, answer = await fake.wait_for_messages(GROUP, before + 1, timeout=TIMEOUT)
    assert answer["text"].startswith("Read as a follow-up to “\u2068Floods hit Benghazi")


async def test_a_bot_removed_unschedules_and_tells_who_set_it_up(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake, db = fresh_bot.fake, fresh_bot.services.db
    await _post(fresh_index, f"chat:{GROUP}")
    await _schedule(fresh_bot, f"daily {_hour_ago()}")
    fake.removed_from(GROUP, 7, announce=False)  # its my_chat_member update was lost
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
    await job.run(fresh_bot.app)
    assert db.digest(GROUP) is None
    await until(lambda: not fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}"))
    (told,) = await fake.wait_for_messages(7, 1)
    assert "was stopped" in told["text"] and str(GROUP) in told["text"]
    assert "kicked" in told["text"]


async def test_an_anonymous_admins_digest_that_stops_is_told_to_the_operators(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    """An anonymous administrator is GroupAnonymousBot, a bot nobody can write to: the
    digest one sets up has no owner, and when it stops the operators are told."""
    fake, db = fresh_bot.fake, fresh_bot.services.db
    await _post(fresh_index, f"chat:{GROUP}")
    fake.group_text(GROUP, 0, f"/digest daily {_hour_ago()}", anonymous=True)
    (ok,) = await fake.wait_for_messages(GROUP, 1)
    assert ok["text"].startswith("Daily digest scheduled at"), ok["text"]
    assert db.digest(GROUP).created_by is None
    fake.removed_from(GROUP, 7, announce=False)
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
    await job.run(fresh_bot.app)
    assert db.digest(GROUP) is None
    (told,) = await fake.wait_for_messages(ADMIN, 1)
    assert "was stopped" in told["text"] and str(GROUP) in told["text"]
    # One an older version kept with GroupAnonymousBot as its owner: that bot cannot be
    # written to, so the operators are told instead.
    db.set_digest(Digest(OTHER, 8, 0, "en", f"chat:{OTHER}"), ANONYMOUS_ADMIN["id"])
    old = db.digest(OTHER)
    assert old.created_by == ANONYMOUS_ADMIN["id"]
    await _digest.stop_digest(fresh_bot.app, old, "Forbidden: bot was kicked")
    *_, again = await fake.wait_for_messages(ADMIN, 2)
    assert "was stopped" in again["text"] and str(OTHER) in again["text"]


async def test_a_window_missed_while_down_is_posted_once_at_start_up(
        telegram, tg_settings, fresh_index: Index) -> None:  # type: ignore[no-untyped-def]
    await _post(fresh_index, f"chat:{GROUP}")
    khabar = Khabar(fresh_index)
    async with run_bot(telegram, tg_settings, khabar, fresh_index) as first:
        await _schedule(first, f"daily {_hour_ago()}")
        # Scheduled two days ago: the window that ended an hour ago was missed.
        with first.services.db._lock:
            first.services.db._db.execute(
                "UPDATE digests SET created_at = ?",
                ((datetime.now(UTC) - timedelta(days=2)).isoformat(),))
    async with run_bot(telegram, tg_settings, khabar, fresh_index) as second:
        await until(lambda: len(_digests(telegram, GROUP)) == 1, timeout=TIMEOUT)
    async with run_bot(telegram, tg_settings, khabar, fresh_index) as third:
        await asyncio.sleep(2.0)
    assert len(_digests(telegram, GROUP)) == 1
    assert not (first.errors or second.errors or third.errors)


async def test_digest_language_topic_and_times_in_the_chat_zone(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake, db = fresh_bot.fake, fresh_bot.services.db
    posted = await _post(fresh_index, f"chat:{GROUP}")
    beirut = ZoneInfo("Asia/Beirut")
    at = (datetime.now(beirut) - timedelta(hours=1)).strftime("%H:%M")
    await _schedule(fresh_bot, f"daily {at} Asia/Beirut ar", thread=77)
    digest = db.digest(GROUP)
    assert (digest.lang, digest.tz, digest.thread) == ("ar", "Asia/Beirut", 77)
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
    await job.run(fresh_bot.app)
    (sent,) = _digests(fake, GROUP)
    assert sent["message_thread_id"] == 77  # where it was scheduled, not General
    assert "UTC" not in sent["text"]
    local = posted.astimezone(beirut).strftime("%Y-%m-%d %H:%M")
    assert local in sent["text"]
    # /summary and /timeline in the chat show its zone's times too.
    before = len(fake.sent_messages(GROUP))
    fake.group_text(GROUP, 7, "/summary")
    fake.group_text(GROUP, 7, "/timeline")
    *_, one, two = await fake.wait_for_messages(GROUP, before + 2, timeout=TIMEOUT)
    assert local in one["text"] and local in two["text"]
    assert "UTC" not in one["text"] + two["text"]


async def test_edited_channel_posts_never_run_commands_again(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake = fresh_bot.fake
    await _post(fresh_index, f"chat:{CHANNEL}")
    fake.add_channel(CHANNEL, "libya_news", title="Libya News")
    fake.channel_post(CHANNEL, "libya_news", 43, "/summary")
    await fake.wait_for_messages(CHANNEL, 1, timeout=TIMEOUT)
    fake.channel_post(CHANNEL, "libya_news", 43, "/summary 7d", edited=True)
    await asyncio.sleep(2.0)
    assert fake.pending_updates == []
    assert len(fake.sent_messages(CHANNEL)) == 1
    assert fresh_index.store.count_articles() == 1


async def test_a_channel_digest_is_set_up_from_a_private_chat(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake, db = fresh_bot.fake, fresh_bot.services.db
    await _post(fresh_index, f"chat:{CHANNEL}")
    fake.add_channel(CHANNEL, "libya_news", title="Libya News")
    fake.set_admins(CHANNEL, [7, BOT_ID])
    fake.private_text(USER, f"/digest @libya_news daily {_hour_ago()}")
    (refused,) = await fake.wait_for_messages(USER, 1)
    assert "cannot set up a digest for @libya_news" in refused["text"]
    fake.private_text(7, f"/digest @libya_news\ndaily {_hour_ago()} ar")  # a line break too
    (ok,) = await fake.wait_for_messages(7, 1)
    assert ok["text"].startswith("Daily digest scheduled at") and "@libya_news" in ok["text"]
    assert fake.sent_messages(CHANNEL) == []  # nothing was posted in the channel
    digest = db.digest(CHANNEL)
    assert (digest.origin, digest.lang, digest.created_by) == (f"chat:{CHANNEL}", "ar", 7)
    (job,) = fresh_bot.app.job_queue.get_jobs_by_name(f"digest:{CHANNEL}")
    await job.run(fresh_bot.app)
    (sent,) = _digests(fake, CHANNEL)
    assert "Floods hit Benghazi" in sent["text"]
    fake.private_text(ADMIN, "/digest @libya_news off")  # an operator may too
    (off,) = await fake.wait_for_messages(ADMIN, 1)
    assert off["text"] == "Daily digest stopped." and db.digest(CHANNEL) is None


async def test_a_channel_command_on_its_own_line_runs(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    """"/summary" with its period on the next line, as a phone's keyboard makes it, is
    /summary of that period (and a command is never indexed as news)."""
    fake = fresh_bot.fake
    await _post(fresh_index, f"chat:{CHANNEL}", hours_ago=72)  # within 7 days, not 24 h
    fake.add_channel(CHANNEL, "libya_news", title="Libya News")
    fake.channel_post(CHANNEL, "libya_news", 43, "/summary\n7d")
    await settled(fresh_bot)
    (summary,) = fake.sent_messages(CHANNEL)
    assert "Floods hit Benghazi" in summary["text"]
    fake.channel_post(CHANNEL, "libya_news", 44, "/summary@khabar_test_bot\n\n7d")
    await settled(fresh_bot)
    *_, addressed = fake.sent_messages(CHANNEL)
    assert "Floods hit Benghazi" in addressed["text"]
    assert len(fake.sent_messages(CHANNEL)) == 2
    assert fresh_index.store.count_articles() == 1
