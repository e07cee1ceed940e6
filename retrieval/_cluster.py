"""Grouping articles into stories: a cross-lingual similarity and average linkage.

Plain numpy, no scipy: a period holds at most a few thousand articles, and the
threshold splits them into small connected components that are clustered one
by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_vector(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The normalised mean of normalised vectors (an article from its passages)."""
    m = np.mean(np.stack(vectors), axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def combined_similarity(spaces: dict[str, np.ndarray], weights: dict[str, float],
                        offsets: dict[str, float]) -> np.ndarray:
    """Weighted mean over vector spaces of ``cos - offset``, an (n, n) matrix.

    USE spreads unrelated news around 0.2 and puts translations near 0.85 in any
    language pair; e5-small (centred per language by the caller, see
    ``_summary``) adds its own view of the content. The offsets put unrelated
    articles near 0 in both spaces, so the spaces average on one scale.
    """
    total: np.ndarray | None = None
    norm = 0.0
    for name, vecs in spaces.items():
        w = weights.get(name, 1.0)
        sim = w * (vecs @ vecs.T - offsets.get(name, 0.0))
        total = sim if total is None else total + sim
        norm += w
    if total is None or norm <= 0:
        raise ValueError("no vector space to compare")
    return total / norm


def _components(adjacent: np.ndarray) -> list[list[int]]:
    n = len(adjacent)
    seen = np.zeros(n, dtype=bool)
    out: list[list[int]] = []
    for start in range(n):
        if seen[start]:
            continue
        seen[start] = True
        stack, comp = [start], []
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in np.flatnonzero(adjacent[i] & ~seen):
                seen[j] = True
                stack.append(int(j))
        out.append(sorted(comp))
    return out


def average_linkage(sim: np.ndarray, threshold: float,
                    groups: Sequence[Sequence[int]] = ()) -> list[list[int]]:
    """Clusters of items whose average pairwise similarity stays >= ``threshold``.

    ``groups`` are items that must end up together (wire copies): they start as
    one cluster. Average linkage never joins clusters that no pair above the
    threshold connects, so each connected component is clustered on its own.
    """
    n = len(sim)
    if n == 0:
        return []
    # Start from singletons and the must-link groups (union-find).
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for g in groups:
        for i in g[1:]:
            parent[root(i)] = root(g[0])
    roots = np.array([root(i) for i in range(n)])
    uniq, label = np.unique(roots, return_inverse=True)
    start: list[list[int]] = [[] for _ in uniq]
    for i, c in enumerate(label.tolist()):
        start[c].append(i)
    sizes = np.bincount(label).astype(np.float64)
    if len(uniq) == n:
        csim = sim.astype(np.float64, copy=True)
    else:  # average similarity between the starting clusters, in O(n²)
        order = np.argsort(label, kind="stable")
        cuts = np.concatenate(([0], np.cumsum(np.bincount(label))[:-1]))
        rows = np.add.reduceat(sim[order].astype(np.float64), cuts, axis=0)
        csum = np.add.reduceat(rows[:, order], cuts, axis=1)
        csim = csum / np.outer(sizes, sizes)
    np.fill_diagonal(csim, -np.inf)
    out: list[list[int]] = []
    for comp in _components(csim >= threshold):
        clusters = _agglomerate(csim[np.ix_(comp, comp)], sizes[comp].copy(), threshold)
        for cl in clusters:
            out.append(sorted(int(i) for c in cl for i in start[comp[c]]))
    return out


def _agglomerate(sim: np.ndarray, sizes: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage merging (Lance-Williams update) until no pair reaches the threshold.

    Each row's best partner is cached; a merge only invalidates the rows whose best
    was one of the two merged clusters (an average never exceeds its parts), so a
    step costs O(n) rather than a scan of the whole matrix.
    """
    m = len(sim)
    sim = sim.copy()
    np.fill_diagonal(sim, -np.inf)
    best = sim.argmax(axis=1)
    best_val = sim[np.arange(m), best]
    alive = np.ones(m, dtype=bool)
    members: list[list[int]] = [[i] for i in range(m)]
    while True:
        i = int(np.argmax(best_val))
        if best_val[i] < threshold:
            break
        j = int(best[i])
        merged = (sizes[i] * sim[i] + sizes[j] * sim[j]) / (sizes[i] + sizes[j])
        sim[i, :] = merged
        sim[:, i] = merged
        sim[i, i] = -np.inf
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        sizes[i] += sizes[j]
        members[i] += members[j]
        members[j] = []
        alive[j] = False
        best_val[j] = -np.inf
        for r in np.flatnonzero(alive & ((best == i) | (best == j) | (np.arange(m) == i))):
            best[r] = int(np.argmax(sim[r]))
            best_val[r] = sim[r, best[r]]
    return [g for g in members if g]
