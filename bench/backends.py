"""The two store backends side by side: ingest rate and answer latency on one small set.

Each backend (SQLite + FAISS, Milvus Lite) gets the same articles (a benchmark corpus,
one article per passage, embeddings cached as bench/quality.py caches them, so ingest
times the store and the text analysis, not the encoder), then the same questions are
asked of both, alternating backend question by question (the machine is shared: an
interleaved A/B). Wall and CPU time, and the load average, are printed.

    python bench/backends.py --set xquad_en2mixed --questions 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from khabar.index import Article, Index  # noqa: E402
from khabar.retrieval import Khabar  # noqa: E402
from quality import DEFAULT_DATA, cached_encoders, load_set  # noqa: E402

from khabar import Settings  # noqa: E402

BACKENDS = ("sqlite", "milvus-lite")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="xquad_en2mixed")
    p.add_argument("--questions", type=int, default=100)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    corpus, queries, _ = load_set(DEFAULT_DATA / args.set)
    queries = queries[:args.questions]
    encoders = cached_encoders()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        khabars = {}
        for backend in BACKENDS:
            home = Path(tmp) / backend
            store = f"milvus-lite://{home}/milvus/khabar.db" if backend != "sqlite" else None
            index = Index.open(Settings(home=home, store=store), encoders=encoders)
            arts = [Article(title=d.get("title") or "", paragraphs=[d["text"]],
                            url=f"bench://{d['id']}", lang=d.get("lang"),
                            outlets=[d.get("source") or "bench"]) for d in corpus]
            prepared = [index.prepare(a) for a in arts]  # embeddings from the cache
            t0, c0 = time.perf_counter(), time.process_time()
            for new in prepared:
                index.store.put(new)
            index.store.flush()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[backend] = {"articles": len(arts), "ingest_s": wall, "ingest_cpu_s": cpu,
                            "articles_per_s": len(arts) / wall,
                            "load_ingest": os.getloadavg()[0]}
            khabars[backend] = Khabar(index)
            khabars[backend].ask(queries[0]["text"])  # warm: lexical index, caches
        walls: dict[str, list[float]] = {b: [] for b in BACKENDS}
        cpus: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for q in queries:
            for backend in BACKENDS:
                t0, c0 = time.perf_counter(), time.process_time()
                khabars[backend].ask(q["text"])
                walls[backend].append(time.perf_counter() - t0)
                cpus[backend].append(time.process_time() - c0)
        for backend in BACKENDS:
            out[backend].update({
                "ask_p50_ms": 1000 * statistics.median(walls[backend]),
                "ask_p95_ms": 1000 * _pct(walls[backend], 0.95),
                "ask_cpu_p50_ms": 1000 * statistics.median(cpus[backend]),
                "questions": len(queries), "load_ask": os.getloadavg()[0]})
            khabars[backend].index.close()
    for backend, r in out.items():
        print(f"{backend:12} ingest {r['articles']} articles {r['ingest_s']:.1f} s "
              f"({r['articles_per_s']:.1f}/s, CPU {r['ingest_cpu_s']:.1f} s)  ask p50 "
              f"{r['ask_p50_ms']:.0f} ms p95 {r['ask_p95_ms']:.0f} ms (CPU p50 "
              f"{r['ask_cpu_p50_ms']:.0f} ms)  load {r['load_ingest']:.1f}/{r['load_ask']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
