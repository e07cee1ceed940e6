"""khabar's Telegram bot: the public entry points.

``serve(settings)`` runs it (what ``khabar serve`` calls); ``build_application``
gives the configured python-telegram-bot ``Application`` for embedding or tests.
"""

from ._split import TELEGRAM_LIMIT, split_html, visible_length, visible_text
from ._telegram import ALLOWED_UPDATES, build_application, serve

__all__ = [
    "ALLOWED_UPDATES",
    "TELEGRAM_LIMIT",
    "build_application",
    "serve",
    "split_html",
    "visible_length",
    "visible_text",
]
