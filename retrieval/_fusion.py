"""Rank fusion: reciprocal-rank fusion and z-score averaging of scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Ranked = Sequence[tuple[int, float]]


def rrf(lists: Sequence[Ranked], *, k: int = 60,
        weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: sum of ``w / (k + rank)`` over the lists (rank from 1)."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, w in zip(lists, weights, strict=True):
        for rank, (pid, _) in enumerate(ranked, start=1):
            fused[pid] = fused.get(pid, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def zscores(scores: Mapping[int, float]) -> dict[int, float]:
    """Scores standardised over the candidates (mean 0, sd 1)."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64)
    sd = float(values.std()) or 1.0
    mean = float(values.mean())
    return {pid: (s - mean) / sd for pid, s in scores.items()}


def zavg(score_sets: Sequence[Mapping[int, float]],
         weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Weighted sum of per-query z-scored similarities over the same candidates.

    Unlike RRF it keeps *how much* better a candidate is, which matters when one
    encoder is sure and the other is lukewarm (cross-language names).
    """
    weights = weights or [1.0] * len(score_sets)
    fused: dict[int, float] = {}
    for scores, w in zip(score_sets, weights, strict=True):
        for pid, z in zscores(scores).items():
            fused[pid] = fused.get(pid, 0.0) + w * z
    return sorted(fused.items(), key=lambda kv: -kv[1])


def interleave(first: Ranked, *others: Ranked) -> list[tuple[int, float]]:
    """Round-robin merge, ``first`` leading each round; duplicates dropped."""
    out: list[tuple[int, float]] = []
    seen: set[int] = set()
    lists = [list(first), *map(list, others)]
    for i in range(max((len(x) for x in lists), default=0)):
        for ranked in lists:
            if i < len(ranked) and ranked[i][0] not in seen:
                seen.add(ranked[i][0])
                out.append(ranked[i])
    return out
