"""Readers: forwarded posts as questions, who asked, replies, how a question was read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from khabar.index import Index

from tests.bot.conftest import (
    ADMIN,
    GROUP,
    USER,
    RunningBot,
    bot_settings,
    buttons,
    run_bot,
    settled,
    until,
)
from tests.bot.fake_telegram import ANONYMOUS_ADMIN, BOT_ID, FakeTelegram

TIMEOUT = 90
CHANNEL = -1001500
POST = ("Floods hit Benghazi\nHeavy floods hit the Libyan city of Benghazi on Monday, the "
        "city's mayor said, cutting power to thousands of homes and closing the port.")
FORWARD = ("Rescuers reach flooded Benghazi\nRescue teams reached the flooded districts of "
           "Benghazi on Tuesday as the water receded, local officials said.")
OTHER = -1009876543210


async def test_a_readers_forward_is_a_question_and_operators_may_index_it(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    fake = fresh_bot.fake
    await asyncio.to_thread(fresh_index.add_telegram_post, POST, channel_title="Libya News",
                            username="libya_news", message_id=42,
                            date=datetime.now(UTC) - timedelta(hours=3), chat_id=CHANNEL,
                            origin=f"operator:{ADMIN}")  # the shared archive
    fake.forwarded_channel_post(USER, -1002000, "other_news", 9, FORWARD)
    (private,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert private["text"].startswith("What else was reported about this post:")
    assert "Floods hit Benghazi" in private["text"] and "only administrators" not in private["text"]
    assert "https://t.me/libya_news/42" in private["raw_text"]
    assert {"text": "Open article", "url": "https://t.me/libya_news/42"} in buttons(private)
    assert not any(b.get("callback_data", "").startswith("index:") for b in buttons(private))
    assert fresh_index.store.count_articles() == 1

    # In a group (where it sees forwards), the answer carries a button for operators.
    fake.set_admins(GROUP, [7, BOT_ID])
    fake.forwarded_channel_post(8, -1002000, "other_news", 9, FORWARD, group=GROUP)
    (answer,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    (index_it,) = [b for b in buttons(answer) if b.get("callback_data", "").startswith("index:")]
    fake.callback_query(8, GROUP, answer, index_it["callback_data"])
    refused = await fake.wait_for_call("answerCallbackQuery")
    assert refused["text"] == "Sorry, only administrators can do that."
    fake.callback_query(7, GROUP, answer, index_it["callback_data"])
    _, report = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert report["text"].startswith("Indexed @other_news/9: 1 added"), report["text"]
    assert fresh_index.store.article_ids(url="https://t.me/other_news/9", origin=f"chat:{GROUP}")


async def test_a_linked_channels_posts_copied_into_its_discussion_group_are_not_answered(
        bot: RunningBot) -> None:
    """Telegram copies each post of a channel into the group linked to it for comments;
    the bot, an administrator there (so it sees them), answers a reader's forward of the
    post and never Telegram's own copy: nobody asked anything."""
    fake = bot.fake
    fake.set_admins(GROUP, [7, BOT_ID])
    question = "Who struck Aleppo? A US official spoke of an air strike."
    fake.automatic_forward(GROUP, -1002000, "other_news", 55, question)
    await settled(bot)
    assert fake.sent_messages(GROUP) == []
    assert not [c for c in fake.calls_to("sendChatAction") if c.get("chat_id") == str(GROUP)]
    fake.forwarded_channel_post(8, -1002000, "other_news", 55, question, group=GROUP)
    (answer,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert answer["text"].startswith("What else was reported about this post:")


async def test_anonymous_admins_keep_no_language_of_their_own(bot: RunningBot) -> None:
    """Every anonymous administrator, in every group, is GroupAnonymousBot: a /lang kept
    for it would be theirs all. None is kept, and one an older version kept is unread."""
    fake, db = bot.fake, bot.services.db
    fake.group_text(GROUP, 0, "/lang ar", anonymous=True)
    (told,) = await fake.wait_for_messages(GROUP, 1)
    assert told["text"].startswith("يظهر كل المشرفين المجهولين بهوية واحدة")
    assert db.lang(ANONYMOUS_ADMIN["id"]) is None
    db.set_lang(ANONYMOUS_ADMIN["id"], "ar")  # as an older version kept it
    fake.group_text(OTHER, 0, "/help", anonymous=True)
    (helped,) = await fake.wait_for_messages(OTHER, 1)
    assert helped["text"].startswith("Ask: write a question")
    # A person's choice is still theirs, wherever they ask.
    fake.group_text(GROUP, 7, "/lang ar")
    await fake.wait_for_messages(GROUP, 2)
    fake.group_text(OTHER, 7, "/help")
    *_, own = await fake.wait_for_messages(OTHER, 2)
    assert db.lang(7) == "ar" and own["text"].startswith("السؤال: اكتب سؤالك")


async def test_anonymous_admins_are_told_apart_by_their_chat(
        telegram: FakeTelegram, tg_settings, seed_khabar, seed_index) -> None:
    settings = bot_settings(tg_settings.home, telegram, rate_limit_per_minute=1)
    async with run_bot(telegram, settings, seed_khabar, seed_index) as running:
        telegram.group_text(GROUP, 0, "/ask who struck Aleppo?", anonymous=True)
        telegram.group_text(OTHER, 0, "/ask who struck Aleppo?", anonymous=True)
        (one,) = await telegram.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
        (two,) = await telegram.wait_for_messages(OTHER, 1, timeout=TIMEOUT)
        state = running.services.state
        assert state.previous(GROUP, GROUP) == "who struck Aleppo?"
        assert state.previous(OTHER, OTHER) == "who struck Aleppo?"
    assert not running.errors
    assert "try again in" not in one["text"] + two["text"]


async def test_a_reply_follows_up_the_answer_replied_to_and_can_be_asked_fresh(
        bot: RunningBot) -> None:
    fake = bot.fake
    fake.group_text(GROUP, 7, "/ask who struck Aleppo?")
    (first,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    fake.group_text(GROUP, 7, "/ask what happened in Benghazi?")
    await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    # Someone else replies to the first answer: it follows that answer, not their history.
    fake.group_text(GROUP, 8, "and Homs?", reply_to_bot_message=first)
    *_, third = await fake.wait_for_messages(GROUP, 3, timeout=TIMEOUT)
    assert third["text"].startswith("Read as a follow-up to “\u2068who struck Aleppo?\u2069”")
    (fresh,) = [b for b in buttons(third) if b.get("callback_data", "").startswith("fresh:")]
    assert fresh["text"] == "Ask it fresh"
    fake.callback_query(8, GROUP, third, fresh["callback_data"])
    *_, again = await fake.wait_for_messages(GROUP, 4, timeout=TIMEOUT)
    assert not again["text"].startswith("Read as a follow-up")
    assert again["reply_to_message"]["message_id"] == third["message_id"]
    await until(lambda: not any(b.get("callback_data", "").startswith("fresh:")
                                for b in buttons(fake.message(GROUP, third["message_id"]))))


async def test_a_question_read_with_an_outlet_can_be_asked_without_it(bot: RunningBot) -> None:
    fake = bot.fake
    # An outlet read from the words: the answer says so and offers the plain reading.
    fake.group_text(GROUP, 9, "/ask who struck Aleppo according to Reuters?")
    (first,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert first["text"].startswith("Filters")
    (fresh,) = [b for b in buttons(first) if b.get("callback_data", "").startswith("fresh:")]
    fake.callback_query(9, GROUP, first, fresh["callback_data"])
    *_, again = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert "Filters" not in again["text"].split("\n", 1)[0]
    assert not any(b.get("callback_data", "").startswith("fresh:") for b in buttons(again))
    assert "[1]" in again["text"]
