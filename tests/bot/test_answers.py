"""Questions answered end to end: private chats, groups, languages, paging, limits."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from khabar.index import Index

from tests.bot.conftest import (
    AR_HEADS,
    EN_HEADS,
    GROUP,
    USER,
    RunningBot,
    bot_settings,
    buttons,
    cites_passage_first,
    run_bot,
)
from tests.bot.fake_telegram import BOT_USERNAME, FakeTelegram

TIMEOUT = 90  # a question on the real model takes seconds on a loaded machine


async def test_private_question_gets_the_passage_with_citations(bot: RunningBot) -> None:
    fake = bot.fake
    fake.private_text(USER, "who struck Aleppo?")
    (answer,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)

    text = answer["text"]
    assert cites_passage_first(text)
    assert text.startswith(EN_HEADS) and ("Sources" in text or "Related passages" in text)
    assert "[2]" in text and "[3]" in text
    assert "Reuters" in text  # the outlets of the cited passage
    assert answer["parse_mode"] == "HTML" and "<b>[1]</b>" in answer["raw_text"]
    assert "reply_to_message" not in answer  # private: no quoting
    assert any(p["action"] == "typing" for p in fake.calls_to("sendChatAction"))
    more = [b for b in buttons(answer) if b.get("callback_data", "").startswith("more:")]
    assert len(more) == 1 and more[0]["text"] == "More sources"
    assert len(more[0]["callback_data"].encode()) <= 64


async def test_arabic_question_gets_arabic_labels(bot: RunningBot) -> None:
    bot.fake.private_text(USER, "من قصف حلب؟", language_code="en")
    (answer,) = await bot.fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert answer["text"].startswith(AR_HEADS)
    assert "المصادر" in answer["text"] or "مقاطع ذات صلة" in answer["text"]
    assert cites_passage_first(answer["text"])
    assert "Sources" not in answer["text"] and "Related" not in answer["text"]
    assert [b["text"] for b in buttons(answer)] == ["مصادر أخرى"]


async def test_lang_choice_overrides_the_question_language(bot: RunningBot) -> None:
    fake = bot.fake
    fake.private_text(USER, "/lang ar")
    (ack,) = await fake.wait_for_messages(USER, 1)
    assert ack["text"] == "سأستخدم العربية في ردودي."
    fake.private_text(USER, "who struck Aleppo?")
    _, answer = await fake.wait_for_messages(USER, 2, timeout=TIMEOUT)
    assert answer["text"].startswith(AR_HEADS)
    fake.private_text(USER, "/lang auto")
    await fake.wait_for_messages(USER, 3)
    assert bot.services.db.lang(USER) is None


async def test_group_ask_and_reply_answered_plain_message_ignored(bot: RunningBot) -> None:
    fake = bot.fake
    fake.group_text(GROUP, 7, "the weather is nice today")
    asked = fake.group_text(GROUP, 7, f"/ask@{BOT_USERNAME} who struck Aleppo?")["message"]
    (first,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert cites_passage_first(first["text"])
    # In a group the answer quotes the question it answers.
    assert first["reply_to_message"]["message_id"] == asked["message_id"]

    reply = fake.group_text(GROUP, 8, "من قصف حلب؟", reply_to_bot_message=first)["message"]
    _, second = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert second["reply_to_message"]["message_id"] == reply["message_id"]
    assert second["text"].startswith(AR_HEADS)

    # Mentions and plain messages reach a bot only where privacy mode lets them through.
    fake.set_privacy(False)
    mention = fake.group_text(GROUP, 9, f"@{BOT_USERNAME} who struck Aleppo?")["message"]
    *_, third = await fake.wait_for_messages(GROUP, 3, timeout=TIMEOUT)
    assert third["reply_to_message"]["message_id"] == mention["message_id"]

    fake.group_text(GROUP, 7, "another plain message")
    await asyncio.sleep(1.0)
    assert len(fake.sent_messages(GROUP)) == 3
    assert fake.pending_updates == []  # it was delivered, and ignored
    # Conversation context is kept per user within the group.
    state = bot.services.state
    assert state.previous(GROUP, 7) == "who struck Aleppo?"
    assert state.previous(GROUP, 8) == "من قصف حلب؟"
    assert state.previous(GROUP, 10) is None


async def test_ask_without_a_question_explains(bot: RunningBot) -> None:
    bot.fake.group_text(GROUP, 7, "/ask")
    (usage,) = await bot.fake.wait_for_messages(GROUP, 1)
    assert "/ask who struck Aleppo?" in usage["text"]


async def test_more_sources_pages_through_the_passages(bot: RunningBot) -> None:
    fake = bot.fake
    fake.private_text(USER, "who struck Aleppo?")
    (answer,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    shown = 3
    pages = []
    message = answer
    while True:
        more = [b for b in buttons(message) if b.get("callback_data", "").startswith("more:")]
        if not more:
            break
        fake.callback_query(USER, USER, message, more[0]["callback_data"])
        sent = await fake.wait_for_messages(USER, len(pages) + 2)
        message = sent[-1]
        pages.append(message)
        # The pressed button is gone from the message it was on.
        pressed = fake.message(USER, sent[-2]["message_id"])
        assert pressed is not None
        assert all(b.get("callback_data") != more[0]["callback_data"] for b in buttons(pressed))
    key = more_key(answer)
    total = shown + len(bot.services.db.answer(USER, key).more)
    assert len(pages) == -(-(total - shown) // 3) >= 2
    first = pages[0]
    assert first["text"].startswith(f"More sources (4–6 of {total})")
    assert "[4]" in first["text"] and "[6]" in first["text"]
    assert first["reply_to_message"]["message_id"] == answer["message_id"]
    assert f"[{total}]" in pages[-1]["text"]
    assert len(fake.calls_to("answerCallbackQuery")) == len(pages)


def more_key(message: dict[str, Any]) -> str:
    (data,) = [b["callback_data"] for b in buttons(message)
               if b.get("callback_data", "").startswith("more:")]
    return str(data.split(":")[1])


async def test_buttons_outlive_a_restart_and_never_open_another_answer(
        telegram: FakeTelegram, tg_settings, seed_khabar, seed_index) -> None:
    async with run_bot(telegram, tg_settings, seed_khabar, seed_index) as first:
        telegram.private_text(USER, "who struck Aleppo?")
        (old,) = await telegram.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert not first.errors
    async with run_bot(telegram, tg_settings, seed_khabar, seed_index) as second:
        telegram.private_text(USER, "what happened in Benghazi?")
        _, new = await telegram.wait_for_messages(USER, 2, timeout=TIMEOUT)
        assert more_key(new) != more_key(old)  # a restart does not reuse keys
        # The old answer's button, pressed after the restart, pages the old answer.
        telegram.callback_query(USER, USER, old, f"more:{more_key(old)}:0")
        *_, page = await telegram.wait_for_messages(USER, 3)
        assert page["reply_to_message"]["message_id"] == old["message_id"]
        kept = second.services.db.answer(USER, more_key(old))
        assert kept.context == "who struck Aleppo?"
        # A passage forgotten since is not shown: paging re-reads them from the store.
        gone = kept.more[3][0]
        with second.services.db._lock:
            second.services.db._db.execute(
                "UPDATE answers SET more = replace(more, ?, ?) WHERE key = ?",
                (f"[{gone},", "[999999999,", more_key(old)))
        telegram.callback_query(USER, USER, page, f"more:{more_key(old)}:1")
        *_, page2 = await telegram.wait_for_messages(USER, 4)
        assert "[7]" not in page2["text"] and "[8]" in page2["text"]
        # An answer past its keeping says so instead of showing anything.
        second.services.db.forget_answers(datetime.now(UTC) + timedelta(days=1))
        telegram.callback_query(USER, USER, new, f"more:{more_key(new)}:0")
        params = await telegram.wait_for_call("answerCallbackQuery", count=3)
        assert "no longer available" in params["text"]
    assert not second.errors


async def test_an_unknown_button_asks_to_ask_again(bot: RunningBot) -> None:
    fake = bot.fake
    await bot.app.bot.send_message(USER, "old answer")
    (old,) = fake.sent_messages(USER)
    fake.callback_query(USER, USER, old, "more:1:0")  # a key of the bot before keys were random
    params = await fake.wait_for_call("answerCallbackQuery")
    assert "no longer available" in params["text"]


async def test_an_article_url_telegram_cannot_open_gets_no_button(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    """Articles keep the URL their source gave. One Telegram will not open from a button
    (an intranet name, no dot) would have it refuse the answer's last part, its sources,
    so the article gets no "Open article" button and the answer goes out whole."""
    doc = {"title": "Floods hit Benghazi", "url": "http://intranet/story/1",
           "source": "Libya Desk", "published": "2024-05-01",
           "text": "Heavy floods hit the Libyan city of Benghazi on Monday, the city's mayor "
                   "said, cutting power to thousands of homes and closing the port."}
    report = await asyncio.to_thread(fresh_index.add_bytes, json.dumps(doc).encode(),
                                     "a.json", "application/json")
    assert report.count("added") == 1
    fake = fresh_bot.fake
    fake.private_text(USER, "Did floods hit Benghazi?")
    (answer,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert "Floods hit Benghazi" in answer["text"] and "Libya Desk" in answer["text"]
    assert not [b for b in buttons(answer) if "url" in b]


async def test_start_help_and_sources(bot: RunningBot) -> None:
    fake = bot.fake
    fake.private_text(USER, "/help")
    fake.private_text(USER, "/sources")
    fake.private_text(USER, "/nonsense")
    fake.private_text(USER, "/start", language_code="ar")
    replies = await fake.wait_for_messages(USER, 4)
    # Updates are handled concurrently: replies may come in any order.
    texts = [m["text"] for m in replies]
    assert any(t.startswith("خبر") for t in texts)  # Telegram's language: Arabic
    assert any("/digest" in t and "Administrators" in t for t in texts)
    assert any(t.startswith("Outlets in the index") and "Reuters\u2069 — 1" in t for t in texts)
    assert "I do not know that command. /help lists what I do." in texts
    admin_only = {"add", "forget", "stats", "digest"}
    commands = {c["command"] for c in fake.commands()}
    assert {"ask", "summary", "sources", "lang", "help"} <= commands
    assert not commands & admin_only  # administrators' commands in their menu only
    for scope in ({"type": "all_chat_administrators"}, {"type": "chat", "chat_id": 1000}):
        assert admin_only <= {c["command"] for c in fake.commands(scope)}
        assert admin_only <= {c["command"] for c in fake.commands(scope, "ar")}
    assert fake.commands(language_code="ar")[0]["description"] == "اسأل عن الأخبار"


async def test_rate_limit_answers_politely_once(telegram: FakeTelegram, tg_settings,
                                                seed_khabar, seed_index) -> None:
    settings = bot_settings(tg_settings.home, telegram, rate_limit_per_minute=1)
    async with run_bot(telegram, settings, seed_khabar, seed_index) as running:
        for q in ("who struck Aleppo?", "and Homs?", "and Damascus?"):
            telegram.private_text(USER, q)
        await telegram.wait_for_messages(USER, 2, timeout=TIMEOUT)
        await asyncio.sleep(0.5)
    assert not running.errors
    # One question answered (whichever came first: updates run concurrently), one polite
    # refusal, and no second refusal for the third.
    texts = [m["text"] for m in telegram.sent_messages(USER)]
    assert len(texts) == 2
    assert sum("try again in" in t for t in texts) == 1


# PTB itself warns when it builds RetryAfter from Telegram's integer.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_waits_for_that_chat_only(bot: RunningBot) -> None:
    fake = bot.fake
    fake.flood(USER, times=1, retry_after=2)
    started = time.monotonic()
    fake.private_text(USER, "/help")
    fake.private_text(222, "/start")
    await fake.wait_for_messages(222, 1)
    other_done = time.monotonic() - started
    (helped,) = await fake.wait_for_messages(USER, 1, timeout=10)
    waited = time.monotonic() - started
    assert other_done < 1.5 <= 2 <= waited + 0.1
    assert "/digest" in helped["text"]
