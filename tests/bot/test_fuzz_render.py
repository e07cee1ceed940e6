"""The Telegram renderers under hypothesis: whatever the articles, questions and links
hold, what ``send_html`` would send is valid Telegram HTML (the fake's ``parse_html``,
stricter than Telegram), every part fits 4096 characters, article text shows as text
(never as a tag), and no link goes anywhere but a source's web address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from khabar.bot._render import render_telegram, telegram_source
from khabar.bot._render_summary import render_summary_telegram, render_timeline_telegram
from khabar.bot._split import TELEGRAM_LIMIT, split_html, visible_text
from khabar.retrieval import (
    Answer,
    AnswerSentence,
    Filters,
    Query,
    Source,
    Story,
    Summary,
    TimelineEntry,
)

from khabar._redact import redact, redact_html
from khabar.text import strip_bidi
from tests.bot.fake_telegram import _strip_text, parse_html, utf16_len
from tests.fuzz import FUZZ, TEXT, budget, long_text

URL = st.one_of(st.none(), st.sampled_from([
    "https://example.com/a?b=1&c=<2>&d=\"3\"", "javascript:alert(1)", "HTTP://X.COM/'q'",
    "ftp://x.org/", "", "https://", "data:text/html,<b>x</b>"]),
    TEXT.map(lambda s: "https://e.com/" + s))
WHEN = st.one_of(st.none(), st.datetimes(min_value=datetime(1900, 1, 1),
                                         max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
DATE = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC))
LANG = st.sampled_from(["en", "ar"])
OUTLETS = st.lists(TEXT, max_size=8)


@st.composite
def sources(draw: st.DrawFn, n: int) -> list[Source]:
    return [Source(n=i + 1, outlets=draw(OUTLETS), title=draw(TEXT), published=draw(WHEN),
                   url=draw(URL), position=draw(st.integers(0, 10_000)),
                   n_passages=draw(st.integers(0, 10_000)), article_id=i, passage_id=i,
                   text=draw(st.one_of(TEXT, long_text(6000))), lang=draw(LANG), score=0.5)
            for i in range(n)]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    srcs = draw(sources(draw(st.integers(0, 6))))
    abstained = draw(st.booleans()) or not srcs
    filters = Filters(outlets=draw(st.lists(TEXT, max_size=3)), since=draw(WHEN),
                      langs=draw(st.lists(LANG, max_size=2)))
    query = Query(text=draw(TEXT), search_text="", lang=draw(LANG), filters=filters,
                  follow_up_of=draw(st.one_of(st.none(), TEXT)))
    sentences = [] if abstained else [
        AnswerSentence(draw(st.one_of(TEXT, long_text(3000))), draw(st.integers(1, len(srcs))))
        for _ in range(draw(st.integers(1, 5)))]
    return Answer(question=query.text, lang=query.lang, query=query, sentences=sentences,
                  sources=[] if abstained else srcs, abstained=abstained,
                  related=srcs if abstained else [],
                  generated=draw(st.one_of(st.none(), TEXT)),
                  relaxed=draw(st.lists(st.sampled_from(["time", "outlet", "bogus"]),
                                        max_size=2)))


@st.composite
def stories(draw: st.DrawFn, first_n: int = 1) -> Story:
    srcs = draw(sources(draw(st.integers(0, 4))))
    for k, s in enumerate(srcs):
        s.n = first_n + k
    first, last = draw(WHEN), draw(WHEN)
    return Story(id="s", headline=draw(st.one_of(TEXT, long_text(5000))),
                 headline_article_id=1, url=draw(URL), lang=draw(LANG),
                 sentences=[AnswerSentence(draw(TEXT), s.n) for s in srcs],
                 sources=srcs, outlets=draw(OUTLETS), article_ids=list(range(len(srcs) + 1)),
                 first=first, last=last if first and last else None,
                 generated=draw(st.one_of(st.none(), TEXT)),
                 only_lang=draw(st.sampled_from([None, "ar", "en", "xx"])))


ZONE = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-11))])


def shown_in(markup: str, *, links: set[str], texts: list[str]) -> None:
    """What send_html sends: each part valid HTML within the limit, links only to
    ``links``, and every piece of ``texts`` in the visible text, as text."""
    # Compared without bidi embeddings and isolates: an isolated run (a title, a
    # sentence) loses its own, so that none can escape the renderer's FSI … PDI.
    whole = strip_bidi(parse_html(markup)[0])
    for text in texts:
        assert strip_bidi(text) in whole, text[:80]
    parts = [p for p in split_html(redact_html(markup), TELEGRAM_LIMIT)
             if visible_text(p).strip()]
    for part in parts:
        text, entities = _strip_text(*parse_html(part))
        assert 0 < utf16_len(text) <= TELEGRAM_LIMIT
        for e in entities:
            assert e["type"] in {"bold", "italic", "text_link"}, e
            if e["type"] == "text_link":  # a link's user information is masked on send
                assert e["url"] in links | {redact(u) for u in links}, e["url"]


def _web(urls: list[Any]) -> set[str]:
    return {u for u in urls if u and u.lower().startswith(("http://", "https://"))}


@FUZZ
@given(answers(), st.one_of(st.none(), LANG))
def test_fuzz_answers_render_to_valid_telegram_html(answer: Answer, lang: str | None) -> None:
    with budget("render: answer (Telegram HTML)", allowed=()):
        shown = answer.sources or answer.related
        texts = [s.text for s in shown] + [s.text for s in answer.sentences]
        shown_in(render_telegram(answer, lang), links=_web([s.url for s in shown]),
                 texts=[t for t in texts if t.strip()])


@FUZZ
@given(sources(3), LANG)
def test_fuzz_more_sources_render_to_valid_telegram_html(srcs: list[Source], lang: str) -> None:
    with budget("render: more sources", allowed=()):
        body = "\n\n".join(telegram_source(s, lang) for s in srcs)
        shown_in(body, links=_web([s.url for s in srcs]), texts=[s.text for s in srcs])


@st.composite
def summaries(draw: st.DrawFn) -> Summary:
    found: list[Story] = []
    for _ in range(draw(st.integers(0, 4))):
        found.append(draw(stories(first_n=1 + sum(len(s.sources) for s in found))))
    since = draw(DATE)
    return Summary(since=since, until=since + timedelta(days=draw(st.integers(0, 400))),
                   stories=found, n_articles=draw(st.integers(0, 10**6)),
                   n_stories=len(found) + draw(st.integers(0, 5)),
                   n_outlets=draw(st.integers(0, 1000)), undated=draw(st.integers(0, 9)),
                   omitted=draw(st.integers(0, 9)), topic=draw(st.one_of(st.none(), TEXT)),
                   outlets=draw(st.lists(TEXT, max_size=3)))


@FUZZ
@given(summaries(), LANG, ZONE)
def test_fuzz_summaries_render_to_valid_telegram_html(summary: Summary, lang: str,
                                                      zone: Any) -> None:
    with budget("render: summary (Telegram HTML)", allowed=()):
        urls = [s.url for s in summary.sources] + [s.url for s in summary.stories]
        texts = [s.text for st_ in summary.stories for s in st_.sentences]
        shown_in(render_summary_telegram(summary, lang, zone, "Asia/Riyadh"),
                 links=_web(urls), texts=[t for t in texts if t.strip()])


@FUZZ
@given(stories(), st.lists(st.builds(TimelineEntry, article_id=st.integers(0, 9), when=DATE,
                                     dated=st.booleans(), outlets=OUTLETS, title=TEXT,
                                     url=URL, lang=st.one_of(st.none(), LANG)), max_size=60),
       LANG, ZONE)
def test_fuzz_timelines_render_to_valid_telegram_html(story: Story, entries: list[Any],
                                                      lang: str, zone: Any) -> None:
    with budget("render: timeline (Telegram HTML)", allowed=()):
        shown_in(render_timeline_telegram(story, entries, lang, zone),
                 links=_web([e.url for e in entries]),
                 texts=[e.title for e in entries if e.title.strip()])
