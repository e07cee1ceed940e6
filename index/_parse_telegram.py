"""Telegram channel posts to articles, and their t.me links."""

from __future__ import annotations

import re
from datetime import datetime

from khabar._errors import ParseError
from khabar.store._types import Article
from khabar.text._analysis import detect_lang

from ._clean import clean_paragraphs
from ._parse_common import _add, _split_body_outlets, _truncate
from ._parse_dates import _aware

_HASHTAG_LINE_RE = re.compile(r"^(?:#\w+[\s,،]*)+$")
_LINK_ONLY_RE = re.compile(r"^(?:@\w+|(?:https?://)?t\.me/\S+|https?://\S+)$")


def telegram_url(username: str | None, message_id: int, chat_id: int | None = None) -> str | None:
    """The t.me link of a channel post, public (username) or private (-100 chat id)."""
    if username:
        return f"https://t.me/{username.lstrip('@')}/{message_id}"
    if chat_id is not None and str(chat_id).startswith("-100"):
        return f"https://t.me/c/{str(chat_id)[4:]}/{message_id}"
    return None


def parse_telegram_post(
    text: str,
    *,
    channel_title: str,
    username: str | None,
    message_id: int,
    date: datetime,
    chat_id: int | None = None,
) -> Article:
    """An article from a channel post: the first line is the title, the text the body."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    tags: list[str] = []
    kept: list[str] = []
    for line in lines:
        if _HASHTAG_LINE_RE.match(line):
            tags.extend(t[1:].replace("_", " ") for t in re.findall(r"#\w+", line))
        elif not _LINK_ONLY_RE.match(line):
            kept.append(line)
    body, outlets = _split_body_outlets(kept)
    # The first line is content as well as the title: it is not removed from the body.
    paragraphs = clean_paragraphs(body, None)
    if not paragraphs:
        raise ParseError("the post has no text")
    url = telegram_url(username, message_id, chat_id)
    all_outlets: list[str] = []
    _add(all_outlets, [channel_title.strip()] if channel_title.strip() else [])
    _add(all_outlets, outlets)
    return Article(
        title=_truncate(paragraphs[0]),
        paragraphs=paragraphs,
        outlets=all_outlets,
        url=url,
        published=_aware(date),
        lang=detect_lang(" ".join(paragraphs)),
        tags=tags,
        source=url,
        site_name=channel_title.strip() or None,
    )
