"""Fusion and merging logic (pure functions)."""

from __future__ import annotations

from khabar.retrieval._fusion import interleave, rrf, zavg
from khabar.retrieval._search import Searcher


def test_rrf_rewards_agreement() -> None:
    fused = dict(rrf([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 1.0)]], k=60))
    assert max(fused, key=fused.get) == 2


def test_zavg_keeps_how_much_better() -> None:
    # Encoder A barely prefers 1; encoder B is sure about 2.
    fused = zavg([{1: 0.80, 2: 0.79, 3: 0.78}, {1: 0.10, 2: 0.90, 3: 0.11}])
    assert fused[0][0] == 2


def test_interleave_drops_repeats() -> None:
    assert [p for p, _ in interleave([(1, 1), (2, 1)], [(2, 1), (3, 1)])] == [1, 2, 3]


def test_small_language_pools_do_not_take_top_slots() -> None:
    per_lang = {"ar": [(1, 0.9), (2, 0.8)], "en": [(9, 0.1)], "other": [(7, 0.5)]}
    merged = Searcher._merge("en", per_lang, {"ar": 1200, "en": 1, "other": 4})
    assert [p for p, _ in merged] == [1, 2, 9, 7]
    # Real pools take turns, the question's language first.
    merged = Searcher._merge("en", {"ar": [(1, 0.9), (2, 0.8)], "en": [(9, 0.1), (10, 0.05)]},
                             {"ar": 1200, "en": 300})
    assert [p for p, _ in merged] == [9, 1, 10, 2]
