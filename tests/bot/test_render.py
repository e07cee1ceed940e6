"""The one renderer of answers: notes on how a question was read, escaping, directions."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from khabar.bot._render import FSI, LRM, PDI, RLM, citation_line, render_telegram, telegram_source
from khabar.bot._terminal import print_answer
from khabar.retrieval import Answer, AnswerSentence, ContextSentence, Query, Source
from rich.console import Console

from tests.bot.fake_telegram import parse_html


def _answer(lang: str, relaxed: list[str]) -> Answer:
    src = Source(n=1, outlets=["Reuters"], title="Port <reopens>", url="https://r.test/1",
                 published=datetime(2024, 3, 4, tzinfo=UTC), position=0, n_passages=2,
                 article_id=1, passage_id=1, lang="en", score=1.0,
                 text="The port reopened on Monday & ships returned.")
    query = Query(text="the port yesterday", search_text="the port", lang=lang,
                  time_from_text=True)
    return Answer(query.text, lang, query, [AnswerSentence(src.text, 1)], [src],
                  relaxed=relaxed)


def _terminal(answer: Answer) -> list[str]:
    out = io.StringIO()
    print_answer(answer, Console(file=out, width=100))
    return [line.lstrip(LRM + RLM) for line in out.getvalue().splitlines()]


def test_a_dropped_time_filter_is_said_first_in_every_medium() -> None:
    text, _ = parse_html(render_telegram(_answer("en", ["time"])))  # valid HTML, escaped
    assert text.startswith("Nothing indexed was published") and "Port <reopens>" in text
    assert "& ships" in text
    assert _terminal(_answer("en", ["time"]))[0].startswith(
        "Nothing indexed was published in the period")
    assert _terminal(_answer("ar", ["time"]))[0].startswith("لم يُفهرس شيء منشور في الفترة")


def test_no_note_when_nothing_was_dropped() -> None:
    assert _terminal(_answer("en", []))[0] == "Answer"
    assert "Nothing indexed" not in render_telegram(_answer("en", []))


def test_latin_title_keeps_its_direction_in_an_arabic_answer() -> None:
    html = render_telegram(_answer("ar", []))
    assert f"{FSI}Port &lt;reopens&gt;{PDI}" in html  # isolated and escaped


def test_arabic_citation_lines_run_right_to_left_and_links_are_web_only() -> None:
    answer = _answer("ar", [])
    html = render_telegram(answer)
    (line,) = [ln for ln in html.splitlines() if ln.lstrip(RLM).startswith("<b>[1]</b>")]
    assert line.startswith(RLM + "<b>[1]</b>")  # a strong mark first: read right to left
    assert "\n" + RLM not in render_telegram(_answer("en", []))
    answer.sources[0].url = "javascript:alert(1)"
    _, entities = parse_html(render_telegram(answer))
    assert not any(e["type"] == "text_link" for e in entities)
    assert "javascript:" not in render_telegram(answer)


def test_how_the_question_was_read_is_said_in_the_answer() -> None:
    answer = _answer("en", [])
    answer.query.follow_up_of = "who struck Aleppo?"
    answer.query.filters.outlets = ["Reuters"]
    text, _ = parse_html(render_telegram(answer))
    lines = text.splitlines()
    assert lines[0] == f"Read as a follow-up to “{FSI}who struck Aleppo?{PDI}”"
    assert lines[2] == f"Filters: {FSI}outlet=Reuters{PDI}"


def _spanning(lang: str) -> Answer:
    """An answer whose second sentence comes from the paragraph after the cited one."""
    answer = _answer(lang, [])
    src = answer.sources[0]
    quote = "The towns hit were <Rastan> & Talbiseh."
    src.n_passages = 3
    src.context = [ContextSentence(quote, 1)]
    answer.sentences.append(AnswerSentence(quote, 1, position=1))
    return answer


def test_a_neighbour_sentence_is_cited_to_its_article_with_its_paragraph() -> None:
    html = render_telegram(_spanning("en"))
    text, _ = parse_html(html)  # valid HTML: the quote is escaped
    assert "&lt;Rastan&gt; &amp; Talbiseh" in html and "<Rastan>" not in html
    answer_part, sources_part = text.split("Sources")
    assert f"\u200e{FSI}The towns hit were <Rastan> & Talbiseh.{PDI} [1] (paragraph 2 of 3)" \
        in answer_part
    # Shown with its source, after the passage as in the article, labelled.
    passage = sources_part.index("The port reopened")
    quote = sources_part.index("(paragraph 2 of 3) The towns hit were <Rastan>")
    assert quote > passage
    lines = [ln.replace(FSI, "").replace(PDI, "") for ln in _terminal(_spanning("en"))]
    assert any(ln.startswith("The towns hit were <Rastan> & Talbiseh. [1] (paragraph 2 of 3)")
               for ln in lines)
    assert lines.index("(paragraph 2 of 3) The towns hit were <Rastan> & Talbiseh.") > \
        next(i for i, ln in enumerate(lines) if ln.startswith("The port reopened"))
    arabic = render_telegram(_spanning("ar"))
    assert "(الفقرة 2 من 3)" in parse_html(arabic)[0]


def test_a_neighbour_before_the_passage_is_shown_before_it() -> None:
    answer = _spanning("en")
    answer.sources[0].position = 2
    answer.sources[0].context[0].position = 1
    text, _ = parse_html(render_telegram(answer))
    sources_part = text.split("Sources")[1]
    assert sources_part.index("The towns hit") < sources_part.index("The port reopened")


def test_an_uncertain_answer_says_probably_in_every_medium() -> None:
    for lang, head in (("en", "Probably ("), ("ar", "على الأرجح (")):
        answer = _answer(lang, [])
        answer.probably = True
        text, _ = parse_html(render_telegram(answer))
        assert text.startswith(head) and "Port <reopens>" in text
        assert any(line.startswith(head) for line in _terminal(answer))
        answer.probably = False
        assert not parse_html(render_telegram(answer))[0].startswith(head)


def test_an_answer_sentence_in_the_other_script_keeps_the_readers_direction() -> None:
    """An Arabic sentence in an English answer is isolated, its line led by an LRM (and
    an English one in an Arabic answer by an RLM), so the citation stays on the side
    the answer reads from."""
    for lang, quote, mark in (("en", "قصفت الطائرات حلب.", "\u200e"),
                              ("ar", "Planes struck Aleppo.", "\u200f")):
        answer = _answer(lang, [])
        answer.sentences[0] = AnswerSentence(quote, 1)
        text, _ = parse_html(render_telegram(answer))
        assert f"{mark}{FSI}{quote}{PDI} [1]" in text


_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def test_bidi_controls_in_a_title_or_outlet_cannot_escape_their_isolate() -> None:
    """A stray PDI in a stored title would close the title's isolate early and an RLE
    after it would govern the rest of the citation line (date, paragraph, link): only
    the renderer's own FSI … PDI pairs are left, in every medium."""
    answer = _answer("en", [])
    src = answer.sources[0]
    src.title = "Talks collapse\u2069\u202b in Geneva"
    src.outlets = ["Reuters\u2069\u202e", "\u2067AFP"]
    src.url = None  # the line ends with the paragraph number, after the title
    head = parse_html(telegram_source(src, "en", with_text=False))[0]
    plain = citation_line(src, "en")
    for line in (head, plain):
        assert [c for c in line if c in _BIDI] == [FSI, PDI, FSI, PDI], repr(line)
        assert f"{FSI}Talks collapse in Geneva{PDI}" in line
        assert f"{FSI}Reuters, AFP{PDI}" in line
    text = parse_html(render_telegram(answer))[0]
    terminal = "\n".join(_terminal(answer))
    for line in (text + "\n" + terminal).splitlines():
        bidi = "".join(c for c in line if c in _BIDI)
        assert bidi == (FSI + PDI) * (len(bidi) // 2), repr(line)
    assert "Talks collapse in Geneva" in terminal
