"""Questions and answers: private chats, /ask, replies and mentions in groups, paging.

Every answer is rendered by ``_render.render_telegram`` and sent through
``send_html`` (split, flood control). The retrieval call runs in a worker thread,
so a slow question never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
import unicodedata
from urllib.parse import urlsplit

from khabar.retrieval import Answer, Filters, Hit, Source, to_source
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from ._render import esc, render_telegram, telegram_source
from ._services import (
    Services,
    chosen_lang,
    command_text,
    origin_of,
    refuse_if_limited,
    reply_html,
    searched,
    send_html,
    services,
    topic_of,
    typing,
    ui_lang,
)
from ._texts import UiLang, t

log = logging.getLogger("bot")

PAGE = 3  # passages per "more sources" page
MAX_QUESTION = 1000
_MORE = re.compile(r"more:([A-Za-z0-9_-]{1,24}):(\d{1,4})")
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


# -- answering ---------------------------------------------------------------------------
_OWN = object()  # ask(previous=_OWN): read with the asker's own previous question


def asker_of(message: Message) -> int:
    """Who asked, for rate limits and follow-ups: anonymous group admins and channels all
    come as one user (GroupAnonymousBot), so they are told apart by the chat they speak as."""
    if message.sender_chat is not None:
        return message.sender_chat.id
    return message.from_user.id if message.from_user else message.chat_id


def speaks_as_a_chat(message: Message) -> bool:
    """Whether the sender is nobody in particular: an anonymous group administrator
    (GroupAnonymousBot) or a channel posting in a group. Every such sender, in every
    group, is the same Telegram user, so nothing is kept for that user id."""
    user = message.from_user
    return message.sender_chat is not None or user is None or user.is_bot


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str, *,
              previous: object = _OWN, intro: str | None = None,
              extra: list[list[InlineKeyboardButton]] | None = None) -> None:
    message = update.effective_message
    assert message is not None
    await answer_question(context, message, message.from_user, asker_of(message), question,
                          previous=previous, intro=intro, extra=extra)


async def answer_question(context: ContextTypes.DEFAULT_TYPE, message: Message,
                          user: User | None, asker: int, question: str, *,
                          previous: object = _OWN, intro: str | None = None,
                          extra: list[list[InlineKeyboardButton]] | None = None,
                          read_filters: bool = True) -> None:
    """Answer ``question`` in reply to ``message``. ``previous``: what it may follow up
    (``_OWN``: the asker's last question here; None: nothing, asked fresh);
    ``read_filters=False``: no period or outlet read from its words (asked fresh)."""
    svc = services(context)
    question = question.strip()[:MAX_QUESTION]
    if not question:
        await reply_html(context.bot, svc, message, t(ui_lang(svc, user), "ask_usage"))
        return
    if await refuse_if_limited(context.bot, svc, message, asker, ui_lang(svc, user, question)):
        return
    before = (svc.state.previous(message.chat_id, asker) if previous is _OWN
              else previous if isinstance(previous, str) else None)
    t0 = time.perf_counter()
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        # Only what this chat may see: the shared archive and its own additions.
        answer = await searched(svc.khabar.ask, question, previous=before,
                                filters=Filters(scope=origin_of(message.chat_id)),
                                read_filters=read_filters)
        empty = answer.abstained and not answer.related and await asyncio.to_thread(
            svc.index.store.count_articles) == 0
    svc.state.set_previous(message.chat_id, asker, answer.query.conversation)
    lang = _answer_lang(svc, user, answer, question)
    if empty:
        await reply_html(context.bot, svc, message, t(lang, "empty"),
                         keyboard=InlineKeyboardMarkup(extra) if extra else None)
        return
    shown = answer.sources or answer.related
    key = await asyncio.to_thread(
        svc.db.keep_answer, message.chat_id, "answer", lang, shown=len(shown),
        more=[(h.passage.id, h.outlets or h.passage.outlets, h.score) for h in answer.more],
        context=answer.query.conversation, payload={"question": question})
    # Read as a follow-up, or with a period or outlet taken from its words: the
    # answer says so (render_telegram) and offers the plain reading.
    # What was read from the words (the chat's scope is not: it always applies).
    applied = dataclasses.replace(answer.query.filters, scope=None)
    if "time" in answer.relaxed:  # a period that matched nothing was dropped already
        applied = dataclasses.replace(applied, since=None, until=None)
    keyboard = _keyboard(len(answer.more), key, 0, shown, lang,
                         fresh=bool(answer.query.follow_up_of) or bool(applied), extra=extra)
    text = render_telegram(answer, lang)
    if intro:
        text = f"<i>{esc(intro)}</i>\n\n{text}"
    sent = await reply_html(context.bot, svc, message, text, keyboard=keyboard)
    await asyncio.to_thread(svc.db.link_messages, message.chat_id,
                            [m.message_id for m in sent], key)
    svc.answered += 1
    log.info("answered", extra={
        "event": "answer", "chat_id": message.chat_id, "user_id": asker, "lang": answer.lang,
        "abstained": answer.abstained, "follow_up": bool(answer.query.follow_up_of),
        "sources": len(shown),
        "ms": round((time.perf_counter() - t0) * 1000)})


async def on_fresh(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """"Ask it fresh": the question again, not read as a follow-up, and without the
    period or outlets read from its words."""
    svc = services(context)
    query = update.callback_query
    assert query is not None
    message = query.message if isinstance(query.message, Message) else None
    key = (query.data or "").partition(":")[2]
    kept = await asyncio.to_thread(svc.db.answer, message.chat_id, key) if message else None
    if message is None or kept is None or not kept.payload:
        await query.answer(t(ui_lang(svc, query.from_user), "expired"), show_alert=True)
        return
    await query.answer()
    await _drop_button(query)
    await answer_question(context, message, query.from_user, query.from_user.id,
                          str(kept.payload.get("question", "")), previous=None,
                          read_filters=False)


def _answer_lang(svc: Services, user: User | None, answer: Answer, question: str) -> UiLang:
    """The user's /lang choice, else the question's language."""
    if chosen := chosen_lang(svc, user):
        return chosen
    if answer.lang in ("ar", "en"):
        return answer.lang
    return ui_lang(svc, user, question)


def _button_url_ok(url: str | None) -> bool:
    """Whether Telegram takes ``url`` for a URL button: http(s), a host with a dot, no
    whitespace or control characters. It refuses the whole message for any other
    (BUTTON_URL_INVALID), and the keyboard rides on an answer's last part, its sources.
    Articles keep the URL their source gave (``http://intranet/...`` included). Nor one
    with user information: the keyboard is not redacted, and articles stored before
    ingest stripped it may still carry ``user:password@``."""
    if not url or not url.startswith(("https://", "http://")):
        return False
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is no number raises
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return "." in (parts.hostname or "").strip(".")


def _keyboard(n_more: int, key: str, next_page: int, shown: list[Source], lang: str, *,
              fresh: bool = False, extra: list[list[InlineKeyboardButton]] | None = None
              ) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    if n_more > next_page * PAGE:
        data = f"more:{key}:{next_page}"  # well under Telegram's 64 bytes
        rows.append([InlineKeyboardButton(t(lang, "more"), callback_data=data)])
    url = next((s.url for s in shown if _button_url_ok(s.url)), None)
    if url:
        rows.append([InlineKeyboardButton(t(lang, "open"), url=url)])
    if fresh:
        rows.append([InlineKeyboardButton(t(lang, "ask_fresh"), callback_data=f"fresh:{key}")])
    rows += extra or []
    return InlineKeyboardMarkup(rows) if rows else None


async def on_more(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The "more sources" button: the next page of passages, as a new message.

    The answer is read from ``bot.sqlite3`` (so buttons outlive a restart) and its
    passages from the store, so a passage forgotten since is not shown again.
    """
    svc = services(context)
    query = update.callback_query
    assert query is not None
    m = _MORE.fullmatch(query.data or "")
    message = query.message if isinstance(query.message, Message) else None
    if m is None or message is None:
        await query.answer()
        return
    key, page = m.group(1), int(m.group(2))
    kept = await asyncio.to_thread(svc.db.answer, message.chat_id, key)
    chosen = svc.db.lang(query.from_user.id)
    if kept is None:
        await query.answer(t(chosen or ui_lang(svc, query.from_user), "expired"),
                           show_alert=True)
        return
    lang = chosen or kept.lang
    first = kept.shown + page * PAGE + 1
    wanted = kept.more[page * PAGE:(page + 1) * PAGE]
    found = await asyncio.to_thread(svc.index.store.passages, [i for i, _, _ in wanted])
    sources = [to_source(first + n, Hit(passage=found[i], score=score, outlets=outlets))
               for n, (i, outlets, score) in enumerate(wanted) if i in found]
    if not sources:
        await query.answer(t(lang, "no_more" if not wanted else "expired"),
                           show_alert=bool(wanted))
        return
    await query.answer()
    head = t(lang, "more_head", first=first, last=first + len(wanted) - 1,
             total=kept.shown + len(kept.more))
    body = "\n\n".join([head, *(telegram_source(s, lang) for s in sources)])
    await _drop_button(query)
    await send_html(context.bot, svc, message.chat_id, body, reply_to=message.message_id,
                    keyboard=_keyboard(len(kept.more), key, page + 1, sources, lang),
                    thread=message.message_thread_id)


async def _drop_button(query: CallbackQuery) -> None:
    """The pressed button has done its job; keep the others (the article link)."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = [[b for b in row if b.callback_data != query.data]
            for row in message.reply_markup.inline_keyboard]
    rows = [r for r in rows if r]
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)


# -- where questions come from ------------------------------------------------------------
async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private: every text is a question. Groups: replies to the bot and mentions only."""
    message = update.message
    if message is None or message.text is None:
        return
    replied = message.reply_to_message
    to_bot = replied is not None and replied.from_user is not None \
        and replied.from_user.id == context.bot.id
    if message.chat.type == ChatType.PRIVATE:
        await ask(update, context, message.text,
                  previous=await _replied_context(context, replied) if to_bot else _OWN)
        return
    if message.chat.type not in _GROUPS or message.is_automatic_forward:
        return
    if to_bot:
        await ask(update, context, message.text,
                  previous=await _replied_context(context, replied))
        return
    question = _without_mention(message, context.bot.username, context.bot.id)
    if question is not None:
        await ask(update, context, question)


async def _replied_context(context: ContextTypes.DEFAULT_TYPE,
                           replied: Message | None) -> object:
    """What a reply to the bot follows up: the answer replied to (its question), or a
    digest's stories; the asker's own last question for any other message of the bot."""
    if replied is None:
        return _OWN
    svc = services(context)
    kept = await asyncio.to_thread(svc.db.answer_of_message, replied.chat_id,
                                   replied.message_id)
    return kept.context if kept is not None and kept.context else _OWN


def _without_mention(message: Message, username: str, bot_id: int) -> str | None:
    """The text with the bot's @mention removed, or None when the bot is not mentioned."""
    text = message.text or ""
    handle = f"@{username}".lower()
    cuts: list[tuple[int, int]] = []
    for entity, value in message.parse_entities([MessageEntity.MENTION,
                                                 MessageEntity.TEXT_MENTION]).items():
        mentioned = (value.lower() == handle if entity.type == MessageEntity.MENTION
                     else entity.user is not None and entity.user.id == bot_id)
        if mentioned:
            start = _py_offset(text, entity.offset)
            cuts.append((start, start + len(value)))
    if not cuts:
        return None
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + " " + text[end:]
    return " ".join(text.split())


def _py_offset(text: str, utf16_offset: int) -> int:
    """Telegram counts entity offsets in UTF-16 units."""
    units = 0
    for i, ch in enumerate(text):
        if units >= utf16_offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


# -- commands for everyone ------------------------------------------------------------------
async def cmd_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    question = command_text(message)
    if not question and message.reply_to_message is not None:
        # "/ask" in reply to someone's message asks their question.
        question = message.reply_to_message.text or message.reply_to_message.caption or ""
    await ask(update, context, question)


async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    lang = ui_lang(svc, message.from_user)
    if message.chat.type in _GROUPS:  # "/start@bot" after the ?startgroup link
        access = await group_access(context.bot, message.chat.id, lang)
        await reply_html(context.bot, svc, message, t(lang, "group_hello", access=access))
        return
    await reply_html(context.bot, svc, message, t(lang, "start"),
                     keyboard=_add_to_group(context.bot.username, lang))


def _add_to_group(username: str, lang: str) -> InlineKeyboardMarkup:
    """Telegram's deep link that opens "add to group" with this bot chosen."""
    url = f"https://t.me/{username}?startgroup=start"
    return InlineKeyboardMarkup([[InlineKeyboardButton(t(lang, "add_to_group"), url=url)]])


async def cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    lang = ui_lang(svc, message.from_user)
    text = t(lang, "help")
    if message.chat.type in _GROUPS:
        text += "\n\n" + await group_access(context.bot, message.chat.id, lang)
        await reply_html(context.bot, svc, message, text)
        return
    await reply_html(context.bot, svc, message, text,
                     keyboard=_add_to_group(context.bot.username, lang)
                     if message.chat.type == ChatType.PRIVATE else None)


async def group_access(bot: Bot, chat_id: int, lang: str, *,
                       admin: bool | None = None) -> str:
    """What the bot sees in this group, and how to let it see the rest.

    Privacy mode (on for every bot unless BotFather's /setprivacy turned it off)
    hides all but commands and replies from a bot that is not an administrator.
    """
    if admin is None and not bot.can_read_all_group_messages:
        try:
            member = await bot.get_chat_member(chat_id, bot.id)
            admin = member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        except TelegramError:
            admin = False
    full = bot.can_read_all_group_messages or bool(admin)
    return t(lang, "group_full" if full else "group_limited", bot=esc(bot.username))


async def _say(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    await reply_html(context.bot, svc, message, t(ui_lang(svc, message.from_user), key))


_LANG_WORDS: dict[str, UiLang | None] = {
    "ar": "ar", "arabic": "ar", "عربي": "ar", "العربية": "ar", "en": "en", "english": "en",
    "انجليزي": "en", "الإنجليزية": "en", "auto": None, "تلقائي": None}


async def cmd_lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    user = message.from_user
    choice = command_text(message).lower()
    if speaks_as_a_chat(message):
        # A choice kept for GroupAnonymousBot would be every anonymous admin's, anywhere.
        await reply_html(context.bot, svc, message, t(
            _LANG_WORDS.get(choice) or ui_lang(svc, user), "lang_anonymous"))
        return
    if user is None or choice not in _LANG_WORDS:
        current = (svc.db.lang(user.id) if user else None) or "auto"
        await reply_html(context.bot, svc, message,
                         t(ui_lang(svc, user), "lang_usage", current=current))
        return
    lang = _LANG_WORDS[choice]
    svc.db.set_lang(user.id, lang)
    text = t(lang, "lang_set") if lang else t(ui_lang(svc, user, choice), "lang_auto")
    await reply_html(context.bot, svc, message, text)


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _say(update, context, "unknown_command")


# -- membership and errors ------------------------------------------------------------------
async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    change = update.my_chat_member
    if change is None:
        return
    chat = change.chat
    old, new = change.old_chat_member.status, change.new_chat_member.status
    log.info("membership changed", extra={"event": "my_chat_member", "chat_id": chat.id,
                                          "chat_type": chat.type, "old": old, "new": new})
    gone = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
    if new in gone:
        from ._digest import unschedule

        if services(context).db.remove_digest(chat.id):
            unschedule(context.application, chat.id)
    elif old in gone and chat.type in _GROUPS:
        svc = services(context)
        lang = ui_lang(svc, change.from_user)
        admin = new in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        access = await group_access(context.bot, chat.id, lang, admin=admin)
        with contextlib.suppress(TelegramError):
            await send_html(context.bot, svc, chat.id, t(lang, "group_hello", access=access))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log with context (never the token: see ``_logging``) and tell the user."""
    err = context.error
    extra: dict[str, object] = {"event": "handler_error", "error": type(err).__name__}
    if isinstance(update, Update):
        extra["update_id"] = update.update_id
        if update.effective_chat:
            extra["chat_id"] = update.effective_chat.id
            extra["chat_type"] = update.effective_chat.type
        if update.effective_user:
            extra["user_id"] = update.effective_user.id
    log.error("update failed: %s", err, exc_info=err, extra=extra)
    if not isinstance(update, Update) or update.effective_chat is None \
            or update.effective_chat.type == ChatType.CHANNEL:
        return  # never post errors into a channel
    svc = services(context)
    text = t(ui_lang(svc, update.effective_user), "error")
    with contextlib.suppress(TelegramError):
        if update.callback_query is not None:
            await update.callback_query.answer(text[:200], show_alert=True)
            return
        message = update.effective_message
        if message is not None:
            await reply_html(context.bot, svc, message, text)
        else:
            await send_html(context.bot, svc, update.effective_chat.id, text)
