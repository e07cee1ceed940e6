"""Questions answered over the real model and store: the seed, filters, follow-ups,
abstention, citations, and khabar inside LangChain."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from khabar.index import Article, Index
from khabar.retrieval import (
    Answer,
    AnswerSentence,
    CitationError,
    Filters,
    Khabar,
    Query,
    Source,
    check_citations,
)
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

ALEPPO = "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def khabar(seed_index: Index) -> Khabar:
    return Khabar(seed_index)


@pytest.mark.parametrize("question", ["who struck Aleppo?", "من قصف حلب؟"])
def test_seed_questions_land_on_the_aleppo_paragraph(khabar: Khabar, question: str) -> None:
    answer = khabar.ask(question)
    assert not answer.abstained, answer.confidence
    assert answer.sources[0].text.startswith(ALEPPO)
    src = answer.sources[0]
    assert src.title == "أميركا تقصف في حلب ردا على القصف الروسي في حمص"
    assert set(src.outlets) == {"Reuters", "AFP", "agencies"}
    assert src.position == 0
    assert any(ALEPPO in s.text for s in answer.sentences)
    check_citations(answer)


def test_answer_language_follows_the_question(khabar: Khabar) -> None:
    assert khabar.ask("من قصف حلب؟").lang == "ar"
    assert khabar.ask("who struck Aleppo?").lang == "en"


@pytest.mark.parametrize("question", ["what is the weather in Cairo tomorrow?",
                                      "ما هي حالة الطقس في القاهرة غدا؟",
                                      "who won the football world cup final?"])
def test_off_topic_questions_abstain(khabar: Khabar, question: str) -> None:
    answer = khabar.ask(question)
    assert answer.abstained, (question, answer.confidence)
    assert answer.sources == [] and answer.sentences == []
    assert len(answer.related) <= 3
    assert answer.to_dict()["abstained"] is True


def test_follow_up_is_expanded_with_the_previous_question(khabar: Khabar) -> None:
    q = khabar.understand("and what about Homs?", previous="who struck Aleppo?")
    assert q.follow_up_of == "who struck Aleppo?"
    assert "Aleppo" in q.search_text and "Homs" in q.search_text
    standalone = khabar.understand("what did the French defence minister say?",
                                   previous="who struck Aleppo?")
    assert standalone.follow_up_of is None


def _article(title: str, text: str, outlet: str, day: int, url: str) -> Article:
    return Article(title=title, paragraphs=[text], outlets=[outlet], url=url, lang="en",
                   published=datetime(2024, 3, day, 12, tzinfo=UTC))


def test_outlet_and_date_filters(real_index: Index) -> None:
    real_index.add_articles([
        _article("Port reopens", "The port of Beirut reopened to container ships on Monday "
                 "after repairs to its main terminal, port officials told Reuters.",
                 "Reuters", 4, "https://r.test/1"),
        _article("Port traffic", "Container traffic at the port of Beirut rose sharply this "
                 "week as shipping lines returned, AFP reported citing customs data.",
                 "AFP", 10, "https://a.test/2"),
    ])
    khabar = Khabar(real_index)
    now = datetime(2024, 3, 11, 9, tzinfo=UTC)
    by_outlet = khabar.ask("what happened at the port of Beirut according to Reuters?",
                           now=now)
    assert by_outlet.query.filters.outlets == ["Reuters"]
    assert {s.outlets[0] for s in by_outlet.sources + by_outlet.related} == {"Reuters"}
    recent = khabar.ask("port of Beirut traffic", filters=Filters(
        since=datetime(2024, 3, 8, tzinfo=UTC)), now=now)
    assert {s.title for s in recent.sources + recent.related} == {"Port traffic"}
    newest = khabar.search(khabar.understand("the port of Beirut", filters=Filters(
        recent_first=True)), k=2).hits
    assert [h.passage.title for h in newest] == ["Port traffic", "Port reopens"]
    yesterday = khabar.understand("what happened at the port yesterday?", now=now)
    assert yesterday.filters.since == datetime(2024, 3, 10, tzinfo=UTC)
    arabic = khabar.understand("ماذا حدث في الميناء حسب رويترز؟", now=now)
    assert arabic.filters.outlets == ["Reuters"]


def test_langchain_retriever_in_an_lcel_chain(khabar: Khabar) -> None:
    retriever = khabar.retriever(k=2)
    docs = retriever.invoke("who struck Aleppo?")
    assert docs[0].page_content.startswith(ALEPPO)
    assert docs[0].metadata["outlets"] and docs[0].metadata["position"] == 0
    llm = FakeListChatModel(responses=["The United States struck near Aleppo [1]."])
    prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
    chain = ({"context": retriever | RunnableLambda(lambda ds: ds[0].page_content),
              "question": RunnablePassthrough()} | prompt | llm | StrOutputParser())
    assert chain.invoke("who struck Aleppo?").endswith("[1].")
    emb = khabar.embeddings()
    assert len(emb.embed_query("حلب")) == len(emb.embed_documents(["حلب"])[0]) == 384


def test_generated_answer_drops_unsupported_citations(seed_index: Index) -> None:
    llm = FakeListChatModel(responses=["US aircraft struck near Aleppo [1], not Homs [7]."])
    answer = Khabar(seed_index, llm=llm).ask("who struck Aleppo?")
    assert answer.generated == "US aircraft struck near Aleppo [1], not Homs."
    check_citations(answer)


def test_unknown_llm_provider_is_a_clear_config_error() -> None:
    from khabar.retrieval._generate import load_chat_model

    from khabar import ConfigError

    with pytest.raises(ConfigError, match="no-such-provider"):
        load_chat_model("no-such-provider:model-x")


def _source(n: int) -> Source:
    return Source(n=n, outlets=["AFP"], title="t", published=None, url=None, position=0,
                  n_passages=1, article_id=1, passage_id=n, text="x", lang="en", score=1.0)


@given(n=st.integers(0, 6), cited=st.lists(st.integers(1, 9), max_size=6),
       generated=st.lists(st.integers(1, 9), max_size=4))
def test_citations_always_refer_to_shown_sources(n: int, cited: list[int],
                                                 generated: list[int]) -> None:
    from khabar.retrieval._generate import strip_unsupported

    sources = [_source(i) for i in range(1, n + 1)]
    text = " ".join(f"claim [{g}]." for g in generated)
    answer = Answer("q", "en", Query("q", "q", "en"),
                    [AnswerSentence("s", c) for c in cited if c <= n], sources,
                    generated=strip_unsupported(text, {s.n for s in sources}) or None)
    check_citations(answer)  # what khabar builds always passes
    if n and any(c > n for c in cited):
        bad = Answer("q", "en", Query("q", "q", "en"), [AnswerSentence("s", max(cited))],
                     sources)
        with pytest.raises(CitationError):
            check_citations(bad)


def test_the_archive_is_on_the_backend_this_run_is_for(seed_index: Index,
                                                       archive_backend: str) -> None:
    from khabar.store import MilvusStore, Store

    assert isinstance(seed_index.store,
                      MilvusStore if archive_backend == "milvus-lite" else Store)


TOWNS = "وأضاف التلفزيون أن الضربات شملت مناطق الرستن"


@pytest.mark.parametrize("question", [
    # The int8 sentence graph is 7-bit: this answer no longer depends on VNNI (lost without).
    "which towns did Syrian state television say were hit?",
    "ما المناطق التي قال التلفزيون السوري إن الضربات شملتها؟"])
def test_an_answer_in_the_next_paragraph_is_quoted_and_cited(khabar: Khabar,
                                                             question: str) -> None:
    """The seed names Syrian television in one paragraph and gives the towns it said
    were hit in the next: the answer must quote the towns, cited to the seed article,
    and show that sentence with the passage it completes."""
    answer = khabar.ask(question)
    assert not answer.abstained, answer.confidence
    towns = [s for s in answer.sentences if s.text.startswith(TOWNS)]
    assert towns, [s.text[:60] for s in answer.sentences]
    (s,) = towns
    src = answer.sources[s.source - 1]
    assert src.title == "أميركا تقصف في حلب ردا على القصف الروسي في حمص"
    if s.position is None:  # the towns paragraph itself is shown
        assert src.text.startswith(TOWNS)
    else:  # a neighbour of the cited passage, shown with it, from the same article
        assert abs(s.position - src.position) == 1 and not src.text.startswith(TOWNS)
        assert [c.text for c in src.context] == [s.text]
        assert [c.position for c in src.context] == [s.position]
    check_citations(answer)


def test_a_sentence_inherits_part_of_its_predecessors_lead_within_its_article() -> None:
    from khabar.retrieval._answer import _inherited

    # Paragraphs 5 (two sentences) and 6 of article 1, paragraph 6 of article 2.
    out = _inherited(np.array([2.0, 0.0, -1.0, 5.0]), [(1, 5, 2), (1, 6, 1), (2, 6, 1)], 0.5)
    # The first has no predecessor here; the second gains half of the first's lead; the
    # next paragraph's first sentence half of the second's (as scored, not as raised);
    # article 2's paragraph 6 follows nothing of its own article.
    assert out.tolist() == [2.0, 1.0, -0.5, 5.0]
    assert _inherited(np.array([0.0, 3.0]), [(1, 0, 2)], 0.8).tolist() == [0.0, 3.0]
