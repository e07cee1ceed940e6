"""Canonical outlet names from wire attributions ("رويترز- الفرنسية- وكالات") and site names.

Matching is done on :func:`normalize_for_search` forms, so hamza, diacritics, case
and punctuation ("أ.ف.ب", "A.F.P.") do not matter.
"""

from __future__ import annotations

import re
from functools import lru_cache

from khabar.text._analysis import normalize_for_search

# Canonical name -> aliases (Arabic and Latin spellings, site names, domains).
_ALIASES: dict[str, tuple[str, ...]] = {
    "Reuters": ("رويترز", "رويتر", "Reuters", "Thomson Reuters", "reuters.com"),
    "AFP": (
        "AFP", "A.F.P", "Agence France-Presse", "Agence France Presse", "أ ف ب", "أ.ف.ب",
        "فرانس برس", "فرانس بريس", "وكالة فرانس برس", "الفرنسية", "وكالة الصحافة الفرنسية",
        "afp.com",
    ),
    "AP": (
        "AP", "Associated Press", "The Associated Press", "أسوشيتد برس", "أسوشيتدبرس",
        "اسوشيتد برس", "أسوشييتد برس", "أ ب", "apnews.com",
    ),
    "Anadolu": ("الأناضول", "وكالة الأناضول", "Anadolu", "Anadolu Agency", "AA", "aa.com.tr"),
    "SANA": ("سانا", "SANA", "وكالة سانا", "sana.sy"),
    "BBC": (
        "BBC", "بي بي سي", "بي بي سي عربي", "BBC News", "BBC Arabic", "BBC News Arabic",
        "BBC News عربي", "bbc.com", "bbc.co.uk",
    ),
    "Al Jazeera": (
        "الجزيرة", "الجزيرة نت", "الجزيرة.نت", "Al Jazeera", "Aljazeera", "Al Jazeera English",
        "aljazeera.net", "aljazeera.com",
    ),
    "CNN": ("CNN", "سي إن إن", "سي ان ان", "CNN Arabic", "cnn.com", "arabic.cnn.com"),
    "agencies": ("وكالات", "الوكالات", "وكالات الأنباء", "agencies", "news agencies", "wires"),
    "dpa": ("dpa", "د ب أ", "د.ب.أ", "الألمانية", "Deutsche Presse-Agentur", "dpa.com"),
    "Xinhua": ("Xinhua", "شينخوا", "شينخوا الصينية", "xinhuanet.com", "news.cn"),
    "France 24": ("فرانس 24", "فرانس24", "France 24", "France24", "france24.com"),
    "Al Arabiya": ("العربية", "العربية نت", "العربية.نت", "Al Arabiya", "alarabiya.net"),
    "Sky News Arabia": ("سكاي نيوز عربية", "Sky News Arabia", "skynewsarabia.com"),
    "Sky News": ("Sky News", "news.sky.com"),
    "RT": ("RT", "روسيا اليوم", "آر تي", "RT Arabic", "rt.com", "arabic.rt.com"),
    "Sputnik": ("سبوتنيك", "Sputnik", "sputniknews.com"),
    "TASS": ("تاس", "TASS", "tass.com"),
    "Interfax": ("إنترفاكس", "Interfax"),
    "EFE": ("EFE", "إفي"),
    "ANSA": ("ANSA", "أنسا"),
    "Kyodo": ("Kyodo", "كيودو"),
    "Yonhap": ("Yonhap", "يونهاب"),
    "UPI": ("UPI", "يو بي آي", "upi.com"),
    "Bloomberg": ("Bloomberg", "بلومبرغ", "بلومبيرغ", "bloomberg.com"),
    "MENA": ("أ ش أ", "أ.ش.أ", "وكالة أنباء الشرق الأوسط", "MENA"),
    "WAFA": ("وفا", "WAFA"),
    "QNA": ("قنا", "QNA"),
    "SPA": ("واس", "SPA", "Saudi Press Agency"),
    "KUNA": ("كونا", "KUNA"),
    "WAM": ("وام", "WAM"),
    "IRNA": ("إرنا", "ارنا", "IRNA"),
    "INA": ("واع", "INA"),
    "Al Mayadeen": ("الميادين", "Al Mayadeen"),
    "Asharq Al-Awsat": ("صحيفة الشرق الأوسط", "Asharq Al-Awsat", "aawsat.com"),
    "Al-Ahram": ("الأهرام", "Al-Ahram", "ahram.org.eg"),
    "The New York Times": (
        "The New York Times", "New York Times", "NYT", "نيويورك تايمز", "nytimes.com",
    ),
    "The Washington Post": (
        "The Washington Post", "Washington Post", "واشنطن بوست", "washingtonpost.com",
    ),
    "The Guardian": ("The Guardian", "Guardian", "الغارديان", "theguardian.com"),
    "Euronews": ("Euronews", "يورونيوز", "euronews.com"),
    "Deutsche Welle": ("DW", "Deutsche Welle", "دويتشه فيله", "dw.com"),
}

_MAX_CHARS = 80
_MAX_WORDS = 12


@lru_cache(maxsize=1)
def _alias_table() -> tuple[dict[tuple[str, ...], str], int]:
    table: dict[tuple[str, ...], str] = {}
    for canonical, aliases in _ALIASES.items():
        for alias in (canonical, *aliases):
            key = tuple(normalize_for_search(alias).split())
            if key:
                table[key] = canonical
    return table, max(len(k) for k in table)


def _strip_domain(name: str) -> str:
    """"https://www.reuters.com/world" -> "reuters.com"."""
    m = re.fullmatch(r"(?:https?://)?(?:www\.)?([\w.-]+\.[a-z]{2,})(?:/\S*)?", name.strip(), re.I)
    return m.group(1).lower() if m else name


def canonical_outlet(name: str) -> str:
    """The canonical name of a known outlet; otherwise ``name`` with tidied spaces.

    Feed and site titles often carry a section: "BBC News - World" -> "BBC".
    """
    tidy = " ".join(name.split())
    table, _ = _alias_table()
    parts = [p for p in re.split(r"\s+[-–—|:]\s+|\s*[|]\s*", tidy) if p]
    for candidate in (tidy, _strip_domain(tidy), *parts[:1], *parts[-1:]):
        key = tuple(normalize_for_search(candidate).split())
        if key in table:
            return table[key]
    return tidy


def _match_words(words: list[str]) -> list[str] | None:
    """Greedy longest-match of ``words`` against the aliases; None if any word is left over."""
    table, longest = _alias_table()
    found: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in ("و", "and"):
            i += 1
            continue
        hit = _longest_at(words, i, table, longest)
        if hit is None and words[i].startswith("و") and len(words[i]) > 1:
            # Arabic "and" is written onto the next word: "رويترز ووكالات".
            hit = _longest_at([words[i][1:], *words[i + 1 :]], 0, table, longest)
            if hit is not None:
                hit = (hit[0], hit[1] + i)
        if hit is None:
            return None
        canonical, i = hit
        if canonical not in found:
            found.append(canonical)
    return found


def _longest_at(
    words: list[str], i: int, table: dict[tuple[str, ...], str], longest: int
) -> tuple[str, int] | None:
    for n in range(min(longest, len(words) - i), 0, -1):
        canonical = table.get(tuple(words[i : i + n]))
        if canonical is not None:
            return canonical, i + n
    return None


def outlets_from_attribution(line: str) -> list[str]:
    """Canonical outlets of a wire attribution line, or [] if it is not one.

    An attribution line is short and made only of known outlet names and
    separators (- – , / و and spaces), optionally in brackets: "(رويترز)".
    """
    line = line.strip()
    if not line or len(line) > _MAX_CHARS:
        return []
    words = normalize_for_search(line).split()
    if not words or len(words) > _MAX_WORDS:
        return []
    return _match_words(words) or []
