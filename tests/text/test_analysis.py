import contextlib
import re
import signal
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khabar.text._analysis import detect_lang, lexical_tokens, normalize_for_search, split_sentences
from tests.text._old_split import old_split_sentences

HARAKAT = "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670\u0653\u0654\u0655"
QURANIC = "\u0610\u0611\u0612\u06d6\u06d7\u06da\u06e1\u06e8\u06ed"
TATWEEL = "\u0640"
ARABIC_LETTERS = "ءآأؤإئابةتثجحخدذرزسشصضطظعغفقكلمنهوىي"
ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
PUNCT = ".,;:!?'\"-()«»“”،؛؟…"

mixed_text = st.text(
    alphabet=st.sampled_from(
        list(ARABIC_LETTERS + HARAKAT + QURANIC + TATWEEL + ARABIC_DIGITS + PERSIAN_DIGITS)
        + list("abcXYZéÜß0123456789" + PUNCT)
        + [" ", "\u00a0", "\n", "\t", "\u200b", "\u200c", "\u200d", "\ufeff", "ٱ", "ﻻ", "ﷺ"]
    ),
    max_size=80,
)
MARK_RE = re.compile(f"[{HARAKAT}{QURANIC}{TATWEEL}]")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("الإِسْلَامِيَّةُ", "الاسلاميه"),
        ("أمريكا وإيران وآسيا ٱلله", "امريكا وايران واسيا الله"),
        ("مستشفى مسؤول رئيس", "مستشفي مسوول رييس"),
        ("الأخبـــــار", "الاخبار"),
        ("عام ٢٠١٥ و۱۳۹۴", "عام 2015 و1394"),
        ("٣٫٥ مليون", "3.5 مليون"),
        ("1,000,000 people in 2015.", "1000000 people in 2015"),
        ("“Hello,” said Mr. O’Brien; «مرحبا» ؟", "hello said mr obrien مرحبا"),
        ("Café MÜLLER", "cafe muller"),
        ("U.S.-led forces", "us led forces"),
        ("  lots \u00a0 of\n\nspace ", "lots of space"),
        ("ﻻ", "لا"),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize_for_search(raw) == expected


@settings(max_examples=300)
@given(mixed_text)
def test_normalize_properties(text: str) -> None:
    out = normalize_for_search(text)
    assert normalize_for_search(out) == out
    assert not MARK_RE.search(out)
    assert all(ch.isascii() for ch in out if ch.isdigit())
    assert not re.search(r"[أإآٱىؤئ]", out)
    assert out == " ".join(out.split())


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_normalize_idempotent_on_any_unicode(text: str) -> None:
    out = normalize_for_search(text)
    assert normalize_for_search(out) == out
    # Only spaces and decimal points between digits survive of punctuation/space.
    assert all(unicodedata.category(ch)[0] not in "PZ" or ch in " ." for ch in out)
    assert not re.search(r"\.(?!\d)|(?<!\d)\.", out)


def test_lexical_tokens_arabic() -> None:
    tokens = lexical_tokens("قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة في حلب عام ٢٠١٥")
    assert "قال" not in tokens and "في" not in tokens and "ان" not in tokens
    assert "حلب" in tokens
    assert "2015" in tokens
    # Spelling variants meet: hamza, alef maqsura, diacritics.
    assert lexical_tokens("الدَّوْلَةُ") == lexical_tokens("الدولة") == lexical_tokens("دولته")
    assert lexical_tokens("إلى المستشفى") == lexical_tokens("الى المستشفي")


def test_lexical_tokens_english() -> None:
    tokens = lexical_tokens("The U.S. military's strikes were running in 2015, officials said.")
    assert tokens == ["us", "militari", "strike", "run", "2015", "offici", "said"]
    assert lexical_tokens("3.5 percent") == ["3.5", "percent"]


def test_lexical_tokens_query_matches_document() -> None:
    doc = set(lexical_tokens("وكانت وزارة الدفاع الروسية أعلنت أن الطيران الروسي قام بأولى ضرباته"))
    query = lexical_tokens("ضربات الطيران الروسي")
    assert set(query) <= doc


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("", "other"),
        ("123 456 !!", "other"),
        ("قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية", "ar"),
        ("مرحبا", "ar"),
        ("The central bank held rates steady on Wednesday.", "en"),
        ("AFP قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة", "ar"),
        ("Reuters reported that قال مسؤول the strikes continued overnight in the north", "en"),
        ("Le gouvernement a annoncé que les prix de l'énergie vont augmenter", "other"),
        ("Die Regierung hat angekündigt, dass die Preise für Energie im Land steigen", "other"),
        ("این یک متن فارسی است که پیش از گذشته چگونه نوشته می‌شود و گزارش می‌دهد", "other"),
        ("Правительство объявило о повышении цен", "other"),
        ("东京电力公司周三表示", "other"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith went to Washington. He arrived at 3.5 p.m. on Monday! Did he stay? Yes.",
            ["Mr. Smith went to Washington.", "He arrived at 3.5 p.m. on Monday!",
             "Did he stay?", "Yes."],
        ),
        (
            "The U.S. military said it was ready. The president agreed.",
            ["The U.S. military said it was ready.", "The president agreed."],
        ),
        (
            "U.S. President Joe Biden spoke. George W. Bush listened.",
            ["U.S. President Joe Biden spoke.", "George W. Bush listened."],
        ),
        (
            'He said: "We will win. They will lose." Then he left.',
            ['He said: "We will win. They will lose."', "Then he left."],
        ),
        (
            '"Is it over?" she asked. "No," he said.',
            ['"Is it over?" she asked.', '"No," he said.'],
        ),
        (
            "قال مسؤول إن الولايات المتحدة نفذت ضربة. وأضاف أن الجيش سيواصل؟ نعم! انتهى",
            ["قال مسؤول إن الولايات المتحدة نفذت ضربة.", "وأضاف أن الجيش سيواصل؟", "نعم!",
             "انتهى"],
        ),
        (
            "وذكر التلفزيون قوله “تنفيذا لاتفاق بين سوريا وروسيا. نفذ الطيران اليوم ضربات.” "
            "في إشارة لتنظيم “الدولة الإسلامية”.",
            ["وذكر التلفزيون قوله “تنفيذا لاتفاق بين سوريا وروسيا. نفذ الطيران اليوم ضربات.”",
             "في إشارة لتنظيم “الدولة الإسلامية”."],
        ),
        ("قال د. محمد إن الوضع خطير… لكنه مستقر.", ["قال د. محمد إن الوضع خطير…", "لكنه مستقر."]),
        ("Line one without stop\nLine two. Line three", ["Line one without stop", "Line two.",
                                                          "Line three"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@settings(max_examples=200)
@given(mixed_text)
def test_split_sentences_keeps_every_word(text: str) -> None:
    sentences = split_sentences(text)
    assert " ".join(sentences).split() == text.split()
    assert all(s == s.strip() and s for s in sentences)


# -- the splitter in linear time --------------------------------------------------------

prose_or_junk = st.lists(
    st.sampled_from(
        [*(ARABIC_LETTERS[:10] + "abcXYZ0123" + PUNCT + ".......!!??"),
         " ", " ", " ", "\n", "\u00a0", "U.S.", "Dr.", "a.m.", "د.", "... ", ". The ", ". "]
    ),
    max_size=300,
).map("".join)


@settings(max_examples=500)
@given(prose_or_junk)
def test_split_sentences_agrees_with_the_quadratic_splitter(text: str) -> None:
    assert split_sentences(text) == old_split_sentences(text)


@contextlib.contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError once this process has spent ``seconds`` of CPU time (not
    wall time, so a busy machine does not fail it): a bound, not a benchmark."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"over {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


MB = 1 << 20
LONG_LINES = {
    "english": "He said. " * (MB // 9),
    "arabic": "قال مسؤول. " * (MB // 11),
    "acronyms": "The U.S. and the U.K. A. B. " * (MB // 28),
    "quotes": '"He said. ' * (MB // 10),
    "guillemets": "« قال. » " * (MB // 9),
    "dots": "." * MB + "x",
    "marks": "?!" * (MB // 2) + "x",
    "one word": "a" * MB + ". B",
}


@pytest.mark.parametrize("kind", sorted(LONG_LINES))
def test_a_megabyte_line_splits_in_linear_time(kind: str) -> None:
    # Quadratic, 100 kB of short sentences took 14 s; linear, a MB takes well under
    # a second. Three seconds of CPU leaves room for slow machines, not for n².
    with cpu_budget(3.0):
        sentences = split_sentences(LONG_LINES[kind])
    assert sentences


@settings(max_examples=10, deadline=None)
@given(st.lists(prose_or_junk, min_size=1, max_size=20))
def test_a_megabyte_of_any_text_splits_in_linear_time(samples: list[str]) -> None:
    sample = " ".join(samples) or "x"
    text = (sample * (MB // len(sample) + 1))[:MB]
    with cpu_budget(3.0):
        split_sentences(text)


def test_ascii_digits_reads_arabic_indic_and_persian_digits() -> None:
    from khabar.text import ascii_digits

    assert ascii_digits("قتل ١٢٣ شخصا في ۲۰۱۸، و45 آخرون") == "قتل 123 شخصا في 2018، و45 آخرون"
    assert ascii_digits("no digits") == "no digits"
