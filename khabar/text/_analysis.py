"""Text utilities shared by parsing, chunking and lexical search.

Display text is never altered here except by :func:`split_sentences`, which only
moves whitespace. :func:`normalize_for_search` and :func:`lexical_tokens` produce
the folded forms that BM25 indexes and queries with; both sides must use them.
"""

from __future__ import annotations

import bisect
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Literal

import Stemmer

# --- Arabic folding -------------------------------------------------------------

# Harakat, tanween, shadda, sukun, superscript alef, Quranic annotation marks.
_AR_MARKS = (
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u08d3-\u08e1\u08e3-\u08ff"
)
_AR_MARK_RE = re.compile(f"[{_AR_MARKS}\u0640]")  # marks and tatweel
# Latin combining accents: folded so "Müller" finds "Muller".
_LATIN_MARK_RE = re.compile("[\u0300-\u036f]")
_FOLD = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ٲ": "ا",
        "ٳ": "ا",
        "ى": "ي",
        "ی": "ي",  # Persian yeh, common in text typed on Persian keyboards
        "ک": "ك",  # Persian keheh
        "ؤ": "و",
        "ئ": "ي",
        "ۀ": "ه",
    }
)
_TA_MARBUTA = str.maketrans({"ة": "ه"})
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_SCRIPT_RE = re.compile(
    "[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"
)

# Apostrophes inside words are dropped ("Russia's" -> "russias", stemmed to "russia").
_APOSTROPHE_RE = re.compile(r"['’‘ʼ`](?<=\w.)(?=\w)")  # lookbehind last: much faster
_DECIMAL_RE = re.compile(r"(?<=\d)[.٫](?=\d)")
# Dotted acronyms become one token: "U.S." -> "us", "U.N." -> "un".
_ACRONYM_RE = re.compile(r"(?<![\w.])((?:[^\W\d_]\.){2,})(?!\w)")
_THOUSANDS_RE = re.compile(r"(?<=\d)[,٬](?=\d{3}(?!\d))")


class _CharClasses(dict[int, str | None]):
    """A str.translate table filled on first sight of each character:
    digits -> ASCII, punctuation/symbols/spaces/controls -> space, invisible
    format characters (ZWJ, RLM, ...) -> removed, everything else unchanged."""

    def __missing__(self, code: int) -> str | None:
        ch = chr(code)
        cat = unicodedata.category(ch)
        value: str | None
        if cat == "Nd":
            value = str(unicodedata.decimal(ch))
        elif ch == ".":
            value = "."
        elif cat[0] in "PSZ" or cat == "Cc":
            value = " "
        elif cat == "Cf":
            value = None
        else:
            value = ch
        self[code] = value
        return value


_CHAR_CLASSES = _CharClasses()
_LONE_DOT_RE = re.compile(r"\.(?:(?!\d)|(?<!\d.))")


def _fold(text: str, *, ta_marbuta: bool) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    # Decompose so hamza carriers (أ ؤ ئ) and Latin accents become base + mark.
    text = unicodedata.normalize("NFKD", text)
    text = _AR_MARK_RE.sub("", text)
    text = _LATIN_MARK_RE.sub("", text)
    text = unicodedata.normalize("NFC", text).translate(_FOLD)
    if ta_marbuta:
        text = text.translate(_TA_MARBUTA)
    text = _APOSTROPHE_RE.sub("", text)
    text = _ACRONYM_RE.sub(lambda m: m.group(1).replace(".", ""), text)
    text = _DECIMAL_RE.sub(".", text)
    text = _THOUSANDS_RE.sub("", text)
    text = text.translate(_CHAR_CLASSES)
    # A "." survives only between digits ("3.5"); "2015." loses it.
    text = _LONE_DOT_RE.sub(" ", text)
    return " ".join(text.split())


def normalize_for_search(text: str) -> str:
    """Fold ``text`` for lexical matching (both languages); never for display."""
    return _fold(text, ta_marbuta=True)


# --- Stopwords and stemming -----------------------------------------------------

_AR_STOPWORDS_RAW = """
في من على إلى الى عن أن إن ان قال قالت وقال وقالت مع هذا هذه ذلك تلك هو هي هم
هن أنا نحن أنت كان كانت كانوا يكون تكون ليس ليست لم لن لا ما ماذا متى أين كيف
التي الذي الذين اللذين اللتين اللواتي اللاتي أو أم ثم بل لكن لكن قد لقد كل بعض
غير بين حتى إذا إذ لو لولا منذ عند عندما حيث حين أي أيضا أيضاً و ف ب ل ك وفي ومن
وعلى وإلى وعن وأن وإن ولا وما وهو وهي وكان وكانت فيه فيها منه منها عليه عليها
إليه إليها به بها له لها لهم كما مثل بعد قبل خلال حول ضد دون نحو لدى أمام وراء
فوق تحت هناك هنا الآن يا إلا سوى عبر أمس اليوم كذلك وقد وقال وأضاف أضاف
"""
_EN_STOPWORDS_RAW = """
a an the and or but if then else of to in on at by for with from into onto over
under about as is are was were be been being am do does did doing have has had
having it its it's this that these those there here he him his she her hers they
them their theirs we our ours you your yours i me my mine not no nor so than
too very can could will would shall should may might must also just only own same
such both each few more most other some any all which who whom whose what when
where why how up down out off again further once s t
"""

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)*$")
_LATIN_RE = re.compile(r"[a-zß-ÿ\u0100-\u024f]")
_local = threading.local()  # PyStemmer objects must not be shared between threads


def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    pair = getattr(_local, "stemmers", None)
    if pair is None:
        pair = (Stemmer.Stemmer("arabic"), Stemmer.Stemmer("english"))
        _local.stemmers = pair
    return pair


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    words = (_AR_STOPWORDS_RAW + " " + _EN_STOPWORDS_RAW).split()
    folded: set[str] = set()
    for word in words:
        folded.update(normalize_for_search(word).split())
        folded.update(_fold(word, ta_marbuta=False).split())
    return frozenset(folded)


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: folded, stopwords dropped, Snowball-stemmed per script.

    Arabic tokens are stemmed before ة is folded to ه: the stemmer strips ة as
    a suffix, so "الدولة" and "دولته" meet at one stem; the fold is applied to
    the stem afterwards so a stray ه-spelling still compares equal.
    """
    form = _token_form
    return [f for token in _fold(text, ta_marbuta=False).split() if (f := form(token)) is not None]


# Distinct tokens and words remembered (each ~0.3 kB): news repeats its vocabulary, so
# a writer folds and stems each word once, not once a passage (and once more for
# content_words).
_CACHED_WORDS = 1 << 16


@lru_cache(maxsize=_CACHED_WORDS)
def _token_form(token: str) -> str | None:
    """One folded token's BM25 form (see :func:`lexical_tokens`), None if it is left out."""
    folded = token.translate(_TA_MARBUTA)
    stop = _stopwords()
    if folded in stop or token in stop:
        return None
    if _NUMBER_RE.match(token):
        return token
    if len(token) < 2:
        return None
    ar_stem, en_stem = _stemmers()  # this thread's: the cache may call from any thread
    if _ARABIC_SCRIPT_RE.search(token):
        stem = ar_stem.stemWord(token).translate(_TA_MARBUTA)
    elif _LATIN_RE.search(token):
        stem = en_stem.stemWord(token)
    else:
        stem = token
    return stem or folded


@lru_cache(maxsize=_CACHED_WORDS)
def _carries_meaning(word: str) -> bool:
    """Whether a word as written gives any BM25 token (``bool(lexical_tokens(word))``)."""
    return any(_token_form(t) is not None for t in _fold(word, ta_marbuta=False).split())


# Words as written: letters, with marks, tatweel, apostrophes and hyphens inside.
_WORD_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|[\u064b-\u065f\u0670\u0640'’-])*[^\W\d_]")


def words_of(text: str) -> list[str]:
    """Every word of ``text`` as written, in order (numbers and one-letter words left out)."""
    return _WORD_RE.findall(text)


def content_words(text: str) -> list[str]:
    """The distinct words of ``text`` that carry meaning, as written, in order of first
    appearance: not stopwords, not numbers. USE is case- and spelling-sensitive ("Aleppo"
    finds حلب, "aleppo" barely), so they are not folded; the lexical bridge matches
    them across languages, and the store keeps each passage's (see ``passage_tokens``).
    """
    # Deduplicating first keeps the order of first appearance: the test is per word.
    return [w for w in dict.fromkeys(_WORD_RE.findall(text)) if _carries_meaning(w)]


# --- Language detection ---------------------------------------------------------

# What a text or a passage is in; "other" for anything but Arabic or English.
Lang = Literal["ar", "en", "other"]

_PERSIAN_ONLY = set("پچژگ")
_OTHER_LATIN_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": _words("le la les des du une est et dans pour pas qui que sur au avec"),
    "es": _words("el la los las del una es y en por para que con se no al"),
    "de": _words("der die das und ist nicht ein eine mit den von zu im auf sich"),
    "it": _words("il la che di e un una per non con sono del della nel"),
    "pt": _words("o a os as que de do da em um uma para com não é no na"),
    "tr": _words("ve bir bu da de için ile çok olarak gibi daha ama"),
    "id": _words("dan yang di ini itu dengan untuk tidak dari dalam akan"),
}
_EN_MARKERS = frozenset(_EN_STOPWORDS_RAW.split())


def _is_latin_letter(ch: str) -> bool:
    return ch.isascii() or "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff"


def detect_lang(text: str) -> Lang:
    """Return "ar", "en" or "other" from the script of the letters in ``text``."""
    arabic = latin = total = persian = 0
    for ch in text:
        if not ch.isalpha():
            continue
        total += 1
        if _ARABIC_SCRIPT_RE.match(ch):
            arabic += 1
            persian += ch in _PERSIAN_ONLY
        elif _is_latin_letter(ch):
            latin += 1
    if total < 3:
        return "other"
    if arabic / total >= 0.5:
        # Persian and Urdu share the script; letters Arabic lacks give them away.
        if persian >= 3 and persian / arabic >= 0.02:
            return "other"
        return "ar"
    if latin / total >= 0.5:
        return "en" if _looks_english(text) else "other"
    return "other"


def detect_question_lang(text: str) -> Literal["ar", "en"]:
    """"ar" or "en" for what a person typed (a question, a topic, a caption).

    :func:`detect_lang`, and where it says "other" (too few letters, another
    language) any Arabic letter decides. Answers and the bot's own words both follow it.
    """
    lang = detect_lang(text)
    if lang == "other":  # short questions: any Arabic letter decides
        return "ar" if _ARABIC_BLOCK_RE.search(text) else "en"
    return lang


_ARABIC_BLOCK_RE = re.compile("[\u0600-\u06ff]")


def _looks_english(text: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text.casefold())
    if len(words) < 6:
        return True  # too little evidence against English
    en = sum(w in _EN_MARKERS for w in words)
    best_other = max(sum(w in sw for w in words) for sw in _OTHER_LATIN_STOPWORDS.values())
    return not (best_other >= 3 and best_other > 2 * en)


# --- Sentence splitting ---------------------------------------------------------

_ABBREVIATIONS = _words(
    """mr mrs ms dr prof sr jr st gen col lt sgt capt cmdr adm gov sen rep rev hon
    pres supt insp det maj brig mt ft inc ltd co corp bros dept univ est approx
    vs etc al fig no nos vol pp ed eds jan feb mar apr jun jul aug sep sept oct nov
    dec mon tue wed thu fri sat sun"""
)
# Words that start a new sentence even right after an acronym like "U.S.".
_SENTENCE_STARTERS = _words(
    """the a an he she it they we i but and in on at this that these those there
    his her their its our however meanwhile after before when while if as some
    many most officials police"""
)
# A run of terminal marks (whole: the look-behind starts it at the run's first mark,
# the possessive quantifiers never give part of it back), its closing quotes, then a
# space or the end. Matching a part of a run could only fail, so this matches what
# the plain pattern did, in one pass instead of one per mark of a long run.
_BOUNDARY_RE = re.compile(r"(?<![.!?؟…])(?:\.{2,}+|[.!?؟…]++)[\"'”’»)\]]*+(?=\s|$)")
_NON_SPACE_RE = re.compile(r"\S")
_LETTERS_RE = re.compile(r"[^\W\d_]+")
_DOTTED_WORD_RE = re.compile(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}")
_OPEN_CLOSE = {"“": "”", "«": "»"}
_MAX_QUOTE = 400  # a quote longer than this is probably unbalanced


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    """Spans strictly inside balanced, reasonably short quotations, in order."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        close = _OPEN_CLOSE.get(ch) or ('"' if ch == '"' else None)
        if close is None:
            i += 1
            continue
        # Only as far as a quote may reach: an unclosed one costs _MAX_QUOTE, not the line.
        j = text.find(close, i + 1, i + _MAX_QUOTE + 1)
        if j == -1:
            i += 1
            continue
        spans.append((i + 1, j))
        i = j + 1
    return spans


def _inside(spans: list[tuple[int, int]], starts: list[int], start: int, end: int) -> bool:
    """Whether text[start:end] lies within one of ``spans`` (sorted, disjoint)."""
    k = bisect.bisect_right(starts, start) - 1
    return k >= 0 and end <= spans[k][1]


def _word_before(text: str, start: int) -> str:
    """The run of non-space characters that ends at ``start`` ("" after a space)."""
    i = start
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return text[i:start]


def _is_boundary(text: str, start: int, end: int) -> bool:
    """Whether the terminal punctuation at text[start:end] ends a sentence.

    Reads only around the mark (the word before it, the word after it), never the
    rest of the line: a line of many sentences is split in linear time.
    """
    following = _NON_SPACE_RE.search(text, end)
    if following is None:
        return True
    at = following.start()
    if text[at].islower():  # "approx. three", "U.S.-made ... said. and" never start one
        return False
    mark = text[start:end]
    if not mark.startswith(".") or mark.startswith(".."):
        return True
    bare = _word_before(text, start).lstrip("(\"'“«[")
    if not bare:
        return True
    if bare.casefold().rstrip(".") in _ABBREVIATIONS:
        return False
    if len(bare) == 1 and bare.isalpha():
        return False  # an initial: "George W. Bush", "د. محمد"
    if _DOTTED_WORD_RE.fullmatch(bare):
        # An acronym such as U.S or a.m: a boundary only before a clear starter.
        nxt_word = _LETTERS_RE.match(text, at)
        return nxt_word is not None and nxt_word.group(0).casefold() in _SENTENCE_STARTERS
    return True


def split_sentences(text: str) -> list[str]:
    """Split Arabic or English text into sentences, punctuation kept with each.

    Linear in the length of the text: each mark is judged by its neighbourhood.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        quoted = _quoted_spans(line)
        starts = [a for a, _ in quoted]
        start = 0
        for m in _BOUNDARY_RE.finditer(line):
            # Punctuation inside a quotation ends the sentence only with the quote.
            if quoted and _inside(quoted, starts, m.start(), m.end()):
                continue
            if not _is_boundary(line, m.start(), m.end()):
                continue
            piece = line[start : m.end()].strip()
            if piece:
                sentences.append(piece)
            start = m.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


MIN_SENTENCE_CHARS = 20  # shorter pieces ("He said.", a dateline) carry no answer


def passage_sentences(text: str) -> list[str]:
    """The sentences of a passage that can answer a question, in reading order.

    The unit of sentence vectors (stored at ingest) and of extractive answers, so
    both must split alike. A passage without such a sentence is its own one.
    """
    out = [s.strip() for s in split_sentences(text) if len(s.strip()) >= MIN_SENTENCE_CHARS]
    return out or [text.strip()]


def ascii_digits(text: str) -> str:
    """``text`` with Arabic-Indic and Persian digits written 0-9 (a number reads the
    same whichever digits an outlet or a user typed)."""
    return text.translate(_DIGITS)
