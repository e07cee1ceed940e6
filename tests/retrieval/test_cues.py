"""The question's particulars in the evidence (retrieval/_cues.py, _abstain.cue_features):
names across scripts, numbers, the answer type, the rarity of words."""

from __future__ import annotations

import numpy as np
import pytest
from khabar.retrieval import _cues as cues
from khabar.retrieval._abstain import Background, Evidence, PassageEvidence, cue_features

from khabar.text import lexical_tokens


@pytest.mark.parametrize(("latin", "arabic"), [
    ("Ratzel", "راتزل"), ("Kuechly", "كوتشلي"), ("Harvard", "هارفارد"),
    ("Kavanaugh", "كافانو"), ("Fleischer", "فلايشر"), ("Rhineland", "راينلاند"),
    ("Atkinson", "أتكينسون"), ("Buckinghamshire", "باكينجهامشاير")])
def test_a_name_is_found_across_scripts(latin: str, arabic: str) -> None:
    assert cues.names_across(f"Where was {latin} born?", "en", f"ولد {arabic} في")[1] == 1.0
    assert cues.names_across(f"أين ولد {arabic}؟", "ar", f"The house of {latin} stood")[1] > 0


@pytest.mark.parametrize(("latin", "arabic"), [
    ("Wesley", "ويسلي"), ("Happy", "هابي"), ("Days", "دايز"),  # two consonant classes
    ("Jochi", "يوتشي"),  # j written ي
    ("Börte", "بورته"),  # an accent, and a final ه for a vowel
    ("Gaga", "غاغا"), ("Kyoto", "كيوتو")])
def test_a_short_name_is_found_by_its_vowels(latin: str, arabic: str) -> None:
    assert cues.names_across(f"Where was {latin} born?", "en", f"ولد {arabic} في")[1] == 1.0
    assert cues.names_across(f"أين ولد {arabic}؟", "ar", f"The house of {latin} stood")[1] > 0


def test_a_short_name_needs_its_vowels_to_agree() -> None:
    # The same consonants (S L, H B) with other vowels, or three classes only, are not it.
    assert cues.names_across("Where was Wesley born?", "en", "ولد سالي في")[1] == 0.0
    assert cues.names_across("أين ولد هوبا؟", "ar", "The house of Happy stood")[1] == 0.0
    assert not cues.latin_vocal("Ben") and not cues.arabic_vocal("بين")  # too short to tell
    assert cues.names_across("أين ولد التي؟", "ar", "The house of Ben stood")[1] == 0.0


def test_names_of_other_people_are_not_found() -> None:
    # A near-topic passage (the same sport, other players) holds none of the names.
    n, share = cues.names_across("Holt went with the same Livingston side that beat Hearts", "en",
                                 "قال المدرب إن فريقه لعب جيدا أمام سلتيك ورينجرز")
    assert n == 2 and share == 0.0
    assert cues.names_across("Is your watch correct?", "en", "ساعة")[0] == 0  # no names


def test_numbers_compare_as_values_in_any_digits() -> None:
    assert cues.numbers("قتل ١٢ شخصا عام 2018 و 1,200 جريح.") == {"12", "2018", "1200"}
    assert cues.numbers_found("12 people died in 2018", ["قتل ١٢ شخصا عام ٢٠١٨"]) == (2.0, 1.0)
    assert cues.numbers_found("12 people died in 2018", ["قتل 7 أشخاص"]) == (2.0, 0.0)
    assert cues.numbers_found("who struck Aleppo?", ["1999"]) == (0.0, 0.0)


@pytest.mark.parametrize(("question", "kind"), [
    ("When did the allies leave the Rhineland?", "when"), ("متى بلغت الهجمات ذروتها؟", "when"),
    ("In what year was it built?", "when"), ("‏كم عرقلة سجل لوك كوتشلي؟", "count"),
    ("How many people live there?", "count"), ("ما عدد سكان القاهرة؟", "count"),
    ("who struck Aleppo?", ""), ("من قصف حلب؟", ""), ("The allies left in 1930.", "")])
def test_what_a_question_asks_for(question: str, kind: str) -> None:
    assert cues.asks(question) == kind


def test_a_date_or_number_answers_its_kind_of_question() -> None:
    assert cues.holds_type("when", "The allies left the Rhineland in 1930.")
    assert cues.holds_type("when", "غادر الحلفاء في تموز")
    assert not cues.holds_type("when", "The allies left the Rhineland.")
    assert cues.holds_type("count", "قتل ١٢ شخصا") and cues.holds_type("count", "three died")
    assert not cues.holds_type("count", "many died")


def _passage(text: str, lang: str, cos: list[float]) -> PassageEvidence:
    return PassageEvidence(lang, {}, frozenset(lexical_tokens(text)),
                           {"e5": np.array(cos), "use": np.array(cos)}, text)


def test_cues_read_the_best_sentence_and_its_neighbours() -> None:
    text = ("The treaty was signed in spring. Troops stayed for years. "
            "Nothing else happened there. The allies left the Rhineland in 1930.")
    q = "When did the allies leave the Rhineland?"
    ev = Evidence("en", lexical_tokens(q), text=q)
    at_end = cue_features(ev, _passage(text, "en", [0.1, 0.2, 0.3, 0.9]))
    assert at_end["type_ok"] == 1.0 and at_end["type_miss"] == 0.0
    assert at_end["coverage_win"] > 0.5  # allies, Rhineland (leave/left stem apart)
    at_start = cue_features(ev, _passage(text, "en", [0.9, 0.2, 0.1, 0.1]))
    assert at_start["type_ok"] == 0.0 and at_start["type_miss"] == 1.0  # 1930 is too far
    assert at_start["coverage_win"] < at_end["coverage_win"]
    # Evidence without texts (an old cache) gives no cue rather than an error.
    assert cue_features(Evidence("en", ["x"]), _passage("", "en", [0.5]))["type_ok"] == 0.0


def test_rare_words_weigh_more_than_common_ones() -> None:
    docs = [frozenset({"said", "govern"})] * 50 + [frozenset({"said", "aleppo"})]
    bg = Background.fit({}, texts={"en": docs})
    said, aleppo, unseen = bg.idf("en", ["said", "aleppo", "zzzq"])
    assert said < aleppo < unseen
    assert np.all(Background({}).idf("ar", ["x", "y"]) == 1.0)  # no table: all alike
    back = Background.from_bytes(bg.to_bytes())
    assert back.idf("en", ["aleppo"])[0] == pytest.approx(aleppo)


def test_a_model_reads_the_same_cues_when_only_its_own_are_computed() -> None:
    from khabar.retrieval._abstain import AbstentionModel, passage_features

    q = "Holt said 12 people died in Harvard in 2018"
    ev = Evidence("en", lexical_tokens(q), text=q)
    p = _passage("قال هولت إن ١٢ شخصا ماتوا في هارفارد. وكان ذلك عام 2018.", "ar", [0.8, 0.7])
    need = frozenset(AbstentionModel.shipped().features)
    every, own = passage_features(ev, p), passage_features(ev, p, need)
    assert every["names_found_cross"] == 1.0 and every["num_found"] == 1.0
    assert {n: own[n] for n in need} == {n: every[n] for n in need}


def test_a_hostile_long_word_costs_nothing_and_is_never_cached() -> None:
    word = "Cbcbcbcbcbcbcbc" + "lmnrb" * 800  # built letter by letter, 256 variants: ~1 MB
    sizes = [f.cache_info().currsize for f in (cues._latin_vocal, cues._latin_skeleton)]
    assert not cues.latin_vocal(word) and not cues.latin_skeleton(word)
    assert not cues.arabic_vocal("ب" * 5000) and not cues.arabic_skeletons("ب" * 5000)
    assert [f.cache_info().currsize for f in (cues._latin_vocal, cues._latin_skeleton)] == sizes
    assert cues.names_across("Who is " + word + "?", "en", "قال " + "ب" * 5000) is not None
