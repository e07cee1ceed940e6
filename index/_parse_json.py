"""JSON objects, arrays of objects and JSONL records to articles."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from khabar._errors import ParseError, shown
from khabar.store._types import Article
from khabar.text._outlets import canonical_outlet

from ._clean import clean_paragraphs
from ._parse_common import _add, _lang_code, _split_body_outlets, _split_tags, _title_from_text
from ._parse_dates import parse_date

_TEXT_KEYS = ("text", "body", "content")
_DATE_KEYS = ("published", "date", "pubDate", "pubdate", "published_at", "publishedAt")
_SOURCE_KEYS = ("source", "outlet", "site", "site_name", "publisher")
_LIST_KEYS = ("articles", "items", "entries", "data", "records")


def _string(value: Any, label: str, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("name")
    if isinstance(value, list):
        value = ", ".join(str(v.get("name", "")) if isinstance(v, Mapping) else str(v)
                          for v in value)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ParseError(f"{label}: field {name!r} should be text")
    return str(value).strip() or None


def _paragraphs_of(body: str) -> list[str]:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if re.search(r"\n\s*\n", body):
        return [" ".join(block.split("\n")) for block in re.split(r"\n\s*\n", body)]
    return body.split("\n")


def _record_to_article(obj: Any, label: str, source: str | None) -> Article:
    if not isinstance(obj, Mapping):
        raise ParseError(f"{label}: expected an object, got {type(obj).__name__}")
    raw_body = next((obj[k] for k in _TEXT_KEYS if obj.get(k)), None)
    if raw_body is None:
        raise ParseError(f"{label}: no text (expected 'text', 'body' or 'content')")
    if isinstance(raw_body, list) and all(isinstance(p, str) for p in raw_body):
        paragraphs = list(raw_body)
    elif isinstance(raw_body, str):
        paragraphs = _paragraphs_of(raw_body)
    else:
        raise ParseError(f"{label}: the text should be a string or a list of strings")
    title = _string(obj.get("title"), label, "title")
    body, outlets = _split_body_outlets(paragraphs)
    cleaned = clean_paragraphs(body, title)
    title = title or (_title_from_text("\n".join(cleaned)) if cleaned else None)
    if not cleaned or not title:
        raise ParseError(f"{label}: the text is empty after cleaning")
    published = None
    raw_date = next((obj[k] for k in _DATE_KEYS if obj.get(k) not in (None, "")), None)
    if raw_date is not None:
        published = parse_date(raw_date)
        if published is None:
            raise ParseError(f"{label}: cannot read the date {shown(raw_date)}")
    names: list[str] = []
    if isinstance(obj.get("outlets"), list):
        names = [str(v) for v in obj["outlets"] if str(v).strip()]
    site = next((s for k in _SOURCE_KEYS if (s := _string(obj.get(k), label, k))), None)
    if site:
        names.append(site)
    all_outlets: list[str] = []
    _add(all_outlets, (canonical_outlet(n) for n in names))
    _add(all_outlets, outlets)
    tags = obj.get("tags") or obj.get("keywords") or []
    if isinstance(tags, str):
        tags = _split_tags([tags])
    elif not isinstance(tags, list):
        raise ParseError(f"{label}: 'tags' should be a list or text")
    lang = _string(obj.get("lang") or obj.get("language"), label, "lang")
    return Article(
        title=title,
        paragraphs=cleaned,
        outlets=all_outlets,
        url=_string(obj.get("url") or obj.get("link"), label, "url"),
        published=published,
        author=_string(obj.get("author") or obj.get("byline"), label, "author"),
        lang=_lang_code(lang, cleaned),
        section=_string(obj.get("section") or obj.get("category"), label, "section"),
        tags=[str(t).strip() for t in tags if str(t).strip()],
        source=source,
        site_name=site,
    )


def _why(exc: ValueError | RecursionError, *, short: bool = False) -> str:
    """What is wrong with a JSON text: json's message (without the position when
    ``short``), or its nesting, which the decoder meets as Python's recursion limit."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return exc.msg if short and isinstance(exc, json.JSONDecodeError) else str(exc)


def parse_json(text: str, source: str | None = None) -> tuple[list[Article], list[str]]:
    """Articles from a JSON object, a JSON array of objects, or JSONL.

    Returns (articles, errors): one message per bad record, naming its record
    (array) or line (JSONL) number. Raises ParseError if nothing is JSON at all.
    """
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ParseError("the JSON is empty")
    records: list[tuple[str, Any]] = []
    errors: list[str] = []
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        if text.lstrip().startswith("["):
            raise ParseError(f"invalid JSON: {_why(exc)}") from exc
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((f"line {n}", json.loads(line)))
            except (ValueError, RecursionError) as line_exc:
                errors.append(f"line {n}: invalid JSON ({_why(line_exc, short=True)})")
        if not records:
            raise ParseError(f"not valid JSON or JSONL: {errors[0]}") from exc
    else:
        if isinstance(doc, Mapping) and not any(doc.get(k) for k in _TEXT_KEYS):
            doc = next((doc[k] for k in _LIST_KEYS if isinstance(doc.get(k), list)), doc)
        items = doc if isinstance(doc, list) else [doc]
        records = [(f"record {n}", item) for n, item in enumerate(items, 1)]
    articles: list[Article] = []
    for label, obj in records:
        try:
            articles.append(_record_to_article(obj, label, source))
        except ParseError as exc:
            errors.append(str(exc))
    return articles, errors
