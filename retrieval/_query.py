"""Query understanding: language, outlet and time filters, follow-up questions.

Filters stated in the question ("according to Reuters", "حسب رويترز", "yesterday",
"الأسبوع الماضي", "since March") are parsed out of the text that is searched, so
they restrict the search instead of diluting it. Dates are relative to ``now``;
a pasted news sentence (long, not a question) keeps its time words as words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from khabar.text import canonical_outlet, detect_question_lang, normalize_for_search

from ._types import Filters, Query

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    # Arabic month names (normalised: ي for ى, ا for أ/إ), both naming systems.
    "يناير": 1, "فبراير": 2, "مارس": 3, "ابريل": 4, "مايو": 5, "يونيو": 6, "يوليو": 7,
    "اغسطس": 8, "سبتمبر": 9, "اكتوبر": 10, "نوفمبر": 11, "ديسمبر": 12,
    "كانون الثاني": 1, "شباط": 2, "اذار": 3, "نيسان": 4, "ايار": 5, "حزيران": 6,
    "تموز": 7, "اب": 8, "ايلول": 9, "تشرين الاول": 10, "تشرين الثاني": 11,
    "كانون الاول": 12,
}
_MONTH_ALT = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))

# Each pattern is matched on the normalised question; (days back, days span).
_RELATIVE: list[tuple[re.Pattern[str], int, int | None]] = [
    (re.compile(r"\b(today|this morning|tonight)\b|\bاليوم\b"), 0, None),
    (re.compile(r"\byesterday\b|\b(امس|البارحه)\b"), 1, 1),
    (re.compile(r"\b(this|past|last) week\b|\b(الاسبوع|هذا الاسبوع|الاسبوع الماضي)\b"), 7, None),
    (re.compile(r"\b(this|past|last) month\b|\b(الشهر الماضي|هذا الشهر)\b"), 30, None),
    (re.compile(r"\b(this|past|last) year\b|\b(العام الماضي|السنه الماضيه|هذا العام)\b"),
     365, None),
]
_LAST_N = re.compile(r"\b(?:last|past)\s+(\d{1,3})\s+(day|week|month)s?\b|"
                     r"\bاخر\s+(\d{1,3})\s+(يوم|ايام|اسبوع|اسابيع|شهر|اشهر)\b")
_SINCE = re.compile(rf"\b(?:since|from|منذ|من)\s+({_MONTH_ALT})(?:\s+(\d{{4}}))?\b")
# "in 2012" is not read as a filter: news published in 2015 is asked about 2012.
_ACCORDING = re.compile(
    r"\b(?:according to|reported by|per|says?|said by|from)\s+(?P<en>[\w .&'-]{2,40}?)"
    r"(?=[?,.!]|$)|(?:حسب|بحسب|وفقا ل|وفق|كما ذكرت|كما افادت|نقلا عن|عن)\s*(?P<ar>[\w ]{2,30}?)"
    r"(?=[؟?,،.!]|$)", re.IGNORECASE)
_FOLLOW_UP = re.compile(
    r"^\s*(and|what about|how about|also|then|but|so|and what|what else|why|who else)\b|"
    r"^\s*(و\s*ماذا|وماذا|ماذا عن|وما|ولماذا|وكيف|ومن|وهل|وأين|واين)\b",
    re.IGNORECASE)
_PRONOUNS = re.compile(r"\b(it|they|them|he|she|its|their|there|that|this|those)\b|"
                       r"\b(هو|هي|هم|ذلك|هذا|هذه|هناك)\b", re.IGNORECASE)


def parse_filters(text: str, *, known_outlets: Sequence[str] = (),
                  now: datetime | None = None) -> tuple[str, Filters]:
    """Filters stated in ``text``, and the text left to search."""
    now = now or datetime.now(UTC)
    norm = normalize_for_search(text)
    filters = Filters()
    rest = text

    outlets = _match_outlets(text, known_outlets)
    if outlets:
        filters.outlets = outlets
        m = _ACCORDING.search(text)
        if m:
            rest = rest.replace(m.group(0), " ")

    day0 = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if looks_like_statement(text):
        pass  # "Earlier this month, the leaders met…": the event's time, not a request
    elif m := _LAST_N.search(norm):
        n = int(m.group(1) or m.group(3))
        unit = (m.group(2) or m.group(4) or "day")
        days = n * (7 if unit.startswith(("week", "اسب")) else
                    30 if unit.startswith(("month", "شهر", "اشهر")) else 1)
        filters.since = day0 - timedelta(days=days)
    elif m := _SINCE.search(norm):
        month = _MONTHS[m.group(1)]
        year = int(m.group(2)) if m.group(2) else now.year - (month > now.month)
        filters.since = datetime(year, month, 1, tzinfo=UTC)
    else:
        for pattern, back, span in _RELATIVE:
            if pattern.search(norm):
                filters.since = day0 - timedelta(days=back)
                if span:
                    filters.until = filters.since + timedelta(days=span)
                break
    return re.sub(r"\s+", " ", rest).strip() or text, filters


def _match_outlets(text: str, known: Sequence[str]) -> list[str]:
    """Known outlets named after "according to" / "حسب" and the like."""
    m = _ACCORDING.search(text)
    if not m:
        return []
    named = normalize_for_search(m.group("en") or m.group("ar") or "")
    canonical = normalize_for_search(canonical_outlet(named))
    found = []
    for outlet in known:
        key = normalize_for_search(outlet)
        if key and (key in named or canonical == key):
            found.append(outlet)
    return found


def looks_like_statement(text: str) -> bool:
    """A pasted sentence or claim rather than a question: long, and not asked.

    Its time words date the event it reports, relative to when it was written,
    so they are not read as a filter on publication dates.
    """
    return len(text.split()) >= _STATEMENT_WORDS and not re.search(r"[?؟]", text)


_STATEMENT_WORDS = 15


def looks_like_follow_up(text: str) -> bool:
    words = normalize_for_search(text).split()
    return bool(_FOLLOW_UP.search(text)) or (len(words) <= 4 and bool(_PRONOUNS.search(text)))


def understand(text: str, *, previous: str | None = None, known_outlets: Sequence[str] = (),
               filters: Filters | None = None, now: datetime | None = None,
               read_filters: bool = True) -> Query:
    """Turn a question into a :class:`Query`.

    ``previous`` is the same asker's previous question: it is prepended to the
    searched text only when this one looks like a follow-up ("and what about
    Homs?"), and is never shown as part of the answer. ``read_filters=False`` takes
    the words as they are: no period or outlet read from them ("ask it fresh").
    """
    text = text.strip()
    if read_filters:
        search, parsed = parse_filters(text, known_outlets=known_outlets, now=now)
    else:
        search, parsed = text, Filters()
    follow = None
    if previous and looks_like_follow_up(text):
        follow = previous
        search = f"{previous} {search}"
    merged = filters.merged(parsed) if filters is not None else parsed
    explicit_time = filters is not None and bool(filters.since or filters.until)
    return Query(text=text, search_text=search, lang=detect_question_lang(text),
                 filters=merged, follow_up_of=follow,
                 time_from_text=bool(parsed.since or parsed.until) and not explicit_time)
