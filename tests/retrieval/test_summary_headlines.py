"""Headlines in the second story pass, on the real model and a real store.

Four NTREX documents, each in English and in its human Arabic translation: two
outlets' reports of the Palu earthquake whose leads open on different angles (the
New York Times on the island, Euronews on the toll) but whose headlines name the
same event, and two Kanye West stories of one weekend that are different events
(his change of name, his speech after SNL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from khabar.index import Article, Index
from khabar.retrieval import SummaryConfig, summarize
from khabar.retrieval._headlines import headline_vectors, usable_headline
from khabar.retrieval._summary_data import Doc, Passage

from khabar.model import Encoder
from tests.retrieval._ntrex_day import ntrex_day, ntrex_index, story_docs

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).parent / "fixtures" / "ntrex_headlines.json"
NOW = datetime.now(UTC).replace(microsecond=0)
PALU = {"nytimes.184837", "euronews-en.153797"}
KANYE = ("bbc.381647", "newsweek.51329")


def _articles() -> list[Article]:
    return ntrex_day(FIXTURE, NOW)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
          encoders: list[Encoder]) -> Iterator[Index]:
    ix = ntrex_index(tmp_path_factory.mktemp("headlines-home"), model_home, encoders,
                     _articles(), 8)
    yield ix
    ix.close()


def _stories(index: Index, config: SummaryConfig | None = None) -> list[set[str]]:
    return story_docs(index, summarize(index, since=NOW - timedelta(days=1), limit=None,
                                       config=config))


def test_headlines_join_reports_whose_leads_differ(index: Index) -> None:
    stories = _stories(index)
    assert PALU in stories
    # Same topic, same person, two events: apart.
    assert not any(set(KANYE) <= s for s in stories)
    assert sorted(map(sorted, stories)) == sorted([sorted(PALU), [KANYE[0]], [KANYE[1]]])


def test_without_headlines_the_leads_alone_split_them(index: Index) -> None:
    # The test above checks the headlines, not leads that already meet.
    stories = _stories(index, replace(SummaryConfig(), headline_spaces=()))
    assert PALU not in stories
    assert all(s <= PALU or not s & PALU for s in stories)


def _doc(i: int, title: str, root: int) -> Doc:
    return Doc(id=i, title=title, url=None, published=None, ingested=NOW, lang="en",
               n_passages=1, outlets=["x"], passages=[Passage(i, 0, "text", "en", root)])


def test_boilerplate_and_empty_headlines_are_left_out(index: Index) -> None:
    title = "Indonesia earthquake tsunami: hundreds killed"
    docs = [_doc(0, title, 0), _doc(1, title, 0),  # a wire copy: same text, same headline
            _doc(2, "Live updates: the day's news", 2), _doc(3, "Live updates: the day's news", 3),
            _doc(4, "Live updates: the day's news", 4),  # three different texts
            _doc(5, "News", 5), _doc(6, "https://example.com/a", 6)]
    heads = headline_vectors(index, docs, ["use", "nope"])
    assert set(heads) == {"use"}  # no encoder for a space: no vectors in it
    assert sorted(heads["use"]) == [0, 1]
    again = headline_vectors(index, docs, ["use"])["use"]  # from the cache: same vectors
    assert np.allclose(again[0], heads["use"][0], atol=2e-3)
    enc = index.encoder("use")
    assert enc is not None
    assert float(heads["use"][0] @ enc.embed_passages([title])[0]) > 0.999
    assert usable_headline("  Palu   toll rises to 832 ") == "Palu toll rises to 832"
