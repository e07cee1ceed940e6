"""RSS 2.0, Atom and RDF feeds (feedparser): entries with the feed's own text, and an
article from an entry when its page cannot be fetched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import feedparser
import lxml.html

from khabar._errors import ParseError, shown
from khabar.store._types import Article
from khabar.text._analysis import detect_lang
from khabar.text._controls import strip_controls
from khabar.text._outlets import canonical_outlet

from ._clean import clean_paragraphs
from ._parse_common import _add, _split_body_outlets, _title_from_text
from ._parse_dates import parse_date


@dataclass
class FeedEntry:
    """One RSS/Atom item with the feed's own text (summary, and full content if any)."""

    link: str | None
    title: str | None
    published: datetime | None = None
    summary_html: str | None = None
    summary_text: str | None = None  # paragraphs separated by blank lines
    content_text: str | None = None  # full text when the feed carries it
    author: str | None = None
    feed_title: str | None = None
    outlet: str | None = None  # canonical_outlet(feed_title)
    tags: list[str] = field(default_factory=list)
    lang: str | None = None  # the feed's declared language, if any
    source: str | None = None  # the feed's URL or file name


_BLOCK_TAGS = {
    "p", "div", "section", "article", "blockquote", "li", "ul", "ol", "h1", "h2", "h3",
    "h4", "h5", "h6", "pre", "table", "tr", "figure", "figcaption", "header", "footer",
}


def html_fragment_paragraphs(fragment: str) -> list[str]:
    """Paragraph texts of an HTML fragment (block elements and <br> break lines)."""
    # Controls first: lxml refuses to set a text holding one ("\x1b" in a feed's content).
    fragment = strip_controls(fragment or "")
    if not fragment or not fragment.strip():
        return []
    if "<" not in fragment:
        return [p for p in (" ".join(b.split()) for b in re.split(r"\n\s*\n", fragment)) if p]
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return [" ".join(fragment.split())]
    for bad in root.xpath(".//script|.//style|.//noscript"):
        bad.drop_tree()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in _BLOCK_TAGS:
            el.text = "\n\n" + (el.text or "")
            el.tail = "\n\n" + (el.tail or "")
        elif el.tag == "br":
            el.tail = "\n\n" + (el.tail or "")
    text = root.text_content()
    return [p for p in (" ".join(b.split()) for b in re.split(r"\n\s*\n", text)) if p]


def _feed_bytes(data: bytes | str) -> bytes:
    if isinstance(data, bytes):
        return data
    # The str is already decoded: re-encode and make the declaration agree.
    data = re.sub(r"(<\?xml[^>]*encoding=)[\"'][^\"']*[\"']", r'\1"utf-8"', data, count=1)
    return data.encode("utf-8")


def parse_feed(data: bytes | str, source: str | None = None) -> list[FeedEntry]:
    """Entries of an RSS 2.0, Atom or RDF feed. Malformed feeds raise ParseError."""
    raw = _feed_bytes(data)
    if not raw.strip():
        raise ParseError("the feed is empty")
    # Bytes, never a str: feedparser would treat a str as a URL or a path to open.
    try:
        parsed = feedparser.parse(raw, sanitize_html=True, resolve_relative_uris=False)
    except Exception as exc:
        # (e.g. ValueError from chr() on "&#2000000;"): the feed is unreadable, not khabar.
        raise ParseError(f"malformed feed: {type(exc).__name__}: {exc}") from None
    if not parsed.entries:
        if parsed.get("bozo"):
            raise ParseError(f"malformed feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise ParseError("not an RSS or Atom feed")
        return []
    feed = parsed.feed
    feed_title = (feed.get("title") or "").strip() or None
    outlet = canonical_outlet(feed_title) if feed_title else None
    lang = (feed.get("language") or "").strip() or None
    entries: list[FeedEntry] = []
    for item in parsed.entries:
        summary_html = item.get("summary") or None
        contents = [c.get("value", "") for c in item.get("content", []) if c.get("value")]
        content_paras = html_fragment_paragraphs("\n".join(contents)) if contents else []
        summary_paras = html_fragment_paragraphs(summary_html or "")
        content_text = "\n\n".join(content_paras) or None
        summary_text = "\n\n".join(summary_paras) or None
        if content_text and content_text == summary_text:
            content_text = content_text if len(content_paras) > 1 else None
        published = parse_date(item.get("published") or item.get("updated") or item.get("created"))
        if published is None:
            published = parse_date(item.get("published_parsed") or item.get("updated_parsed"))
        entries.append(
            FeedEntry(
                link=(item.get("link") or "").strip() or None,
                title=" ".join((item.get("title") or "").split()) or None,
                published=published,
                summary_html=summary_html,
                summary_text=summary_text,
                content_text=content_text,
                author=(item.get("author") or "").strip() or None,
                feed_title=feed_title,
                outlet=outlet,
                tags=_entry_tags(item),
                lang=lang,
                source=source,
            )
        )
    return entries


def _entry_tags(item: Mapping[str, Any]) -> list[str]:
    return [t["term"].strip() for t in item.get("tags", []) if (t.get("term") or "").strip()]


def entry_to_article(entry: FeedEntry) -> Article:
    """An article from the feed's own text (used when the page cannot be fetched)."""
    text = entry.content_text or entry.summary_text
    if not text:
        raise ParseError(f"feed entry {shown(entry.link or entry.title)} has no text")
    body, outlets = _split_body_outlets(text.split("\n\n"))
    paragraphs = clean_paragraphs(body, entry.title)
    title = entry.title or (_title_from_text("\n".join(paragraphs)) if paragraphs else None)
    if not paragraphs or not title:
        raise ParseError(f"feed entry {shown(entry.link or entry.title)} has no text")
    all_outlets: list[str] = []
    _add(all_outlets, [entry.outlet] if entry.outlet else [])
    _add(all_outlets, outlets)
    return Article(
        title=title,
        paragraphs=paragraphs,
        outlets=all_outlets,
        url=entry.link,
        published=entry.published,
        author=entry.author,
        lang=detect_lang(" ".join(paragraphs)),
        tags=list(entry.tags),
        source=entry.link or entry.source,
        site_name=entry.feed_title,
    )
