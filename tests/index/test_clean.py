import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from khabar.index._clean import clean_paragraphs

TITLE = "أميركا تقصف في حلب ردا على القصف الروسي في حمص"
BODY = "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم الأربعاء."


def test_drops_title_photo_credits_and_boilerplate() -> None:
    paragraphs = [
        TITLE,
        BODY,
        "صورة فرانس 24",
        "Photo: Reuters",
        "(Getty Images)",
        "الصورة: أرشيفية",
        "Advertisement",
        "اقرأ أيضا: غوتيريش يحذر من كارثة إنسانية",
        "Read more: Oil prices rise on supply worries",
        "Share this",
        "شارك",
        "تابعونا",
        "Facebook Twitter WhatsApp Email",
        "فيسبوك تويتر واتساب",
        "We use cookies to improve your experience. By continuing you accept our cookie policy.",
        "© 2024 Reuters. All rights reserved.",
        "Reporting by Jane Doe; Editing by John Smith",
        " … ",
        "- – —",
        "Back to top",
        "زر الذهاب إلى الأعلى",
    ]
    assert clean_paragraphs(paragraphs, TITLE) == [BODY]


def test_cuts_after_trailing_related_heading() -> None:
    body = [f"{BODY} فقرة {i}" for i in range(4)]
    paragraphs = [*body, "مقالات ذات صلة", "غوتيريش يحذر", "قافلة مساعدات تنتظر عند معبر رفح"]
    assert clean_paragraphs(paragraphs, None) == body


def test_related_heading_mid_article_only_drops_heading() -> None:
    long = " ".join(["The talks continued late into the night, officials said."] * 4)
    paragraphs = ["First paragraph of the story.", "Read more", long, long, long]
    assert clean_paragraphs(paragraphs, None) == ["First paragraph of the story.", long, long, long]


def test_strips_leading_punctuation_and_whitespace_keeps_words() -> None:
    raw = [
        ",ونقلت رويترز\u00a0عن مصدر أميركي:  طائراتنا حلقت",
        "وكانت \u00a0 فرنسا قد قال ت",
        "…and then it rained",
        "-5 degrees overnight",
    ]
    assert clean_paragraphs(raw, None) == [
        "ونقلت رويترز عن مصدر أميركي: طائراتنا حلقت",
        "وكانت فرنسا قد قال ت",
        "and then it rained",
        "-5 degrees overnight",
    ]


def test_zero_width_junk() -> None:
    assert clean_paragraphs(["م\u200bرحبا\u200e بكم\ufeff"], None) == ["مرحبا بكم"]
    # ZWNJ inside a word (Persian) and ZWJ in an emoji sequence are kept.
    kept = "می\u200cشود 👨\u200d👩\u200d👧"
    assert clean_paragraphs([kept], None) == [kept]
    assert clean_paragraphs(["\u200c كلمة \u200d"], None) == ["كلمة"]


def test_keeps_ordinary_paragraphs_mentioning_photos_or_sharing() -> None:
    paragraphs = [
        "Photographers gathered outside the court as the verdict was read on Monday morning.",
        "شارك آلاف المحتجين في مسيرة وسط العاصمة للمطالبة بإصلاحات اقتصادية.",
        "The company said it would use cookies from a local bakery for the event.",
    ]
    assert clean_paragraphs(paragraphs, "Something else") == paragraphs


_WORD = st.sampled_from(
    ["قال", "مسؤول", "أمريكي", "إن", "الضربات", "حلب", "The", "officials", "said", "strikes",
     "2015", "٣٫٥", "U.S.", "“الدولة”", "(AFP)", "Photo:", "صورة", "فرانس", "24", "Share", "this"]
)
_JUNK = st.sampled_from(["", " ", "\u00a0", "\u200b", "\u200c", "\u200d", "\ufeff", ",", "،", "-",
                         "  ", "\t", "\u200e"])
_PARA = st.lists(st.tuples(_JUNK, _WORD), max_size=12).map(lambda ps: "".join(a + b for a, b in ps))
_BOILER = st.sampled_from(["مقالات ذات صلة", "Share this", "صورة فرانس 24", "Advertisement", "شارك",
                           "Photo: Reuters", "Read more", TITLE])


def _plain(text: str) -> str:
    """Text without format characters, whitespace collapsed: what words are made of."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split())


@settings(max_examples=300)
@given(st.lists(st.one_of(_PARA, _BOILER), max_size=10), st.one_of(st.none(), st.just(TITLE)))
def test_clean_never_adds_text(paragraphs: list[str], title: str | None) -> None:
    out = clean_paragraphs(paragraphs, title)
    sources = [_plain(p) for p in paragraphs]
    for paragraph in out:
        assert paragraph == paragraph.strip() and paragraph
        assert any(_plain(paragraph) in src for src in sources)
    words_in = set(re.findall(r"\w+", " ".join(sources)))
    words_out = set(re.findall(r"\w+", _plain(" ".join(out))))
    assert words_out <= words_in
    assert sum(map(len, out)) <= sum(map(len, paragraphs))


@pytest.mark.parametrize("title", [None, ""])
def test_empty_input(title: str | None) -> None:
    assert clean_paragraphs([], title) == []
    assert clean_paragraphs(["", "  ", "\u00a0"], title) == []
