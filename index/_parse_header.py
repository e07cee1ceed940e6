"""Header recognition in plain text and Markdown: title, section, tags, date, byline and
wire attribution lines before the first prose paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from khabar.text._outlets import outlets_from_attribution

from ._parse_common import _add
from ._parse_dates import parse_date

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
