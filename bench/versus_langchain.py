"""khabar beside LangChain's FAISS vector store: same e5 model, passages and questions.

    pip install langchain-huggingface langchain-community   # the LangChain side only
    python bench/versus_langchain.py
    python bench/versus_langchain.py --articles 20 --repeats 1   # a quick look

(``langchain-huggingface`` and ``langchain-community`` are this benchmark's, not khabar
dependencies.)

Passages: NTREX-128's news documents in their human Arabic translation (``--articles``,
all 123 by default), as articles (the headline as title, paragraphs of four sentences),
ingested by khabar with its default settings (``Index.add_articles``: e5 + USE, passage
and sentence vectors, SQLite, FAISS, near-duplicate links). LangChain then indexes
exactly the passages khabar stored, in khabar's order: ``FAISS.from_texts`` with
``HuggingFaceEmbeddings`` on the same e5 folder (``normalize_embeddings``, e5's
``"passage: "`` and ``"query: "`` prompts).

Questions: the fixed 40 real Arabic and English questions of ``bench/_corpus.py``, then
each document's English headline (NTREX's source side): that headline's Arabic article
is the one to find, so hit@10 says both sides search, not just how fast.

Each side runs in its own fresh process, one after the other, in one run: model load,
ingest (passages/s, embedding included), warm answers (after one untimed: ``Khabar.ask``
against ``similarity_search(k=10)``) p50/p95, resident memory (now, peak). Then the
ratios, khabar / LangChain.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

MARK = "@@"


Question = tuple[str, str, "str | None"]  # lang, text, the document to find


def workload(n_articles: int, n_fixed: int = 40) -> tuple[list[Any], list[Question]]:
    """The Arabic articles, and the questions: (lang, text, document to find or None)."""
    docs = C.ntrex_docs()[:n_articles]
    keep = {doc for doc, _ in docs}
    articles = [a for a in C.ntrex_articles(["ar"]) if a.url.rsplit("/", 1)[1] in keep]
    qs: list[Question] = [(lg, q, None) for lg, q in C.questions()[:n_fixed]]
    qs += [("en", lines["en"][0].replace("\ufeff", "").strip(), doc) for doc, lines in docs]
    return articles, qs


def timings(times: list[float]) -> dict[str, float]:
    return {"p50_ms": C.percentile(times, 50) * 1000, "p95_ms": C.percentile(times, 95) * 1000,
            "mean_ms": sum(times) / len(times) * 1000, "n": len(times)}


def khabar_side(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from khabar.index import Index
    from khabar.retrieval import Khabar

    from khabar import Settings
    from khabar.model import load_encoders

    t_import = time.perf_counter() - t0
    settings = Settings(home=args.home)
    t0 = time.perf_counter()
    encoders = load_encoders(settings)
    t_load = time.perf_counter() - t0
    articles, qs = workload(args.articles, args.questions)
    index = Index.open(settings, encoders=encoders)
    t0 = time.perf_counter()
    report = index.add_articles(articles)
    t_ingest = time.perf_counter() - t0
    store = index.store
    ids = [row["id"] for row in store.iter_passages()]
    stored = store.passages(ids)
    doc_of = {pid: (p.url or "").rsplit("/", 1)[-1] for pid, p in stored.items()}
    args.passages.write_text(json.dumps([[stored[i].text, doc_of[i]] for i in ids],
                                        ensure_ascii=False))
    khabar = Khabar(index)
    khabar.ask(qs[0][1])  # warm-up
    times, hits = [], []
    for r in range(args.repeats):
        for _lang, q, doc in qs:
            t0 = time.perf_counter()
            answer = khabar.ask(q, k=10)
            times.append(time.perf_counter() - t0)
            if doc and r == 0:
                top = [s.passage_id for s in (answer.sources or answer.related)]
                top += [h.passage.id for h in answer.more]
                hits.append(any(doc_of.get(pid) == doc for pid in top[:10]))
    index.close()
    return {"import_s": t_import, "model_load_s": t_load, "passages": report.passages,
            "articles": len(articles), "ingest_s": t_ingest,
            "ingest_rate": report.passages / t_ingest, "answer": timings(times),
            "hit_at_10": sum(hits) / max(1, len(hits)), "hit_queries": len(hits),
            **C.memory_mb()}


def langchain_side(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    from khabar import Settings
    from khabar.model import resolve_model_path

    t_import = time.perf_counter() - t0
    e5, _ = resolve_model_path(Settings(home=args.home))
    t0 = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(
        model_name=str(e5), model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "prompt": "passage: "},
        query_encode_kwargs={"normalize_embeddings": True, "prompt": "query: "})
    t_load = time.perf_counter() - t0
    _, qs = workload(args.articles, args.questions)
    passages = json.loads(args.passages.read_text())
    t0 = time.perf_counter()
    store = FAISS.from_texts([t for t, _ in passages], embeddings,
                             metadatas=[{"doc": d} for _, d in passages])
    t_ingest = time.perf_counter() - t0
    store.similarity_search(qs[0][1], k=10)  # warm-up
    times, hits = [], []
    for r in range(args.repeats):
        for _lang, q, doc in qs:
            t0 = time.perf_counter()
            found = store.similarity_search(q, k=10)
            times.append(time.perf_counter() - t0)
            if doc and r == 0:
                hits.append(any(d.metadata["doc"] == doc for d in found))
    return {"import_s": t_import, "model_load_s": t_load, "passages": len(passages),
            "ingest_s": t_ingest, "ingest_rate": len(passages) / t_ingest,
            "answer": timings(times), "hit_at_10": sum(hits) / max(1, len(hits)),
            "hit_queries": len(hits), **C.memory_mb()}


def side(args: argparse.Namespace, name: str, log: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--side", name, "--home", str(args.home), "--passages",
           str(args.passages), "--articles", str(args.articles), "--repeats", str(args.repeats),
           "--questions", str(args.questions)]
    with log.open("a") as err:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {name} side failed:\n{log.read_text()[-3000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith(MARK))
    return {**json.loads(line[len(MARK):]), "load": C.load_avg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--articles", type=int, default=123, help="NTREX documents (Arabic)")
    p.add_argument("--repeats", type=int, default=1, help="passes over the questions")
    p.add_argument("--questions", type=int, default=40,
                   help="how many of the 40 fixed questions to ask (the headlines come after)")
    p.add_argument("--models", type=Path, help="models folder with the built e5 (default: "
                   "the configured KHABAR_HOME's)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--side", choices=["khabar", "langchain"], help=argparse.SUPPRESS)
    p.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--passages", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        result = (khabar_side if args.side == "khabar" else langchain_side)(args)
        print(MARK + json.dumps(result), flush=True)
        return
    command = "python bench/versus_langchain.py " + " ".join(sys.argv[1:])
    before = C.uptime()
    with tempfile.TemporaryDirectory(prefix="khabar-vs-") as tmp:
        args.home = C.share_models(Path(tmp) / "home", args.models or C.default_models())
        args.passages = Path(tmp) / "passages.json"
        log = Path(tmp) / "log"
        kh = side(args, "khabar", log)
        lc = side(args, "langchain", log)
    after = C.uptime()
    ratio = {"ingest_rate": kh["ingest_rate"] / lc["ingest_rate"],
             "answer_p50": kh["answer"]["p50_ms"] / lc["answer"]["p50_ms"],
             "answer_p95": kh["answer"]["p95_ms"] / lc["answer"]["p95_ms"],
             "rss": kh["rss_mb"] / lc["rss_mb"], "peak_rss": kh["peak_rss_mb"] / lc["peak_rss_mb"]}
    if args.json:
        args.json.write_text(json.dumps({"command": command, "khabar": kh, "langchain": lc,
                                         "ratio": ratio, "uptime_before": before,
                                         "uptime_after": after}, indent=1))
    n_q = kh["answer"]["n"]
    print(f"`{command}`: {kh['articles']} Arabic NTREX articles, {kh['passages']} passages; "
          f"{n_q} timed questions ({kh['hit_queries']} headlines with a known article); "
          f"before: {before}\n")
    print("| measure | khabar | LangChain FAISS + HuggingFaceEmbeddings | khabar / LangChain |")
    print("| --- | --- | --- | --- |")
    rows = [
        ("model load, s", f"{kh['model_load_s']:.1f} (e5 + USE)", f"{lc['model_load_s']:.1f} (e5)",
         ""),
        ("ingest, passages/s", f"{kh['ingest_rate']:.1f} (e5 + USE, passages and sentences)",
         f"{lc['ingest_rate']:.1f} (e5, passages)", f"{ratio['ingest_rate']:.2f}"),
        ("answer p50, ms", f"{kh['answer']['p50_ms']:.0f} (`Khabar.ask`)",
         f"{lc['answer']['p50_ms']:.0f} (`similarity_search`)", f"{ratio['answer_p50']:.2f}"),
        ("answer p95, ms", f"{kh['answer']['p95_ms']:.0f}", f"{lc['answer']['p95_ms']:.0f}",
         f"{ratio['answer_p95']:.2f}"),
        ("resident memory now / peak, MB", f"{kh['rss_mb']:.0f} / {kh['peak_rss_mb']:.0f}",
         f"{lc['rss_mb']:.0f} / {lc['peak_rss_mb']:.0f}",
         f"{ratio['rss']:.2f} / {ratio['peak_rss']:.2f}"),
        ("headline → its Arabic article, hit@10", f"{kh['hit_at_10']:.3f}",
         f"{lc['hit_at_10']:.3f}", ""),
        ("machine load after the side", kh["load"], lc["load"], ""),
    ]
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nafter: {after}")


if __name__ == "__main__":
    main()
