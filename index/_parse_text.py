"""Plain text and Markdown (with front matter) to an article."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from khabar._errors import ParseError
from khabar.store._types import Article
from khabar.text._outlets import canonical_outlet

from ._clean import clean_paragraphs
from ._parse_common import _add, _lang_code, _split_body_outlets, _title_from_text, _truncate
from ._parse_dates import parse_date
from ._parse_header import _read_header

_SENTENCE_END_RE = re.compile(r"[.!?؟…][\"'”’»)]*$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_HEADING_RE = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_MD_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_MD_RULE_RE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_MD_HINT_RE = re.compile(r"^#{1,6}\s|\[[^\]]+\]\([^)]+\)|\*\*[^*]+\*\*|^>\s", re.MULTILINE)
_MD_INLINE = [
    (re.compile(r"!\[[^\[\]]*\]\([^()]*\)"), ""),
    (re.compile(r"\[([^\[\]]+)\]\([^()]*\)"), r"\1"),
    (re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]"), r"\1"),
    (re.compile(r"<(https?://[^<>\s]+)>"), r"\1"),
    # A bracket class never holds its own opener: each scan stops at the next one, so a
    # line of "<" or "[" without a closer is read once, not once per opener (quadratic).
    (re.compile(r"<[^<>\n]+>"), ""),
    # Emphasis spans at most 300 characters: an opener without its closer then costs a
    # bounded look ahead, not the rest of the line (quadratic on "**a **a **a …").
    (re.compile(r"(\*\*|__)(?=\S)(.{1,300}?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.{1,300}?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)(.{1,300}?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.{1,300}?)~~"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!>])"), r"\1"),
]


def _md_inline(text: str) -> str:
    for pattern, repl in _MD_INLINE:
        text = pattern.sub(repl, text)
    return text.strip()


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return {}, text
    meta: dict[str, Any] = {}
    key: str | None = None
    for line in m.group(1).splitlines():
        if key and (item := re.match(r"^\s+-\s+(.*)$", line)):
            meta.setdefault(key, [])
            if isinstance(meta[key], list):
                meta[key].append(_unquote(item.group(1)))
            continue
        kv = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
        if not kv:
            continue
        key, value = kv.group(1).lower(), kv.group(2).strip()
        if value.startswith("[") and value.endswith("]"):
            meta[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
        elif value:
            meta[key] = _unquote(value)
    return meta, text[m.end() :]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _markdown_units(text: str) -> tuple[str | None, list[str]]:
    """(first heading if the text opens with one, plain-text paragraphs)."""
    title: str | None = None
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines: list[str] = []
        in_fence = False
        for raw in block.splitlines():
            line = raw.rstrip()
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
                continue
            if not line.strip() or _MD_RULE_RE.match(line) or re.match(r"^\[[^\]]+\]:\s*\S", line):
                continue
            line = re.sub(r"^\s*(?:>\s?)+", "", line)
            if (h := _MD_HEADING_RE.match(line)) and not in_fence:
                _flush(lines, units)
                heading = _md_inline(h.group(1))
                if title is None and not units and heading:
                    title = heading
                elif heading:
                    units.append(heading)
            elif _MD_LIST_RE.match(line) and not in_fence:
                _flush(lines, units)
                lines.append(_MD_LIST_RE.sub("", line))
                _flush(lines, units)
            else:
                lines.append(line.strip())
        _flush(lines, units)
    return title, units


def _flush(lines: list[str], units: list[str]) -> None:
    if lines:
        text = _md_inline(" ".join(lines))
        if text:
            units.append(text)
        lines.clear()


def _hard_wrapped(block: list[str]) -> bool:
    """A block of lines folded at a fixed width rather than one paragraph per line."""
    if len(block) < 2:
        return False
    inner = block[:-1]
    if not all(30 <= len(line) <= 100 for line in inner):
        return False
    open_ended = sum(1 for line in inner if not _SENTENCE_END_RE.search(line))
    return open_ended / len(inner) >= 0.7


def _plain_units(text: str) -> tuple[list[str], bool]:
    """(paragraphs, whether the first one stands alone in its block)."""
    units: list[str] = []
    opening_block = False
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not units:
            opening_block = len(lines) == 1
        if _hard_wrapped(lines):
            units.append(" ".join(lines))
        else:
            units.extend(lines)
    return units, opening_block


def parse_text(text: str, source: str | None = None, *, markdown: bool | None = None) -> Article:
    """An article from plain text or Markdown (detected unless ``markdown`` is given).

    Recognises a header of short lines before the first prose paragraph: section,
    title (and its repetition), tags, wire attribution, date and byline; Markdown
    front matter (title, date, url, source, author, lang, section, tags).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not text.strip():
        raise ParseError("the text is empty")
    meta, rest = _front_matter(text)
    is_md = bool(meta) or (markdown if markdown is not None else bool(_MD_HINT_RE.search(rest)))
    opening_block = False
    if is_md:
        md_title, units = _markdown_units(rest)
    else:
        md_title, (units, opening_block) = None, _plain_units(rest)
    title = _meta_str(meta, "title") or md_title
    head = _read_header(units, title, opening_block)
    body, body_outlets = _split_body_outlets(head.body)
    outlets = list(head.outlets)
    for name in _meta_list(meta, "source", "outlet", "outlets", "site"):
        _add(outlets, [canonical_outlet(name)])
    _add(outlets, body_outlets)
    # A title taken from the body must not remove that body as a "repeated title".
    paragraphs = clean_paragraphs(body, head.title)
    title = head.title or (_title_from_text("\n".join(paragraphs)) if paragraphs else None)
    if not title or not paragraphs:
        raise ParseError("no article body found in the text")
    published = head.published
    if (raw_date := _meta_str(meta, "date", "published", "pubdate")) is not None:
        published = parse_date(raw_date) or published
    return Article(
        title=_truncate(title, 300),
        paragraphs=paragraphs,
        outlets=outlets,
        url=_meta_str(meta, "url", "link", "canonical"),
        published=published,
        author=_meta_str(meta, "author", "by") or head.author,
        lang=_lang_code(_meta_str(meta, "lang", "language"), paragraphs),
        section=_meta_str(meta, "section", "category") or head.section,
        tags=_meta_list(meta, "tags", "keywords") or head.tags,
        source=source,
        site_name=_meta_str(meta, "source", "site", "outlet"),
    )


def _meta_str(meta: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _meta_list(meta: Mapping[str, Any], *keys: str) -> list[str]:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        if isinstance(value, str) and value.strip():
            return [v.strip() for v in value.split(",") if v.strip()]
    return []
