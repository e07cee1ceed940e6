"""bench/clustering.py's held-out threshold picker (no model needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def pick():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from clustering import pick_threshold
        yield pick_threshold
    finally:
        sys.path.remove(str(REPO / "bench"))


def scored(*rows: tuple[float, float, float]) -> list[tuple[dict, float]]:
    return [({"F1": f1, "P": p}, th) for th, f1, p in rows]


def test_a_tie_is_broken_in_its_middle_not_at_its_edge(pick) -> None:  # type: ignore[no-untyped-def]
    rows = scored((0.40, 0.70, 0.90), (0.41, 0.80, 0.96), (0.42, 0.80, 0.97),
                  (0.43, 0.80, 0.98), (0.44, 0.80, 1.0), (0.45, 0.60, 1.0))
    assert pick(rows) == 0.42  # the lower middle of 0.41-0.44
    assert pick(rows, top=True) == 0.44


def test_precision_below_the_bar_does_not_count(pick) -> None:  # type: ignore[no-untyped-def]
    rows = scored((0.40, 0.90, 0.94), (0.41, 0.75, 0.95), (0.42, 0.70, 1.0))
    assert pick(rows) == 0.41 == pick(rows, top=True)


def test_when_no_threshold_is_precise_enough_the_most_precise_compete(pick) -> None:  # type: ignore[no-untyped-def]
    rows = scored((0.40, 0.90, 0.80), (0.41, 0.85, 0.92), (0.42, 0.80, 0.92),
                  (0.43, 0.50, 0.92), (0.44, 0.40, 0.90))
    assert pick(rows) == 0.41  # best F1 among the 0.92s, not the grid's last
    assert pick(rows, top=True) == 0.44
