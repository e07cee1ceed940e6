"""What the per-item budget costs an ingest: parsing and chunking in the worker process
(index/_worker.py) against doing both in the ingesting process.

Real articles (NTREX news, English and Arabic, and Wikipedia paragraphs) are written as
HTML pages, then each is parsed and chunked (the real e5 tokenizer counting tokens) both
ways, alternating item by item in one process. CPU is the ingesting process's plus the
worker's (read from /proc); embedding, for scale, costs ~65 ms of CPU a passage
(docs/benchmarks.md).

    KHABAR_HOME=/work/test-home python bench/item_budget.py --articles 300

(also ``python bench/reliability.py budget``, and a block of ``all``).
"""

from __future__ import annotations

import argparse
import html
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402


def page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    return (f"<html><head><title>{html.escape(title)}</title></head><body><article>"
            f"<h1>{html.escape(title)}</h1>{body}</article></body></html>").encode()


def worker_cpu(pid: int) -> float:
    """A process's CPU seconds (user + system), from /proc."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(articles: int) -> dict[str, Any]:
    """Parse and chunk ``articles`` real articles both ways, alternating; the figures."""
    from khabar.index._ingest import MAX_PASSAGE_TOKENS
    from khabar.index._worker import ParseWorker, _operations

    from khabar import Settings
    from khabar.model import load_encoders

    settings = Settings.load()
    model = load_encoders(settings)[0]
    export = str(model.export)  # the ONNX runtime: the worker counts with its tokenizer
    pages = [(f"a{i}.html", page(a.title, a.paragraphs))
             for i, a in enumerate(C.real_articles()[:articles])]
    ops = _operations()
    worker = ParseWorker(settings.item_cpu_seconds, settings.item_memory_mb)
    t0 = time.perf_counter()
    worker.call("chunk", ["warm up"], MAX_PASSAGE_TOKENS, export)
    start_wall = time.perf_counter() - t0
    assert worker._proc is not None
    pid = worker._proc.pid
    start_cpu = worker_cpu(pid)
    here: dict[str, list[float]] = {"cpu": [], "wall": []}
    there: dict[str, list[float]] = {"cpu": [], "wall": []}
    passages = 0
    for name, data in pages:
        t0, c0 = time.perf_counter(), time.process_time()
        arts, _ = ops["parse_document"](data, name, None)
        mine = [_chunk_here(a.paragraphs, model, MAX_PASSAGE_TOKENS) for a in arts]
        here["wall"].append(time.perf_counter() - t0)
        here["cpu"].append(time.process_time() - c0)
        t0, c0, w0 = time.perf_counter(), time.process_time(), worker_cpu(pid)
        arts, _ = worker.call("parse_document", data, name, None)
        theirs = [worker.call("chunk", a.paragraphs, MAX_PASSAGE_TOKENS, export) for a in arts]
        there["wall"].append(time.perf_counter() - t0)
        there["cpu"].append(time.process_time() - c0 + worker_cpu(pid) - w0)
        assert theirs == mine, name
        passages += sum(len(c) for c in mine)
    worker.close()
    mean = statistics.fmean
    return {"articles": len(pages), "passages": passages, "load": C.load_avg(),
            "here_cpu_ms": mean(here["cpu"]) * 1000, "here_wall_ms": mean(here["wall"]) * 1000,
            "worker_cpu_ms": mean(there["cpu"]) * 1000,
            "worker_wall_ms": mean(there["wall"]) * 1000,
            "start_cpu_s": start_cpu, "start_wall_s": start_wall}


def figures(r: dict[str, Any], cmd: str) -> list[str]:
    extra = r["worker_cpu_ms"] - r["here_cpu_ms"]
    per_passage = extra * r["articles"] / r["passages"]
    return [f"`{cmd}` ({r['articles']} real articles as HTML pages, {r['passages']} passages;"
            f" {r['load']}):", "",
            "| per article: parse + chunk | CPU mean ms | wall mean ms |", "|---|---|---|",
            f"| in the ingesting process | {r['here_cpu_ms']:.2f} | {r['here_wall_ms']:.2f} |",
            f"| in the worker (both processes' CPU) | {r['worker_cpu_ms']:.2f} | "
            f"{r['worker_wall_ms']:.2f} |", "",
            f"Overhead: {extra:.2f} ms of CPU an article ({per_passage:.2f}"
            f" ms a passage{'; within the noise' if extra < 0.2 else ''}, against ~65 ms a "
            "passage to embed); the worker's start, once per "
            f"ingest or bot process (and after a kill), the e5 tokenizer loaded in it "
            f"included: {r['start_cpu_s']:.2f} s of CPU ({r['start_wall_s']:.2f} s wall). The "
            "same passages both ways."]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=300)
    args = p.parse_args()
    print("\n".join(figures(measure(args.articles),
                            f"python bench/item_budget.py --articles {args.articles}")))


def _chunk_here(paragraphs: list[str], model: object, max_tokens: int) -> list[object]:
    from khabar.index._chunk import chunk_paragraphs

    return chunk_paragraphs(paragraphs, max_tokens=max_tokens,
                            count_tokens=model.count_tokens)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
