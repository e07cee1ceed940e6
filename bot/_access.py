"""Who the bot serves and who may change what it knows.

* **Chats.** Private chats are always served. A group or channel is served only when
  it is in ``KHABAR_ALLOWED_CHATS`` or an operator approved it (``/allow <chat id>``
  in a private chat with the bot, kept in ``bot.sqlite3``); anywhere else the bot says
  why and leaves (:func:`gate`, run before every other handler).
* **Writes** (``/add``, documents, forwarded posts and their "Index it" button, a
  channel's posts, ``/forget``) **and admin commands** (``/stats``, ``/digest`` for a
  group or channel, ``/allow``, ``/revoke``): the configured operators
  (``KHABAR_ADMIN_IDS``). With ``KHABAR_CHAT_ADMINS_WRITE`` also a group's own
  administrators (anonymous ones too: they speak as the group) and a channel's own
  posts, in that chat only. A channel is never an administrator of anything else.
* **Origins.** What a chat adds is tagged ``chat:<id>`` and seen by that chat alone;
  what an operator adds in private is ``operator:<id>``, part of the shared archive
  (``khabar.store._origin``). Every chat sees the shared archive and its own additions.
"""

from __future__ import annotations

import contextlib
import logging
import time

from telegram import Bot, Chat, ChatMember, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from ._services import Services, command_text, origin_of, reply_html, send_html, services, ui_lang
from ._texts import t

log = logging.getLogger("bot")

ADMIN_TTL = 60.0  # seconds a group administrator check is trusted
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
_GONE = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)


def is_operator(svc: Services, user: User | None) -> bool:
    return user is not None and user.id in svc.settings.admin_ids


def is_allowed(svc: Services, chat_id: int) -> bool:
    """A group or channel the bot serves (private chats always are)."""
    return chat_id in svc.settings.allowed_chats or svc.db.approved(chat_id)


def view_of(chat_id: int) -> str:
    """The scope of what a chat sees: the shared archive and its own additions."""
    return origin_of(chat_id)


def write_origin(chat: Chat, user: User | None) -> str:
    """The origin of what is added here: an operator's private additions are shared."""
    if chat.type == ChatType.PRIVATE and user is not None:
        return f"operator:{user.id}"
    return origin_of(chat.id)


async def may_write(bot: Bot, svc: Services, chat: Chat, user: User | None,
                    sender_chat: Chat | None = None) -> bool:
    """Whether this sender may write to the index or run admin commands in ``chat``."""
    if is_operator(svc, user):
        return True
    if not svc.settings.chat_admins_write or chat.type not in (*_GROUPS, ChatType.CHANNEL):
        return False
    if sender_chat is not None:
        # Only a channel's administrators post in it, and an anonymous group
        # administrator speaks as the group itself; any other chat (a channel posting
        # in a group, a linked channel's automatic forward) is nobody's administrator.
        return sender_chat.id == chat.id
    if chat.type == ChatType.CHANNEL or user is None:
        return False
    return await _chat_admin(bot, svc, chat.id, user.id)


async def _chat_admin(bot: Bot, svc: Services, chat_id: int, user_id: int) -> bool:
    now = time.monotonic()
    cached = svc._admins.get((chat_id, user_id))
    if cached and cached[1] > now:
        return cached[0]
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.warning("getChatMember failed: %s", exc, extra={"chat_id": chat_id})
        return False
    ok = member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
    if len(svc._admins) > 10_000:
        svc._admins.clear()
    svc._admins[(chat_id, user_id)] = (ok, now + ADMIN_TTL)
    return ok


# -- the gate --------------------------------------------------------------------------
async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Before every handler: updates from a group or channel the bot does not serve go
    no further, and the bot leaves it (saying why)."""
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE:
        return
    svc = services(context)
    if is_allowed(svc, chat.id):
        return
    message = update.effective_message
    if message is not None and message.migrate_from_chat_id \
            and is_allowed(svc, message.migrate_from_chat_id):
        svc.db.approve(chat.id, None)  # a served group, upgraded to a supergroup
        return
    change = update.my_chat_member
    if change is not None and change.new_chat_member.status in _GONE:
        return  # out already: its schedules are cleaned up as for any chat
    await leave(context.bot, svc, chat.id, ui_lang(svc, update.effective_user))
    raise ApplicationHandlerStop


async def leave(bot: Bot, svc: Services, chat_id: int, lang: str) -> None:
    """Say why, then leave (Telegram then sends a my_chat_member update: "left")."""
    if chat_id in svc.leaving:  # concurrent updates from the chat being left
        return
    svc.leaving.add(chat_id)
    try:
        log.info("leaving a chat not approved", extra={"event": "leave", "chat_id": chat_id})
        with contextlib.suppress(TelegramError):
            await send_html(bot, svc, chat_id, t(lang, "leaving", chat_id=chat_id))
        try:
            await bot.leave_chat(chat_id)
        except TelegramError as exc:
            log.warning("leaveChat failed: %s", exc, extra={"chat_id": chat_id})
    finally:
        svc.leaving.discard(chat_id)


# -- operators approve chats ---------------------------------------------------------------
async def cmd_allow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _approval(update, context, allow=True)


async def cmd_revoke(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _approval(update, context, allow=False)


async def _approval(update: Update, context: ContextTypes.DEFAULT_TYPE, *, allow: bool) -> None:
    """``/allow <chat id>`` and ``/revoke <chat id>``: operators, in private only (an
    approval made in a group would be the group approving itself)."""
    svc = services(context)
    message = update.effective_message
    assert message is not None
    user = message.from_user
    lang = ui_lang(svc, user)
    if message.chat.type != ChatType.PRIVATE or not is_operator(svc, user):
        await reply_html(context.bot, svc, message, t(lang, "not_admin"))
        log.info("approval refused", extra={"event": "not_admin", "chat_id": message.chat_id,
                                            "user_id": user.id if user else None})
        return
    arg = command_text(message).split()
    try:
        chat_id = int(arg[0]) if len(arg) == 1 else None
    except ValueError:
        chat_id = None
    if chat_id is None or chat_id >= 0:  # groups and channels have negative ids
        chats = sorted(svc.settings.allowed_chats | set(svc.db.approved_chats()))
        await reply_html(context.bot, svc, message, t(
            lang, "allow_usage", chats=", ".join(map(str, chats)) or "-"))
        return
    assert user is not None
    if allow:
        svc.db.approve(chat_id, user.id)
        text = t(lang, "allowed", chat_id=chat_id)
    else:
        svc.db.revoke(chat_id)
        configured = chat_id in svc.settings.allowed_chats
        text = t(lang, "revoked_configured" if configured else "revoked", chat_id=chat_id)
    log.info("chat approval changed", extra={"event": "allow" if allow else "revoke",
                                             "chat_id": chat_id, "user_id": user.id})
    await reply_html(context.bot, svc, message, text)
    if not allow and not configured:
        await leave(context.bot, svc, chat_id, lang)  # served no more: out, saying why
