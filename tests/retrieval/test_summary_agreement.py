"""The second pass's lexical agreement (``_agreement``) on real tokens; its cached words on
the real model and store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from khabar.index import Article, Index
from khabar.retrieval._agreement import Agreement, count_df, discount, doc_words, period_words
from khabar.retrieval._summary_data import Doc, Passage, attach_words, load_docs

from khabar.store import ArchiveStore

WHEN = datetime(2018, 9, 30, tzinfo=UTC)


def _doc(k: int, title: str, *texts: str, lang: str = "en") -> Doc:
    return Doc(id=k, title=title, url=None, published=WHEN, ingested=WHEN, lang=lang,
               n_passages=len(texts), outlets=["x"],
               passages=[Passage(id=100 * k + i, position=i, text=t, lang=lang, root=100 * k + i)
                         for i, t in enumerate(texts)])


DOCS = [
    _doc(0, "Death toll from Indonesia tsunami rises to 832",
         "The earthquake and tsunami that struck Palu on Sulawesi killed 832 people."),
    _doc(1, "Hundreds killed by quake and tsunami in Palu",
         "The death toll rose to 832 in Palu after the tsunami hit Indonesia on Friday."),
    _doc(2, "Kuwait is an Arab country in Western Asia on the Gulf",
         "Kuwait City is the capital; oil was found in 1938."),
    _doc(3, "Jordan is an Arab country in Western Asia on the Jordan River",
         "Amman is the capital; the kingdom became independent in 1946."),
    _doc(4, "زلزال وتسونامي في إندونيسيا", "ضرب زلزال جزيرة سولاويسي.", lang="ar"),
    # The template's words are common in the period, its subjects are not.
    *(_doc(5 + k, f"{c} is an Arab country in Western Asia", f"{c} has a long coast.")
      for k, c in enumerate(("Oman", "Qatar", "Bahrain", "Yemen"))),
]


def test_reports_of_one_event_repeat_each_others_headline_words() -> None:
    agree = Agreement(DOCS)
    event = min(agree.share(0, 1), agree.share(1, 0))
    template = min(agree.share(2, 3), agree.share(3, 2))
    assert event > 0.5 > template  # "Kuwait" is nowhere in Jordan's article
    assert agree.share(0, 0) == 1.0


def test_groups_compare_by_their_best_same_language_pair_or_not_at_all() -> None:
    agree = Agreement(DOCS)
    assert agree.of_groups([0, 4], [1]) == min(agree.share(0, 1), agree.share(1, 0))
    assert agree.of_groups([4], [1]) is None  # no language in common


def test_the_discount_falls_on_pairs_that_could_join() -> None:
    groups = [[i] for i in range(len(DOCS))]
    gsim = np.full((len(DOCS), len(DOCS)), 0.1)
    gsim[0, 1] = gsim[1, 0] = gsim[2, 3] = gsim[3, 2] = gsim[1, 4] = gsim[4, 1] = 0.5
    out = discount(gsim, groups, DOCS, threshold=0.4, weight=0.2, unseen=0.5)
    agree = Agreement(DOCS)
    assert out[0, 1] == out[1, 0] == 0.5 - 0.2 * (1 - agree.of_groups([0], [1]))  # type: ignore[operator]
    assert out[0, 1] > out[2, 3]
    assert np.isclose(out[1, 4], 0.5 - 0.2 * 0.5)  # unseen: the assumed agreement
    assert np.isclose(out[0, 2], 0.1 - 0.2)  # below the threshold: the whole weight


# -- the words as a digest reads them: stored tokens, cached per article and period ----------

@pytest.mark.model
def test_a_periods_words_are_the_stored_tokens_counted_as_a_recount_would(
        real_index: Index) -> None:
    report = real_index.add_articles([
        Article(title=d.title, paragraphs=[p.text for p in d.passages], outlets=["x"],
                url=f"https://agree.example/{d.id}", published=WHEN, lang=d.lang)
        for d in DOCS])
    assert report.count("added") == len(DOCS), report.summary()
    store = real_index.store
    docs = load_docs(store)
    period = period_words(store, docs)
    attach_words(store, docs)  # the uncached way: from each passage's stored tokens
    fresh, cached = Agreement(docs), Agreement(docs, period)
    pairs = [(a, b) for a in range(len(docs)) for b in range(len(docs))]
    assert [cached.share(a, b) for a, b in pairs] == [fresh.share(a, b) for a, b in pairs]
    assert any(0 < fresh.share(a, b) < 1 for a, b in pairs)
    # A later period, two articles gone: its frequencies from the last one's, as counted.
    later = load_docs(store)[2:]
    assert period_words(store, later).df == count_df([doc_words(d) for d in
                                                      _with_words(store, later)])
    # The same article under a new headline is read again, not taken from the cache.
    retitled = replace(docs[2], title="Qatar is an Arab country in Western Asia")
    head = period_words(store, [retitled, *docs[3:]]).words[0].head
    assert "qatar" in head and head == doc_words(retitled).head != period.words[2].head


def _with_words(store: ArchiveStore, docs: list[Doc]) -> list[Doc]:
    attach_words(store, docs)
    return docs
