"""The real bot Application against FakeTelegram, on the real model and store.

Every fixture here is function-scoped and async fixtures run on the test's own
event loop (pytest-asyncio's default), so the fake server, PTB's HTTP client and
the bot all share one loop. Handler exceptions are only logged by PTB, so the
``bot`` fixture collects them with an extra error handler and fails the test if
any remain at the end (a test expecting some clears ``bot.errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from khabar.bot.telegram import ALLOWED_UPDATES, build_application
from khabar.index import Index
from khabar.retrieval import Khabar
from telegram.ext import Application, ContextTypes

from khabar import Settings
from khabar.model import Encoder
from tests.bot.fake_telegram import FakeTelegram

ADMIN = 1000  # a configured admin (KHABAR_ADMIN_IDS)
USER = 111
GROUP = -1001234567890
# The chats the tests' bot serves (KHABAR_ALLOWED_CHATS): the group above, the channel
# and the second group some tests use, and a basic group that tests upgrade.
SERVED = frozenset({GROUP, -1001500, -1009876543210, -4055})

# The seed paragraph that answers "who struck Aleppo?".
PASSAGE = "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية"
# Whether retrieval answers or abstains (showing related passages) is its call; the
# bot's part is to show either with the right labels and citations.
# An answer whose evidence is not sure is headed "Probably (…)" instead of "Answer".
EN_HEADS = ("Answer\n", "Probably (", "The indexed news does not cover this.")
AR_HEADS = ("الإجابة\n", "على الأرجح (", "الأخبار المفهرسة لا تغطي هذا السؤال.")


async def until(condition: Callable[[], bool], timeout: float = 90) -> None:
    """Wait for a condition the bot makes true in its own time (an ingest, a post)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def settled(bot: RunningBot, timeout: float = 90) -> None:
    """Wait until the bot has fetched every update queued and no handler is running: what
    it did about them is all there is (a test that nothing happened needs no sleep)."""
    app, fake = bot.app, bot.fake

    def idle() -> bool:
        return (not fake.pending_updates and app.update_queue.empty()
                and app.update_processor.current_concurrent_updates == 0)

    await until(idle, timeout)
    # An update just taken from the queue gets its handler's task on the next turn of
    # the loop: look again after it.
    await asyncio.sleep(0.05)
    await until(idle, timeout)


def cites_passage_first(text: str) -> bool:
    """Citation [1] heads the seed passage that answers "who struck Aleppo?"."""
    return re.search(r"\[1\][^\n]*\n" + PASSAGE, text) is not None


@dataclass
class RunningBot:
    app: Application  # type: ignore[type-arg]
    fake: FakeTelegram
    settings: Settings
    errors: list[BaseException] = field(default_factory=list)

    @property
    def services(self) -> Any:
        return self.app.bot_data["services"]


def bot_settings(home: Any, fake: FakeTelegram, **changes: Any) -> Settings:
    base = {"home": home, "telegram_token": fake.token, "telegram_base_url": fake.base_url,
            "telegram_file_url": fake.base_file_url, "admin_ids": frozenset({ADMIN}),
            "rate_limit_per_minute": 1000, "allowed_chats": SERVED,
            # These tests let chats' own administrators write (test_access.py tests
            # the default, operators only).
            "chat_admins_write": True}
    return Settings(**{**base, **changes})


@contextlib.asynccontextmanager
async def run_bot(fake: FakeTelegram, settings: Settings, khabar: Any,
                  index: Index | None = None, *,
                  webhook: dict[str, Any] | None = None) -> AsyncIterator[RunningBot]:
    """The Application as ``run_polling``/``run_webhook`` would run it, without signals."""
    app = build_application(settings, khabar, index=index)
    running = RunningBot(app, fake, settings)

    async def collect(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        running.errors.append(context.error)

    app.add_error_handler(collect)
    await app.initialize()
    assert app.post_init is not None and app.updater is not None
    await app.post_init(app)  # only run_polling/run_webhook call it themselves
    await app.start()
    if webhook is None:
        await app.updater.start_polling(poll_interval=0.0, timeout=1,
                                        allowed_updates=ALLOWED_UPDATES)
    else:
        await app.updater.start_webhook(allowed_updates=ALLOWED_UPDATES, **webhook)
    try:
        yield running
    finally:
        # Stop the bot before the fake: PTB sends a last getUpdates on stop.
        await app.updater.stop()
        await app.stop()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)
        await app.shutdown()


@pytest.fixture(scope="session")
def seed_khabar(seed_index: Index) -> Khabar:
    return Khabar(seed_index)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_retry_delay=0.05) as server:
        yield server


@pytest.fixture
def tg_settings(settings: Settings, telegram: FakeTelegram) -> Settings:
    return bot_settings(settings.home, telegram)


@pytest.fixture
async def bot(telegram: FakeTelegram, tg_settings: Settings, seed_khabar: Khabar,
              seed_index: Index) -> AsyncIterator[RunningBot]:
    """The bot over the (read-only) seed index."""
    async with run_bot(telegram, tg_settings, seed_khabar, seed_index) as running:
        yield running
    assert not running.errors, running.errors


@pytest.fixture
def fresh_index(tg_settings: Settings, encoders: list[Encoder]) -> Iterator[Index]:
    """An empty index of its own on the real encoders, for tests that ingest."""
    ix = Index.open(tg_settings, encoders=encoders)
    yield ix
    ix.close()


@pytest.fixture
async def fresh_bot(telegram: FakeTelegram, tg_settings: Settings,
                    fresh_index: Index) -> AsyncIterator[RunningBot]:
    async with run_bot(telegram, tg_settings, Khabar(fresh_index), fresh_index) as running:
        yield running
    assert not running.errors, running.errors


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline buttons of a sent message, flattened."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b for row in rows for b in row]
