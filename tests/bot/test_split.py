"""The 4096 splitter: every part fits, is valid Telegram HTML, and nothing is lost."""

from __future__ import annotations

import html
from itertools import accumulate

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from khabar.bot.telegram import TELEGRAM_LIMIT, split_html, visible_length, visible_text

from tests.bot.fake_telegram import parse_html, utf16_len

# Text with what makes splitting hard: entities, RTL, combining marks, astral emoji.
_ALPHABET = st.sampled_from([*"ab z.!?؟ \nحلبقصف&<>\"'é😀\u0651\u200d،", "\n\n"])
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join)
_TAGS = ["b", "i", "u", "s", "code", "blockquote", "tg-spoiler"]


@st.composite
def _html(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["text", "text", "tag", "link"] if depth < 3 else ["text"]))
        if kind == "text":
            parts.append(html.escape(draw(_TEXT)))
        elif kind == "tag":
            tag = draw(st.sampled_from(_TAGS))
            parts.append(f"<{tag}>{draw(_html(depth + 1))}</{tag}>")
        else:
            href = html.escape(f"https://e.com/?q={draw(_TEXT)}&x=1", quote=True)
            parts.append(f'<a href="{href}">{draw(_html(depth + 1))}</a>')
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(_html(), st.integers(min_value=2, max_value=60))
def test_parts_fit_are_valid_and_keep_the_text(markup: str, limit: int) -> None:
    full, _ = parse_html(markup)
    parts = split_html(markup, limit)
    assert "".join(parse_html(p)[0] for p in parts) == full
    for part in parts:
        text, _ = parse_html(part)  # raises on invalid HTML, as Telegram would
        assert utf16_len(text) <= limit and len(text) <= limit
        assert visible_text(part) == text
    if full:
        assert all(parse_html(p)[0] for p in parts)  # no part without visible text


def test_cuts_prefer_paragraphs_then_sentences() -> None:
    para = "First sentence here. Second sentence here."
    markup = "\n\n".join([para] * 200)
    parts = split_html(markup, 500)
    assert all(visible_length(p) <= 500 for p in parts)
    assert all(p.endswith("\n\n") for p in parts[:-1])  # every cut at a paragraph

    one_paragraph = " ".join(["A sentence that ends here."] * 100)
    parts = split_html(one_paragraph, 300)
    assert all(p.endswith(". ") for p in parts[:-1])


def test_tags_are_closed_and_reopened_across_a_cut() -> None:
    markup = '<b>bold <a href="https://e.com/?a=1&amp;b=2">' + "x " * 50 + "</a></b> end"
    first, second, *_ = split_html(markup, 40)
    assert first.startswith('<b>bold <a href="https://e.com/?a=1&amp;b=2">')
    assert first.endswith("</a></b>")
    assert second.startswith('<b><a href="https://e.com/?a=1&amp;b=2">')


def test_an_entity_is_never_cut_and_counts_as_one_character() -> None:
    markup = "&amp;" * 10
    assert visible_length(markup) == 10
    assert split_html(markup, 4) == ["&amp;" * 4, "&amp;" * 4, "&amp;" * 2]


def test_a_long_arabic_answer_fits_telegram() -> None:
    sentence = "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية قرب حلب. "
    markup = "<b>الإجابة</b>\n" + "\n\n".join(
        f"<b>[{i}]</b> {sentence * 12}" for i in range(1, 20))
    parts = split_html(markup)
    assert len(parts) >= 3
    for part in parts:
        text, _ = parse_html(part)
        assert len(text) <= TELEGRAM_LIMIT
    assert "".join(parse_html(p)[0] for p in parts) == parse_html(markup)[0]


# One grapheme cluster each (what a reader takes for one character), of the kinds a cut
# used to break: halves of a flag re-pair into other flags, a tone or keycap falls off.
_CLUSTERS = {
    "flag": "🇸🇦",
    "skin tone": "👍🏽",
    "ZWJ family": "👨\u200d👩\u200d👧",
    "keycap": "1\ufe0f\u20e3",
    "tag sequence flag": "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "text presentation": "\u263a\ufe0e",
    "Arabic with marks": "ب\u0651\u064e",
    "Devanagari conjunct": "क्षि",
    "Hangul jamo": "\u1112\u1161\u11ab",
    "CRLF": "\r\n",
}


def _clusters(text: str) -> list[str]:
    return regex.findall(r"\X", text)


@pytest.mark.parametrize("cluster", _CLUSTERS.values(), ids=_CLUSTERS.keys())
def test_a_hard_cut_never_falls_inside_a_grapheme_cluster(cluster: str) -> None:
    assert len(_clusters(cluster)) == 1
    # A run with no space reaching the limit: the cut is the last-resort "any character".
    cases = [("x" * 4094 + cluster * 3, TELEGRAM_LIMIT)]
    cases += [("x" * pad + cluster * 40, limit) for pad in range(4)
              for limit in range(utf16_len(cluster), 30)]
    for text, limit in cases:
        parts = split_html(text, limit)
        assert "".join(visible_text(p) for p in parts) == text
        for part in parts:
            shown, _ = parse_html(part)
            assert utf16_len(shown) <= limit
            assert set(_clusters(shown)) <= {"x", cluster}, (limit, shown[:8], shown[-8:])


# Text made of pieces that join into clusters, with tags and spaces between them.
_JOINING = st.sampled_from([*_CLUSTERS.values(), "🇸", "🇦", "\u0301", "\u200d", "\ufe0f",
                            "\U0001f3fd", "\u094d", "a", "x", " ", "\n", "&amp;"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(_JOINING, max_size=12).map("".join),
                          st.sampled_from(["", "b", "i"])), min_size=1, max_size=6),
       st.integers(min_value=2, max_value=40))
def test_cuts_fall_between_clusters_whenever_each_cluster_fits(
        pieces: list[tuple[str, str]], limit: int) -> None:
    markup = "".join(f"<{tag}>{text}</{tag}>" if tag else text for text, tag in pieces)
    full, _ = parse_html(markup)
    ends = {0, *accumulate(map(len, _clusters(full)))}
    parts = split_html(markup, limit)
    assert "".join(parse_html(p)[0] for p in parts) == full
    at = 0
    for part in parts:
        shown, _ = parse_html(part)
        assert utf16_len(shown) <= limit
        at += len(shown)
        if max(map(utf16_len, _clusters(full)), default=0) <= limit:
            assert at in ends, (limit, full, [parse_html(p)[0] for p in parts])


def test_a_cluster_longer_than_the_limit_is_still_cut() -> None:
    # Hostile text: one letter carrying thousands of marks is one cluster; it cannot
    # fit a message, so it is cut at code points rather than refused or lost.
    hostile = "e" + "\u0301" * 10_000
    parts = split_html(hostile)
    assert "".join(visible_text(p) for p in parts) == hostile
    assert [visible_length(p) for p in parts] == [4096, 4096, 1809]
    # The clean cut before the long cluster is still taken: it starts a part of its own.
    parts = split_html("x" * 4000 + hostile + " end")
    assert [visible_length(p) for p in parts] == [4000, 4096, 4096, 1813]
