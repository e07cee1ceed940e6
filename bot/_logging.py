"""Structured logs for the bot: one JSON object per line, secrets never written.

The bot token is part of every Bot API URL, so anything that logs a URL (httpx at
INFO does, for each request) could leak it. Those loggers are held at WARNING and,
as a second line of defence, the formatter replaces the token and the webhook
secret wherever they appear, tracebacks included. The secrets come as the settings
hold them (``SecretStr``) or as plain strings.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import SecretStr

from khabar._redact import redact

# Loggers that print request URLs (with the token) or chatter at INFO.
NOISY = ("httpx", "httpcore", "apscheduler", "hpack", "tornado.access", "bm25s")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def quiet_noisy_loggers() -> None:
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[SecretStr | str | None] = ()) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(data, ensure_ascii=False, default=str))


def configure_logging(*secrets: SecretStr | str | None, level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process (``khabar serve``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    if root.level == logging.DEBUG:  # ``khabar --debug serve`` keeps its debug logs
        level = logging.DEBUG
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_noisy_loggers()
