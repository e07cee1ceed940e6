"""Issue 13, item 1 and the access-control promise, through the fake Bot API with PTB's
real client, on the real model and store, with the default policy (operators only).

Every write and admin command is tried by a non-operator in a private chat, by a
group's own administrator, by an anonymous administrator, by a channel and with
forged button data: each is refused and neither the store nor the bot's database
changes. The bot serves only the chats it is allowed and leaves the others, and a chat
sees the shared archive plus its own additions, never another chat's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from khabar.index import Index
from khabar.retrieval import Khabar

from khabar import Settings
from tests.bot.conftest import ADMIN, GROUP, USER, bot_settings, buttons, run_bot, until
from tests.bot.fake_telegram import BOT_ID, FakeTelegram

TIMEOUT = 90
CHANNEL = -1001500
OTHER = -1009876543210
APPROVED = -1007770000  # approved by an operator (in bot.sqlite3), not configured
GROUP_ADMIN, CREATOR = 7, 5
SHARED = ("Drought in Morocco\nMorocco's farmers face the worst drought in forty years, the "
          "agriculture ministry said on Tuesday, with wheat harvests expected to halve.")
PRIVATE = ("Floods hit Benghazi\nHeavy floods hit the Libyan city of Benghazi on Monday, the "
           "city's mayor said, cutting power to thousands of homes and closing the port.")
DOC = b"# Locusts in Sudan\n\nSwarms of locusts reached eastern Sudan on Wednesday, the FAO said.\n"


class _Events(logging.Handler):
    """The bot's structured log events, to wait for refusals that send nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(getattr(record, "event", ""))

    def count(self, event: str) -> int:
        return self.events.count(event)


@pytest.fixture
def events() -> Iterator[_Events]:
    handler = _Events()
    logger = logging.getLogger("bot")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _settings(home: Path, fake: FakeTelegram, **changes: Any) -> Settings:
    # The defaults under test: operators only, chats' own administrators no writers.
    return bot_settings(home, fake, allowed_chats=frozenset({GROUP, CHANNEL, OTHER}),
                        chat_admins_write=False, **changes)


def _store_state(index: Index) -> dict[str, list[tuple[Any, ...]]]:
    """Every article (with its text's hash and origin) and passage in the store."""
    db = sqlite3.connect(index.store.db_path)
    try:
        return {
            "articles": db.execute("SELECT id, url, origin, content_hash FROM articles"
                                   " ORDER BY id").fetchall(),
            "passages": db.execute("SELECT id, article_id, text FROM passages"
                                   " ORDER BY id").fetchall()}
    finally:
        db.close()


def _bot_db_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What access control guards in bot.sqlite3 (answers kept for buttons are not: any
    question keeps one)."""
    db = sqlite3.connect(path)
    try:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("approved_chats", "digests", "digest_posts", "user_prefs")}
    finally:
        db.close()


async def _seed(index: Index) -> None:
    """A shared article and one of GROUP's own, for /forget to aim at."""
    now = datetime.now(UTC) - timedelta(hours=2)
    await asyncio.to_thread(index.add_telegram_post, SHARED, channel_title="Wire",
                            username="wire_news", message_id=1, date=now)
    await asyncio.to_thread(index.add_telegram_post, PRIVATE, channel_title="Libya News",
                            username="libya_news", message_id=2, date=now,
                            origin=f"chat:{GROUP}")


async def test_every_write_and_admin_command_is_refused_to_non_operators(
        telegram: FakeTelegram, tg_settings: Settings, fresh_index: Index,
        events: _Events) -> None:
    fake = telegram
    settings = _settings(tg_settings.home, fake)
    await _seed(fresh_index)
    fake.set_admins(GROUP, [GROUP_ADMIN, BOT_ID], creator=CREATOR)
    fake.add_channel(CHANNEL, "libya_news", title="Libya News")
    async with run_bot(fake, settings, Khabar(fresh_index), fresh_index) as running:
        running.services.db.approve(APPROVED, ADMIN)
        store_before = _store_state(fresh_index)
        db_before = _bot_db_state(settings.home / "bot.sqlite3")
        add = "/add https://example.com/news/1.html"
        forget = "/forget https://t.me/wire_news/1"
        # A non-operator in private.
        for text in (add, forget, "/stats", "/allow -1005550000", f"/revoke {APPROVED}",
                     "/digest @libya_news daily 08:00"):
            fake.private_text(USER, text)
        fake.document(USER, USER, "locusts.md", DOC, "text/markdown")
        fake.forwarded_channel_post(USER, CHANNEL, "libya_news", 9, SHARED + " Again.")
        # A group's own administrator, its creator, and an anonymous administrator.
        for sender in (GROUP_ADMIN, CREATOR):
            for text in (add, "/forget chat", "/forget https://t.me/libya_news/2", "/stats",
                         "/digest daily 08:00", "/allow -1005550000"):
                fake.group_text(GROUP, sender, text)
        for text in (add, "/forget chat", "/stats", "/digest daily 08:00"):
            fake.group_text(GROUP, 0, text, anonymous=True)
        fake.document(GROUP, GROUP_ADMIN, "locusts.md", DOC, "text/markdown",
                      chat_type="supergroup")
        fake.forwarded_channel_post(GROUP_ADMIN, CHANNEL, "libya_news", 10,
                                    SHARED + " Once more.", group=GROUP)
        # A channel, for its own posts and commands.
        fake.channel_post(CHANNEL, "libya_news", 11, DOC.decode())
        fake.channel_post(CHANNEL, "libya_news", 12, "/digest daily 08:00")

        # Refusals: 5 + 12 + 4 + 1 (/digest in the channel) + the private channel digest.
        await until(lambda: events.count("not_admin") >= 23, timeout=TIMEOUT)
        # The private and the group document, the channel post.
        await until(lambda: events.count("ingest_refused") >= 3, timeout=TIMEOUT)
        await until(lambda: events.count("answer") >= 2, timeout=TIMEOUT)  # forwards: asked

        # Its "Index it" button, pressed by a member, the group's administrator, and,
        # forged, on another chat's message and with a key that was never given.
        answer = next(m for m in fake.sent_messages(GROUP)
                      if any(b.get("callback_data", "").startswith("index:")
                             for b in buttons(m)))
        (button,) = [b for b in buttons(answer)
                     if b.get("callback_data", "").startswith("index:")]
        fake.callback_query(USER, GROUP, answer, button["callback_data"])
        fake.callback_query(GROUP_ADMIN, GROUP, answer, button["callback_data"])
        await until(lambda: events.count("not_admin") >= 25, timeout=TIMEOUT)
        private = fake.sent_messages(USER)[-1]
        fake.callback_query(ADMIN, USER, private, button["callback_data"])  # other chat's key
        fake.callback_query(ADMIN, GROUP, answer, "index:AAAAAAAAAAAA")  # never given
        fake.callback_query(ADMIN, GROUP, answer, "index:" + "x" * 60)
        expired = "This answer is no longer available; please ask again."
        await until(lambda: sum(c.get("text") == expired
                                for c in fake.calls_to("answerCallbackQuery")) >= 3,
                    timeout=TIMEOUT)

        assert _store_state(fresh_index) == store_before
        assert _bot_db_state(settings.home / "bot.sqlite3") == db_before
        assert not fake.calls_to("getFile")  # no file was even downloaded
        assert fake.left == []  # served chats are not left
        refusals = [m["text"] for m in fake.sent_messages()
                    if m["text"] == "Sorry, only administrators can do that."]
        assert len(refusals) >= 22
    assert not running.errors, running.errors


async def test_operators_may_do_what_others_may_not(
        telegram: FakeTelegram, tg_settings: Settings, fresh_index: Index) -> None:
    """The same commands from an operator do act: the refusals above are the policy's."""
    fake = telegram
    settings = _settings(tg_settings.home, fake)
    await _seed(fresh_index)
    async with run_bot(fake, settings, Khabar(fresh_index), fresh_index) as running:
        fake.private_text(ADMIN, "/forget https://t.me/wire_news/1")
        (forgot,) = await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
        assert forgot["text"] == "Forgot 1 article(s)."
        fake.private_text(ADMIN, "/allow -1005550000")
        *_, allowed = await fake.wait_for_messages(ADMIN, 2, timeout=TIMEOUT)
        assert "approved" in allowed["text"]
        assert running.services.db.approved(-1005550000)
        fake.document(ADMIN, ADMIN, "locusts.md", DOC, "text/markdown")
        *_, report = await fake.wait_for_messages(ADMIN, 3, timeout=TIMEOUT)
        assert report["text"].startswith("Indexed locusts.md: 1 added")
        fake.group_text(GROUP, ADMIN, "/forget chat")
        (group,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
        assert group["text"] == "Forgot 1 article(s)."
    assert not running.errors, running.errors
    assert fresh_index.store.article_ids(origin=f"operator:{ADMIN}")  # shared, and whose


async def test_the_bot_leaves_chats_it_does_not_serve(
        telegram: FakeTelegram, tg_settings: Settings, fresh_index: Index) -> None:
    fake = telegram
    settings = _settings(tg_settings.home, fake)
    stranger, channel, group = -1009990000, -1009990001, -1009990002
    async with run_bot(fake, settings, Khabar(fresh_index), fresh_index) as running:
        fake.added_to_group(stranger, USER)
        (said,) = await fake.wait_for_messages(stranger, 1, timeout=TIMEOUT)
        assert "only serve" in said["text"] and f"/allow {stranger}" in said["text"]
        await until(lambda: fake.left == [stranger], timeout=TIMEOUT)
        # A chat that never said it added the bot: its first update makes it leave.
        fake.group_text(group, USER, "/ask who struck Aleppo?")
        fake.add_channel(channel, "strangers")
        fake.channel_post(channel, "strangers", 1, PRIVATE)
        await until(lambda: set(fake.left) == {stranger, group, channel}, timeout=TIMEOUT)
        assert not any("Aleppo" in m["text"] for m in fake.sent_messages(group))
        assert fresh_index.store.count_articles() == 0  # the channel's post not indexed

        # Approved by an operator: served from then on, until revoked.
        fake.private_text(ADMIN, f"/allow {stranger}")
        await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
        fake.added_to_group(stranger, USER)
        _, hello = await fake.wait_for_messages(stranger, 2, timeout=TIMEOUT)
        assert hello["text"].startswith("Hello!")
        fake.private_text(ADMIN, f"/revoke {stranger}")
        await until(lambda: fake.left.count(stranger) == 2, timeout=TIMEOUT)
        assert not running.services.db.approved(stranger)
    assert not running.errors, running.errors


async def test_a_chat_sees_the_shared_archive_and_its_own_never_anothers(
        telegram: FakeTelegram, tg_settings: Settings, fresh_index: Index) -> None:
    fake = telegram
    settings = _settings(tg_settings.home, fake)
    await _seed(fresh_index)  # the floods are GROUP's own
    fake.set_admins(OTHER, [BOT_ID])
    fake.set_admins(GROUP, [BOT_ID])
    async with run_bot(fake, settings, Khabar(fresh_index), fresh_index) as running:
        question = "/ask What hit Benghazi and closed its port?"
        fake.group_text(GROUP, USER, question)
        fake.group_text(OTHER, USER, question)
        fake.private_text(USER, question.removeprefix("/ask "))
        (own,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
        (other,) = await fake.wait_for_messages(OTHER, 1, timeout=TIMEOUT)
        (private,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
        assert "https://t.me/libya_news/2" in own["raw_text"]
        for text in (other["raw_text"], private["raw_text"]):
            assert "libya_news" not in text and "Heavy floods" not in text
        fake.group_text(OTHER, USER, "/sources")
        fake.group_text(GROUP, USER, "/sources")
        _, other_sources = await fake.wait_for_messages(OTHER, 2, timeout=TIMEOUT)
        _, own_sources = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
        assert "Libya News" in own_sources["text"] and "Wire" in own_sources["text"]
        assert "Libya News" not in other_sources["text"] and "Wire" in other_sources["text"]
        fake.group_text(OTHER, USER, "/summary 7d")
        *_, summary = await fake.wait_for_messages(OTHER, 3, timeout=TIMEOUT)
        assert "Drought in Morocco" in summary["text"]
        assert "Benghazi" not in summary["text"]
    assert not running.errors, running.errors


def test_allowed_chats_and_operators_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KHABAR_ALLOWED_CHATS", "-1001234567890, -4055;-1009876543210")
    monkeypatch.setenv("KHABAR_ADMIN_IDS", "1000")
    settings = Settings.load(home=tmp_path)
    assert settings.allowed_chats == frozenset({-1001234567890, -4055, -1009876543210})
    assert settings.admin_ids == frozenset({1000}) and settings.chat_admins_write is False
