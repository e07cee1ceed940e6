"""Recall and speed of the approximate index (HNSW) against exact search (flat).

khabar's store picks HNSW above ``KHABAR_HNSW_THRESHOLD`` passages per language
(or always, with ``KHABAR_INDEX_TYPE=hnsw``). This measures what that costs in
recall@10 and buys in query time, with the store's own index settings, on e5
vectors of real passages (from bench/.cache, filled by quality.py) grown to the
target sizes by adding small random perturbations of them (news archives are
full of near neighbours, which is what makes ANN hard).

    python bench/ann.py --sizes 10000 50000 200000
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

import faiss
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar.store._vectors import _VectorIndex  # noqa: E402

CACHE = REPO / "bench" / ".cache" / "embeddings.sqlite3"


def real_vectors(dim: int = 384) -> np.ndarray:
    rows = sqlite3.connect(CACHE).execute("SELECT vec FROM emb").fetchall()
    vecs = [np.frombuffer(r[0], np.float32) for r in rows]
    vecs = [v for v in vecs if v.shape[0] == dim]
    if not vecs:
        raise SystemExit("no cached e5 vectors: run bench/quality.py first")
    return np.stack(vecs)


def grow(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(base), n)
    out = base[idx] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
    out[: len(base)] = base[: min(n, len(base))]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    p.add_argument("--queries", type=int, default=500)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    base = real_vectors()
    print(f"{'passages':>9} {'recall@10':>10} {'flat ms/q':>10} {'hnsw ms/q':>10} "
          f"{'hnsw build s':>12}")
    for n in args.sizes:
        data = grow(base, n, rng)
        queries = grow(base, args.queries, rng)
        ids = np.arange(n, dtype=np.int64)
        flat, hnsw = _VectorIndex(data.shape[1], "flat"), _VectorIndex(data.shape[1], "hnsw")
        flat.add("x", ids, data)
        t0 = time.perf_counter()
        hnsw.add("x", ids, data)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, exact = flat.by_lang["x"].search(queries, 10)
        t_flat = (time.perf_counter() - t0) / len(queries)
        t0 = time.perf_counter()
        _, approx = hnsw.by_lang["x"].search(queries, 10)
        t_hnsw = (time.perf_counter() - t0) / len(queries)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact,
                                                                      strict=True)])
        print(f"{n:9d} {recall:10.3f} {t_flat * 1000:10.2f} {t_hnsw * 1000:10.2f} "
              f"{build:12.1f}", flush=True)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")


if __name__ == "__main__":
    main()
