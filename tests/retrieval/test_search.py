"""Search: best-sentence rescoring, mixed-language pools, and time words that match
nothing. Real model on real news (NTREX, from ../shared/data) where it matters; the
deterministic encoder for the logic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from khabar.index import Article, Index
from khabar.retrieval import Filters, Khabar, SearchConfig
from khabar.retrieval._answer import best_sentences, to_source

from khabar import Settings
from khabar.text import passage_sentences
from tests.conftest import SHARED, share_models
from tests.fakes import HashEncoder
from tests.retrieval.conftest import backend_settings

NTREX = SHARED / "data" / "benchmarks"
DOCS = ("bbc.381790", "reuters.218861", "nytimes.184822")  # three NTREX news documents


def _ntrex(lang: str) -> dict[str, dict]:
    direction = "ar2en" if lang == "en" else "en2ar"
    path = NTREX / f"ntrex_sent2passage_{direction}" / "corpus.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    return {r["id"]: r for r in rows if any(f"-{d}-" in r["id"] for d in DOCS)}


def _articles(rows: dict[str, dict]) -> list[Article]:
    return [Article(title=r["title"], paragraphs=[r["text"]], url=f"https://ntrex.test/{i}",
                    outlets=[r["source"]], lang=r["lang"]) for i, r in rows.items()]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
          encoders: list, archive_backend: str) -> Iterator[Khabar]:
    """English NTREX passages of three documents and their Arabic translations."""
    if not (NTREX / "ntrex_sent2passage_ar2en").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    home = share_models(tmp_path_factory.mktemp("mixed"), model_home)
    ix = Index.open(backend_settings(home, archive_backend), encoders=encoders)
    ix.add_articles(_articles(_ntrex("en")) + _articles(_ntrex("ar")))
    yield Khabar(ix)
    ix.close()


@pytest.mark.model
def test_a_sentence_finds_its_passage_by_its_best_sentence(mixed: Khabar) -> None:
    # One Arabic sentence, translated from the last sentence of an English passage.
    en = _ntrex("en")["ntrex-en-bbc.381790-2"]["text"]
    ar = _ntrex("ar")["ntrex-ar-bbc.381790-2"]["text"]
    question = passage_sentences(ar)[-1]
    hits = mixed.search(mixed.understand(question), k=10).hits
    english = [h for h in hits if h.passage.lang == "en"]
    assert english[0].passage.text == en
    top = english[0].signals
    # The one sentence is closer to the question than the passage as a whole.
    assert top["use_sent"] > top["use"] and top["e5_sent"] > top["e5"]


@pytest.mark.model
def test_mixed_pool_puts_the_other_language_version_next(mixed: Khabar) -> None:
    en = _ntrex("en")["ntrex-en-nytimes.184822-0"]
    question = passage_sentences(en["text"])[1]  # an English sentence of the passage
    hits = mixed.search(mixed.understand(question), k=4).hits
    assert hits[0].passage.text == en["text"]
    twin = _ntrex("ar")["ntrex-ar-nytimes.184822-0"]["text"]
    assert hits[1].passage.text == twin
    # The Arabic side was guided by the English top hit: the twin is closest to it.
    arabic = [h for h in hits if h.passage.lang == "ar"]
    assert max(arabic, key=lambda h: h.signals["feedback"]).passage.text == twin


@pytest.mark.model
def test_sentence_rescoring_can_be_switched_off(mixed: Khabar) -> None:
    plain = Khabar(mixed.index, search=SearchConfig(sentence_weight=0, feedback_weight=0))
    hits = plain.search(plain.understand("Welsh assembly members worried"), k=3).hits
    assert hits and not any("e5_sent" in h.signals or "feedback" in h.signals for h in hits)


def _port(home: Path, **settings: object) -> Khabar:
    ix = Index.open(Settings(home=home, **settings), encoders=[HashEncoder()])  # type: ignore[arg-type]
    ix.add_articles([Article(
        title="Port reopens", url="https://r.test/1", outlets=["Reuters"], lang="en",
        published=datetime(2024, 3, 4, 12, tzinfo=UTC),
        paragraphs=["The port of Beirut reopened to container ships on Monday after repairs "
                    "to its main terminal. Port officials said traffic would recover soon."])])
    return Khabar(ix)


def test_time_words_that_match_nothing_are_dropped_and_said(tmp_path: Path) -> None:
    khabar = _port(tmp_path)
    now = datetime(2026, 11, 25, tzinfo=UTC)  # nothing indexed is from "yesterday"
    answer = khabar.ask("what happened at the port of Beirut yesterday?", now=now)
    assert answer.query.time_from_text and answer.relaxed == ["time"]
    assert [s.title for s in answer.sources + answer.related] == ["Port reopens"]
    assert answer.to_dict()["relaxed"] == ["time"]
    # Within the period the filter holds and nothing is dropped.
    march = khabar.ask("what happened at the port of Beirut yesterday?",
                       now=datetime(2024, 3, 5, 9, tzinfo=UTC))
    assert march.relaxed == [] and march.query.filters.since is not None
    # Filters set explicitly are the asker's decision: never dropped.
    explicit = khabar.ask("the port of Beirut", now=now,
                          filters=Filters(since=datetime(2026, 1, 1, tzinfo=UTC)))
    assert explicit.relaxed == [] and explicit.sources == explicit.related == []


def test_answers_without_stored_sentence_vectors(tmp_path: Path) -> None:
    khabar = _port(tmp_path, sentence_vectors=False)  # or a store from before them
    assert khabar.index.store.count_sentence_vectors() == {}
    answer = khabar.search(khabar.understand("when did the port of Beirut reopen"), k=1)
    assert answer.hits[0].signals["e5_sent"] == answer.hits[0].signals["e5"]
    src = to_source(1, answer.hits[0])
    picked = best_sentences(khabar.index, khabar.understand("when did the port reopen"),
                            [src], 1)
    assert picked[0].text.startswith("The port of Beirut reopened")


@pytest.mark.model
def test_filters_as_ids_or_as_an_expression_find_the_same(
        mixed: Khabar, archive_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Milvus a filter matching many passages is handed over as its expression
    (``khabar.store._milvus_filter``): dense search, BM25, the lexical bridge and the
    copies shown must keep to it exactly as to the list of its ids."""
    import khabar.store._milvus as milvus_module

    outlet = _ntrex("en")["ntrex-en-bbc.381790-2"]["source"]
    for filters in (Filters(outlets=[outlet]), Filters(outlets=[outlet], langs=["ar"])):
        query = replace(mixed.understand("what did the officials say about it?"),
                        filters=filters)
        as_ids = mixed.search(query, k=10).hits
        assert as_ids and all(outlet in h.passage.outlets for h in as_ids)
        assert not filters.langs or {h.passage.lang for h in as_ids} == {"ar"}
        if archive_backend != "milvus-lite":
            continue
        monkeypatch.setattr(milvus_module, "SMALL", 0)  # every filter an expression
        as_expr = mixed.search(query, k=10).hits
        monkeypatch.undo()
        assert [(h.passage.id, round(h.score, 5), [c.id for c in h.copies])
                for h in as_expr] == [(h.passage.id, round(h.score, 5),
                                       [c.id for c in h.copies]) for h in as_ids]


@pytest.mark.model
def test_bm25_is_the_store_s_own_where_it_offers_one(mixed: Khabar, archive_backend: str
                                                    ) -> None:
    """On Milvus retrieval asks the store's BM25 (nothing per passage in this process,
    no files beside the store); on SQLite it keeps its own. Both rank a question's
    words the same way as the in-process BM25 over the same passages."""
    from khabar.retrieval._lexical import LexicalIndex
    from khabar.retrieval._lexical_store import StoreLexical

    lexical = mixed.searcher.lexical
    assert isinstance(lexical, StoreLexical) == (archive_backend == "milvus-lite")
    if archive_backend == "milvus-lite":  # (before this test's own index saves one)
        assert not (mixed.index.store.path / "lexical" / "bm25.json").exists()
    own = LexicalIndex(mixed.index.store)
    assert lexical.counts() == own.counts()
    question = "What did the officials say about the port?"
    for lang in lexical.counts():
        got, want = lexical.search(lang, question, 5), own.search(lang, question, 8)
        if not want:  # no word of the question in this language's passages
            assert got == []
            continue
        # The same scores up to one factor (Milvus's (k1 + 1)), in float32: passages
        # whose scores tie may come in another order.
        ratio = got[0][1] / want[0][1]
        assert [s for _, s in got] == pytest.approx(
            [ratio * s for _, s in want[:len(got)]], rel=1e-4), (got, want)
        assert {p for p, _ in got} <= {p for p, _ in want}, (got, want)
