"""Lexical search three ways on one Milvus Lite archive: khabar's BM25 (bm25s arrays kept by
retrieval from ``changes_since``), Milvus's BM25 function over khabar's stored tokens
(``MilvusStore.lexical_search``), and Milvus's BM25 over khabar's normalised text with
Milvus's standard analyzer. nDCG@10 and time per query; no encoder (lexical only).

    python bench/milvus_bm25.py --sets arcd_test_ar2ar xquad_en2en xquad_ar2ar
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from khabar.retrieval._lexical import LexicalIndex  # noqa: E402
from quality import DEFAULT_DATA, load_set, metrics  # noqa: E402

from khabar.store import Article, Chunk, MilvusStore, NewArticle, content_hash  # noqa: E402
from khabar.store._vectors import SpaceInfo  # noqa: E402
from khabar.text import lexical_tokens, normalize_for_search  # noqa: E402

DIM = 8  # a dummy dense space: this bench searches words only


def run(path: Path, max_queries: int) -> dict[str, tuple[float, float]]:
    from pymilvus import DataType, Function, FunctionType

    corpus, queries, qrels = load_set(path)
    queries = [q for q in queries if q["id"] in qrels][:max_queries]
    with tempfile.TemporaryDirectory() as tmp:
        store = MilvusStore(f"{tmp}/k.db", cache=Path(tmp) / "cache")
        store.bind_spaces([SpaceInfo("e5", "dummy", DIM)])
        doc_of: dict[int, str] = {}
        rng = np.random.default_rng(0)
        for d in corpus:
            art = Article(title="", paragraphs=[d["text"]], url=f"bench://{d['id']}",
                          lang=d.get("lang"))
            vec = rng.normal(size=(1, DIM)).astype(np.float32)
            got = store.put(NewArticle(art, [Chunk(0, d["text"], d["lang"])],
                                       {"e5": vec / np.linalg.norm(vec)}, content_hash(art)),
                            dup_threshold=None)
            [p] = store.article_passages([got.article_id])
            doc_of[p.id] = d["id"]
        # The third way: normalised text, Milvus's standard analyzer.
        c = store._client
        s = c.create_schema(auto_id=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("lang", DataType.VARCHAR, max_length=16)
        s.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["text"], output_field_names=["sparse"]))
        ip = c.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection("bench_text", schema=s, index_params=ip)
        c.insert("bench_text", [{"id": p.id, "lang": p.lang,
                                 "text": normalize_for_search(p.text)}
                                for p in store.passages(list(doc_of)).values()])
        lexical = LexicalIndex(store)

        def khabar(q: dict) -> list[int]:
            return [pid for pid, _ in lexical.search(q["lang"], q["text"], 10)]

        def milvus_tokens(q: dict) -> list[int]:
            return [pid for pid, _ in store.lexical_search(q["lang"], lexical_tokens(q["text"]),
                                                           10)]

        def milvus_text(q: dict) -> list[int]:
            hits = c.search("bench_text", data=[normalize_for_search(q["text"])],
                            anns_field="sparse", limit=10, filter=f'lang == "{q["lang"]}"',
                            output_fields=["id"], search_params={"metric_type": "BM25"})
            return [int(h["id"]) for h in hits[0]]

        out = {}
        khabar(queries[0])  # builds the BM25 arrays once
        for name, fn in (("khabar bm25s (tokens)", khabar),
                         ("Milvus BM25 (khabar tokens)", milvus_tokens),
                         ("Milvus BM25 (normalised text)", milvus_text)):
            t0 = time.perf_counter()
            scores = [metrics([doc_of[p] for p in fn(q)], qrels[q["id"]])[0] for q in queries]
            out[name] = (float(np.mean(scores)),
                         1000 * (time.perf_counter() - t0) / len(queries))
        store.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=["arcd_test_ar2ar", "xquad_en2en",
                                                 "xquad_ar2ar"])
    p.add_argument("--max-queries", type=int, default=500)
    args = p.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    for name in args.sets:
        for way, (ndcg, ms) in run(DEFAULT_DATA / name, args.max_queries).items():
            print(f"{name:18} {way:32} nDCG@10 {ndcg:.3f}  {ms:6.1f} ms/q", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
