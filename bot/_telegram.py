"""The Telegram application: built around one shared Index and Khabar, then served.

``build_application`` wires the handlers onto a python-telegram-bot
``Application`` pointed at ``settings.telegram_base_url`` (Telegram's, or a
self-hosted Bot API server / the tests' fake). ``serve`` opens the index once,
then polls (default) or listens for webhooks until SIGINT/SIGTERM.
"""

from __future__ import annotations

import functools
import logging
import re
import signal
from urllib.parse import urlparse

from khabar.index import Index
from khabar.retrieval import Khabar
from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeChat,
    Update,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from khabar import ConfigError, Settings
from khabar._memory import limit_malloc_arenas

from . import _access, _digest, _handlers, _intake, _migrate
from ._db import BotDB
from ._logging import configure_logging, quiet_noisy_loggers
from ._ratelimit import RateLimiter
from ._sendlimit import SendLimiter
from ._services import Services
from ._texts import COMMANDS, USER_COMMANDS, t

log = logging.getLogger("bot")

# Channel posts are only delivered when asked for; the rest keeps Telegram's defaults
# that the bot uses.
ALLOWED_UPDATES = ["message", "edited_message", "channel_post", "edited_channel_post",
                   "callback_query", "my_chat_member"]
_SECRET_OK = re.compile(r"[A-Za-z0-9_-]{1,256}")


def build_application(settings: Settings, khabar: Khabar, *,
                      index: Index | None = None) -> Application:  # type: ignore[type-arg]
    """The bot, ready to ``initialize``/``run_polling``/``run_webhook``.

    ``index`` defaults to ``khabar.index``; both are shared by every handler.
    """
    if not settings.telegram_token:
        raise ConfigError("set KHABAR_TELEGRAM_TOKEN to the bot's token (from @BotFather)")
    quiet_noisy_loggers()
    app = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_file_url)
        .concurrent_updates(True)  # one slow question must not hold up the others
        .rate_limiter(SendLimiter())  # Telegram's limits, on every Bot API call
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    if index is None:  # khabar's own archive, which the bot also writes: an Index
        if not isinstance(khabar.index, Index):
            raise TypeError("build_application: pass index=, khabar.index is no Index")
        index = khabar.index
    svc = Services(settings=settings, khabar=khabar, index=index,
                   db=BotDB(settings.home / "bot.sqlite3"),
                   limiter=RateLimiter(settings.rate_limit_per_minute))
    svc.on_migrated = functools.partial(_migrate.migrate_chat, app)
    app.bot_data["services"] = svc
    _add_handlers(app)
    return app


def _add_handlers(app: Application) -> None:  # type: ignore[type-arg]
    new = filters.UpdateType.MESSAGE  # edited messages are not asked again
    # First, for every update: chats the bot does not serve get no further (it leaves).
    app.add_handler(TypeHandler(Update, _access.gate), group=-1)
    commands = {
        "start": _handlers.cmd_start, "help": _handlers.cmd_help, "ask": _handlers.cmd_ask,
        "lang": _handlers.cmd_lang, "sources": _intake.cmd_sources, "add": _intake.cmd_add,
        "forget": _intake.cmd_forget, "stats": _intake.cmd_stats,
        "summary": _digest.cmd_summary, "timeline": _digest.cmd_timeline,
        "digest": _digest.cmd_digest, "allow": _access.cmd_allow,
        "revoke": _access.cmd_revoke,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=new))
    app.add_handler(CallbackQueryHandler(_handlers.on_more, pattern=r"^more:"))
    app.add_handler(CallbackQueryHandler(_handlers.on_fresh, pattern=r"^fresh:"))
    app.add_handler(CallbackQueryHandler(_intake.on_index, pattern=r"^index:"))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, _migrate.on_migrate))
    app.add_handler(MessageHandler(filters.UpdateType.CHANNEL_POSTS, _intake.on_channel_post))
    app.add_handler(MessageHandler(new & filters.Document.ALL, _intake.on_document))
    app.add_handler(MessageHandler(new & filters.FORWARDED & (filters.TEXT | filters.CAPTION),
                                   _intake.on_forward))
    app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, _handlers.on_text))
    app.add_handler(MessageHandler(new & filters.COMMAND & filters.ChatType.PRIVATE,
                                   _handlers.on_unknown_command))
    app.add_handler(ChatMemberHandler(_handlers.on_my_chat_member,
                                      ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(_handlers.on_error)


async def _post_init(app: Application) -> None:  # type: ignore[type-arg]
    """Commands in both languages, and the persisted digest schedules."""
    svc: Services = app.bot_data["services"]
    # Everyone's menu has what everyone may use; the operators' (in their private chat
    # with the bot) has everything, and so has groups' administrators' when they may
    # write (KHABAR_CHAT_ADMINS_WRITE).
    admins: list[BotCommandScope] = [BotCommandScopeChat(a)
                                     for a in sorted(svc.settings.admin_ids)]
    if svc.settings.chat_admins_write:
        admins.append(BotCommandScopeAllChatAdministrators())
    for lang, code in (("en", None), ("ar", "ar")):
        menus: list[tuple[tuple[str, ...], BotCommandScope | None]] = [
            (USER_COMMANDS, None), *((COMMANDS, scope) for scope in admins)]
        for names, scope in menus:
            try:
                await app.bot.set_my_commands(
                    [BotCommand(c, t(lang, f"command_{c}")) for c in names], scope=scope,
                    language_code=code)
            except TelegramError as exc:  # cosmetic: the bot works without the menu
                log.warning("setMyCommands failed: %s", exc,
                            extra={"event": "commands_failed"})
    digests = _digest.restore(app)
    log.info("bot started", extra={"event": "started", "bot": app.bot.username,
                                   "digests": digests,
                                   "articles": svc.index.store.count_articles()})


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    app.bot_data["services"].db.close()
    log.info("bot stopped", extra={"event": "stopped"})


def serve(settings: Settings, *, webhook_url: str | None = None, listen: str = "127.0.0.1",
          port: int = 8443) -> None:
    """Run the bot until SIGINT or SIGTERM: long polling, or webhooks at ``webhook_url``.

    Webhook requests must carry ``settings.webhook_secret`` in Telegram's secret-token
    header (a random one is made when none is configured); others get 403.
    """
    import secrets

    from ._app import open_index  # seeds an empty index, like ``khabar ask``

    if not settings.telegram_token:
        raise ConfigError("set KHABAR_TELEGRAM_TOKEN to the bot's token (from @BotFather)")
    secret = (settings.webhook_secret.get_secret_value() if settings.webhook_secret
              else secrets.token_urlsafe(32) if webhook_url else None)
    if secret is not None and not _SECRET_OK.fullmatch(secret):
        raise ConfigError("KHABAR_WEBHOOK_SECRET may hold only A-Z, a-z, 0-9, _ and - "
                          "(1 to 256 characters)")
    configure_logging(settings.telegram_token, secret, settings.llm_api_key)
    limit_malloc_arenas()  # before the worker threads: see khabar._memory
    index = open_index(settings, progress=lambda msg: log.info(msg, extra={"event": "open"}))
    try:
        app = build_application(settings, Khabar(index), index=index)
        stop = (signal.SIGINT, signal.SIGTERM)
        if webhook_url:
            log.info("serving by webhook", extra={"event": "serve", "mode": "webhook",
                                                  "listen": listen, "port": port})
            app.run_webhook(listen=listen, port=port, url_path=urlparse(webhook_url).path,
                            webhook_url=webhook_url, secret_token=secret,
                            allowed_updates=ALLOWED_UPDATES, stop_signals=stop,
                            drop_pending_updates=settings.telegram_drop_pending)
        else:
            log.info("serving by long polling", extra={"event": "serve", "mode": "polling"})
            app.run_polling(allowed_updates=ALLOWED_UPDATES, stop_signals=stop,
                            drop_pending_updates=settings.telegram_drop_pending)
    except InvalidToken:  # its message holds the token itself: not passed on
        raise ConfigError("Telegram refused the bot token (KHABAR_TELEGRAM_TOKEN): check it "
                          "with @BotFather") from None
    finally:
        index.close()
