"""Articles out of files, web pages, JSON, feeds and Telegram posts.

Everything here is a pure function of its input: no network, no store. Layout is
recognised from structure (short lines before the first prose paragraph, wire
attributions, date and byline shapes), never from a known site's template.
"""

from __future__ import annotations

import calendar
import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import PurePath
from typing import Any

import feedparser
import lxml.html
import trafilatura
from dateutil import parser as dateutil_parser

from ._clean import clean_paragraphs
from ._errors import ParseError
from ._outlets import canonical_outlet, outlets_from_attribution
from ._text import detect_lang, split_sentences
from ._types import Article

TITLE_MAX = 120

# --- Decoding -------------------------------------------------------------------

_BINARY_MAGIC = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"BZh",
    b"\x7fELF", b"7z\xbc\xaf", b"Rar!", b"OggS", b"ID3", b"RIFF", b"\x00\x00\x01\x00",
)
_ARABIC_LETTER_RE = re.compile("[\u0621-\u064a]")


def _binary() -> ParseError:
    return ParseError("the content looks binary, not text")


def _utf16_without_bom(sample: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" when NULs fall on one side of the byte pairs."""
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = max(len(sample) // 2, 1)
    # Text always has spaces and newlines, whose high byte is NUL in UTF-16.
    if odd / half >= 0.1 and even / half <= 0.02:
        return "utf-16-le"
    if even / half >= 0.1 and odd / half <= 0.02:
        return "utf-16-be"
    return None


def _check_text(text: str) -> str:
    if not text.strip():
        raise ParseError("the content is empty")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls / len(text) > 0.05:
        raise _binary()
    return text


def decode_bytes(data: bytes) -> str:
    """Text from bytes: BOM, UTF-8, UTF-16 (by NUL pattern), else Windows-1256/1252.

    Raises ParseError for empty and binary content.
    """
    if not data.strip():
        raise ParseError("the content is empty")
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise _binary() from exc
    if data.startswith(_BINARY_MAGIC):
        raise _binary()
    if b"\x00" in data:
        codec = _utf16_without_bom(data[:4096])
        if codec is None:
            raise _binary()
        try:
            return _check_text(data.decode(codec))
        except UnicodeDecodeError as exc:
            raise _binary() from exc
    try:
        return _check_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    # Legacy single-byte files: Arabic ones are Windows-1256, the rest most likely 1252.
    text = data.decode("cp1256")
    letters = sum(1 for ch in text if ch.isalpha())
    if letters and len(_ARABIC_LETTER_RE.findall(text)) / letters >= 0.3:
        return _check_text(text)
    return _check_text(data.decode("cp1252", errors="replace"))


# --- Dates ----------------------------------------------------------------------

# Egyptian/Gulf, Levantine/Iraqi and Maghrebi month names, written without hamza
# because the input is folded (أ إ آ -> ا) before matching.
_AR_MONTHS = {
    "يناير": "January", "كانون الثاني": "January", "جانفي": "January",
    "فبراير": "February", "شباط": "February", "فيفري": "February",
    "مارس": "March", "اذار": "March",
    "ابريل": "April", "نيسان": "April", "افريل": "April",
    "مايو": "May", "ايار": "May", "ماي": "May",
    "يونيو": "June", "يونيه": "June", "حزيران": "June", "جوان": "June",
    "يوليو": "July", "يوليه": "July", "تموز": "July", "جويلية": "July", "يوليوز": "July",
    "اغسطس": "August", "اب": "August", "اوت": "August", "غشت": "August",
    "سبتمبر": "September", "ايلول": "September", "شتنبر": "September",
    "اكتوبر": "October", "تشرين الاول": "October",
    "نوفمبر": "November", "تشرين الثاني": "November", "نونبر": "November",
    "ديسمبر": "December", "كانون الاول": "December", "دجنبر": "December",
}
# Longest first, so "تشرين الثاني" wins over a shorter overlap.
_AR_MONTH_RE = re.compile(
    r"(?<!\w)(?:" + "|".join(sorted(_AR_MONTHS, key=len, reverse=True)) + r")(?!\w)"
)
_AR_WEEKDAYS_RE = re.compile(
    r"(?<!\w)(?:يوم\s+)?(?:ال)?(?:احد|اثنين|ثلاثاء|اربعاء|خميس|جمعة|جمعه|سبت)(?!\w)"
)
_HAMZA_FOLD = str.maketrans("أإآ", "ااا")
_EN_MONTH_RE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b", re.IGNORECASE
)
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_DEFAULT_DT = datetime(2000, 1, 1)
_RFC2822_RE = re.compile(r"^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}")


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None or dt.utcoffset() is None else dt


def _sane(dt: datetime) -> datetime | None:
    return _aware(dt) if 1900 <= dt.year <= 2100 else None


def _arabic_to_english_date(text: str) -> str:
    text = text.translate(_DIGITS).translate(_HAMZA_FOLD)
    text = _AR_WEEKDAYS_RE.sub(" ", text)
    text = _AR_MONTH_RE.sub(lambda m: f" {_AR_MONTHS[m.group(0)]} ", text)
    text = re.sub(r"\b([A-Z][a-z]+)\s*/\s*\1\b", r"\1", text)  # "سبتمبر/أيلول"
    text = re.sub(r"(\d{1,2}:\d{2})\s*(?:ص|صباحا|صباحاً)(?!\w)", r"\1 AM", text)
    text = re.sub(r"(\d{1,2}:\d{2})\s*(?:م|مساء|مساءً)(?!\w)", r"\1 PM", text)
    text = re.sub(r"(\d{4})\s*م(?!\w)", r"\1", text)  # "2015م": Gregorian year marker
    text = re.sub(r"[،,]", " ", text)
    text = re.sub(r"(?<!\w)(?:في|الموافق|بتاريخ|يوم)(?!\w)", " ", text)
    return " ".join(text.split())


def parse_date(value: object) -> datetime | None:
    """A timezone-aware datetime from ISO 8601, RFC 2822, common prose dates and
    Arabic month names (date-only values: midnight UTC). None if unparseable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _sane(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, time.struct_time):
        return _sane(datetime.fromtimestamp(calendar.timegm(value), UTC))
    if isinstance(value, int | float):
        try:
            return _sane(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 80 or "هـ" in text:  # Hijri dates are not converted
        return None
    arabic = bool(_ARABIC_LETTER_RE.search(text) or re.search("[٠-٩۰-۹]", text))
    if arabic:
        text = _arabic_to_english_date(text)
        if _ARABIC_LETTER_RE.search(text):
            return None
    try:
        return _sane(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    if _RFC2822_RE.match(text):
        try:
            return _sane(email.utils.parsedate_to_datetime(text))
        except (TypeError, ValueError, IndexError):
            pass
    groups = re.findall(r"\d+", text)
    # Guard dateutil's guessing: "2015" or "Wednesday" alone is no date.
    if not groups or (len(groups) < 2 and not _EN_MONTH_RE.search(text)):
        return None
    try:
        # Arabic sources write numeric dates day first (30/9/2015).
        dt = dateutil_parser.parse(text, default=_DEFAULT_DT, dayfirst=arabic)
    except (ValueError, OverflowError, TypeError):
        return None
    return _sane(dt)


# --- Header recognition (plain text and Markdown) --------------------------------

_SENTENCE_END_RE = re.compile(r"[.!?؟…][\"'”’»)]*$")
_PERIOD_END_RE = re.compile(r"\.[\"'”’»)]*$")
_DATE_PREFIX_RE = re.compile(
    r"^(?:published|updated|posted|date|last updated|نشر في|نُشر في|تاريخ النشر|آخر تحديث"
    r"|تم النشر|نشر|التاريخ)\s*(?:on|at|في)?\s*[:：\-–]?\s*",
    re.IGNORECASE,
)
_BYLINE_RE = re.compile(
    r"^(?:by|written by|author|بقلم|كتب|كتبت|كتبه|إعداد|الكاتب|المؤلف)\s*[:：\-–]?\s+(.+)$",
    re.IGNORECASE,
)
_SOURCE_LINE_RE = re.compile(r"^(?:المصدر|المصادر|source|sources)\s*[:：]\s*(.+)$", re.IGNORECASE)
_DATELINE_RE = re.compile(r"^.{0,60}?\(([^()]{2,40})\)\s*[-–—:]")
_MAX_HEADER = 8


def _is_prose(line: str) -> bool:
    words = len(line.split())
    return words >= 15 or len(line) >= 100 or (words >= 8 and line.rstrip().endswith("."))


def _date_line(line: str) -> datetime | None:
    if len(line) > 60 or not re.search(r"[0-9٠-٩]", line):
        return None
    return parse_date(_DATE_PREFIX_RE.sub("", line.strip()))


def _byline(line: str) -> tuple[str, list[str]] | None:
    """("Jane Doe", ["Reuters"]) from "By Jane Doe, Reuters"; None if not a byline."""
    m = _BYLINE_RE.match(line.strip())
    if not m or len(line) > 80:
        return None
    parts = [p.strip() for p in re.split(r"\s*[,،|]\s*|\s+[-–—]\s+", m.group(1)) if p.strip()]
    names: list[str] = []
    outlets: list[str] = []
    for part in parts:
        found = outlets_from_attribution(part)
        if found:
            outlets.extend(found)
        else:
            names.append(part)
    return ", ".join(names), outlets


_PLACE_OUTLET_RE = re.compile(
    r"^[^\W\d][^()\-–—:]{1,30}?\s*(?:[-–—]|\()\s*([^()]{2,40}?)\)?\s*[:：\-–—]?$"
)


def _place_and_outlet(line: str) -> list[str]:
    """Outlets of a header dateline such as "واشنطن - رويترز" or "Paris (AFP)"."""
    m = _PLACE_OUTLET_RE.match(line.strip())
    return outlets_from_attribution(m.group(1)) if m and len(line) <= 60 else []


def _source_line(line: str) -> list[str]:
    """Outlets from an attribution line or a "Source: ..."/"المصدر: ..." line."""
    found = outlets_from_attribution(line)
    if found:
        return found
    m = _SOURCE_LINE_RE.match(line.strip())
    if not m or len(line) > 80:
        return []
    named = m.group(1).strip()
    return outlets_from_attribution(named) or ([canonical_outlet(named)] if named else [])


def _add(outlets: list[str], more: Iterable[str]) -> None:
    for name in more:
        if name and name not in outlets:
            outlets.append(name)


@dataclass
class _Header:
    title: str | None = None
    section: str | None = None
    tags: list[str] = field(default_factory=list)
    outlets: list[str] = field(default_factory=list)
    published: datetime | None = None
    author: str | None = None
    body: list[str] = field(default_factory=list)


def _read_header(units: list[str], title: str | None, opening_block: bool = False) -> _Header:
    """Split title/section/tags/date/byline/attribution lines from the body.

    The header is everything before the first prose paragraph (at most a few
    lines). A known ``title`` (front matter, Markdown heading) is kept.
    """
    head = _Header(title=title)

    def prose(i: int, unit: str) -> bool:
        # A long opening line is still a headline unless it reads like a paragraph.
        if i == 0 and title is None and len(units) > 1:
            if len(unit.split()) > 30:
                return True
            return not opening_block and bool(_PERIOD_END_RE.search(unit))
        return _is_prose(unit)

    first_prose = next((i for i, u in enumerate(units) if prose(i, u)), len(units))
    n_head = first_prose if first_prose <= _MAX_HEADER else (0 if title else 1)
    if title is None and n_head == len(units) and units:
        n_head = 1  # only short lines: the first is the title, the rest the body
    others: list[str] = []
    for line in units[:n_head]:
        if head.published is None and (dt := _date_line(line)) is not None:
            head.published = dt
        elif head.author is None and (by := _byline(line)) is not None:
            head.author = by[0] or None
            _add(head.outlets, by[1])
        elif found := outlets_from_attribution(line) or _place_and_outlet(line):
            _add(head.outlets, found)
        else:
            others.append(line)
    head.body = list(units[n_head:])
    if head.title is None:
        candidates = [u for u in others if len(u.split()) >= 3]
        head.title = candidates[0] if candidates else max(others, key=len, default=None)
    before = True
    extra: list[str] = []
    for line in others:
        if line == head.title:
            before = False
            continue
        if title is not None or len(line.split()) > 3:
            extra.append(line)  # a standfirst or a heading: part of the body
        elif before and head.section is None:
            head.section = line
        else:
            head.tags.append(line)
    head.body = extra + head.body
    return head


def _split_body_outlets(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    """Take attribution and "Source:" lines out of the body; read a wire dateline."""
    body: list[str] = []
    outlets: list[str] = []
    for p in paragraphs:
        found = _source_line(p)
        if found:
            _add(outlets, found)
        else:
            body.append(p)
    if body and (m := _DATELINE_RE.match(body[0])):
        _add(outlets, outlets_from_attribution(m.group(1)))
    return body, outlets


def _title_from_text(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    sentences = split_sentences(first)
    return _truncate(sentences[0] if sentences else first)


def _truncate(text: str, limit: int = TITLE_MAX) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,،;؛:-–—") + "…"


# --- Plain text and Markdown -----------------------------------------------------

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_HEADING_RE = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_MD_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_MD_RULE_RE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_MD_HINT_RE = re.compile(r"^#{1,6}\s|\[[^\]]+\]\([^)]+\)|\*\*[^*]+\*\*|^>\s", re.MULTILINE)
_MD_INLINE = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),
    (re.compile(r"<[^>\n]+>"), ""),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
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


def _lang_code(declared: str | None, paragraphs: list[str]) -> str:
    """A declared language ("ar-SA", "English") as "ar"/"en"/"other"; detected if absent."""
    if not declared:
        return detect_lang(" ".join(paragraphs))
    code = re.split(r"[-_\s]", declared.strip().lower())[0]
    return {"ar": "ar", "ara": "ar", "arabic": "ar", "en": "en", "eng": "en",
            "english": "en"}.get(code, "other")


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


# --- HTML -------------------------------------------------------------------------

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


def _html_text(html: str | bytes) -> str:
    if isinstance(html, str):
        return html
    m = _META_CHARSET_RE.search(html[:4096])
    if m and not html.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_text(html.decode(m.group(1).decode("ascii")))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(html)


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
        except ValueError:
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


def _split_tags(values: Iterable[str] | None) -> list[str]:
    tags: list[str] = []
    for value in values or []:
        for tag in re.split(r"\s*[,،;]\s*", value):
            if tag.strip() and tag.strip() not in tags:
                tags.append(tag.strip())
    return tags


def parse_html(html: str | bytes, url: str | None = None) -> Article:
    """An article from a web page: main text, title, date, author, site, tags."""
    text = _html_text(html)
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


# --- JSON and JSONL -------------------------------------------------------------

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
            raise ParseError(f"{label}: cannot read the date {raw_date!r}")
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
    except ValueError as exc:
        if text.lstrip().startswith("["):
            raise ParseError(f"invalid JSON: {exc}") from exc
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((f"line {n}", json.loads(line)))
            except ValueError as line_exc:
                errors.append(f"line {n}: invalid JSON ({line_exc.msg})")
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


# --- Feeds ------------------------------------------------------------------------


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
    parsed = feedparser.parse(raw, sanitize_html=True, resolve_relative_uris=False)
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
        raise ParseError(f"feed entry {entry.link or entry.title!r} has no text")
    body, outlets = _split_body_outlets(text.split("\n\n"))
    paragraphs = clean_paragraphs(body, entry.title)
    title = entry.title or (_title_from_text("\n".join(paragraphs)) if paragraphs else None)
    if not paragraphs or not title:
        raise ParseError(f"feed entry {entry.link or entry.title!r} has no text")
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


# --- Telegram ---------------------------------------------------------------------

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


# --- Dispatch ---------------------------------------------------------------------

_KIND_BY_EXT = {
    ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".json": "json", ".jsonl": "json",
    ".ndjson": "json", ".xml": "feed", ".rss": "feed", ".atom": "feed", ".rdf": "feed",
}
_KIND_BY_TYPE = {
    "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "text/html": "html", "application/xhtml+xml": "html", "application/json": "json",
    "application/x-ndjson": "json", "application/jsonl": "json", "application/x-jsonlines": "json",
    "application/rss+xml": "feed", "application/atom+xml": "feed", "application/rdf+xml": "feed",
    "application/xml": "feed", "text/xml": "feed",
}


def _sniff(text: str) -> str:
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

    Returns (articles, per-item errors); an unreadable or unsupported file raises
    ParseError.
    """
    suffix = PurePath(name).suffix.lower()
    mime = (content_type or "").split(";")[0].strip().lower()
    kind = _KIND_BY_EXT.get(suffix) or _KIND_BY_TYPE.get(mime)
    if kind is None and suffix and suffix not in (".log", ".dat", ""):
        raise ParseError(f"unsupported file type: {suffix}")
    if kind is None and mime and not mime.startswith("text/"):
        raise ParseError(f"unsupported content type: {mime}")
    if kind is None:
        kind = _sniff(decode_bytes(data))
    return _parse_kind(kind, data, name)


def _parse_kind(kind: str, data: bytes, name: str) -> tuple[list[Article], list[str]]:
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
        article = parse_html(data)
        article.source = name
        return [article], []
    text = decode_bytes(data)
    if kind == "json":
        return parse_json(text, name)
    return [parse_text(text, name, markdown=True if kind == "markdown" else None)], []
