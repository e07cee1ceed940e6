"""Articles out of files, web pages, JSON, feeds and Telegram posts.

Everything here is a pure function of its input: no network, no store. Layout is
recognised from structure (short lines before the first prose paragraph, wire
attributions, date and byline shapes), never from a known site's template.

This module dispatches a file to its parser; the parsers live in ``_parse_*``
modules (decode, dates, common, header, text, html, json, feeds, telegram) and
their public names are re-exported here.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Literal

from khabar._errors import ParseError
from khabar.store._types import Article

from ._parse_dates import parse_date
from ._parse_decode import decode_bytes, split_content_type
from ._parse_feeds import FeedEntry, entry_to_article, parse_feed
from ._parse_html import parse_html
from ._parse_json import parse_json
from ._parse_telegram import parse_telegram_post
from ._parse_text import parse_text

__all__ = [
    "FeedEntry",
    "decode_bytes",
    "entry_to_article",
    "parse_date",
    "parse_document",
    "parse_feed",
    "parse_html",
    "parse_json",
    "parse_telegram_post",
    "parse_text",
]


# What a file is read as.
_Kind = Literal["text", "markdown", "html", "json", "feed"]

_KIND_BY_EXT: dict[str, _Kind] = {
    ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".json": "json", ".jsonl": "json",
    ".ndjson": "json", ".xml": "feed", ".rss": "feed", ".atom": "feed", ".rdf": "feed",
}
_KIND_BY_TYPE: dict[str, _Kind] = {
    "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "text/html": "html", "application/xhtml+xml": "html", "application/json": "json",
    "application/x-ndjson": "json", "application/jsonl": "json", "application/x-jsonlines": "json",
    "application/rss+xml": "feed", "application/atom+xml": "feed", "application/rdf+xml": "feed",
    "application/xml": "feed", "text/xml": "feed",
}


def _sniff(text: str) -> _Kind:
    head = text.lstrip()[:1000].lower()
    if head.startswith(("{", "[")):
        return "json"
    if head.startswith("<?xml") or re.match(r"<(?:rss|feed|rdf:rdf)\b", head):
        return "html" if "<html" in head else "feed"
    if head.startswith(("<!doctype html", "<html")) or "<body" in head:
        return "html"
    return "text"


def parse_document(
    data: bytes, name: str, content_type: str | None = None
) -> tuple[list[Article], list[str]]:
    """Articles from an uploaded or local file, by extension, content type or sniffing.
    A charset parameter of ``content_type`` is the first guess at the text's encoding.

    Returns (articles, per-item errors); an unreadable or unsupported file raises
    ParseError.
    """
    suffix = PurePath(name).suffix.lower()
    mime, charset = split_content_type(content_type or "")
    kind = _KIND_BY_EXT.get(suffix) or _KIND_BY_TYPE.get(mime)
    if kind is None and suffix and suffix not in (".log", ".dat", ""):
        raise ParseError(f"unsupported file type: {suffix}")
    if kind is None and mime and not mime.startswith("text/"):
        raise ParseError(f"unsupported content type: {mime}")
    if kind is None:
        kind = _sniff(decode_bytes(data, charset))
    return _parse_kind(kind, data, name, charset)


def _parse_kind(kind: _Kind, data: bytes, name: str, charset: str | None = None
                ) -> tuple[list[Article], list[str]]:
    if kind == "feed":
        articles: list[Article] = []
        errors: list[str] = []
        for n, entry in enumerate(parse_feed(data, name), 1):
            try:
                articles.append(entry_to_article(entry))
            except ParseError as exc:
                errors.append(f"entry {n}: {exc}")
        return articles, errors
    if kind == "html":
        article = parse_html(data, charset=charset)
        article.source = name
        return [article], []
    text = decode_bytes(data, charset)
    if kind == "json":
        return parse_json(text, name)
    return [parse_text(text, name, markdown=True if kind == "markdown" else None)], []
