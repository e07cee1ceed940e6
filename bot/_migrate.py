"""A group upgraded to a supergroup gets a new chat id: everything the bot keeps moves.

Telegram says so twice (a service message with ``migrate_to_chat_id`` in the old
chat, one with ``migrate_from_chat_id`` in the new) and answers any later send to
the old id with ``ChatMigrated``; whichever comes first moves the digest schedule,
its posted windows, kept answers and the chat's indexed content (its origin); the
others find nothing left to move.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.ext import Application, ContextTypes

from ._services import Services, origin_of

log = logging.getLogger("bot")


async def migrate_chat(app: Application, old: int, new: int) -> None:  # type: ignore[type-arg]
    from ._digest import schedule, unschedule

    svc: Services = app.bot_data["services"]
    if old in svc.settings.allowed_chats:  # served by configuration: its new id too
        svc.db.approve(new, None)
    moved = await asyncio.to_thread(svc.db.move_chat, old, new, origin_of(old), origin_of(new))
    articles = await asyncio.to_thread(svc.index.store.move_origin, origin_of(old),
                                       origin_of(new))
    svc.state.move_chat(old, new)
    unschedule(app, old)
    if (digest := svc.db.digest(new)) is not None:
        schedule(app, digest)
    if moved or articles:
        log.info("chat migrated", extra={"event": "chat_migrated", "chat_id": new,
                                         "from_chat_id": old, "rows": moved,
                                         "articles": articles})


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        await migrate_chat(context.application, message.chat_id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id:
        await migrate_chat(context.application, message.migrate_from_chat_id, message.chat_id)
