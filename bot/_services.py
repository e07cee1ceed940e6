"""What every handler shares: the services object and the helpers around sending.

One :class:`Services` lives in ``application.bot_data``; the Index and Khabar in
it are shared by every concurrent handler (both are thread-safe) and are only
called through ``asyncio.to_thread`` so the event loop never embeds or searches.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from khabar.index import Index
from khabar.retrieval import Khabar
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import ChatMigrated, TelegramError
from telegram.ext import ContextTypes

from khabar import Settings
from khabar._redact import redact_html
from khabar.text import detect_question_lang

from ._chat_state import ChatState
from ._db import BotDB
from ._ratelimit import FloodGate, RateLimiter
from ._split import TELEGRAM_LIMIT, split_html, visible_text
from ._texts import UiLang, t

log = logging.getLogger("bot")
T = TypeVar("T")

# Questions are searched in a pool of their own: in asyncio's one default pool, the
# quick SQLite calls that send each answer queued behind every question asked before
# (FIFO), so under load no answer went out until nearly all were searched.
_SEARCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="khabar-search")


async def searched(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` (a search) in the search pool, off the event loop, in a
    copy of the caller's context (as ``asyncio.to_thread``; ``run_in_executor`` copies
    none): a question's state on the Milvus store is its own, not the pool thread's
    last question's."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_SEARCHES, functools.partial(
        contextvars.copy_context().run, fn, *args, **kwargs))


@dataclass
class Services:
    settings: Settings
    khabar: Khabar
    index: Index
    db: BotDB
    state: ChatState = field(default_factory=ChatState)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(20))
    gate: FloodGate = field(default_factory=FloodGate)
    started: float = field(default_factory=time.monotonic)
    answered: int = 0
    # Moves what the bot keeps for a chat to its new id (set by the application).
    on_migrated: Callable[[int, int], Awaitable[None]] | None = None
    _admins: dict[tuple[int, int], tuple[bool, float]] = field(default_factory=dict)
    leaving: set[int] = field(default_factory=set)  # chats being left (see _access)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]  # type: ignore[no-any-return]


def origin_of(chat_id: int) -> str:
    """How the index tags what a chat brought (posts, documents, links)."""
    return f"chat:{chat_id}"


# -- language -------------------------------------------------------------------------
def lang_of_text(text: str) -> UiLang | None:
    """"ar"/"en" as retrieval reads the text's language; None when it has no letters."""
    if any(ch.isalpha() for ch in text):
        return detect_question_lang(text)
    return None


def chosen_lang(svc: Services, user: User | None) -> UiLang | None:
    """The user's /lang choice, if any. A bot's id (GroupAnonymousBot: every anonymous
    group administrator) has no choice of its own, whatever an older version kept."""
    return svc.db.lang(user.id) if user is not None and not user.is_bot else None


def ui_lang(svc: Services, user: User | None, text: str | None = None) -> UiLang:
    """The user's /lang choice, else the language of ``text``, else their Telegram's."""
    if chosen := chosen_lang(svc, user):
        return chosen
    if text and (found := lang_of_text(text)):
        return found
    code = (user.language_code or "") if user else ""
    return "ar" if code.lower().startswith("ar") else "en"


# -- sending ---------------------------------------------------------------------------
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def send_html(bot: Bot, svc: Services, chat_id: int, markup: str, *,
                    reply_to: int | None = None,
                    keyboard: InlineKeyboardMarkup | None = None,
                    thread: int | None = None,
                    sent: list[Message] | None = None) -> list[Message]:
    """Send Telegram HTML, split into valid parts of at most 4096 characters.

    The first part replies to ``reply_to``; the keyboard goes on the last part, under
    the sources it is about; ``thread`` is the forum topic. Flood control is waited
    out for this chat only (by the application's ``SendLimiter``). ``sent``, when
    given, collects the parts as they go out, so a caller sees what was posted even
    when a later part fails.
    """
    # Telegram refuses a message whose visible text is only whitespace. Nothing sent
    # to a chat carries a secret (khabar._redact), whatever the text came from.
    parts = [p for p in split_html(redact_html(markup), TELEGRAM_LIMIT)
             if visible_text(p).strip()]
    sent = [] if sent is None else sent
    async with svc.gate.chat(chat_id):
        for i, part in enumerate(parts):
            reply = (ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                     if reply_to is not None and i == 0 else None)
            kb = keyboard if i == len(parts) - 1 else None
            send = functools.partial(bot.send_message, text=part, parse_mode=ParseMode.HTML,
                                     reply_parameters=reply, reply_markup=kb,
                                     link_preview_options=_NO_PREVIEW, message_thread_id=thread)
            try:
                sent.append(await send(chat_id))
            except ChatMigrated as exc:  # upgraded to a supergroup: move along, send there
                new = int(exc.new_chat_id)
                if svc.on_migrated is not None:
                    await svc.on_migrated(chat_id, new)
                chat_id = new
                sent.append(await send(chat_id))
    return sent


async def refuse_if_limited(bot: Bot, svc: Services, message: Message, asker: int,
                            lang: str) -> bool:
    """True when ``asker`` is over the per-user rate limit; told so once per wait."""
    verdict = svc.limiter.check(asker)
    if verdict.allowed:
        return False
    if verdict.notify:
        seconds = max(1, math.ceil(verdict.retry_after))
        await reply_html(bot, svc, message, t(lang, "rate_limited", seconds=seconds))
    log.info("rate limited", extra={"event": "rate_limited", "chat_id": message.chat_id,
                                    "user_id": asker})
    return True


async def reply_html(bot: Bot, svc: Services, message: Message, markup: str, *,
                     keyboard: InlineKeyboardMarkup | None = None) -> list[Message]:
    """Answer a message: quoting it in groups (who is answered?), plainly in private."""
    quote = message.chat.type != ChatType.PRIVATE
    return await send_html(bot, svc, message.chat_id, markup,
                           reply_to=message.message_id if quote else None, keyboard=keyboard,
                           thread=topic_of(message))


def topic_of(message: Message) -> int | None:
    """The forum topic a message is in (None: the chat itself, or General)."""
    return message.message_thread_id if message.is_topic_message else None


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int, action: str = ChatAction.TYPING,
                 every: float = 4.5, *, thread: int | None = None) -> AsyncIterator[None]:
    """Show "typing…" until the block ends (Telegram shows it for about 5 s per call),
    in the forum topic ``thread`` when there is one (where the answer will appear)."""

    async def keep() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await bot.send_chat_action(chat_id, action, message_thread_id=thread)
            await asyncio.sleep(every)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def first_word(text: str) -> tuple[str, str]:
    """``text``'s first word and what follows it: a word ends at any whitespace, a line
    break too ("/summary\n7d" is /summary of 7 days)."""
    head, rest = [*text.split(maxsplit=1), "", ""][:2]  # "" for an empty text too
    return head, rest


def command_text(message: Message) -> str:
    """What follows ``/command[@bot]``, whitespace and line breaks kept."""
    return first_word(message.text or message.caption or "")[1].strip()
