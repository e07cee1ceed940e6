"""LangChain's own standard test suites (``langchain-tests``) against khabar's
integrations, on the real model and a real index, and what the suites leave out:
``k`` per call on ``ainvoke``, empty results, citations in the metadata."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from khabar.index import Article, Index
from khabar.retrieval import Filters, Khabar, KhabarEmbeddings, KhabarRetriever
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from khabar.model import Encoder

pytestmark = pytest.mark.model

QUESTION = "who struck Aleppo?"


@pytest.fixture(scope="module")
def khabar(seed_index: Index) -> Khabar:
    """The seed article (13 Arabic passages): ``k`` of 1, 3 or 5 is always filled."""
    return Khabar(seed_index)


def _encoder(encoders: list[Encoder], space: str) -> Encoder:
    return next(e for e in encoders if e.space == space)


# The suites take the class and its constructor's arguments as properties, so the
# session's fixtures reach them through an autouse fixture that keeps them on the
# test instance (pytest binds fixture methods to the instance running the test).


class TestKhabarRetriever(RetrieversIntegrationTests):
    """An English question over the Arabic seed: khabar's cross-lingual case."""

    @pytest.fixture(autouse=True)
    def _khabar(self, khabar: Khabar) -> None:
        self.khabar = khabar

    @property
    def retriever_constructor(self) -> type[KhabarRetriever]:
        return KhabarRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"khabar": self.khabar}

    @property
    def retriever_query_example(self) -> str:
        return QUESTION


class TestKhabarRetrieverArabic(TestKhabarRetriever):
    """The same suite with the question in the seed's own language."""

    @property
    def retriever_query_example(self) -> str:
        return "من قصف حلب؟"


class TestKhabarEmbeddings(EmbeddingsIntegrationTests):
    """The main encoder (e5), as ``Khabar.embeddings()`` hands it out."""

    space = "e5"

    @pytest.fixture(autouse=True)
    def _encoder(self, encoders: list[Encoder]) -> None:
        self.encoder = _encoder(encoders, self.space)

    @property
    def embeddings_class(self) -> type[KhabarEmbeddings]:
        return KhabarEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"encoder": self.encoder}


class TestKhabarEmbeddingsUSE(TestKhabarEmbeddings):
    """The second encoder (multilingual USE) wraps the same way."""

    space = "use"


class TestKhabarEmbeddingsUnit(EmbeddingsUnitTests):
    @pytest.fixture(autouse=True)
    def _encoder(self, encoders: list[Encoder]) -> None:
        self.encoder = _encoder(encoders, "e5")

    @property
    def embeddings_class(self) -> type[KhabarEmbeddings]:
        return KhabarEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"encoder": self.encoder}


async def test_k_per_call_overrides_the_field_sync_and_async(khabar: Khabar) -> None:
    retriever = khabar.retriever(k=2)
    assert len(retriever.invoke(QUESTION)) == 2
    assert len(retriever.invoke(QUESTION, k=1)) == 1
    assert len(await retriever.ainvoke(QUESTION, k=4)) == 4
    assert len(await retriever.ainvoke(QUESTION)) == 2
    assert retriever.k == 2  # a per-call k is not kept
    assert len(khabar.retriever().invoke(QUESTION)) == 5  # the default is unchanged
    # The same passages, sync or async: k only cuts the list.
    top = [d.id for d in retriever.invoke(QUESTION, k=4)]
    assert [d.id for d in await retriever.ainvoke(QUESTION, k=4)] == top
    assert [d.id for d in retriever.invoke(QUESTION)] == top[:2]


async def test_bad_k_and_unknown_keywords_are_refused(khabar: Khabar) -> None:
    retriever = khabar.retriever()
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            retriever.invoke(QUESTION, k=bad)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        await retriever.ainvoke(QUESTION, k=0)
    with pytest.raises(ValidationError):
        KhabarRetriever(khabar=khabar, k=0)
    with pytest.raises(TypeError, match="top_k"):  # a typo is not silently ignored
        retriever.invoke(QUESTION, top_k=1)


async def test_empty_results_are_an_empty_list(khabar: Khabar, real_index: Index) -> None:
    retriever = khabar.retriever()
    assert retriever.invoke("") == retriever.invoke("   ") == []
    assert await retriever.ainvoke(" ") == []
    nobody = khabar.retriever(filters=Filters(outlets=["Nobody"]))
    assert nobody.invoke(QUESTION) == []
    assert await nobody.ainvoke(QUESTION, k=1) == []
    empty = Khabar(real_index).retriever()  # an index with nothing in it
    assert empty.invoke(QUESTION) == []
    assert await empty.ainvoke(QUESTION, k=3) == []


def test_documents_carry_checkable_citations(real_index: Index) -> None:
    published = datetime(2024, 3, 4, 12, tzinfo=UTC)
    real_index.add_articles([Article(
        title="Port reopens", url="https://r.test/1", outlets=["Reuters"], lang="en",
        published=published,
        paragraphs=["The port of Beirut reopened to container ships on Monday after repairs "
                    "to its main terminal, port officials told Reuters."])])
    docs = Khabar(real_index).retriever(k=1).invoke("when did the port of Beirut reopen?")
    assert len(docs) == 1
    doc = docs[0]
    assert doc.page_content.startswith("The port of Beirut reopened")
    meta = doc.metadata
    assert meta["title"] == "Port reopens"
    assert meta["outlets"] == ["Reuters"]
    assert meta["url"] == "https://r.test/1"
    assert datetime.fromisoformat(meta["published"]) == published
    assert meta["lang"] == "en" and meta["position"] == 0
    assert doc.id == str(meta["passage_id"])
    # Plain JSON: chains, caches and tracers can store and send it as it is.
    assert json.loads(json.dumps(meta)) == meta
