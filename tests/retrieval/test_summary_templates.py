"""Articles alike only by a template never share a story, on the real model and store.

Six Arabic Wikipedia articles (ARCD), every paragraph an article of one day whose
headline is its first sentence: three related pairs whose first sentences follow
one template (Saladin and al-Hajjaj: honorific, full name and lineage, dates;
the Kaaba and Mecca, two Lebanese singers), which the second pass joined through
their headlines and leads before the lexical discount (``_agreement``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from khabar.index import Article, Index
from khabar.retrieval import Summary, SummaryConfig, summarize

from khabar.model import Encoder
from khabar.text import split_sentences
from tests.retrieval._ntrex_day import ntrex_index

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).parent / "fixtures" / "arcd_templates.json"
NOW = datetime.now(UTC).replace(microsecond=0)


def _articles() -> list[Article]:
    out = []
    for k, a in enumerate(json.loads(FIXTURE.read_text(encoding="utf-8"))["articles"]):
        for j, text in enumerate(a["paragraphs"]):
            s = split_sentences(text)
            body = [" ".join(s[i:i + 2]) for i in range(1, len(s), 2)] or [text]
            out.append(Article(title=s[0][:200], paragraphs=body, outlets=["wiki-ar"],
                               url=f"https://arcd.example/{k}/{j}",
                               published=NOW - timedelta(minutes=60 - 3 * len(out)),
                               lang="ar"))
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
          encoders: list[Encoder]) -> Iterator[Index]:
    ix = ntrex_index(tmp_path_factory.mktemp("templates-home"), model_home, encoders,
                     _articles(), 18)
    yield ix
    ix.close()


def _mixed(summary: Summary) -> list[set[str]]:
    """Stories holding paragraphs of more than one Wikipedia article."""
    out = []
    for story in summary.stories:
        wiki = {(v.url or "").split("/")[3] for v in story.versions}
        if len(wiki) > 1:
            out.append(wiki)
    return out


def _summary(index: Index, config: SummaryConfig | None = None) -> Summary:
    return summarize(index, since=NOW - timedelta(days=1), limit=None, config=config)


def test_templated_first_sentences_do_not_join_articles(index: Index) -> None:
    summary = _summary(index)
    assert _mixed(summary) == []


def test_without_the_lexical_discount_the_templates_join(index: Index) -> None:
    # The rule before the discount (session 6-7): the test above checks the discount,
    # not a slice the second pass leaves apart anyway.
    old = replace(SummaryConfig(), lead_threshold=0.42, agreement_weight=0.0)
    assert len(_mixed(_summary(index, old))) >= 2
