"""Dates: ISO 8601, RFC 2822, prose dates and Arabic month names to aware datetimes."""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from datetime import UTC, date, datetime

from dateutil import parser as dateutil_parser

from ._parse_decode import _ARABIC_LETTER_RE

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
