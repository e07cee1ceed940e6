"""What goes into the index through Telegram, and the commands that manage it.

Who may write is ``_access``'s call: the operators, and with
``KHABAR_CHAT_ADMINS_WRITE`` a chat's own administrators. Channel posts are then
indexed as they come, with their ``t.me`` link as the citation; an edited post has
the same link, so the store replaces the old text. Forwarded channel posts and
documents are indexed when a writer sends them, with a report of what went in and
what was refused. What a chat brings is tagged ``origin="chat:<id>"`` and seen by
that chat alone; what an operator adds in private, ``operator:<id>``, is shared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import PurePath
from typing import Any

from khabar.index import ITEM_STATUSES, IngestReport
from telegram import InlineKeyboardButton, Message, MessageOriginChannel, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut
from telegram.ext import ContextTypes

from khabar._memory import release_free_memory
from khabar._redact import redact

from ._access import is_operator, may_write, view_of, write_origin
from ._handlers import on_text
from ._render import esc
from ._services import (
    Services,
    command_text,
    origin_of,
    reply_html,
    services,
    topic_of,
    typing,
    ui_lang,
)
from ._texts import t

log = logging.getLogger("bot")

DOCUMENT_TYPES = frozenset({".txt", ".md", ".html", ".htm", ".json", ".jsonl"})
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
REPORT_ITEMS = 25  # lines of detail in an ingest report; the rest are counted


def download_reason(exc: TelegramError) -> str:
    """What a chat is told when a download fails: what kind of failure, and Telegram's
    own words for a refused request, never the raw error (it may hold the file URL,
    which holds the bot token)."""
    if isinstance(exc, TimedOut):
        return "timed out"
    if isinstance(exc, BadRequest):  # "File is too big" and the like
        return redact(exc.message)[:200]
    if isinstance(exc, NetworkError):
        return "network error"
    return type(exc).__name__


def report_html(report: IngestReport, name: str, lang: str) -> str:
    """What went in and what was refused, and why."""
    counts = [f"{report.count(s)} {t(lang, 'status_' + s)}" for s in ITEM_STATUSES
              if report.count(s)]
    summary = ("، " if lang == "ar" else ", ").join(counts) or t(lang, "nothing")
    lines = [t(lang, "report_head", name=esc(name), summary=esc(summary))]
    # Refusals first: they are what the sender must act on.
    items = sorted(report.items, key=lambda i: i.status != "error")
    for item in items[:REPORT_ITEMS]:
        label = esc(item.title or item.name)
        if item.status == "error":
            lines.append(f"✗ {label} — {esc(item.message)}")
        else:
            lines.append(f"✓ {label} — {esc(t(lang, 'status_' + item.status))}"
                         + (f" ({item.passages})" if item.passages else ""))
    if len(items) > REPORT_ITEMS:
        lines.append(esc(t(lang, "report_more", n=len(items) - REPORT_ITEMS)))
    return "\n".join(lines)


def _log_report(what: str, report: IngestReport, chat_id: int) -> None:
    log.info("ingested %s: %s", what, report.summary(),
             extra={"event": "ingest", "chat_id": chat_id, "added": report.count("added"),
                    "replaced": report.count("replaced"), "errors": len(report.errors)})


async def ingesting(add: Callable[..., IngestReport], *args: Any, **kwargs: Any
                    ) -> IngestReport:
    """``add(*args, **kwargs)`` (an Index method) on a worker thread, then the heap's
    freed pages back to the system: an ingest's transient buffers otherwise stayed
    with the bot, ~10 MB a post (khabar/_memory.py)."""
    try:
        return await asyncio.to_thread(add, *args, **kwargs)
    finally:
        release_free_memory()


# -- channel posts ---------------------------------------------------------------------------
async def on_channel_post(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    post = update.channel_post or update.edited_channel_post
    if post is None:
        return
    text = post.text or post.caption or ""
    if text.startswith("/"):
        from ._digest import channel_command

        await channel_command(update, context, text)
        return  # commands are not news
    svc = services(context)
    if not await may_write(context.bot, svc, post.chat, None, post.sender_chat):
        log.info("channel post not indexed: its admins are no writers",
                 extra={"event": "ingest_refused", "chat_id": post.chat_id})
        return
    if post.document is not None:
        await _ingest_document(context, svc, post, lang="en", quiet=True)
    if text.strip():
        report = await _ingest_post(svc, post, text, origin_of(post.chat_id))
        _log_report(f"post {post.message_id}", report, post.chat_id)


async def _ingest_post(svc: Services, post: Message, text: str, origin: str) -> IngestReport:
    chat = post.chat
    return await ingesting(
        svc.index.add_telegram_post, text, channel_title=chat.title or chat.username or "",
        username=chat.username, message_id=post.message_id, date=post.date,
        chat_id=chat.id, origin=origin)


async def on_forward(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A channel post forwarded by an administrator is indexed like the post itself."""
    message = update.message
    if message is None or message.is_automatic_forward:
        # A linked channel's post that Telegram itself copies into the channel's
        # discussion group: nobody forwarded or asked anything (on_text skips them too).
        return
    fwd = message.forward_origin
    if not isinstance(fwd, MessageOriginChannel):
        if message.text and not message.text.startswith("/"):
            await on_text(update, context)  # a forwarded chat message: just a question
        return
    svc = services(context)
    user = message.from_user
    lang = ui_lang(svc, user)
    text = message.text or message.caption or ""
    if not await may_write(context.bot, svc, message.chat, user, message.sender_chat):
        await _forward_as_question(update, context, fwd, text)
        return
    channel = fwd.chat
    origin = write_origin(message.chat, user)
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        report = await ingesting(
            svc.index.add_telegram_post, text, channel_title=channel.title or channel.username
            or "", username=channel.username, message_id=fwd.message_id, date=fwd.date,
            chat_id=channel.id, origin=origin)
    _log_report(f"forwarded post {fwd.message_id}", report, message.chat_id)
    name = f"@{channel.username}/{fwd.message_id}" if channel.username else \
        f"{channel.title or channel.id}/{fwd.message_id}"
    await reply_html(context.bot, svc, message, report_html(report, name, lang))


async def _forward_as_question(update: Update, context: ContextTypes.DEFAULT_TYPE,
                               fwd: MessageOriginChannel, text: str) -> None:
    """A reader's forwarded post asks what else was reported about it: the story, its
    other outlets and languages. In a group, operators get a button to index it."""
    from ._handlers import ask

    svc = services(context)
    message = update.message
    assert message is not None
    lang = ui_lang(svc, message.from_user, text)
    extra = None
    if message.chat.type != ChatType.PRIVATE and text.strip():
        channel = fwd.chat
        key = await asyncio.to_thread(
            svc.db.keep_answer, message.chat_id, "forward", lang, payload={
                "text": text, "title": channel.title or channel.username or "",
                "username": channel.username, "message_id": fwd.message_id,
                "date": fwd.date.isoformat(), "chat_id": channel.id})
        extra = [[InlineKeyboardButton(t(lang, "index_it"), callback_data=f"index:{key}")]]
    await ask(update, context, text, previous=None, intro=t(lang, "forward_intro"), extra=extra)


async def on_index(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The "index it" button under a forwarded post's answer: for operators only."""
    from ._handlers import _drop_button

    svc = services(context)
    query = update.callback_query
    assert query is not None
    message = query.message if isinstance(query.message, Message) else None
    lang = ui_lang(svc, query.from_user)
    key = (query.data or "").partition(":")[2]
    kept = await asyncio.to_thread(svc.db.answer, message.chat_id, key) if message else None
    if message is None or kept is None or kept.kind != "forward" or not kept.payload:
        await query.answer(t(lang, "expired"), show_alert=True)
        return
    # The presser, whoever pressed: a button's data is the client's to forge, so the
    # key is only looked up in this chat, and only a writer's press indexes anything.
    if not await may_write(context.bot, svc, message.chat, query.from_user):
        await query.answer(t(lang, "not_admin"), show_alert=True)
        log.info("index button refused", extra={"event": "not_admin",
                                                "chat_id": message.chat_id,
                                                "user_id": query.from_user.id})
        return
    await query.answer()
    await _drop_button(query)
    post = kept.payload
    report = await ingesting(
        svc.index.add_telegram_post, str(post["text"]), channel_title=str(post["title"]),
        username=str(post["username"]) if post["username"] else None,
        message_id=int(str(post["message_id"])), date=datetime.fromisoformat(str(post["date"])),
        chat_id=int(str(post["chat_id"])), origin=write_origin(message.chat, query.from_user))
    _log_report(f"forwarded post {post['message_id']}", report, message.chat_id)
    name = (f"@{post['username']}/{post['message_id']}" if post["username"]
            else f"{post['title']}/{post['message_id']}")
    await reply_html(context.bot, svc, message, report_html(report, name, lang))


# -- documents -------------------------------------------------------------------------------
async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.message
    if message is None or message.document is None:
        return
    svc = services(context)
    user = message.from_user
    lang = ui_lang(svc, user, message.caption)
    if not await may_write(context.bot, svc, message.chat, user, message.sender_chat):
        # In groups people share files with each other: only a private upload is for us.
        if message.chat.type == ChatType.PRIVATE:
            await reply_html(context.bot, svc, message, t(lang, "not_admin"))
        log.info("document refused: not an administrator",
                 extra={"event": "ingest_refused", "chat_id": message.chat_id,
                        "user_id": user.id if user else None})
        return
    await _ingest_document(context, svc, message, lang=lang, quiet=False)


async def _ingest_document(context: ContextTypes.DEFAULT_TYPE, svc: Services, message: Message,
                           *, lang: str, quiet: bool) -> None:
    doc = message.document
    assert doc is not None
    name = doc.file_name or "document"

    async def tell(text: str) -> None:
        if not quiet:
            await reply_html(context.bot, svc, message, text)

    if PurePath(name).suffix.lower() not in DOCUMENT_TYPES:
        await tell(t(lang, "doc_unsupported", name=esc(name)))
        return
    limit = min(DOWNLOAD_LIMIT, svc.settings.max_file_bytes)
    if doc.file_size is not None and doc.file_size > limit:
        await tell(t(lang, "doc_too_big", name=esc(name), size=round(doc.file_size / 2**20, 1),
                     limit=limit // 2**20))
        return
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        try:
            file = await context.bot.get_file(doc.file_id)
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("document download failed: %s", exc,
                        extra={"event": "download_failed", "chat_id": message.chat_id})
            await tell(t(lang, "doc_download_failed", name=esc(name),
                         reason=esc(download_reason(exc))))
            return
        report = await ingesting(svc.index.add_bytes, data, name, doc.mime_type,
                                         origin=write_origin(message.chat, message.from_user))
    _log_report(f"document {name}", report, message.chat_id)
    await tell(report_html(report, name, lang))


# -- administration ----------------------------------------------------------------------------
async def _admin_or_refuse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    if await may_write(context.bot, svc, message.chat, message.from_user, message.sender_chat):
        return True
    await reply_html(context.bot, svc, message, t(ui_lang(svc, message.from_user), "not_admin"))
    log.info("admin command refused", extra={
        "event": "not_admin", "chat_id": message.chat_id,
        "user_id": message.from_user.id if message.from_user else None})
    return False


async def cmd_add(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admin_or_refuse(update, context):
        return
    svc = services(context)
    message = update.effective_message
    assert message is not None
    lang = ui_lang(svc, message.from_user)
    url = command_text(message).split()[0] if command_text(message) else ""
    if not url.startswith(("http://", "https://")):
        await reply_html(context.bot, svc, message, t(lang, "add_usage"))
        return
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        report = await ingesting(svc.index.add_url, url,
                                         origin=write_origin(message.chat, message.from_user))
    _log_report("url", report, message.chat_id)
    await reply_html(context.bot, svc, message, report_html(report, url, lang))


async def cmd_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admin_or_refuse(update, context):
        return
    svc = services(context)
    message = update.effective_message
    assert message is not None
    user = message.from_user
    lang = ui_lang(svc, user)
    arg = command_text(message)
    store = svc.index.store
    in_group = message.chat.type != ChatType.PRIVATE
    # A chat's administrators (when they may write) manage what their chat brought;
    # operators, anything.
    everywhere = user is not None and user.id in svc.settings.admin_ids
    mine = write_origin(message.chat, user)
    if arg == "chat" and in_group:
        ids = await asyncio.to_thread(store.article_ids, origin=mine)
    elif arg.startswith(("http://", "https://")):
        ids = await asyncio.to_thread(store.article_ids, url=arg,
                                      origin=None if everywhere else mine)
    else:
        await reply_html(context.bot, svc, message, t(lang, "forget_usage"))
        return
    n = await asyncio.to_thread(store.delete_articles, ids)
    log.info("forgot %d article(s)", n, extra={"event": "forget", "chat_id": message.chat_id})
    await reply_html(context.bot, svc, message, t(lang, "forgot", n=n))


async def cmd_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admin_or_refuse(update, context):
        return
    svc = services(context)
    message = update.effective_message
    assert message is not None
    lang = ui_lang(svc, message.from_user)
    store = svc.index.store
    # An operator in private sees the whole store; in a group, everyone (operators too:
    # the reply is the group's to read) what the chat sees, never what other chats keep
    # private, not even as counts or dates.
    if is_operator(svc, message.from_user) and message.chat.type == ChatType.PRIVATE:
        stats = await asyncio.to_thread(store.stats)
    else:
        stats = await asyncio.to_thread(store.scope_stats, view_of(message.chat_id))
    langs = stats["languages"]
    assert isinstance(langs, dict | None)
    lines = [t(lang, "stats", articles=_count(stats["articles"]),
               passages=_count(stats["passages"]), outlets=_count(stats["outlets"]),
               languages=esc(", ".join(f"{k}: {v}" for k, v in (langs or {}).items()) or "-"),
               first=esc(str(stats["published_from"] or "-")[:10]),
               last=esc(str(stats["published_to"] or "-")[:10]))]
    if message.chat.type != ChatType.PRIVATE:
        ids = await asyncio.to_thread(svc.index.store.article_ids,
                                      origin=origin_of(message.chat_id))
        lines.append(t(lang, "stats_chat", n=len(ids)))
    uptime = int(time.monotonic() - svc.started)
    lines.append(t(lang, "stats_bot", answered=svc.answered,
                   uptime=f"{uptime // 3600}h{uptime % 3600 // 60:02d}m"))
    await reply_html(context.bot, svc, message, "\n".join(lines))


def _count(value: object) -> str:
    return "-" if value is None else str(value)


async def cmd_sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    lang = ui_lang(svc, message.from_user)
    outlets = await asyncio.to_thread(svc.index.store.outlets, view_of(message.chat_id))
    if not outlets:
        await reply_html(context.bot, svc, message, t(lang, "empty"))
        return
    shown = 50
    lines = [t(lang, "sources_head", n=len(outlets))]
    lines += [f"• \u2068{esc(name)}\u2069 — {count}" for name, count in outlets[:shown]]
    if len(outlets) > shown:
        lines.append(t(lang, "sources_more", n=len(outlets) - shown))
    await reply_html(context.bot, svc, message, "\n".join(lines))
