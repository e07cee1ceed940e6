"""One story per event, on the real model and a real store.

Seven NTREX documents, each in English and in its human Arabic translation: three
outlets' reports of the Palu earthquake (a first toll, a later toll, a factbox whose
lead gives the toll), two other disasters of that weekend, and two North Korea
stories of one day that are different events (the foreign minister's disarmament
speech at the UN, the defector figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from khabar.index import Article, Index
from khabar.retrieval import Summary, SummaryConfig, summarize

from khabar.model import Encoder
from tests.retrieval._ntrex_day import ntrex_day, ntrex_index, story_docs

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).parent / "fixtures" / "ntrex_events.json"
NOW = datetime.now(UTC).replace(microsecond=0)
PALU = {"euronews-en.153835", "reuters.218865", "euronews-en.153797"}
OUTLET = {"euronews-en": "Euronews", "reuters": "Reuters", "cbsnews": "CBS News",
          "abcnews": "ABC News", "bbc": "BBC"}


def _articles() -> list[Article]:
    return ntrex_day(FIXTURE, NOW, OUTLET.__getitem__)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
          encoders: list[Encoder]) -> Iterator[Index]:
    ix = ntrex_index(tmp_path_factory.mktemp("events-home"), model_home, encoders,
                     _articles(), 14)
    yield ix
    ix.close()


def _summary(index: Index, config: SummaryConfig | None = None) -> Summary:
    return summarize(index, since=NOW - timedelta(days=1), limit=None, config=config)


def test_reports_of_one_event_form_one_story(index: Index) -> None:
    summary = _summary(index)
    stories = story_docs(index, summary)
    assert PALU in stories
    assert sorted(map(sorted, stories)) == sorted(
        [sorted(PALU), ["cbsnews.248411"], ["abcnews.306764"], ["reuters.218861"],
         ["bbc.381736"]])
    palu = summary.stories[stories.index(PALU)]
    # Its versions: every article, with its outlet and language.
    assert len(palu.versions) == 6 and palu.langs == ["ar", "en"]
    assert {(v.lang, v.outlets[0]) for v in palu.versions} == {
        ("en", "Euronews"), ("ar", "Euronews عربي"), ("en", "Reuters"), ("ar", "Reuters عربي")}
    assert set(palu.outlets) == {"Euronews", "Euronews عربي", "Reuters", "Reuters عربي"}
    assert summary.stories[0] is palu  # the most covered story leads the digest


def test_versions_alone_split_the_event(index: Index) -> None:
    # Without the lead pass the article vectors keep the outlets' angles apart: the
    # test above checks the second pass, not a corpus the first pass already merges.
    stories = story_docs(index, _summary(index, replace(SummaryConfig(), lead_threshold=None)))
    assert PALU not in stories
    assert all(s <= PALU or not s & PALU for s in stories)
