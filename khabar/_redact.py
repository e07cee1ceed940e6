"""One redaction for everything khabar shows or logs: secrets never leave in a message.

Secrets come from the settings (every ``Settings`` registers its ``SecretStr`` values
here when it is made) and from their shape: a Telegram bot token (``123456:AA…``),
wherever it appears (PTB puts it in ``InvalidToken``'s message and in every Bot API
URL), the user information of a URL (``https://user:pw@host``, ``https://TOKEN@host``)
and the value of a query parameter whose name says it is a secret (``?api_key=…``).
Every user-facing path applies :func:`redact` last: the CLI's messages and logs, the
REPL, the bot's replies and its JSON logs.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Iterable

from pydantic import SecretStr

__all__ = ["REDACTED", "RedactingFormatter", "redact", "redact_html", "register_secrets"]

REDACTED = "<redacted>"
_MIN_SECRET = 6  # shorter "secrets" would redact ordinary words
_TOKEN_RE = re.compile(r"(?<![0-9])\d{5,}(?::|%3A)[A-Za-z0-9_-]{30,}")
# A URL's whole user information, not just a password: a token is often the user name
# (``https://TOKEN@host``, ``https://TOKEN:x-oauth-basic@host``). It runs to the last
# "@" before the authority ends ("/", "?", "#"), as httpx reads it, or a space does. Not
# at a quote or bracket: httpx sends ``user:p"w@`` with the password p"w. Compact JSON
# (``"https://host","a@b"``) is masked too much, the safe side; redact_html() redacts
# each attribute value and text run on its own, so it never eats markup.
_URL_USERINFO_RE = re.compile(r"(?<=://)[^/?#\s]*@")
_QUERY_SECRET_RE = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|sig|"
    r"signature|auth)=)[^&#\s]+")

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, so a secret's half never goes first


def _variants(secret: str) -> list[str]:
    out = [secret]
    if ":" in secret:  # a token: its secret half alone, and URL-encoded forms
        out += [secret.split(":", 1)[1], secret.replace(":", "%3A")]
    return [v for v in out if len(v) >= _MIN_SECRET]


def _reveal(secret: SecretStr | str | None) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret or ""


def register_secrets(*secrets: SecretStr | str | None) -> None:
    """Have :func:`redact` hide these from now on (and their variants)."""
    global _secrets
    new = {v for s in secrets for v in _variants(_reveal(s))}
    with _lock:
        if not new.issubset(_secrets):
            _secrets = tuple(sorted(new | set(_secrets), key=len, reverse=True))


def redact(text: str, extra: Iterable[SecretStr | str | None] = ()) -> str:
    """``text`` with every known secret, and anything shaped like one, replaced."""
    for secret in [v for s in extra for v in _variants(_reveal(s))] + list(_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_RE.sub(REDACTED, text)
    text = _URL_USERINFO_RE.sub(f"{REDACTED}@", text)
    return _QUERY_SECRET_RE.sub(lambda m: m.group(1) + REDACTED, text)


_TAG_RE = re.compile(r"(<[^<>]*>)")
_ATTR_RE = re.compile(r'="([^"]*)"')


def redact_html(markup: str, extra: Iterable[SecretStr | str | None] = ()) -> str:
    """:func:`redact` for HTML (Telegram's parse mode): each text run and each quoted
    attribute value is redacted as the text it shows, then escaped again, so a
    redaction never eats markup (a query secret ran on to ``">Title</a>``) nor adds a
    tag Telegram refuses (``<redacted>`` is none)."""
    def text(value: str, *, quote: bool) -> str:
        return html.escape(redact(html.unescape(value), extra), quote=quote)

    parts = _TAG_RE.split(markup)
    for i, part in enumerate(parts):
        if i % 2:  # a tag: its attribute values
            parts[i] = _ATTR_RE.sub(lambda m: '="' + text(m.group(1), quote=True) + '"', part)
        elif part:
            parts[i] = text(part, quote=False)
    return "".join(parts)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line, tracebacks included, is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
