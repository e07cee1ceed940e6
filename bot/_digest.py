"""/summary and /timeline on demand and /digest on a schedule, over ``retrieval.summarize``.

``/timeline`` lists the articles of the most covered story (about a topic) in date
order. A chat's summary covers what the chat sees (``_access``): the shared archive
and what was added in that chat (``origin="chat:<id>"``), never another chat's.
Digests run daily at HH:MM in the chat's time zone (UTC unless one is given: a
newsroom's morning is not UTC's) on the JobQueue;
schedules are kept in ``bot.sqlite3`` and re-created at start-up. A window is
claimed in the database before it is posted, so it goes out at most once, even
across restarts or two bots on one home.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import zoneinfo
from datetime import UTC, datetime, time, timedelta, tzinfo

from khabar.retrieval import Summary, parse_duration, summarize, timeline
from telegram import Chat, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, CallbackContext, ContextTypes

from ._access import is_operator, may_write, view_of
from ._db import Digest
from ._handlers import asker_of, speaks_as_a_chat
from ._render import esc
from ._render_summary import render_summary_telegram, render_timeline_telegram
from ._services import (
    Services,
    command_text,
    first_word,
    refuse_if_limited,
    reply_html,
    send_html,
    services,
    topic_of,
    typing,
    ui_lang,
)
from ._texts import UiLang, t

log = logging.getLogger("bot")

DEFAULT_PERIOD = timedelta(hours=24)
TIMELINE_PERIOD = timedelta(days=7)  # a story's timeline looks further back
MAX_PERIOD = timedelta(days=366)
_DAILY = re.compile(r"(?:daily|يوميا|يومياً)\s+([01]?\d|2[0-3])[:.]([0-5]\d)((?:\s+\S+){0,2})",
                    re.IGNORECASE)
_OFFSET = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?([0-5]\d))?", re.IGNORECASE)


@functools.cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def parse_zone(text: str | None) -> str | None:
    """A time zone as typed ("Asia/Beirut", "asia/beirut", "+3", "UTC+03:00", "GMT-5"),
    in the form stored: the IANA name or "+HH:MM"; "UTC" when none; None if unknown."""
    if not text or text.lower() in ("utc", "gmt", "z"):
        return "UTC"
    if m := _OFFSET.fullmatch(text):
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        if minutes > 14 * 60:
            return None
        return "UTC" if minutes == 0 else f"{m.group(1)}{minutes // 60:02d}:{minutes % 60:02d}"
    return _zone_names().get(text.lower())
_OFF = frozenset({"off", "stop", "إيقاف", "ايقاف"})


def scope(chat_id: int, chat_type: str) -> str | None:
    """What a chat's summaries cover: its view (the shared archive and its own)."""
    return view_of(chat_id)


def parse_summary_args(text: str, default: timedelta = DEFAULT_PERIOD
                       ) -> tuple[timedelta, str | None]:
    """``7d``, ``24h`` and/or a topic, in either order; ``default`` (24 hours) if no period."""
    words = text.split()
    period = None
    for i in (0, len(words) - 1):
        if words and (found := parse_duration(words[i])) is not None:
            period = found
            del words[i]
            break
    if period is None and len(words) >= 2 and (found := parse_duration(" ".join(words[:2]))):
        period, words = found, words[2:]  # "7 أيام"
    period = min(period or default, MAX_PERIOD)
    return period, " ".join(words) or None


def chat_zone(svc: Services, chat_id: int) -> tuple[tzinfo, str]:
    """The chat's time zone (its digest's; UTC without one), for every time shown there."""
    digest = svc.db.digest(chat_id)
    return (digest.zone, digest.tz) if digest is not None else (UTC, "UTC")


async def _summarise(svc: Services, *, since: datetime, until: datetime, topic: str | None,
                     origin: str | None, lang: str, limit: int | None = 10) -> Summary:
    """``origin``: the chat's view (see ``scope``)."""
    return await asyncio.to_thread(summarize, svc.index, since=since, until=until, topic=topic,
                                   scope=origin, now=until, lang=lang, limit=limit)


# -- /summary ---------------------------------------------------------------------------------
async def cmd_summary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    await _summary(update, context, command_text(message))


async def _summary(update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    user = message.from_user
    lang = ui_lang(svc, user, args or None)
    if await refuse_if_limited(context.bot, svc, message, asker_of(message), lang):
        return
    period, topic = parse_summary_args(args)
    now = datetime.now(UTC)
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        summary = await _summarise(svc, since=now - period, until=now, topic=topic,
                                   origin=scope(message.chat_id, message.chat.type), lang=lang)
    log.info("summary", extra={"event": "summary", "chat_id": message.chat_id,
                               "stories": len(summary.stories),
                               "hours": period / timedelta(hours=1)})
    zone, zone_name = chat_zone(svc, message.chat_id)
    await reply_html(context.bot, svc, message,
                     render_summary_telegram(summary, lang, zone, zone_name))


# -- /timeline --------------------------------------------------------------------------------
async def cmd_timeline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    await _timeline(update, context, command_text(message))


async def _timeline(update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    user = message.from_user
    lang = ui_lang(svc, user, args or None)
    if await refuse_if_limited(context.bot, svc, message, asker_of(message), lang):
        return
    period, topic = parse_summary_args(args, TIMELINE_PERIOD)
    zone, zone_name = chat_zone(svc, message.chat_id)
    now = datetime.now(UTC)
    async with typing(context.bot, message.chat_id, thread=topic_of(message)):
        summary = await _summarise(svc, since=now - period, until=now, topic=topic,
                                   origin=scope(message.chat_id, message.chat.type), lang=lang,
                                   limit=1)
        story = summary.stories[0] if summary.stories else None
        entries = await asyncio.to_thread(timeline, svc.index, story) if story else []
    log.info("timeline", extra={"event": "timeline", "chat_id": message.chat_id,
                                "articles": len(entries), "hours": period / timedelta(hours=1)})
    await reply_html(context.bot, svc, message,
                     render_timeline_telegram(story, entries, lang, zone) if story
                     else render_summary_telegram(summary, lang, zone, zone_name))


# -- /digest ----------------------------------------------------------------------------------
async def cmd_digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    await _digest(update, context, command_text(message))


_LANGS: dict[str, UiLang] = {"ar": "ar", "arabic": "ar", "عربي": "ar", "العربية": "ar",
                             "en": "en", "english": "en", "انجليزي": "en", "الإنجليزية": "en"}


def parse_daily(args: str) -> tuple[int, int, str, UiLang | None] | None:
    """``daily HH:MM [zone] [language]`` (zone and language in either order), or None."""
    m = _DAILY.fullmatch(args.strip())
    if m is None:
        return None
    zone: str | None = "UTC"
    lang: UiLang | None = None
    for word in (m.group(3) or "").split():
        if word.lower() in _LANGS and lang is None:
            lang = _LANGS[word.lower()]
        elif (zone := parse_zone(word)) is None:
            return None
    assert zone is not None
    return int(m.group(1)), int(m.group(2)), zone, lang


async def _digest(update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> None:
    svc = services(context)
    message = update.effective_message
    assert message is not None
    chat = message.chat
    user = message.from_user
    lang = ui_lang(svc, user)
    target, scheduled_in = chat, chat
    if args.startswith("@") and chat.type == ChatType.PRIVATE:
        # A channel configured from a private chat: nothing is posted in the channel.
        name, args = first_word(args)  # "@name\ndaily 08:00" too
        channel = await _channel_for(context, name, user)
        if channel is None:
            await reply_html(context.bot, svc, message, t(lang, "digest_no_channel",
                                                          channel=esc(name)))
            log.info("channel digest refused", extra={
                "event": "not_admin", "chat_id": chat.id, "user_id": user.id if user else None})
            return
        target = channel
    # In a private chat its user is the chat's only administrator.
    elif chat.type != ChatType.PRIVATE and not await may_write(context.bot, svc, chat, user,
                                                                message.sender_chat):
        await reply_html(context.bot, svc, message, t(lang, "not_admin"))
        log.info("digest refused", extra={
            "event": "not_admin", "chat_id": chat.id, "user_id": user.id if user else None})
        return
    arg = args.strip().lower()
    if arg in _OFF:
        removed = svc.db.remove_digest(target.id)
        unschedule(context.application, target.id)
        await reply_html(context.bot, svc, message, t(lang, "digest_off" if removed
                                                      else "digest_none"))
        return
    parsed = parse_daily(args)
    if parsed is None:
        current = svc.db.digest(target.id)
        note = t(lang, "digest_current", time=esc(current.time)) if current else ""
        await reply_html(context.bot, svc, message, t(lang, "digest_usage", current=note))
        return
    hour, minute, tz, digest_lang = parsed
    thread = topic_of(message) if target is scheduled_in else None
    # Who set it up is told if it must stop; an anonymous administrator is nobody who can
    # be told (GroupAnonymousBot, a bot), so the operators are.
    owner = None if user is None or speaks_as_a_chat(message) else user.id
    digest = Digest(target.id, hour, minute, digest_lang or lang, scope(target.id, target.type),
                    tz, thread, owner)
    svc.db.set_digest(digest, digest.created_by)
    schedule(context.application, digest)
    log.info("digest scheduled", extra={"event": "digest_scheduled", "chat_id": target.id,
                                        "at": digest.time, "lang": digest.lang})
    where = "" if target is scheduled_in else " — " + esc(f"@{target.username}")
    await reply_html(context.bot, svc, message,
                     t(lang, "digest_on", time=esc(digest.time)) + where)


async def _channel_for(context: ContextTypes.DEFAULT_TYPE, name: str,
                       user: User | None) -> Chat | None:
    """The channel ``@name`` when ``user`` administers it (or is an operator) and the bot
    can post there; None otherwise (the same answer, so nothing is given away)."""
    svc = services(context)
    try:
        chat = await context.bot.get_chat(name)
        if chat.type != ChatType.CHANNEL or user is None:
            return None
        me = await context.bot.get_chat_member(chat.id, context.bot.id)
        if me.status != ChatMemberStatus.ADMINISTRATOR:
            return None
        if not is_operator(svc, user):
            if not svc.settings.chat_admins_write:
                return None
            member = await context.bot.get_chat_member(chat.id, user.id)
            if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
                return None
    except TelegramError:
        return None
    return Chat(chat.id, chat.type, title=chat.title, username=chat.username)


async def channel_command(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """/summary, /timeline and /digest posted in a channel (only its administrators post).

    Only new posts: editing a post that holds a command must not run it again.
    """
    if update.channel_post is None:
        return
    head, rest = first_word(text)
    name, _, addressed = head[1:].partition("@")
    if addressed and addressed.lower() != (context.bot.username or "").lower():
        return
    if name.lower() == "summary":
        await _summary(update, context, rest.strip())
    elif name.lower() == "timeline":
        await _timeline(update, context, rest.strip())
    elif name.lower() == "digest":
        await _digest(update, context, rest.strip())


# -- scheduling -------------------------------------------------------------------------------
def _job_name(chat_id: int) -> str:
    return f"digest:{chat_id}"


def schedule(app: Application, digest: Digest) -> None:  # type: ignore[type-arg]
    jobs = app.job_queue
    if jobs is None:
        raise RuntimeError("the JobQueue is missing: install python-telegram-bot[job-queue]")
    unschedule(app, digest.chat_id)
    jobs.run_daily(_run_digest, time(digest.hour, digest.minute, tzinfo=digest.zone),
                   chat_id=digest.chat_id, name=_job_name(digest.chat_id), data=digest)


def unschedule(app: Application, chat_id: int) -> None:  # type: ignore[type-arg]
    if app.job_queue is None:
        return
    for job in app.job_queue.get_jobs_by_name(_job_name(chat_id)):
        job.schedule_removal()


def restore(app: Application) -> int:  # type: ignore[type-arg]
    """Re-create every persisted schedule (at start-up), and post once each window that
    ended while the bot was down (its claim keeps it from going out twice)."""
    svc: Services = app.bot_data["services"]
    now = datetime.now(UTC)
    digests = svc.db.digests()
    for digest in digests:
        schedule(app, digest)
        end = last_window_end(digest, now)
        since = datetime.fromisoformat(digest.created_at) if digest.created_at else now
        if end > since and not svc.db.window_claimed(digest.chat_id, end - timedelta(days=1)):
            assert app.job_queue is not None
            app.job_queue.run_once(_run_missed, 1.0, data=(digest, end),
                                   name=f"digest-missed:{digest.chat_id}")
    return len(digests)


async def _run_missed(context: CallbackContext) -> None:  # type: ignore[type-arg]
    job = context.job
    assert job is not None
    digest: Digest
    end: datetime
    digest, end = job.data  # type: ignore[misc]
    log.info("posting a missed digest window", extra={
        "event": "digest_missed", "chat_id": digest.chat_id, "window_end": end.isoformat()})
    await post_digest(context.application, digest, end)


def last_window_end(digest: Digest, now: datetime) -> datetime:
    """The last scheduled moment at or before ``now``, in the digest's time zone."""
    local = now.astimezone(digest.zone)
    end = local.replace(hour=digest.hour, minute=digest.minute, second=0, microsecond=0)
    if end > now:
        end = (local - timedelta(days=1)).replace(hour=digest.hour, minute=digest.minute,
                                                  second=0, microsecond=0)
    return end


def window_end(digest: Digest, now: datetime) -> datetime:
    """The scheduled moment a run at ``now`` belongs to (today's, or yesterday's if early),
    in the digest's time zone: its wall-clock time, whatever daylight saving does."""
    local = now.astimezone(digest.zone)
    end = local.replace(hour=digest.hour, minute=digest.minute, second=0, microsecond=0)
    if end > now + timedelta(minutes=5):
        end = (local - timedelta(days=1)).replace(hour=digest.hour, minute=digest.minute,
                                                  second=0, microsecond=0)
    return end


async def _run_digest(context: CallbackContext) -> None:  # type: ignore[type-arg]
    job = context.job
    assert job is not None and isinstance(job.data, Digest)
    await post_digest(context.application, job.data, window_end(job.data, datetime.now(UTC)))


# Seconds before a failed post is tried again; after the last, that window is given up.
RETRY_DELAYS: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0)


async def post_digest(app: Application, digest: Digest,  # type: ignore[type-arg]
                      end: datetime, attempt: int = 0) -> bool:
    """Post the digest of the 24 hours before ``end``, unless that window was claimed.

    Returns True when this call posted it. An empty window is claimed and skipped:
    a daily "nothing happened" would only be noise. A post that fails before any part
    went out gives its claim back and is tried again later (``RETRY_DELAYS``); one the
    bot may no longer make (removed, blocked) stops the digest and tells who set it up.
    """
    svc: Services = app.bot_data["services"]
    start = end - timedelta(days=1)
    if not svc.db.claim_window(digest.chat_id, start):
        log.info("digest window already posted", extra={
            "event": "digest_skipped", "chat_id": digest.chat_id, "window": start.isoformat()})
        return False
    try:
        # The chat's view as it is now, whatever scope an older version stored.
        summary = await _summarise(svc, since=start, until=end, topic=None,
                                   origin=view_of(digest.chat_id), lang=digest.lang)
    except BaseException:
        svc.db.release_window(digest.chat_id, start)  # nothing went out: a later run may
        raise
    if summary.empty:
        log.info("digest window empty", extra={"event": "digest_empty",
                                               "chat_id": digest.chat_id})
        return False
    zone = digest.zone
    head = t(digest.lang, "digest_head", zone=esc(digest.tz),
             start=start.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
             end=end.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
    body = head + "\n\n" + render_summary_telegram(summary, digest.lang, zone, digest.tz)
    sent: list[Message] = []
    try:
        await send_html(app.bot, svc, digest.chat_id, body, thread=digest.thread, sent=sent)
    except Forbidden as exc:
        await stop_digest(app, digest, exc.message)
        return False
    except TelegramError as exc:
        if sent:  # half-posted: it must not go out twice, so the claim stays
            log.error("digest only partly posted: %s", exc, extra={
                "event": "digest_partial", "chat_id": digest.chat_id})
            return False
        svc.db.release_window(digest.chat_id, start)
        _retry_later(app, digest, end, attempt, exc)
        return False
    key = await asyncio.to_thread(
        svc.db.keep_answer, sent[-1].chat_id, "digest", digest.lang,
        context=" ".join(s.headline for s in summary.stories)[-500:])
    await asyncio.to_thread(svc.db.link_messages, sent[-1].chat_id,
                            [m.message_id for m in sent], key)
    log.info("digest posted", extra={"event": "digest_posted", "chat_id": digest.chat_id,
                                     "stories": len(summary.stories)})
    return True


def _retry_later(app: Application, digest: Digest, end: datetime,  # type: ignore[type-arg]
                 attempt: int, exc: TelegramError) -> None:
    if attempt >= len(RETRY_DELAYS) or app.job_queue is None:
        log.error("digest not posted, giving up on this window: %s", exc, extra={
            "event": "digest_failed", "chat_id": digest.chat_id, "attempts": attempt + 1})
        return
    delay = RETRY_DELAYS[attempt]
    log.warning("digest not posted, retrying in %.0fs: %s", delay, exc, extra={
        "event": "digest_retry", "chat_id": digest.chat_id, "attempt": attempt + 1})
    app.job_queue.run_once(_run_retry, delay, data=(digest.chat_id, end, attempt + 1),
                           name=f"digest-retry:{digest.chat_id}")


async def _run_retry(context: CallbackContext) -> None:  # type: ignore[type-arg]
    job = context.job
    assert job is not None
    chat_id: int
    end: datetime
    attempt: int
    chat_id, end, attempt = job.data  # type: ignore[misc]
    svc: Services = context.application.bot_data["services"]
    digest = svc.db.digest(chat_id)  # as it is now: stopped, moved or changed since
    if digest is not None:
        await post_digest(context.application, digest, end, attempt)


async def stop_digest(app: Application, digest: Digest,  # type: ignore[type-arg]
                      reason: str) -> None:
    """The bot may no longer post there: unschedule, and tell who set it up (or, when
    there is nobody to tell, the configured admins) in private, since the chat itself
    cannot be told."""
    svc: Services = app.bot_data["services"]
    svc.db.remove_digest(digest.chat_id)
    unschedule(app, digest.chat_id)
    log.warning("digest stopped: %s", reason, extra={"event": "digest_stopped",
                                                    "chat_id": digest.chat_id})
    owner = digest.created_by
    if owner is not None and owner > 0 and await _tell(app, svc, owner, digest, reason):
        return
    # Nobody set it up, or they cannot be told (they blocked the bot; an older version
    # kept GroupAnonymousBot, a bot, as an anonymous administrator's digest's owner).
    for user_id in sorted(svc.settings.admin_ids):
        await _tell(app, svc, user_id, digest, reason)


async def _tell(app: Application, svc: Services, user_id: int,  # type: ignore[type-arg]
                digest: Digest, reason: str) -> bool:
    """Tell ``user_id`` in private that ``digest`` stopped; whether it went out."""
    lang = svc.db.lang(user_id) or digest.lang
    try:
        await send_html(app.bot, svc, user_id, t(lang, "digest_stopped",
                                                 chat=digest.chat_id, reason=esc(reason)))
    except TelegramError:
        return False
    return True
