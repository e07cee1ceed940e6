"""What people type, under hypothesis with a CPU budget per input (tests/fuzz.py): Telegram
updates as the bot receives them (PTB's own decoding, then who asked, the command's
text, the bot's @mention cut out), command arguments (/summary, /digest daily, zones),
the filter syntax, periods and durations, and questions as retrieval reads them. Each is
read or refused with khabar's own error (a FilterError with a message fit to show),
never anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from khabar.bot._digest import parse_daily, parse_summary_args, parse_zone
from khabar.bot._filters import is_period, parse_filter_args, parse_since
from khabar.bot._handlers import _MORE, _without_mention, asker_of
from khabar.bot._services import command_text, lang_of_text, topic_of
from khabar.retrieval import parse_duration
from khabar.retrieval._query import understand
from telegram import Update

from tests.bot.fake_telegram import ANONYMOUS_ADMIN, BOT_ID, BOT_USERNAME, utf16_len
from tests.fuzz import FUZZ, HOSTILE, TEXT, budget, long_text

WORD = st.one_of(TEXT, HOSTILE, st.sampled_from([
    "24h", "7d", "2w", "1y", "30m", "5000y", "99999999999999999999d", "0d", "-1d", "7 أيام",
    "٧ أيام", "daily", "08:00", "25:61", "off", "ar", "en", "Asia/Beirut", "UTC+03:00", "+14",
    "+99:99", "GMT-5", "outlet=Reuters", 'outlet="Al Jazeera', "since=", "since=7d",
    "until=2024-02-30", "lang=ar,en,xx", "=", "==", "since=9999-12-31", "since=0001-01-01"]))
ARGS = st.lists(WORD, max_size=8).map(" ".join)


@FUZZ
@given(ARGS)
def test_fuzz_periods_and_durations(text: str) -> None:
    with budget("periods and durations"):
        parse_duration(text)
        is_period(text)
        assert parse_since(text, datetime(2024, 1, 1, tzinfo=UTC)).tzinfo is not None


@FUZZ
@given(st.one_of(ARGS, st.lists(WORD, max_size=6)), st.lists(TEXT, max_size=4))
def test_fuzz_filter_syntax(args: Any, known: list[str]) -> None:
    with budget("filter syntax (outlet= since= until= lang=)"):
        parse_filter_args(args, known)


@FUZZ
@given(ARGS)
def test_fuzz_command_arguments(text: str) -> None:
    with budget("command arguments (/summary, /digest daily, zones)"):
        period, _ = parse_summary_args(text)
        assert period.total_seconds() > 0
        parse_daily(text)
        parse_zone(text)
        _MORE.fullmatch(text)


@FUZZ
@given(st.one_of(ARGS, long_text(5000)), st.one_of(st.none(), TEXT), st.lists(TEXT, max_size=4))
def test_fuzz_questions_as_read(text: str, previous: str | None, known: list[str]) -> None:
    with budget("questions as read (filters in words, follow-ups)"):
        understand(text, previous=previous, known_outlets=known,
                   now=datetime(2024, 1, 1, tzinfo=UTC))


# -- Telegram updates ---------------------------------------------------------------------
CHAT_TYPES = st.sampled_from(["private", "group", "supergroup", "channel"])


@st.composite
def entities(draw: st.DrawFn, text: str) -> list[dict[str, Any]]:
    """Entities as Telegram sends them: UTF-16 offsets, on character boundaries."""
    out = []
    for _ in range(draw(st.integers(0, 4))):
        if not text:
            break
        start = draw(st.integers(0, len(text) - 1))  # Telegram sends no empty entity
        end = draw(st.integers(start + 1, len(text)))
        e: dict[str, Any] = {"type": draw(st.sampled_from(["mention", "text_mention",
                                                           "bot_command", "url", "bold"])),
                             "offset": utf16_len(text[:start]),
                             "length": utf16_len(text[start:end])}
        if e["type"] == "text_mention":
            e["user"] = {"id": draw(st.sampled_from([BOT_ID, 5])), "is_bot": False,
                         "first_name": "x"}
        out.append(e)
    return out


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    chat_type = draw(CHAT_TYPES)
    chat_id = draw(st.integers(1, 10**12)) * (1 if chat_type == "private" else -1)
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type, "title": draw(TEXT)}
    text = draw(st.one_of(
        TEXT, long_text(4096),
        st.tuples(st.sampled_from(["/ask", "/summary", "/timeline", "/digest", "/lang", "/add",
                                   f"@{BOT_USERNAME}", f"/ask@{BOT_USERNAME}", "/"]), ARGS)
        .map(" ".join)))
    msg: dict[str, Any] = {"message_id": draw(st.integers(1, 2**31)), "date": 1_700_000_000,
                           "chat": chat, "text": text, "entities": draw(entities(text))}
    if draw(st.booleans()):
        msg["from"] = dict(ANONYMOUS_ADMIN) if draw(st.booleans()) else {
            "id": draw(st.integers(1, 2**40)), "is_bot": False, "first_name": draw(TEXT) or "x",
            "language_code": draw(st.sampled_from(["en", "ar", "", "zz-ZZ"]))}
    if chat_type != "private" and draw(st.booleans()):
        msg["sender_chat"] = chat
    if draw(st.booleans()):
        msg |= {"message_thread_id": draw(st.integers(1, 99)),
                "is_topic_message": draw(st.booleans())}
    key = "channel_post" if chat_type == "channel" else draw(
        st.sampled_from(["message", "edited_message"]))
    return {"update_id": draw(st.integers(1, 2**31)), key: msg}


@FUZZ
@given(updates())
def test_fuzz_telegram_updates_as_the_bot_reads_them(data: dict[str, Any]) -> None:
    with budget("Telegram updates (decoded, then read by the bot)", allowed=()):
        update = Update.de_json(data, None)
        message = update.effective_message
        assert message is not None
        asker_of(message)
        topic_of(message)
        command_text(message)
        lang_of_text(message.text or "")
        question = _without_mention(message, BOT_USERNAME, BOT_ID)
        assert question is None or question == " ".join(question.split())
