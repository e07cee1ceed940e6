"""The decision to answer: evidence, the shipped model, the three outcomes, over the
real model and the seed (an Arabic report; English questions about it cross)."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import pytest
from khabar.index import Index
from khabar.retrieval import AnswerConfig, Khabar
from khabar.retrieval._abstain import (
    AbstentionModel,
    Evidence,
    PassageEvidence,
    gather,
    passage_features,
)

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def khabar(seed_index: Index) -> Khabar:
    return Khabar(seed_index)


def _evidence(khabar: Khabar, question: str) -> Evidence:
    query = khabar.understand(question)
    result = khabar.search(query, k=5)
    return gather(khabar.index, khabar.searcher.bridge, query, result.hits,
                  result.query_vectors)


def test_the_shipped_model_reads_only_evidence_there_is(khabar: Khabar) -> None:
    model = AbstentionModel.shipped()
    ev = _evidence(khabar, "who struck Aleppo?")
    assert len(ev.hits) == 3 and all(p.sentences.get("e5") is not None for p in ev.hits)
    for p in ev.hits:
        assert set(model.features) <= set(passage_features(ev, p)), "a feature nobody computes"
    text = resources.files("khabar.retrieval").joinpath("abstention_model.json").read_text()
    shipped = json.loads(text)  # installed with the package (package data)
    assert shipped["model"]["features"] == list(model.features)


def test_a_model_file_with_mismatched_lengths_is_refused() -> None:
    d = {"features": ["e5", "use"], "mean": [0.0, 0.0], "scale": [1.0], "coef": [1.0, 1.0],
         "intercept": 0.0}
    with pytest.raises(ValueError, match="length"):
        AbstentionModel.from_dict(d)


def test_question_words_count_across_languages_through_the_bridge(khabar: Khabar) -> None:
    # An English question over the Arabic seed: "Aleppo" is found as حلب, so the
    # passage covers the question's words though it shares none of its letters.
    ev = _evidence(khabar, "who struck Aleppo?")
    arabic = [p for p in ev.hits if p.lang == "ar"]
    assert arabic and ev.bridge.get("ar")
    assert max(passage_features(ev, p)["coverage"] for p in arabic) > 0.3
    lone = Evidence(ev.lang, ev.words, {}, [replace(arabic[0])])
    assert passage_features(lone, lone.hits[0])["coverage"] == 0.0  # no bridge, no words


def test_the_best_sentence_is_read_with_its_neighbour() -> None:
    # The answer introduced in one sentence and given in the next: the window is the
    # pair's mean, above a lone best sentence whose neighbours say nothing.
    import numpy as np

    def window(cos: list[float]) -> float:
        p = PassageEvidence("en", {}, frozenset(), {"e5": np.array(cos), "use": np.array(cos)})
        return passage_features(Evidence("en", ["x"]), p)["e5_win"]

    assert window([0.2, 0.8, 0.7]) == pytest.approx(0.75)
    assert window([0.8, 0.2, 0.1]) == pytest.approx(0.5)
    assert window([0.6]) == pytest.approx(0.6)


@pytest.mark.parametrize("question", ["who struck Aleppo?", "من قصف حلب؟",
                                      "what did Russia strike near Homs?"])
def test_covered_questions_are_answered_in_either_language(khabar: Khabar,
                                                            question: str) -> None:
    # "what did Russia strike near Homs?" was abstained on before (0.48 < 0.5): an
    # English question over an Arabic report that the top passage answers.
    answer = khabar.ask(question)
    assert not answer.abstained, (question, answer.confidence)
    assert answer.sentences and answer.sources


def test_three_outcomes_answer_probably_not_covered(seed_index: Index) -> None:
    question = "who struck Aleppo?"
    plain = Khabar(seed_index, answer=AnswerConfig(min_confidence=0.0, sure=0.0)).ask(question)
    assert not plain.abstained and not plain.probably and plain.sentences
    unsure = Khabar(seed_index, answer=AnswerConfig(min_confidence=0.0, sure=1.01)).ask(question)
    assert not unsure.abstained and unsure.probably and unsure.sentences and unsure.sources
    assert unsure.to_dict()["probably"] is True
    assert unsure.confidence == pytest.approx(plain.confidence)
    refused = Khabar(seed_index, answer=AnswerConfig(min_confidence=1.01)).ask(question)
    assert refused.abstained and not refused.probably and refused.related


def test_the_answer_reads_the_bridge_once_a_question(khabar: Khabar,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The search's bridge groups serve the abstention's evidence (~2 ms at 100k each),
    # and give the same confidence as groups made again.
    bridge = khabar.searcher.bridge
    assert bridge is not None
    query = khabar.understand("who struck Aleppo?")
    result = khabar.search(query, k=5)
    assert set(result.bridge_groups) == {"ar"}
    again = gather(khabar.index, bridge, query, result.hits, result.query_vectors)
    shared = gather(khabar.index, bridge, query, result.hits, result.query_vectors,
                    bridge_groups=result.bridge_groups)
    model = AbstentionModel.shipped()
    assert model.confidence(shared) == pytest.approx(model.confidence(again))
    calls = []
    real = bridge.query_groups
    monkeypatch.setattr(bridge, "query_groups",
                        lambda text, lang: calls.append(lang) or real(text, lang))
    answer = khabar.ask("who struck Aleppo?")
    assert not answer.abstained and calls == ["ar"]


def test_the_background_gives_a_questions_cosine_statistics_without_the_passages() -> None:
    import numpy as np
    from khabar.retrieval._abstain import Background

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 24)) * np.linspace(2.0, 0.1, 24) + 0.5
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.normal(size=24)
    q /= np.linalg.norm(q)
    cos = x @ q
    full = Background.fit({("e5", "en"): x}, rank=24)
    assert full.stats("e5", "en", q) == pytest.approx((cos.mean(), cos.std()), rel=1e-4)
    # Few directions kept, the rest as one variance: close, from a file without pickle.
    low = Background.from_bytes(Background.fit({("e5", "en"): x}, rank=8).to_bytes())
    mu, sd = low.stats("e5", "en", q)
    assert mu == pytest.approx(cos.mean(), rel=1e-4) and sd == pytest.approx(cos.std(), rel=0.2)
    assert low.stats("e5", "ar", q) == (0.0, 0.0) == low.stats("e5", "en", None)
    assert low.stats("e5", "en", np.ones(64) / 8) == (0.0, 0.0)  # another encoder's vector


def test_the_shipped_background_fits_the_encoders(khabar: Khabar) -> None:
    # Fitted on the real encoders' passage vectors: the seed's best passage for a
    # question it answers stands well above the question's background, in the passage's
    # language, whichever the question's; the background has both languages per space.
    from khabar.retrieval._abstain import Background

    background = Background.shipped()
    for question in ("who struck Aleppo?", "من قصف حلب؟"):
        ev = _evidence(khabar, question)
        for space, q in ev.vectors.items():
            assert background.stats(space, "en", q)[1] > 0
            assert background.stats(space, "ar", q)[1] > 0
        f = passage_features(ev, ev.hits[0])
        # About two deviations above it or more ("who struck Aleppo?": 1.98 over int8
        # sentence vectors, 2.01 over fp32 ones).
        assert f["e5_sent_bz"] > 1.8 and f["e5_bz"] > 1.0, (question, f["e5_sent_bz"],
                                                             f["e5_bz"])


def test_a_specific_question_reads_rarer_than_a_generic_one() -> None:
    # The question's rarest words, read in the shipped sample of its language: a
    # question naming a place (حلب, Aleppo) is more specific than one of everyday words,
    # whichever the passage; ``rarity_coverage`` counts it only where the words are.
    from khabar.retrieval._abstain import Background

    from khabar.text import lexical_tokens

    text = "قصفت طائرات حربية مدينة حلب"
    passage = PassageEvidence("ar", {}, frozenset(lexical_tokens(text)), {}, text)
    elsewhere = PassageEvidence("ar", {}, frozenset(lexical_tokens("الطقس معتدل")), {}, "")

    def features(question: str, lang: str, p: PassageEvidence) -> dict[str, float]:
        return passage_features(Evidence(lang, lexical_tokens(question), text=question), p,
                                frozenset(["rarity", "rarity3", "rarity_coverage"]))

    aleppo = features("من قصف حلب؟", "ar", passage)
    generic = features("من امها؟", "ar", passage)
    assert aleppo["rarity"] > generic["rarity"] + 1.0, (aleppo, generic)
    assert aleppo["rarity3"] >= aleppo["rarity"] > 0
    assert features("من قصف حلب؟", "ar", elsewhere)["rarity"] == aleppo["rarity"]
    assert aleppo["rarity_coverage"] == pytest.approx(aleppo["rarity"] * aleppo["coverage"])
    assert features("من قصف حلب؟", "ar", elsewhere)["rarity_coverage"] == 0.0
    # English reads the English sample's table; a language without one reads 1 a word.
    assert features("who struck Aleppo?", "en", passage)["rarity"] > features(
        "what can I do now?", "en", passage)["rarity"]
    empty = Background({})
    assert list(empty.idf("ar", ["حلب", "قصف"])) == [1.0, 1.0]
