"""Reads: passages with citation data, filters, periods, stored vectors, groups."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from khabar.store import Kept
from khabar.store._read import NEIGHBOURS_SQL
from khabar.text import lexical_tokens, passage_sentences
from tests.fakes import HashEncoder
from tests.store._data import (
    BODY,
    EXTRA,
    FOOTBALL,
    THIRD,
    article,
    new_article,
    open_index,
    open_store,
)


def test_passages_carry_their_article_citation_data(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    when = datetime(2024, 3, 1, 12, tzinfo=UTC)
    ix.add_articles([article("Strikes", BODY, url="https://x.test/a",
                             outlets=("Reuters", "AFP"), published=when)])
    ids = [r["id"] for r in ix.store.iter_passages()]
    got = ix.store.passages([*ids, 999])
    assert sorted(got) == ids
    second = got[ids[1]]
    assert (second.text, second.position, second.n_passages) == (BODY[1], 1, 2)
    assert (second.title, second.url, second.published) == ("Strikes", "https://x.test/a", when)
    assert second.outlets == ["AFP", "Reuters"] and second.dup_of is None
    assert ix.store.duplicate_groups([ids[0], 999]) == {ids[0]: [ids[0]]}


def test_iter_passages_by_language_and_the_counts(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put(new_article("English", [BODY[0], FOOTBALL], url="https://x.test/en"))
    store.put(new_article("Arabic", ["قال الجيش إنه ضرب أهدافا قرب المدينة الشمالية."],
                          url="https://x.test/ar", lang="ar"))
    assert [r["lang"] for r in store.iter_passages()] == ["en", "en", "ar"]
    assert [r["text"] for r in store.iter_passages("en")] == [BODY[0], FOOTBALL]
    assert store.language_counts() == {"en": 2, "ar": 1}
    assert store.languages() == ["en", "ar"]
    assert (store.count_articles(), store.count_passages()) == (2, 3)
    assert store.outlets() == [("Reuters", 2)]


def test_recent_mean_vector_averages_the_latest_passages(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert store.recent_mean_vector("e5", "en", 2) is None
    store.put(new_article("Old", [FOOTBALL], url="https://x.test/1"))
    store.put(new_article("New", BODY, url="https://x.test/2"))
    mean, n = store.recent_mean_vector("e5", "en", 2) or (None, 0)
    assert n == 2
    assert np.allclose(mean, HashEncoder().embed_passages(BODY).mean(axis=0), atol=1e-3)


def test_filters_restrict_search(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([
        article("A", BODY, url="https://a.test/1", outlets=("Reuters",),
                published=datetime(2015, 9, 30, tzinfo=UTC)),
        article("B", ["Strikes near the northern city were reported by another agency on "
                      "Monday, citing witnesses."],
                url="https://a.test/2", outlets=("AFP",),
                published=datetime(2015, 10, 5, tzinfo=UTC)),
    ])
    allowed = ix.store.passage_filter(outlets=["afp"])
    q = ix.model.embed_queries(["strikes northern city"])[0]
    hits = ix.store.search("e5", "en", q, 5, allowed)
    assert {ix.store.passages([h])[h].title for h, _ in hits} == {"B"}
    allowed = ix.store.passage_filter(since=datetime(2015, 10, 1, tzinfo=UTC))
    assert len(allowed or ()) == 1
    assert np.isfinite(hits[0][1])
    assert ix.store.passage_filter() is None  # no filter: everything is allowed


def test_sentence_vectors_are_stored_per_passage_and_go_with_it(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    two = ("The army said on Wednesday that it struck targets near the city. "
           "Officials said the strikes would continue despite the warnings.")
    ix.add_articles([article("Strikes", [two, EXTRA], url="https://x.test/a")])
    rows = {r["text"]: r["id"] for r in ix.store.iter_passages()}
    mats = ix.store.sentence_vectors("e5", list(rows.values()))
    enc = ix.model
    for text, pid in rows.items():
        sents = passage_sentences(text)
        assert mats[pid].shape == (len(sents), enc.dim)
        # int8 on disk (layout 4): each sentence's vector stays within 1e-3 (cosine) of
        # what the encoder made
        exact = enc.embed_passages(sents)
        cos = (mats[pid] * exact).sum(axis=1) / np.linalg.norm(mats[pid], axis=1)
        assert (cos > 0.999).all()
    assert len(mats[rows[two]]) == 2 and len(mats[rows[EXTRA]]) == 1
    assert np.array_equal(mats[rows[EXTRA]][0], ix.store.vectors("e5", [rows[EXTRA]])[rows[EXTRA]])
    assert ix.store.sentence_vectors("use", list(rows.values())) == {}  # no such space
    assert ix.store.check([]) == []
    ix.store.delete_articles(ix.store.article_ids())
    assert ix.store.sentence_vectors("e5", list(rows.values())) == {}


def test_a_one_sentence_passage_stores_no_sentence_matrix_of_its_own(tmp_path: Path
                                                                    ) -> None:
    ix = open_index(tmp_path)
    two = ("The army said on Wednesday that it struck targets near the city. "
           "Officials said the strikes would continue despite the warnings.")
    ix.add_articles([article("Strikes", [two, EXTRA], url="https://x.test/a")])
    rows = {r["text"]: r["id"] for r in ix.store.iter_passages()}
    # Its passage vector is read instead; two sentences: int8 codes and a scale each.
    blobs = dict(ix.store._conn().execute("SELECT passage_id, length(vecs) FROM"
                                          " sentence_vectors WHERE space = 'e5'"))
    assert blobs[rows[EXTRA]] == 0 and blobs[rows[two]] == 2 * (ix.model.dim + 4)


def test_articles_of_a_period_with_their_passages(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    day = lambda d: datetime(2024, 3, d, 12, tzinfo=UTC)  # noqa: E731
    ix.add_articles([article("Early", BODY, url="https://x.test/1", published=day(1)),
                     article("Later", [THIRD, EXTRA], url="https://x.test/2",
                             outlets=("AFP",), published=day(5)),
                     article("Undated", [FOOTBALL], url="https://x.test/3")])
    found = ix.store.articles_in(since=day(2), until=day(10))
    assert [(a.title, a.outlets, a.when) for a in found] == [("Later", ["AFP"], day(5))]
    # Undated articles count by their ingest date: today, not March 2024.
    assert [a.title for a in ix.store.articles_in()] == ["Early", "Later", "Undated"]
    assert [a.title for a in ix.store.articles_in(outlets=["afp"])] == ["Later"]
    passages = ix.store.article_passages([found[0].id])
    assert [p.text for p in passages] == [THIRD, EXTRA] and passages[0].dup_of is None



def test_stored_tokens_are_the_passages_analysis(tmp_path: Path) -> None:
    """What answers read instead of analysing a passage's text again."""
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", BODY, url="https://x.test/a")])
    rows = {r["id"]: r["text"] for r in ix.store.iter_passages()}
    got = ix.store.passage_tokens([*rows, 999])
    assert sorted(got) == sorted(rows)
    for pid, text in rows.items():
        assert got[pid].split() == lexical_tokens(text) and got[pid]


def test_neighbours_are_the_adjacent_paragraphs_of_the_same_article(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", [*BODY, THIRD], url="https://x.test/a"),
                     article("Other", [EXTRA, FOOTBALL], url="https://x.test/b")])
    ids = {(r["article_id"], r["position"]): r["id"] for r in ix.store.iter_passages()}
    (a, b) = sorted({art for art, _ in ids})
    near = ix.store.neighbours([ids[(a, 1)], ids[(a, 0)], ids[(b, 1)], 999])
    assert [p.text for p in near[ids[(a, 1)]]] == [BODY[0], THIRD]  # reading order
    assert [p.text for p in near[ids[(a, 0)]]] == [BODY[1]]  # none before the first
    assert [p.text for p in near[ids[(b, 1)]]] == [EXTRA]  # never another article's
    assert near[999] == []
    first = near[ids[(a, 1)]][0]
    assert (first.title, first.url, first.position, first.n_passages) == \
        ("Strikes", "https://x.test/a", 0, 3)
    assert [p.position for p in ix.store.neighbours([ids[(a, 0)]], span=2)[ids[(a, 0)]]] \
        == [1, 2]


def test_neighbours_are_an_indexed_read_not_a_scan(tmp_path: Path) -> None:
    """A question reads a handful of rows whatever the archive's size: the plan of the
    neighbour join must search by key and index, never scan the passages."""
    ix = open_index(tmp_path)
    ix.add_articles([article("Strikes", [*BODY, THIRD], url="https://x.test/a")])
    db = sqlite3.connect(ix.store.db_path)
    plan = " | ".join(r[-1] for r in db.execute(
        "EXPLAIN QUERY PLAN " + NEIGHBOURS_SQL.format(marks="?,?"), [1, 1, 1, 2]))
    db.close()
    assert "SCAN" not in plan, plan
    assert "passages_article" in plan, plan


def test_neighbours_of_an_article_whose_ids_are_not_consecutive(tmp_path: Path) -> None:
    """Milvus reads the ids around a passage first (an article's passages have
    consecutive ids when ``put`` gives them); a copy that kept other ids is read by
    its article instead, and finds the same neighbours."""
    store = open_store(tmp_path)
    new = new_article("Strikes", [*BODY, THIRD], url="https://x.test/a")
    new.kept = Kept(5, (10, 20, 30), datetime(2025, 1, 2, tzinfo=UTC))
    assert store.put(new).article_id == 5
    near = store.neighbours([20, 10, 30])
    assert [p.id for p in near[20]] == [10, 30]
    assert [p.text for p in near[10]] == [BODY[1]] and [p.text for p in near[30]] == [BODY[1]]
    assert [a.ingested for a in store.articles_in()] == [datetime(2025, 1, 2, tzinfo=UTC)]
    store.close()
