"""The e5 encoder on onnxruntime against sentence-transformers (torch), same folder.

Loads both runtimes of the built-in model and embeds the same real texts with each:
passage throughput (the first ``--passages`` NTREX Arabic news passages, as ingest
embeds them), single-question latency, and how far apart their vectors are.

    python bench/runtime.py                          # KHABAR_HOME's model
    python bench/runtime.py --passages 500 --questions 100 --threads 1

Run on an idle machine for absolute figures; on a shared one, interleave and report
the load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar import Settings  # noqa: E402
from khabar.model import OnnxEncoder, SentenceTransformerEncoder, resolve_model_path  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "benchmarks"


def _texts(name: str, kind: str, n: int) -> list[str]:
    path = DATA / name / f"{kind}.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines()][:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--passages", type=int, default=500)
    p.add_argument("--questions", type=int, default=100)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: per CPU)")
    p.add_argument("--rounds", type=int, default=2, help="alternate the runtimes this often")
    args = p.parse_args()
    settings = Settings.load()
    path, name = resolve_model_path(settings)
    passages = _texts("ntrex_sent2passage_en2ar", "corpus", args.passages)
    questions = (_texts("xquad_en2ar", "queries", args.questions // 2)
                 + _texts("arcd_test_ar2ar", "queries", args.questions - args.questions // 2))
    encoders = {
        "onnx": OnnxEncoder(path, name=name, batch_size=settings.batch_size,
                            threads=args.threads or None),
        "torch": SentenceTransformerEncoder(path, name=name, batch_size=settings.batch_size),
    }
    print(f"{len(passages)} passages, {len(questions)} questions; onnx threads "
          f"{encoders['onnx'].threads}")  # type: ignore[attr-defined]
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        for runtime, enc in encoders.items():
            enc.embed_passages(passages[:16])  # warm
            t0 = time.perf_counter()
            vectors[runtime] = enc.embed_passages(passages)
            rate = len(passages) / (time.perf_counter() - t0)
            times = []
            for q in questions:
                t0 = time.perf_counter()
                enc.embed_queries([q])
                times.append(time.perf_counter() - t0)
            print(f"round {round_ + 1} {runtime:5}: {rate:6.1f} passages/s, question p50 "
                  f"{np.median(times) * 1000:6.1f} ms, p95 {np.percentile(times, 95) * 1000:6.1f}"
                  f" ms (load {os.getloadavg()[0]:.1f})", flush=True)
    cos = np.sum(vectors["onnx"] * vectors["torch"], axis=1)
    print(f"passage vectors onnx vs torch: cosine min {cos.min():.6f}, max |diff| "
          f"{np.abs(vectors['onnx'] - vectors['torch']).max():.1e}")


if __name__ == "__main__":
    main()
