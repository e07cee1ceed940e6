"""Recall and speed of the approximate index (HNSW) against exact search (flat).

khabar's store picks HNSW above ``KHABAR_HNSW_THRESHOLD`` passages per language
(or always, with ``KHABAR_INDEX_TYPE=hnsw``). This measures what that costs in
recall@10 and buys in query time, with the store's own index settings, on e5
vectors of real passages (from bench/.cache, filled by quality.py) grown to the
target sizes by adding small random perturbations of them (news archives are
full of near neighbours, which is what makes ANN hard).

    python bench/ann.py --sizes 10000 50000 200000
    python bench/ann.py --real /work/scale-runs/scale-base.npz --home <KHABAR_HOME> \
        --sizes 20000 50000 --ef 32 64 128 256

``--real``: e5 and USE vectors of real texts (``bench/scale.py``'s base: the passages
and sentences of ~2,500 real news articles), 500 of them held out as queries with
the 40 real questions of bench/_corpus.py (embedded by the model of ``--home``);
the index is the rest alone (real texts only, no near-copies), then grown to each
``--sizes`` as bench/scale.py's replay does (copies with noise 0.02). Recall@10 and
@50 (a search asks for 50 candidates a signal) of the store's HNSW at each efSearch.
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
    p.add_argument("--real", type=Path, help="bench/scale.py's base .npz (see above)")
    p.add_argument("--home", type=Path, help="KHABAR_HOME with the model, for --real")
    p.add_argument("--ef", type=int, nargs="+", default=[128])
    args = p.parse_args()
    if args.real is not None:
        real_main(args)
        return
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


def real_main(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    base = np.load(args.real)
    questions: dict[str, np.ndarray] = {}
    if args.home is not None:
        sys.path.insert(0, str(REPO / "bench"))
        import _corpus as C

        from khabar import Settings
        from khabar.model import load_encoders

        qs = [q for _, q in C.questions()]
        questions = {e.space: np.asarray(e.embed_queries(qs), np.float32)
                     for e in load_encoders(Settings(home=args.home))}
    print(f"{'space':>5} {'passages':>9} {'efSearch':>8} {'recall@10':>9} {'recall@50':>9} "
          f"{'q recall@10':>11} {'flat ms/q':>9} {'hnsw ms/q':>9}")
    for space in ("e5", "use"):
        vecs = np.asarray(base[f"vec_{space}"], np.float32)
        order = rng.permutation(len(vecs))
        held, rest = vecs[order[:500]], vecs[order[500:]]
        queries = np.ascontiguousarray(np.concatenate(
            [held, questions[space]]) if space in questions else held)
        nq = len(queries) - len(held)
        for n in [len(rest), *args.sizes]:
            data = rest if n == len(rest) else grow(rest, n, rng)
            ids = np.arange(n, dtype=np.int64)
            flat, hnsw = _VectorIndex(data.shape[1], "flat"), _VectorIndex(data.shape[1], "hnsw")
            flat.add("x", ids, data)
            hnsw.add("x", ids, data)
            t0 = time.perf_counter()
            _, exact = flat.by_lang["x"].search(queries, 50)
            t_flat = (time.perf_counter() - t0) / len(queries)
            inner = faiss.downcast_index(hnsw.by_lang["x"].index)
            for ef in args.ef:
                inner.hnsw.efSearch = max(ef, 50)
                t0 = time.perf_counter()
                _, approx = hnsw.by_lang["x"].search(queries, 50)
                t_hnsw = (time.perf_counter() - t0) / len(queries)
                r10 = [len(set(a[:10]) & set(e[:10])) / 10 for a, e in zip(approx, exact,
                                                                           strict=True)]
                r50 = np.mean([len(set(a) & set(e)) / 50 for a, e in zip(approx, exact,
                                                                         strict=True)])
                q10 = f"{np.mean(r10[len(held):]):11.3f}" if nq else f"{'-':>11}"
                print(f"{space:>5} {n:9d} {max(ef, 50):8d} {np.mean(r10[:len(held)]):9.3f} "
                      f"{r50:9.3f} {q10} {t_flat * 1000:9.2f} {t_hnsw * 1000:9.2f}",
                      flush=True)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; "
          f"recall@10 of the held-out texts, q: of the 40 questions")


if __name__ == "__main__":
    main()
