"""The Milvus calls of a question: how many, from which store method, and the time of a
question, on Milvus Lite with the real model (embeddings cached as bench/quality.py
caches them) over one benchmark set, one article per passage.

Every call of the store's client (query, search, ...) is counted and charged to the
store method retrieval called (the outermost frame in khabar/store). Before/after
comparisons run this script in alternate processes, one on a copy of the older tree
(docs/benchmarks.md says how).

    python bench/milvus_queries.py --set xquad_en2mixed --questions 30 [--search-only]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from khabar.index import Article, Index  # noqa: E402
from khabar.retrieval import Khabar  # noqa: E402
from quality import DEFAULT_DATA, cached_encoders, load_set  # noqa: E402

from khabar import Settings  # noqa: E402

CALLS = ("query", "search", "query_iterator", "get", "hybrid_search", "upsert", "insert",
         "delete", "flush")
STORE = str(REPO / "khabar" / "store")


class Counter:
    """Wraps a MilvusClient's calls; counts them by (store method, call)."""

    def __init__(self, client: Any) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for name in CALLS:
            setattr(client, name, self._wrap(name, getattr(client, name)))

    def _wrap(self, name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            frame, outer = sys._getframe(1), "?"
            while frame is not None:
                if frame.f_code.co_filename.startswith(STORE):
                    outer = frame.f_code.co_name
                frame = frame.f_back
            self.counts[(outer, name)] += 1
            return fn(*args, **kwargs)
        return call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="xquad_en2mixed")
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--search-only", action="store_true",
                   help="the search alone (as bench/quality.py), not the whole answer")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    corpus, queries, _ = load_set(DEFAULT_DATA / args.set)
    queries = queries[:args.questions]
    encoders = cached_encoders()
    out: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "milvus"
        index = Index.open(Settings(home=home, store=f"milvus-lite://{home}/m/khabar.db"),
                           encoders=encoders)
        arts = [Article(title=d.get("title") or "", paragraphs=[d["text"]],
                        url=f"bench://{d['id']}", lang=d.get("lang"),
                        outlets=[d.get("source") or "bench"]) for d in corpus]
        for a in arts:
            index.store.put(index.prepare(a))
        index.store.flush()
        store: Any = index.store
        counter = Counter(store._client._bare)
        khabar = Khabar(index)
        khabar.ask(queries[0]["text"])  # warm: lexical index, caches
        r: dict[str, Any] = {"walls": [], "cpus": [], "calls": [],
                             "by": collections.Counter()}
        for q in queries:
            store._state_cache = None  # as after another process's commit
            counter.counts.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            if args.search_only:
                khabar.search(khabar.understand(q["text"]))
            else:
                khabar.ask(q["text"])
            r["walls"].append(time.perf_counter() - t0)
            r["cpus"].append(time.process_time() - c0)
            r["calls"].append(sum(counter.counts.values()))
            r["by"].update(counter.counts)
        n = len(r["walls"])
        out["questions"] = {
            "questions": n, "calls_mean": statistics.mean(r["calls"]),
            "ask_p50_ms": 1000 * statistics.median(r["walls"]),
            "ask_cpu_p50_ms": 1000 * statistics.median(r["cpus"]),
            "by_method": {f"{m}.{c}": round(v / n, 2) for (m, c), v in
                          sorted(r["by"].items(), key=lambda kv: -kv[1])}}
        out["load_end"] = os.getloadavg()[0]
        out["articles"] = len(arts)
        index.close()
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
