"""Summaries on the real model and a real store: a tiny mixed corpus.

Three NTREX documents in English and in their human Arabic translation (one
with a wire copy under another outlet), an undated local article with HTML in
its title brought by a chat, and an old article outside the period.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from khabar.bot._render_summary import (
    render_summary_plain,
    render_summary_telegram,
    render_timeline_plain,
    render_timeline_telegram,
)
from khabar.index import Article, Index
from khabar.retrieval import Summary, SummaryConfig, parse_duration, summarize, timeline
from khabar.retrieval._cluster import average_linkage
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from khabar.model import Encoder
from tests.bot.fake_telegram import parse_html
from tests.conftest import share_models
from tests.retrieval.conftest import backend_settings

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).parent / "fixtures" / "ntrex_summary.json"
NOW = datetime.now(UTC).replace(microsecond=0)
HTML_TITLE = "<b>Bakery</b> & <script>alert(1)</script> wins the town's bread prize"
# doc id -> (English outlet, Arabic outlet); Macedonia also has a Reuters wire copy.
OUTLETS = {"rt.com.91337": ("RT", "الجزيرة"), "euronews-en.153835": ("Euronews", "العربية"),
           "bbc.381701": ("BBC", "BBC")}


def _articles() -> list[Article]:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    out = []
    for k, doc in enumerate(data["documents"]):
        en_outlet, ar_outlet = OUTLETS[doc["id"]]
        when = NOW - timedelta(hours=6 - k)
        for lang, outlet, delay in (("en", en_outlet, 0), ("ar", ar_outlet, 30)):
            lines = doc[lang]
            out.append(Article(title=lines[0], paragraphs=lines[1:], outlets=[outlet],
                               url=f"https://news.example/{doc['id']}/{lang}",
                               published=when + timedelta(minutes=delay), lang=lang))
        if doc["id"] == "rt.com.91337":
            out.append(Article(title="Macedonia votes on a new name", paragraphs=doc["en"][1:],
                               outlets=["Reuters"], url="https://wire.example/macedonia",
                               published=when + timedelta(hours=1), lang="en"))
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
          encoders: list[Encoder], archive_backend: str) -> Iterator[Index]:
    home = share_models(tmp_path_factory.mktemp("summary-home"), model_home)
    ix = Index.open(backend_settings(home, archive_backend), encoders=encoders)
    report = ix.add_articles(_articles())
    assert report.count("added") == 7, report.summary()
    local = Article(title=HTML_TITLE, outlets=["Local Gazette"], lang="en",
                    url="https://gazette.example/bakery",
                    paragraphs=["The family bakery on Mill Street won the regional bread "
                                "competition on Saturday with a sourdough loaf.",
                                "Judges praised its crust; the owners plan to hire two "
                                "apprentices."])
    assert ix.add_articles([local], origin="chat:42").count("added") == 1
    old = Article(title="Harbour bridge repainting finished", outlets=["Coast Times"],
                  paragraphs=["Workers finished repainting the harbour bridge after two years "
                              "of work, the council said."],
                  url="https://coast.example/bridge", published=NOW - timedelta(days=5),
                  lang="en")
    assert ix.add_articles([old]).count("added") == 1
    yield ix
    ix.close()


@pytest.fixture(scope="module")
def day(index: Index) -> Summary:
    return summarize(index, since=NOW - timedelta(days=1), lang="en")


def _story_urls(summary: Summary, index: Index) -> list[set[str]]:
    return [{e.url or "" for e in timeline(index, s)} for s in summary.stories]


def _doc(url: str) -> str:
    return url.split("/")[3] if "news.example" in url else url


def test_translations_together_and_different_stories_apart(day: Summary,
                                                           index: Index) -> None:
    groups = [{_doc(u) for u in urls} for urls in _story_urls(day, index)]
    assert sorted(map(sorted, groups)) == sorted([
        ["https://wire.example/macedonia", "rt.com.91337"], ["euronews-en.153835"],
        ["bbc.381701"], ["https://gazette.example/bakery"]])
    assert day.n_articles == 8 and day.n_stories == 4
    assert sorted(s.n_articles for s in day.stories) == [1, 2, 2, 3]
    for story in day.stories[:3]:
        assert story.langs == ["ar", "en"]


def test_ranked_by_outlets_then_articles(day: Summary) -> None:
    assert [s.n_outlets for s in day.stories] == [3, 2, 1, 1]
    assert [s.n_articles for s in day.stories] == [3, 2, 2, 1]
    assert day.stories[0].outlets[0] in {"RT", "Reuters", "الجزيرة"}
    assert set(day.stories[0].outlets) == {"RT", "Reuters", "الجزيرة"}
    assert [s.single_outlet for s in day.stories] == [False, False, True, True]
    assert "Macedonia" in day.stories[0].headline or "Macedonians" in day.stories[0].headline
    first, last = day.stories[0].first, day.stories[0].last
    assert first is not None and last is not None and first < last


def test_citations_consistent_across_the_digest(day: Summary) -> None:
    numbers = [s.n for s in day.sources]
    assert numbers == list(range(1, len(numbers) + 1))
    for story in day.stories:
        assert 1 <= len(story.sentences) <= 2
        own = {s.n for s in story.sources}
        assert {s.source for s in story.sentences} == own
        for sent in story.sentences:
            src = next(s for s in story.sources if s.n == sent.source)
            assert sent.text in src.text  # extractive: the sentence is in its passage
            assert src.article_id in story.article_ids
    for text in (render_summary_plain(day, "en"), render_summary_telegram(day, "ar")):
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
        assert cited == set(numbers)


def test_sentences_not_redundant(day: Summary) -> None:
    for story in day.stories:
        texts = [s.text for s in story.sentences]
        assert len(set(texts)) == len(texts)


def test_wire_copies_stay_together_whatever_the_threshold(index: Index) -> None:
    assert index.store.stats()["linked_duplicates"] >= 4
    strict = summarize(index, since=NOW - timedelta(days=1), limit=None,
                       config=SummaryConfig(threshold=5.0, lead_threshold=5.0))
    groups = sorted(sorted(u for u in urls) for urls in _story_urls(strict, index))
    assert ["https://news.example/rt.com.91337/en", "https://wire.example/macedonia"] in groups
    assert len(groups) == 7  # everything else apart, translations included


def test_too_many_articles_keeps_the_newest(index: Index) -> None:
    summary = summarize(index, since=NOW - timedelta(days=1), config=SummaryConfig(max_articles=3))
    assert summary.omitted == 5 and summary.n_articles == 3
    assert sum(s.n_articles for s in summary.stories) == 3
    assert "5 oldest articles" in render_summary_plain(summary, "en")


def test_empty_period_is_clear(index: Index) -> None:
    summary = summarize(index, since=NOW - timedelta(days=30), until=NOW - timedelta(days=20))
    assert summary.empty and summary.stories == [] and summary.n_articles == 0
    assert "Nothing was covered in this period." in render_summary_plain(summary, "en")
    assert "لم تُغطَّ أي أخبار في هذه الفترة." in render_summary_telegram(summary, "ar")
    assert json.loads(json.dumps(summary.to_dict()))["empty"] is True


def test_topic_with_nothing_says_so(index: Index) -> None:
    summary = summarize(index, since=NOW - timedelta(days=1), topic="<i>cricket</i> world cup")
    assert summary.empty
    text = render_summary_telegram(summary, "en")
    assert "Nothing about" in text and "&lt;i&gt;cricket&lt;/i&gt;" in text
    assert "<i>cricket" not in text


def test_telegram_rendering_escapes_article_text(day: Summary) -> None:
    html = render_summary_telegram(day, "en")
    assert "<script>" not in html and "<b>Bakery" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bakery&lt;/b&gt; &amp;" in html
    # Only the tags the renderer writes itself.
    assert set(re.findall(r"</?([a-z]+)", html)) <= {"b", "i", "a"}
    assert '<a href="https://news.example/' in html


def test_plain_rendering_and_labels(day: Summary) -> None:
    en = render_summary_plain(day, "en")
    ar = render_summary_plain(day, "ar")
    assert "What was covered" in en and "single outlet" in en
    assert "ما غطّته الأخبار" in ar and "مصدر واحد فقط" in ar
    assert HTML_TITLE in en  # plain text shows titles as published
    assert "\u2068" in ar  # article text isolated in the Arabic layout


def test_undated_article_placed_by_ingest_date(day: Summary) -> None:
    assert day.undated == 1
    bakery = next(s for s in day.stories if s.headline == HTML_TITLE)
    assert bakery.undated == 1 and bakery.first is not None
    assert "state no publication date" in render_summary_plain(day, "en")
    assert day.to_dict()["counts"]["undated"] == 1


def test_origin_outlet_and_language_filters(index: Index) -> None:
    since = NOW - timedelta(days=1)
    chat = summarize(index, since=since, origin="chat:42")
    assert [s.headline for s in chat.stories] == [HTML_TITLE]
    bbc = summarize(index, since=since, outlets=["bbc"])
    assert len(bbc.stories) == 1 and bbc.stories[0].n_articles == 2
    arabic = summarize(index, since=since, langs=["ar"])
    assert arabic.n_articles == 3 and all(s.langs == ["ar"] for s in arabic.stories)


def test_period_excludes_older_articles(index: Index) -> None:
    old = summarize(index, since=NOW - timedelta(days=6), until=NOW - timedelta(days=4))
    assert [s.headline for s in old.stories] == ["Harbour bridge repainting finished"]


def test_topic_keeps_relevant_stories(index: Index) -> None:
    summary = summarize(index, since=NOW - timedelta(days=1), topic="استفتاء على اسم مقدونيا")
    assert len(summary.stories) == 1 and summary.n_articles == 3
    assert summary.stories[0].n_articles == 3
    # A name matched as a word finds its story, with the other-language articles.
    belfast = summarize(index, since=NOW - timedelta(days=1), topic="Belfast")
    assert [s.n_articles for s in belfast.stories] == [2]
    assert belfast.stories[0].langs == ["ar", "en"]


def test_reader_language_headline(index: Index) -> None:
    summary = summarize(index, since=NOW - timedelta(days=1), lang="ar", limit=2)
    assert len(summary.stories) == 2 and summary.n_stories == 4
    for story in summary.stories:
        assert story.lang == "ar"
        assert all(re.search(r"[\u0600-\u06FF]", s.text) for s in story.sentences)
    assert "تُعرض أهم 2" in render_summary_plain(summary, "ar")


def test_timeline_in_date_order(day: Summary, index: Index) -> None:
    story = day.stories[0]
    entries = timeline(index, story)
    assert [e.article_id for e in entries] == sorted(
        story.article_ids, key=lambda a: next(e.when for e in entries if e.article_id == a))
    assert [e.when for e in entries] == sorted(e.when for e in entries)
    assert all(e.dated for e in entries)
    plain = render_timeline_plain(story, entries, "en")
    assert len(plain.splitlines()) == 2 + len(entries)  # headline, facts, one line each
    assert "https://wire.example/macedonia" in plain
    for n, e in enumerate(entries, 1):  # numbered citations, with outlet and language
        line = plain.splitlines()[1 + n]
        assert line.lstrip("\u200e").startswith(f"[{n}] ") and f" · {e.lang}" in line
        assert all(o in line for o in e.outlets)
    html = render_timeline_telegram(story, entries, "ar")
    assert "التسلسل الزمني" in html and html.count("<a href=") == len(entries)
    parse_html(html)  # valid Telegram HTML


def test_llm_phrasing_keeps_only_valid_citations(index: Index) -> None:
    replies = ["Macedonia votes on its name [1] and Greece objects [99].",
               "An uncited claim.", "x [3]", "y [4]"]
    summary = summarize(index, since=NOW - timedelta(days=1), llm=FakeListChatModel(
        responses=replies), limit=2)
    first, second = summary.stories
    assert first.generated == "Macedonia votes on its name [1] and Greece objects."
    assert second.generated is None  # nothing checkable: extractive only
    assert "Summary (generated from the sources)" in render_summary_plain(summary, "en")


def test_to_dict_is_json(day: Summary) -> None:
    d = json.loads(json.dumps(day.to_dict(), ensure_ascii=False))
    assert d["counts"] == {"articles": 8, "stories": 4, "shown": 4, "outlets": 7, "undated": 1,
                           "omitted": 0}
    assert d["stories"][0]["single_outlet"] is False
    cited = {n for s in d["stories"] for n in s["sources"]}
    assert cited == {s["n"] for s in d["sources"]}


def test_parse_duration() -> None:
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("7 أيام") == timedelta(days=7)
    assert parse_duration("gaza") is None


def test_average_linkage_keeps_wire_copies_together() -> None:
    sim = np.array([[1.0, 0.9, 0.1, 0.0],
                    [0.9, 1.0, 0.2, 0.0],
                    [0.1, 0.2, 1.0, 0.1],
                    [0.0, 0.0, 0.1, 1.0]])
    assert sorted(average_linkage(sim, 0.5)) == [[0, 1], [2], [3]]
    assert sorted(average_linkage(sim, 0.5, groups=[[2, 3]])) == [[0, 1], [2, 3]]
    # Average, not single, linkage: 2 joins {0, 1} only if the mean similarity does.
    sim[1, 2] = sim[2, 1] = 0.7
    assert sorted(average_linkage(sim, 0.5)) == [[0, 1], [2], [3]]
    assert sorted(average_linkage(sim, 0.35)) == [[0, 1, 2], [3]]


def test_a_story_told_in_one_language_is_flagged(day: Summary) -> None:
    # The period holds Arabic and English news; the bakery was covered in English only.
    bakery = next(s for s in day.stories if "Bakery" in s.headline)
    assert bakery.only_lang == "en"
    assert all(s.only_lang is None for s in day.stories if s is not bakery)
    assert render_summary_plain(day, "en").count("only in English") == 1
    html = render_summary_telegram(day, "ar")
    assert html.count("بالإنجليزية فقط") == 1
    parse_html(html)  # well-formed for Telegram
    assert day.to_dict()["stories"][0]["only_lang"] is None


def test_one_outlet_is_a_gap_only_where_the_period_has_others(day: Summary,
                                                              index: Index) -> None:
    assert [s.single_outlet for s in day.stories] == [False, False, True, True]
    assert render_summary_plain(day, "en").count("single outlet") == 2
    # The BBC's news alone: every story has one outlet, and that is no gap to flag.
    bbc = summarize(index, since=NOW - timedelta(days=1), outlets=["bbc"])
    assert bbc.stories and not any(s.single_outlet for s in bbc.stories)
    assert "single outlet" not in render_summary_plain(bbc, "en")


def test_versions_list_each_text_with_its_outlets_and_language(day: Summary) -> None:
    macedonia = day.stories[0]
    versions = macedonia.versions
    assert sum(1 + v.copies for v in versions) == macedonia.n_articles
    assert [v.when for v in versions] == sorted(v.when for v in versions)
    assert {v.lang for v in versions} == {"ar", "en"}
    assert {o for v in versions for o in v.outlets} == set(macedonia.outlets)
    # Reuters carries RT's English text: a wire copy folds into the version it copies.
    if len(versions) == 2:
        english = next(v for v in versions if v.lang == "en")
        assert english.copies == 1 and english.outlets[0] == "RT"
        assert "Reuters" in english.outlets
    plain = render_summary_plain(day, "en")
    line = next(x for x in plain.splitlines() if "versions:" in x)
    assert "(ar" in line and "(en" in line
    html = render_summary_telegram(day, "en")
    assert "versions:" in html
    parse_html(html)
    single = next(s for s in day.stories if "Bakery" in s.headline)
    assert len(single.versions) == 1  # one text: no versions line for it
    d = day.to_dict()["stories"][0]["versions"]
    assert d and {"article_id", "lang", "outlets", "copies", "when"} <= set(d[0])
