"""Cues that the evidence holds *this* question's answer, not just its topic.

Cosines tell what a passage is about; a near-topic passage (the same event, other
facts) scores as high as the answer. What it lacks is the question's particulars:
its names and numbers, and, for "when"/"how many" questions, a date or a number
near the best sentence. These read the text only (no archive statistics), so they
are the same at any archive size, and work across Arabic and English:

* numbers: digits compared as values (Arabic-Indic digits folded);
* names across scripts: a Latin name and an Arabic word compared by their consonant
  skeletons (Ratzel / راتزل → RTSL), a crude transliteration that needs no model, and
  short names by their sound classes with vowels (Wesley / ويسلي → UISLI), where Arabic
  has several spellings of a Latin letter taking each (Jochi / يوتشي: j as ي);
* the answer type: a question asking when (متى, what year) or how many (كم) and
  whether the best sentence or its neighbours hold a year, a month or a number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from khabar.text import ascii_digits

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LATIN_LETTER = "A-Za-zÀ-ÖØ-öø-ÿ"  # with accents (Börte)
_LATIN_WORD = re.compile(f"[{_LATIN_LETTER}][{_LATIN_LETTER}'’-]*[{_LATIN_LETTER}]")
_ARABIC_WORD = re.compile(r"[\u0621-\u064a]{2,}")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_MONTHS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|century|decade)\b|"
    r"(يناير|فبراير|مارس|أبريل|ابريل|إبريل|مايو|يونيو|يونيه|يوليو|يوليه|أغسطس|اغسطس|سبتمبر|"
    r"أكتوبر|اكتوبر|نوفمبر|ديسمبر|كانون|شباط|آذار|نيسان|أيار|حزيران|تموز|آب|أيلول|تشرين|"
    r"القرن|الاثنين|الثلاثاء|الأربعاء|الخميس|الجمعة|السبت|الأحد|عام|سنة|العام)",
    re.IGNORECASE)
_NUMBER_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|hundreds|thousand|thousands|million|millions|billion|dozen|half|"
    r"percent)\b|"
    r"(واحد|اثنان|اثنين|ثلاث|أربع|خمس|ست|سبع|ثماني|تسع|عشر|عشرين|مائة|مئة|مئات|ألف|آلاف|"
    r"مليون|ملايين|مليار|نصف|بالمئة|بالمائة|في المئة|في المائة)", re.IGNORECASE)
# What a question asks for, from its first words.
_ASKS_WHEN = re.compile(
    r"^\W*(when|in what year|what year|which year|in which year|what date|on what date|"
    r"in what century|what century|in what decade|how long ago)\b|"
    r"^\W*(متى|في أي عام|في أي سنة|في اي عام|في اي سنة|في أي قرن|في اي قرن|أي عام|أي سنة|"
    r"ما هو تاريخ|ما تاريخ|في أي تاريخ|منذ متى)", re.IGNORECASE)
_ASKS_COUNT = re.compile(
    r"^\W*(how many|how much|how long|how old|how far|how large|how big|how tall|"
    r"what percentage|what percent|what proportion|what is the population|what was the "
    r"population|what number|what amount)\b|"
    r"^\W*(كم|ما عدد|ما هو عدد|ما هي نسبة|ما نسبة|ما هو مقدار|ما مقدار|ما هي مساحة|ما مساحة|"
    r"ما هو طول|ما طول|ما هو عمر|ما عمر)", re.IGNORECASE)


def numbers(text: str) -> set[str]:
    """The numbers in ``text`` as values ("1,200" and "1200" alike), any digits."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(ascii_digits(text))}


def asks(question: str) -> str:
    """"when", "count" or "" (no type that a date or number would answer)."""
    q = ascii_digits(question.strip()).lstrip("\u200f\u200e ")
    if _ASKS_WHEN.search(q):
        return "when"
    if _ASKS_COUNT.search(q):
        return "count"
    return ""


def holds_type(kind: str, text: str) -> bool:
    """Whether ``text`` holds what a ``kind`` question asks for."""
    text = ascii_digits(text)
    if kind == "when":
        return bool(_YEAR.search(text) or _MONTHS.search(text))
    if kind == "count":
        return bool(_NUMBER.search(text) or _NUMBER_WORDS.search(text))
    return False


# -- names across scripts ------------------------------------------------------------------
# Consonant classes shared by Latin and Arabic spellings of a name; vowels, the
# letters that write them in Arabic (ا و ي ى), hamza and ع are dropped.
_LATIN_DIGRAPHS = (("sch", "S"), ("tch", "S"), ("ch", "S"), ("sh", "S"), ("ph", "F"),
                   ("th", "T"), ("kh", "H"), ("gh", "K"), ("ck", "K"), ("dh", "T"),
                   ("ts", "S"), ("tz", "S"), ("ck", "K"), ("qu", "K"), ("x", "KS"))
_LATIN = {**dict.fromkeys("bp", "B"), **dict.fromkeys("td", "T"),
          **dict.fromkeys("kcqgj", "K"), **dict.fromkeys("szx", "S"),
          **dict.fromkeys("fv", "F"), "l": "L", "r": "R", "m": "M", "n": "N", "h": "H"}
_ARABIC_DIGRAPHS = (("تش", "S"), ("تس", "S"), ("تز", "S"))
_ARABIC = {**dict.fromkeys("بپ", "B"), **dict.fromkeys("تطدضثذظ", "T"),
           **dict.fromkeys("كقغجگ", "K"), **dict.fromkeys("سصزشژچ", "S"),
           **dict.fromkeys("فڤ", "F"), "ل": "L", "ر": "R", "م": "M", "ن": "N",
           **dict.fromkeys("حهخ", "H")}
MAX_NAME = 32
"""Longer "words" are no names: never looked at, so a hostile text costs no variants to
build and no cache entries of its size (each function's cache holds 65,536 words)."""
_ARABIC_PREFIXES = ("وال", "بال", "لل", "فال", "كال", "ال", "و", "ب", "ل")


def latin_skeleton(word: str) -> str:
    return _latin_skeleton(word) if len(word) <= MAX_NAME else ""


def _squeeze(s: str) -> str:
    return re.sub(r"(.)\1+", r"\1", s)


def _latin_sounded(word: str) -> str:
    """A Latin word's letters as a name is said: h is written (ه) at the start of a
    name, silent inside (Rhineland) unless in a digraph; -gh silent."""
    w = re.sub(r"gh$", "", word.lower())
    return w[:1] + w[1:].replace("h", "") if not re.search(r"[cstpkgd]h", w) else w


def _arabic_forms(word: str) -> list[str]:
    """An Arabic word with and without a leading article or conjunction, its digraphs
    for one Latin sound folded (تش: ch)."""
    out = []
    for w in [word] + [word[len(p):] for p in _ARABIC_PREFIXES
                       if word.startswith(p) and len(word) - len(p) >= 3]:
        for a, b in _ARABIC_DIGRAPHS:
            w = w.replace(a, b)
        out.append(w)
    return out


@lru_cache(maxsize=65536)
def _latin_skeleton(word: str) -> str:
    w = _latin_sounded(word)
    for a, b in _LATIN_DIGRAPHS:
        w = w.replace(a, b)
    return _squeeze("".join(_LATIN.get(c, c if c.isupper() else "") for c in w))


def arabic_skeletons(word: str) -> tuple[str, ...]:
    return _arabic_skeletons(word) if len(word) <= MAX_NAME else ()


@lru_cache(maxsize=65536)
def _arabic_skeletons(word: str) -> tuple[str, ...]:
    """The word's skeleton, with and without a leading article or conjunction."""
    out = [_squeeze("".join(_ARABIC.get(c, c if c.isupper() else "") for c in w))
           for w in _arabic_forms(word)]
    return tuple(dict.fromkeys(s for s in out if len(s) >= 3))


def latin_names(text: str) -> list[str]:
    """Capitalised words past each sentence's first, and of 4+ letters (Aleppo, Reuters;
    "Atkinson's" as Atkinson, "Russian-backed" as Russian)."""
    out = []
    for m in _LATIN_WORD.finditer(text):
        w = re.sub(r"['’]s$", "", m.group()).split("-")[0]
        before = text[:m.start()].rstrip()
        if w[:1].isupper() and len(w) >= 4 and before and before[-1] not in ".!?\"“:":
            out.append(w)
    return list(dict.fromkeys(out))


def _one_apart(a: str, b: str) -> bool:
    """At most one letter replaced, added or dropped (Bjorn BKRN / بيورن BRN)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def _found(skeleton: str, there: set[str]) -> bool:
    """Exactly, or (four classes or more, where a chance match is rare) one apart."""
    if skeleton in there:
        return True
    return len(skeleton) >= 4 and any(len(t) >= 4 and _one_apart(skeleton, t) for t in there)


def names_across(question: str, q_lang: str, passage: str) -> tuple[float, float]:
    """(names asked, share found) across scripts: an English question's names
    looked for among the Arabic passage's words; an Arabic question's words among
    the English passage's names (an Arabic word matching none is not counted: Arabic
    writes no capitals, so which words are names is unknown). A name is found by its
    consonant skeleton or, short ones too, by its sound classes with vowels."""
    if q_lang == "en":
        names = [n for n in latin_names(question)
                 if len(latin_skeleton(n)) >= 3 or latin_vocal(n)]
        if not names:
            return 0.0, 0.0
        words = set(_ARABIC_WORD.findall(passage))
        there = {s for w in words for s in arabic_skeletons(w)}
        vocal = {v for w in words for v in arabic_vocal(w)}
        found = sum((len(s := latin_skeleton(n)) >= 3 and _found(s, there))
                    or not vocal.isdisjoint(latin_vocal(n)) for n in names)
        return float(len(names)), found / len(names)
    in_passage = latin_names(passage)
    there_latin = {s for n in in_passage if len(s := latin_skeleton(n)) >= 3}
    vocal_latin = frozenset().union(*map(latin_vocal, in_passage))
    words = [w for w in _ARABIC_WORD.findall(question) if len(w) >= 4]
    found = sum(any(_found(s, there_latin) for s in arabic_skeletons(w))
                or not vocal_latin.isdisjoint(arabic_vocal(w)) for w in words)
    return float(found), min(found, 2) / 2


# -- names with their vowels ----------------------------------------------------------------
# A name of two consonant classes (Wesley SL, Happy HB) would match too much by its
# skeleton; with its vowels (A I U) it does not (Wesley / ويسلي UISLI, Happy / هابي
# HABI). Arabic writes a Latin name's long vowels and drops short ones, so the Latin
# side may drop vowels, never add them; where Arabic spells one Latin letter several
# ways (j as ج or ي: Jochi / يوتشي; c as ك or س; v as ف or و), each is a variant.
_VOWELS = frozenset("AIU")
_LATIN_VOCAL_DIGRAPHS = (("sch", ("S",)), ("tch", ("S",)), ("ch", ("S", "K")),
                         ("sh", ("S",)), ("ph", ("F",)), ("th", ("T",)), ("kh", ("H",)),
                         ("ck", ("K",)), ("dh", ("T",)), ("ts", ("S",)), ("tz", ("S",)),
                         ("qu", ("K",)), ("ee", ("I",)), ("oo", ("U",)), ("ou", ("U",)),
                         ("x", ("KS",)))
_LATIN_VOCAL = {"a": ("A",), **dict.fromkeys("eiy", ("I",)), **dict.fromkeys("ouw", ("U",)),
                **dict.fromkeys("bp", ("B",)), **dict.fromkeys("td", ("T",)),
                **dict.fromkeys("kqg", ("K",)), **dict.fromkeys("sz", ("S",)),
                "c": ("K", "S"), "j": ("K", "I"), "f": ("F",), "v": ("F", "U"),
                **{c: (c.upper(),) for c in "lrmnh"}}
_ARABIC_VOCAL = {**dict.fromkeys("اأإآىعة", "A"), **dict.fromkeys("يئ", "I"),
                 **dict.fromkeys("وؤ", "U"), **_ARABIC}
_MAX_VARIANTS = 256  # a long name (past the skeleton's reach anyway) is left out


def _vocal_ok(form: str) -> bool:
    """Four classes or more, one a consonant: shorter forms match by chance."""
    return len(form) >= 4 and not _VOWELS.issuperset(form)


def latin_vocal(word: str) -> frozenset[str]:
    return _latin_vocal(word) if len(word) <= MAX_NAME else frozenset()


@lru_cache(maxsize=65536)
def _latin_vocal(word: str) -> frozenset[str]:
    """A Latin name's spellings in sound classes with vowels, each with any of its
    vowels dropped as Arabic may; empty when too short or too long to use."""
    w = _latin_sounded("".join(c for c in unicodedata.normalize("NFKD", word.lower())
                               if not unicodedata.combining(c)))
    forms, i = {""}, 0
    while i < len(w):
        alts, step = _LATIN_VOCAL.get(w[i], ("",)), 1
        for a, b in _LATIN_VOCAL_DIGRAPHS:
            if w.startswith(a, i):
                alts, step = b, len(a)
                break
        forms = {f + a for f in forms for a in alts}
        i += step
        if len(forms) > _MAX_VARIANTS:
            return frozenset()
    out: set[str] = set()
    for f in map(_squeeze, forms):
        vowels = [k for k, c in enumerate(f) if c in _VOWELS]
        if len(out) + (1 << len(vowels)) > _MAX_VARIANTS:
            return frozenset()
        for mask in range(1 << len(vowels)):
            drop = {k for b, k in enumerate(vowels) if mask >> b & 1}
            out.add(_squeeze("".join(c for k, c in enumerate(f) if k not in drop)))
    return frozenset(v for v in out if _vocal_ok(v))


def arabic_vocal(word: str) -> tuple[str, ...]:
    return _arabic_vocal(word) if len(word) <= MAX_NAME else ()


@lru_cache(maxsize=65536)
def _arabic_vocal(word: str) -> tuple[str, ...]:
    """The word's sound classes with vowels, with and without a leading article or
    conjunction; a final ه also as a vowel or as nothing (بورته / Börte)."""
    out = []
    for w in _arabic_forms(word):
        s = _squeeze("".join(_ARABIC_VOCAL.get(c, c if c.isupper() else "") for c in w))
        out += [s, _squeeze(s[:-1] + "A"), s[:-1]] if w.endswith("ه") else [s]
    return tuple(dict.fromkeys(s for s in out if _vocal_ok(s)))


def numbers_found(question: str, texts: Iterable[str]) -> tuple[float, float]:
    """(numbers in the question, share of them in ``texts``)."""
    asked = {n for n in numbers(question) if n not in {"0", "1"}}
    if not asked:
        return 0.0, 0.0
    there: set[str] = set()
    for t in texts:
        there |= numbers(t)
    return float(len(asked)), len(asked & there) / len(asked)


def window(sentences: Sequence[str], best: int, width: int = 1) -> list[str]:
    return list(sentences[max(best - width, 0):best + width + 1])
