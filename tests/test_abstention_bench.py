"""bench/abstention.py is honest: a news event's reports are removed together, and no
scored question trains the model that scores it (no model needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
NTREX = REPO.parent / "shared" / "data" / "raw" / "ntrex"

pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not NTREX.is_dir(), reason="needs ../shared/data")]


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import _abstention_data
        import abstention
        yield abstention, _abstention_data
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_every_report_of_an_event_is_in_one_half(bench) -> None:  # type: ignore[no-untyped-def]
    _, data = bench
    from clustering import EVENTS

    for group in EVENTS:
        halves = {data.half_of({"id": f"ntrex-ar-{doc}-0"}) for doc in group}
        assert len(halves) == 1, group  # "not covered" means no outlet's report is indexed
        # A whole article (the headline sets) goes with its event's passages.
        assert {data.half_of({"id": f"ntrexdoc-ar-{doc}"}) for doc in group} == halves, group
    # Wikipedia: by article, whatever the paragraph
    assert data.half_of({"id": "a", "title": "Normans"}) == \
        data.half_of({"id": "b", "title": "Normans"})


def test_only_the_training_half_of_off_topic_questions_trains(bench) -> None:  # type: ignore[no-untyped-def]
    abstention, _ = bench
    rows = [{"kind": "answerable", "relevant": [False, True, False], "split": ""},
            {"kind": "answerable", "relevant": [False, False, False], "split": ""},
            {"kind": "not_covered", "relevant": [False] * 3, "split": ""},
            {"kind": "off_topic", "relevant": [False] * 3, "split": "train"},
            {"kind": "off_topic", "relevant": [False] * 3, "split": "score"}]
    mats = [np.full((3, 1), float(i)) for i in range(len(rows))]
    x, y = abstention.training(rows, mats)
    # the relevant passage of the first question; nothing of the unanswered second;
    # every passage of the not-covered and the training off-topic question; nothing
    # of the scored off-topic one
    assert x[:, 0].tolist() == [0.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    assert y.tolist() == [1, 0, 0, 0, 0, 0, 0]


def test_article_concentration_counts_the_other_top_passages_of_its_article(bench) -> None:  # type: ignore[no-untyped-def]
    abstention, _ = bench
    group = {"a": "Normans", "b": "Normans", "c": "Tesla"}
    assert abstention.concentration(["a", "b", "c"], group) == [0.5, 0.5, 0.0]
    # a passage of no known article matches nothing, not even another unknown one
    assert abstention.concentration(["x", "y", "a"], group) == [0.0, 0.0, 0.0]
    assert abstention.concentration(["a"], group) == [0.0]


def test_the_oracle_is_the_best_own_threshold(bench) -> None:  # type: ignore[no-untyped-def]
    abstention, _ = bench
    got = abstention.oracle(np.array([0.9, 0.8, 0.2]), np.array([0.1, 0.3, 0.85]))
    # at 0.8: two of three answerable answered, two of three not-covered abstained
    assert got == {"oracle": pytest.approx(2 / 3), "oracle_at": 0.8}
    assert np.isnan(abstention.oracle(np.array([0.9]), np.array([]))["oracle"])


def test_the_short_news_queries_are_headlines_not_their_translated_titles(bench) -> None:  # type: ignore[no-untyped-def]
    # The Arabic articles keep no title (it translates the English headline asked of
    # them); the derived Arabic-title set asks of English passages, its own article's
    # passages relevant, all in one half with their event.
    _, data = bench
    corpus, queries, qrels = data.read_set("ntrex_headline2doc_en2ar")
    assert queries and all("title" not in d for d in corpus)
    corpus, queries, qrels = data.read_set(data.HEADLINES_AR2EN)
    assert len(queries) > 100 and all(q["lang"] == "ar" and q["id"] in qrels for q in queries)
    langs = {d["id"]: d.get("lang") for d in corpus}
    half = {d["id"]: data.half_of(d) for d in corpus}
    for q in queries:
        assert {langs[p] for p in qrels[q["id"]]} == {"en"}
        assert len({half[p] for p in qrels[q["id"]]}) == 1


def test_the_cross_encoder_never_trains_on_the_family_it_scores(bench) -> None:  # type: ignore[no-untyped-def]
    import reranker
    from khabar.retrieval._abstain import Evidence, PassageEvidence

    def row(set_name: str, kind: str, relevant: list[bool]) -> dict:
        hits = [PassageEvidence("en", {}, frozenset(), {}, f"{set_name} passage {i}.")
                for i in range(3)]
        return {"kind": kind, "relevant": relevant,
                "evidence": Evidence("en", [], hits=hits, text=f"{set_name} {kind}?")}

    raw = {s: [row(s, "answerable", [False, True, False]), row(s, "not_covered", [False] * 3),
               row(s, "off_topic", [False] * 3)]
           for s in ("xquad_en2ar", "arcd_test_ar2ar", "ntrex_sent2passage_en2ar")}
    labelled = reranker.pairs(raw["arcd_test_ar2ar"])
    # only the passage judged relevant to an answerable question is positive
    assert [d[2] for d in labelled] == [0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert [(d[3], d[4]) for d in labelled][:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    train = reranker.training_pairs(raw, "xquad", 6, seed=0)
    assert not any(d[0].startswith("xquad") for d in train)
    assert len(train) == 6 and sum(d[2] for d in train) == 2  # both positives, 4 negatives
    capped = reranker.training_pairs(raw, "xquad", 2, seed=0)
    assert len(capped) == 2 and sum(d[2] for d in capped) == 1  # at most half positive
