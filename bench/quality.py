"""Retrieval quality through khabar's own ingest and search path.

Runs every benchmark directory (``corpus.jsonl`` / ``queries.jsonl`` / ``qrels.tsv``,
MTEB style) and prints nDCG@10, MRR@10 and Recall@10 with binary relevance,
beside plain BM25 (bm25s) and the published anchors.

    python bench/quality.py                        # all sets in ../shared/data/benchmarks
    python bench/quality.py --sets xquad_en2ar --max-queries 300
    python bench/quality.py --data /path/to/another/set
    python bench/quality.py --sets xquad_en2ar --store milvus-lite   # the archive on Milvus

Embeddings are cached in ``bench/.cache`` (by model fingerprint and text), so a
rerun costs only the searches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar.index import Article, Index  # noqa: E402
from khabar.retrieval import Khabar, SearchConfig  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import OnnxEncoder, _int8, load_encoders  # noqa: E402
from khabar.model._batch import late_vectors  # noqa: E402
from khabar.model._late import POOLING, Pooling  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "benchmarks"
CACHE = REPO / "bench" / ".cache"
ANCHORS = {  # published or measured-outside-khabar figures, nDCG@10
    "xquad_en2ar": 0.901, "xquad_ar2en": 0.867, "xquad_ar2ar": 0.947,
    "arcd_test_ar2ar": 0.848, "ntrex_sent2passage_en2ar": 0.869,
    "ntrex_sent2passage_ar2en": 0.855, "xquad_en2mixed": 0.944, "xquad_ar2mixed": 0.908,
}
TARGETS = {
    "xquad_en2ar": 0.93, "xquad_ar2en": 0.90, "xquad_ar2ar": 0.96, "arcd_test_ar2ar": 0.88,
    "ntrex_sent2passage_en2ar": 0.90, "ntrex_sent2passage_ar2en": 0.90,
    "xquad_en2mixed": 0.96, "xquad_ar2mixed": 0.94,
}
BM25_README = {
    "xquad_en2ar": 0.094, "xquad_ar2en": 0.088, "xquad_ar2ar": 0.888, "xquad_en2en": 0.965,
    "xquad_en2mixed": 0.597, "xquad_ar2mixed": 0.546, "xquadr_sent_en2ar": 0.066,
    "xquadr_sent_ar2en": 0.067, "xquadr_sent_ar2ar": 0.670, "arcd_test_ar2ar": 0.745,
    "arcd_all_ar2ar": 0.691, "ntrex_sent2passage_en2ar": 0.153,
    "ntrex_sent2passage_ar2en": 0.159, "ntrex_headline2doc_en2ar": 0.122,
}


class CachedEncoder:
    """Wraps an encoder; vectors are kept on disk by (fingerprint, kind, text)."""

    def __init__(self, encoder, db: sqlite3.Connection, pooling: Pooling = POOLING) -> None:
        self.inner = encoder
        self.space, self.name, self.dim = encoder.space, encoder.name, encoder.dim
        self.fingerprint = encoder.fingerprint
        self.db = db
        self.pooling = pooling
        db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        if isinstance(encoder, OnnxEncoder):  # late chunking (khabar/model/_late.py)
            self.embed_late = self._embed_late
            self.embed_int8 = self._embed_int8  # int8 sentences (khabar/model/_int8.py)

    def _embed_int8(self, texts: Sequence[str]) -> np.ndarray:
        """Sentences embedded by the int8 graph, cached under its kept parts."""
        kind = f"{_int8.GRAPH_INT8}:{','.join(sorted(_int8.KEEP_FP32))}"
        return self._get(texts, kind, self.inner.embed_int8)

    def _embed_late(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage and late-chunked sentence vectors, cached as one matrix a passage
        (its vector, then its sentences') under this pooling's kind."""
        kind = f"late:{self.pooling}"

        def fresh(todo: list[str]) -> list[np.ndarray]:
            vecs, mats = late_vectors(self.inner, todo, self.pooling)
            return [np.vstack([v[None, :], m]) for v, m in zip(vecs, mats, strict=True)]

        got = self._get_rows(texts, kind, fresh)
        return np.stack([g[0] for g in got]), [g[1:] for g in got]

    def _get_rows(self, texts: Sequence[str], kind: str, fn) -> list[np.ndarray]:
        keys = [hashlib.sha1(f"{self.fingerprint}|{kind}|{t}".encode()).hexdigest()
                for t in texts]
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.db.execute(
                f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part)
            found.update({k: np.frombuffer(v, np.float32).reshape(-1, self.dim)
                          for k, v in rows})
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            mats = fn([texts[i] for i in todo])
            self.db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                [(keys[i], np.asarray(m, np.float32).tobytes())
                                 for i, m in zip(todo, mats, strict=True)])
            self.db.commit()
            found.update((keys[i], np.asarray(m, np.float32)) for i, m in
                         zip(todo, mats, strict=True))
        return [found[k] for k in keys]

    def _get(self, texts: Sequence[str], kind: str, fn) -> np.ndarray:
        """One vector a text, through the same cache as :meth:`_get_rows`."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([r.reshape(self.dim) for r in self._get_rows(texts, kind, fn)])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._get(texts, "p", self.inner.embed_passages)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._get(texts, "q", self.inner.embed_queries)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def cached_encoders(settings: Settings | None = None, db: sqlite3.Connection | None = None,
                    progress: Callable[[str], None] | None = None) -> list[CachedEncoder]:
    """The configured encoders (``settings``; else the bench cache's home), their vectors
    cached in ``db`` (else ``bench/.cache/embeddings.sqlite3``, shared by the benches)."""
    if db is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(CACHE / "embeddings.sqlite3")
    return [CachedEncoder(e, db) for e in
            load_encoders(settings or Settings(home=CACHE / "home"), progress)]


def load_set(path: Path) -> tuple[list[dict], list[dict], dict[str, set[str]]]:
    corpus = [json.loads(x) for x in (path / "corpus.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x) for x in (path / "queries.jsonl").read_text().splitlines() if x]
    qrels: dict[str, set[str]] = {}
    for line in (path / "qrels.tsv").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] != "query_id":
            qrels.setdefault(parts[0], set()).add(parts[1])
    return corpus, queries, qrels


def metrics(ranked: list[str], relevant: set[str], k: int = 10) -> tuple[float, float, float]:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked[:k]) if d in relevant), 0.0)
    recall = len(set(ranked[:k]) & relevant) / len(relevant)
    return dcg / idcg if idcg else 0.0, mrr, recall


def run_set(path: Path, encoders, args, config: SearchConfig) -> dict[str, float]:
    corpus, queries, qrels = load_set(path)
    queries = [q for q in queries if q["id"] in qrels]
    if args.max_queries and len(queries) > args.max_queries:
        queries = random.Random(0).sample(queries, args.max_queries)
    with tempfile.TemporaryDirectory() as home:
        store = (f"milvus-lite://{home}/milvus/khabar.db" if args.store == "milvus-lite"
                 else None)
        settings = Settings(home=Path(home), second_encoder="use" if len(encoders) > 1
                            else "none", store=store, sentence_method=args.sentences)
        index = Index.open(settings, encoders=encoders)
        t0, c0 = time.perf_counter(), time.process_time()
        articles = [Article(title=d.get("title") or "", paragraphs=[d["text"]],
                            url=f"bench://{d['id']}", lang=d.get("lang"),
                            outlets=[d["source"]] if d.get("source") else [])
                    for d in corpus]
        # Near-duplicate linking would merge distinct benchmark passages: off here.
        for art in articles:
            index.store.put(index.prepare(art), dup_threshold=None)
        index.store.flush()
        t_ingest, c_ingest = time.perf_counter() - t0, time.process_time() - c0
        khabar = Khabar(index, search=config)
        scores = []
        t0, c0 = time.perf_counter(), time.process_time()
        for q in queries:
            hits = khabar.search(khabar.understand(q["text"]), k=30).hits
            ranked = list(dict.fromkeys(h.passage.url.removeprefix("bench://")
                                        for h in hits if h.passage.url))
            scores.append(metrics(ranked, qrels[q["id"]]))
        t_search = (time.perf_counter() - t0) / max(len(queries), 1)
        c_search = (time.process_time() - c0) / max(len(queries), 1)
        index.close()
    arr = np.asarray(scores)
    return {"ndcg": float(arr[:, 0].mean()), "mrr": float(arr[:, 1].mean()),
            "recall": float(arr[:, 2].mean()), "queries": len(queries),
            "passages": len(corpus), "ingest_s": t_ingest, "ingest_cpu_s": c_ingest,
            "search_ms": t_search * 1000, "search_cpu_ms": c_search * 1000,
            "store": args.store}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", type=Path,
                   help="a benchmark directory (repeatable); default: every set in "
                        f"{DEFAULT_DATA}")
    p.add_argument("--sets", nargs="*", help="only these set names")
    p.add_argument("--max-queries", type=int, default=0, help="sample this many queries")
    p.add_argument("--no-use", action="store_true", help="e5 alone, without USE")
    p.add_argument("--e5-weight", type=float, default=1.0, help="cross-language e5 weight")
    p.add_argument("--use-weight", type=float, default=1.0, help="cross-language USE weight")
    p.add_argument("--bridge-weight", type=float, default=1.0, help="lexical bridge weight")
    p.add_argument("--no-bridge", action="store_true", help="without the lexical bridge")
    p.add_argument("--bm25-weight", type=float, default=1.0,
                   help="same-language RRF weight of BM25 against e5")
    p.add_argument("--sentence-weight", type=float, default=1.0,
                   help="weight of each passage's best sentence beside the whole (0: off)")
    p.add_argument("--same-fusion", default="zavg", choices=["rrf", "zavg"],
                   help="same-language fusion of e5 and BM25")
    p.add_argument("--feedback-weight", type=float, default=1.0,
                   help="weight of closeness to the question's-language top hit (0: off)")
    p.add_argument("--store", choices=["sqlite", "milvus-lite"], default="sqlite",
                   help="the archive's backend (milvus-lite: the milvus extra)")
    p.add_argument("--process-bm25", action="store_true",
                   help="BM25 kept in this process even where the store has its own")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--candidates", type=int, default=SearchConfig.candidates,
                   help="candidates per signal and language")
    p.add_argument("--runtime", choices=["onnx", "torch"], default="onnx",
                   help="what runs e5 (KHABAR_RUNTIME); the same fingerprint either way")
    p.add_argument("--cache", type=Path, default=CACHE / "embeddings.sqlite3",
                   help="the embeddings cache; a fresh file makes every vector computed "
                        "by this run's runtime (the cache is keyed by fingerprint, which "
                        "both runtimes share)")
    p.add_argument("--sentences", choices=["each", "late", "int8"], default="each",
                   help="how e5's sentence vectors are made: pooled from the passage's run "
                        "(late chunking), each sentence embedded on its own, or so by e5 "
                        "quantised to int8")
    p.add_argument("--int8-keep", nargs="*", default=sorted(_int8.KEEP_FP32),
                   choices=_int8.PARTS,
                   help="int8: the parts of each layer left at fp32 (khabar/model/_int8.py)")
    p.add_argument("--late-context", type=int, default=POOLING.context,
                   help="late chunking: tokens on each side pooled with a sentence")
    p.add_argument("--late-frame", action="store_true", default=POOLING.frame,
                   help="late chunking: pool the passage's <s>, prompt and </s> too")
    p.add_argument("--late-mix", type=float, default=POOLING.mix,
                   help="late chunking: weight of the passage vector added to a sentence's")
    p.add_argument("--late-tail", type=int, default=POOLING.tail,
                   help="late chunking: the last N layers run again on each sentence alone")
    args = p.parse_args()
    pooling = Pooling(args.late_context, args.late_frame, args.late_mix, args.late_tail)
    _int8.KEEP_FP32 = frozenset(args.int8_keep)  # read when the int8 graph is made

    dirs = args.data or sorted(d for d in DEFAULT_DATA.iterdir() if (d / "qrels.tsv").exists())
    if args.sets:
        dirs = [d for d in dirs if d.name in args.sets]
    CACHE.mkdir(parents=True, exist_ok=True)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(args.cache)
    settings = Settings(home=CACHE / "home", second_encoder="none" if args.no_use else "use",
                        runtime=args.runtime)
    encoders = [CachedEncoder(e, db, pooling) for e in load_encoders(settings, print)]
    results = {}
    header = (f"{'benchmark':28} {'nDCG@10':>8} {'MRR@10':>7} {'R@10':>6} {'BM25':>6} "
              f"{'anchor':>7} {'target':>7} {'queries':>7} {'ms/q':>6}")
    print(header)
    print("-" * len(header))
    for d in dirs:
        config = SearchConfig(cross_lang_weights=(args.e5_weight, args.use_weight),
                              same_lang_weights=(1.0, args.bm25_weight),
                              bridge=not args.no_bridge, bridge_weight=args.bridge_weight,
                              sentence_weight=args.sentence_weight,
                              same_lang_fusion=args.same_fusion,
                              feedback_weight=args.feedback_weight,
                              candidates=args.candidates,
                              store_lexical=not args.process_bm25)
        r = run_set(d, encoders, args, config)
        results[d.name] = r
        print(f"{d.name:28} {r['ndcg']:8.3f} {r['mrr']:7.3f} {r['recall']:6.3f} "
              f"{BM25_README.get(d.name, float('nan')):6.3f} "
              f"{ANCHORS.get(d.name, float('nan')):7.3f} "
              f"{TARGETS.get(d.name, float('nan')):7.2f} {r['queries']:7d} "
              f"{r['search_ms']:6.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
