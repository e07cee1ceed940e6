"""Web pages to an article: trafilatura's main text, plus the publication time from page
metadata (meta tags, JSON-LD, <time>).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import lxml.html
import trafilatura

from khabar._errors import ParseError
from khabar.store._types import Article
from khabar.text._analysis import detect_lang
from khabar.text._outlets import canonical_outlet

from ._clean import clean_paragraphs
from ._parse_common import _add, _split_body_outlets, _split_tags, _title_from_text
from ._parse_dates import parse_date
from ._parse_decode import decode_bytes

_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w-]+)", re.IGNORECASE)
_PUBLISHED_XPATHS = (
    "//meta[@property='article:published_time']/@content",
    "//meta[@property='og:article:published_time']/@content",
    "//meta[@name='article:published_time']/@content",
    "//meta[@itemprop='datePublished']/@content",
    "//*[@itemprop='datePublished']/@datetime",
    "//meta[@name='pubdate' or @name='publishdate' or @name='parsely-pub-date'"
    " or @name='sailthru.date' or @name='DC.date.issued' or @name='dcterms.created']/@content",
    "//time[@datetime]/@datetime",
)


_MIN_PAGE_WORDS = 10  # less is a navigation or error page, not an article


def _html_text(html: str | bytes, charset: str | None = None) -> str:
    """The page's text, by the HTML standard's order: a BOM, the HTTP header's
    ``charset``, the page's meta charset; then the bytes decide. A declared charset
    that is unknown or does not fit the bytes is passed over."""
    if isinstance(html, str):
        return html
    m = _META_CHARSET_RE.search(html[:4096])
    meta = m.group(1).decode("ascii").lower() if m else None
    if meta and meta.startswith("utf-16"):
        meta = "utf-8"  # a meta tag readable as ASCII is no UTF-16 (the HTML standard)
    return decode_bytes(html, charset, meta)


def _json_ld_dates(tree: Any) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            value = node.get("datePublished")
            if isinstance(value, str):
                found.append(value)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            walk(json.loads(script))
        except (ValueError, RecursionError):  # malformed, or nested past any real use
            continue
    return found


def _html_published(html: str, day: str | None) -> datetime | None:
    """The publication time with its offset from page metadata; trafilatura only
    gives the day, which wins if the two disagree."""
    fallback = parse_date(day) if day else None
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return fallback
    candidates = _json_ld_dates(tree)
    for xpath in _PUBLISHED_XPATHS:
        candidates.extend(str(v) for v in tree.xpath(xpath))
    for raw in candidates:
        dt = parse_date(raw)
        if dt is None:
            continue
        if fallback is None or raw.strip().startswith(fallback.date().isoformat()):
            return dt
    return fallback


def parse_html(html: str | bytes, url: str | None = None, charset: str | None = None
               ) -> Article:
    """An article from a web page: main text, title, date, author, site, tags.
    ``charset``: the one the HTTP header gave, if any."""
    text = _html_text(html, charset)
    try:
        doc = trafilatura.bare_extraction(
            text,
            url=url,
            with_metadata=True,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            include_formatting=False,
        )
    except Exception as exc:  # trafilatura raises assorted lxml/parsing errors
        raise ParseError(f"cannot parse the page: {exc}") from exc
    main = getattr(doc, "text", None) if doc is not None else None
    if not main or not main.strip():
        raise ParseError("no main text found on the page")
    lines = [line for line in main.split("\n") if line.strip()]
    page_title = (doc.title or "").strip() or None
    body, outlets = _split_body_outlets(lines)
    site = (doc.sitename or "").strip() or None
    site_outlets = [canonical_outlet(site)] if site else []
    if not site_outlets and doc.hostname:
        site_outlets = [canonical_outlet(doc.hostname)]
    paragraphs = clean_paragraphs(body, page_title)
    if sum(len(p.split()) for p in paragraphs) < _MIN_PAGE_WORDS:
        raise ParseError("no main text found on the page")
    title = page_title or _title_from_text(paragraphs[0])
    merged: list[str] = []
    _add(merged, site_outlets)
    _add(merged, outlets)
    categories = [c for c in (doc.categories or []) if c and c.strip()]
    return Article(
        title=title,
        paragraphs=paragraphs,
        outlets=merged,
        url=doc.url or url,
        published=_html_published(text, doc.date),
        author=(doc.author or "").strip() or None,
        lang=detect_lang(" ".join(paragraphs)),
        section=categories[0].strip() if categories else None,
        tags=_split_tags(doc.tags),
        source=url,
        site_name=site,
    )
