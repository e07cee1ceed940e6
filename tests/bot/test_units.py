"""Small pieces of the bot on their own: limits, arguments, mentions, reports, logs."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from khabar.bot._db import BotDB, Digest
from khabar.bot._digest import parse_summary_args, parse_zone, window_end
from khabar.bot._handlers import _button_url_ok, _keyboard, _without_mention
from khabar.bot._intake import report_html
from khabar.bot._logging import JsonFormatter
from khabar.bot._ratelimit import RateLimiter
from khabar.bot._services import lang_of_text
from khabar.bot.telegram import serve
from khabar.index import IngestReport, ItemResult
from khabar.retrieval import Source
from telegram import Message, MessageEntity

from khabar import ConfigError, Settings
from tests.bot.fake_telegram import BOT_ID, DEFAULT_TOKEN, auto_entities, parse_html


def test_rate_limiter_window_and_single_notice() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check(1).allowed and limiter.check(1).allowed
    refused = limiter.check(1)
    assert not refused.allowed and refused.notify and refused.retry_after == 60
    assert not limiter.check(1).notify  # told once per wait
    assert limiter.check(2).allowed  # other users are not affected
    now[0] = 60.5
    assert limiter.check(1).allowed
    assert RateLimiter(0).check(1).allowed  # 0: no limit


def test_ui_language_is_the_language_retrieval_reads() -> None:
    assert lang_of_text("من قصف حلب؟") == "ar"
    assert lang_of_text("لا") == "ar"  # too short for detect_lang: an Arabic letter decides
    assert lang_of_text("who struck Aleppo?") == "en"
    assert lang_of_text("Was sagte Reuters über Aleppo und die Angriffe der Armee?") == "en"
    assert lang_of_text("7d") == "en"
    assert lang_of_text("24 ?!") is None  # no letters: the caller falls back
    assert lang_of_text("") is None


def test_summary_arguments() -> None:
    assert parse_summary_args("") == (timedelta(hours=24), None)
    assert parse_summary_args("7d") == (timedelta(days=7), None)
    assert parse_summary_args("syria 48h") == (timedelta(hours=48), "syria")
    assert parse_summary_args("24h حلب") == (timedelta(hours=24), "حلب")
    assert parse_summary_args("floods in Libya") == (timedelta(hours=24), "floods in Libya")
    assert parse_summary_args("9999d")[0] == timedelta(days=366)


def test_digest_window_belongs_to_the_scheduled_time() -> None:
    digest = Digest(1, 8, 0, "en", None)
    at = datetime(2025, 3, 2, 8, 0, 1, tzinfo=UTC)
    assert window_end(digest, at) == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    early = datetime(2025, 3, 2, 7, 58, tzinfo=UTC)  # a run a little early: same window
    assert window_end(digest, early) == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    by_hand = datetime(2025, 3, 2, 6, 0, tzinfo=UTC)
    assert window_end(digest, by_hand) == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_time_zones_as_people_type_them() -> None:
    assert parse_zone(None) == parse_zone("utc") == parse_zone("GMT") == "UTC"
    assert parse_zone("asia/beirut") == "Asia/Beirut"
    assert parse_zone("Africa/Cairo") == "Africa/Cairo"
    assert parse_zone("+3") == parse_zone("UTC+03:00") == parse_zone("+0300") == "+03:00"
    assert parse_zone("GMT-5") == "-05:00" and parse_zone("+05:30") == "+05:30"
    assert parse_zone("+0") == "UTC"
    assert parse_zone("Mars/Olympus") is None and parse_zone("+15") is None
    assert Digest(1, 8, 0, "en", None, "+03:00").zone.utcoffset(None) == timedelta(hours=3)


def test_digest_window_follows_the_local_clock_across_daylight_saving() -> None:
    digest = Digest(1, 8, 0, "ar", None, "Asia/Beirut")  # UTC+2 in winter, +3 in summer
    winter = datetime(2025, 1, 10, 6, 0, 5, tzinfo=UTC)
    assert window_end(digest, winter) == datetime(2025, 1, 10, 6, 0, tzinfo=UTC)
    summer = datetime(2025, 7, 10, 5, 0, 5, tzinfo=UTC)
    assert window_end(digest, summer) == datetime(2025, 7, 10, 5, 0, tzinfo=UTC)
    by_hand = datetime(2025, 7, 10, 4, 0, tzinfo=UTC)  # before today's 08:00 in Beirut
    assert window_end(digest, by_hand) == datetime(2025, 7, 9, 5, 0, tzinfo=UTC)


def test_schedules_from_before_time_zones_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE digests (chat_id INTEGER PRIMARY KEY, hour INTEGER NOT NULL,"
                " minute INTEGER NOT NULL, lang TEXT NOT NULL, origin TEXT, created_by INTEGER,"
                " created_at TEXT NOT NULL)")
    old.execute("INSERT INTO digests VALUES (5, 8, 0, 'en', NULL, 1, '2025-01-01')")
    old.commit()
    old.close()
    (digest,) = BotDB(path).digests()
    assert digest.tz == "UTC" and digest.time == "08:00 UTC"


def test_window_claims_are_unique_and_persist(tmp_path: Path) -> None:
    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    db = BotDB(tmp_path / "bot.sqlite3")
    assert db.claim_window(5, start)
    assert not db.claim_window(5, start.astimezone(UTC).replace(microsecond=7))
    assert db.claim_window(6, start)
    db.close()
    again = BotDB(tmp_path / "bot.sqlite3")
    assert not again.claim_window(5, start)
    again.release_window(5, start)
    assert again.claim_window(5, start)


def _message(text: str) -> Message:
    data = {"message_id": 1, "date": 0, "chat": {"id": -5, "type": "supergroup"},
            "text": text, "entities": auto_entities(text)}
    return Message.de_json(data, None)  # type: ignore[arg-type]


def test_mentions_of_the_bot_are_removed_others_kept() -> None:
    bot = "khabar_test_bot"
    assert _without_mention(_message("😀 @khabar_test_bot من قصف حلب؟"), bot, BOT_ID) == \
        "😀 من قصف حلب؟"
    assert _without_mention(_message("ask @someone_else about it"), bot, BOT_ID) is None
    text_mention = Message.de_json({
        "message_id": 1, "date": 0, "chat": {"id": -5, "type": "supergroup"},
        "text": "Khabar, who struck Aleppo?",
        "entities": [{"type": MessageEntity.TEXT_MENTION, "offset": 0, "length": 6,
                      "user": {"id": BOT_ID, "is_bot": True, "first_name": "Khabar"}}]},
        None)  # type: ignore[arg-type]
    assert _without_mention(text_mention, bot, BOT_ID) == ", who struck Aleppo?"


def test_ingest_report_lists_refusals_first_and_escapes() -> None:
    report = IngestReport([
        ItemResult("a.md", "added", passages=3, title="Floods <in> Libya & more"),
        ItemResult("b.json", "error", "record 2: no text"),
    ])
    markup = report_html(report, "upload & co", "ar")
    text, _ = parse_html(markup)
    lines = text.split("\n")
    assert lines[0] == "فهرسة upload & co: 1 أضيف، 1 مرفوض"
    assert lines[1] == "✗ b.json — record 2: no text"
    assert lines[2] == "✓ Floods <in> Libya & more — أضيف (3)"


def test_logs_are_json_and_never_show_the_token() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter([DEFAULT_TOKEN, "hook-secret-1"]))
    log = logging.getLogger("test.bot.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET https://api.telegram.org/bot%s/getMe", DEFAULT_TOKEN,
                    extra={"chat_id": 5, "event": "x"})
        secret_half = DEFAULT_TOKEN.split(":")[1]
        try:
            raise RuntimeError(f"url …/bot4242%3A{secret_half}/x with hook-secret-1")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    first = json.loads(lines[0])
    assert first["chat_id"] == 5 and first["event"] == "x" and first["level"] == "WARNING"
    assert "<redacted>" in first["msg"]
    assert DEFAULT_TOKEN.split(":")[1] not in stream.getvalue()
    assert "hook-secret-1" not in stream.getvalue()


def test_every_ui_text_is_valid_telegram_html_in_both_languages() -> None:
    import string

    from khabar.bot._texts import COMMANDS, TEXTS

    for lang, texts in TEXTS.items():
        for key, text in texts.items():
            names = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            visible, _ = parse_html(text.format(**dict.fromkeys(names, "1")))
            assert visible.strip(), (lang, key)
    for command in COMMANDS:
        assert command.islower()
        assert all(1 <= len(TEXTS[lang][f"command_{command}"]) <= 256 for lang in TEXTS)


def test_every_text_has_both_languages_with_the_same_placeholders() -> None:
    import string

    from khabar.bot._texts import TEXTS

    assert set(TEXTS) == {"en", "ar"}
    assert TEXTS["en"].keys() == TEXTS["ar"].keys()
    for key, en in TEXTS["en"].items():
        ar = TEXTS["ar"][key]
        assert ar.strip() and (ar != en or key == "story_more_outlets"), key  # "+{n}"
        fields = [{f for _, f, _, _ in string.Formatter().parse(text) if f} for text in (en, ar)]
        assert fields[0] == fields[1], key


def test_serve_refuses_bad_configuration_before_loading_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KHABAR_TELEGRAM_TOKEN"):
        serve(Settings(home=tmp_path))
    bad = Settings(home=tmp_path, telegram_token=DEFAULT_TOKEN, webhook_secret="not ok!")
    with pytest.raises(ConfigError, match="KHABAR_WEBHOOK_SECRET"):
        serve(bad, webhook_url="https://example.com/hook")


@pytest.mark.parametrize(("url", "ok"), [
    ("https://t.me/libya_news/42", True),
    ("http://news.example.org:8080/a?b=c#d", True),
    ("https://www.bbc.com/arabic/articles/c1", True),
    ("https://", False),
    ("https:// ", False),
    ("http://intranet/story/1", False),
    ("http://localhost:8080/a", False),
    ("https://example./a", False),
    ("https://exa mple.com/story", False),
    ("https://example.com/a\nb", False),
    ("https://example.com/\x00x", False),
    ("https://example.com/\u202eevil", False),
    ("https://example.com:port/a", False),
    ("https://[::1/a", False),
    ("ftp://example.com/a", False),
    # User information: the keyboard is not redacted (articles stored before ingest
    # stripped it keep it).
    ("https://reader:hunter2@news.example.com/a", False),
    ("https://ghp_T0ken@news.example.com/a", False),
    ("https://reader:hunter\\2@news.example.com/a", False),
    ("https://@news.example.com/a", False),
    ("https://news.example.com/@writer", True),
    ("", False),
    (None, False),
])
def test_only_urls_telegram_opens_from_a_button(url: str | None, ok: bool) -> None:
    assert _button_url_ok(url) is ok


def test_the_open_button_takes_the_first_url_telegram_opens() -> None:
    def source(n: int, url: str | None) -> Source:
        return Source(n=n, outlets=["X"], title="T", published=datetime(2024, 1, 2, tzinfo=UTC),
                      url=url, position=0, n_passages=1, article_id=n, passage_id=n, text="b",
                      lang="en", score=0.5)

    def urls(shown: list[Source]) -> list[str]:
        kb = _keyboard(0, "k", 0, shown, "en")
        return [b.url for row in kb.inline_keyboard for b in row if b.url] if kb else []

    assert urls([source(1, "http://intranet/1"), source(2, None),
                 source(3, "https://example.com/3")]) == ["https://example.com/3"]
    assert urls([source(1, "http://intranet/1"), source(2, "https://exa mple.com/")]) == []
    assert urls([source(1, "https://reader:hunter2@example.com/1"),
                 source(2, "https://example.com/2")]) == ["https://example.com/2"]
    assert urls([source(1, "https://TOKEN@example.com/1")]) == []
