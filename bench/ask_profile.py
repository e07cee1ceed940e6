"""Where a warm answer's time goes: ``Khabar.ask`` on a built store, per stage, wall and CPU.

    python bench/ask_profile.py --home /work/scale-runs/lat-100k            # real encoders
    python bench/ask_profile.py --home /tmp/hash-10k --encoder hash         # no model
    python bench/ask_profile.py --home ... --profile pyinstrument           # + a call tree

The store is one made by ``bench/scale.py --home`` (its ``store/`` and shared
``models/``). The 40 fixed questions of ``bench/_corpus.py`` are asked ``--repeats``
times after ``--warmup`` passes; per question the wall time and the process's CPU
time, per stage (``Answer.timings``) the median. Prints the load average before and
after: on a shared machine the CPU time tells more than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402


def open_khabar(home: Path, encoder: str, index_type: str = "auto",
                candidates: int | None = None) -> tuple[Any, Any]:
    from khabar.index import Index
    from khabar.retrieval import Khabar, SearchConfig

    from khabar import Settings

    settings = Settings(home=home, index_type=index_type)
    if encoder == "hash":
        encoders = C.hash_encoders()
    else:
        from khabar.model import load_encoders

        encoders = load_encoders(settings)
    index = Index.open(settings, encoders=encoders)
    search = SearchConfig(candidates=candidates) if candidates else None
    return index, Khabar(index, search=search)


def run(khabar: Any, questions: list[str], repeats: int) -> dict[str, Any]:
    wall, cpu, stages = [], [], {}
    for _ in range(repeats):
        for q in questions:
            t0, c0 = time.perf_counter(), time.process_time()
            answer = khabar.ask(q)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            for k, v in answer.timings.items():
                stages.setdefault(k, []).append(v)
    ms = 1000.0
    return {"n": len(wall), "p50_ms": C.percentile(wall, 50) * ms,
            "p95_ms": C.percentile(wall, 95) * ms, "cpu_p50_ms": C.percentile(cpu, 50) * ms,
            "cpu_p95_ms": C.percentile(cpu, 95) * ms,
            "stages_p50_ms": {k: round(C.percentile(v, 50) * ms, 2) for k, v in stages.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--encoder", choices=["model", "hash"], default="model")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="measure this many times")
    p.add_argument("--profile", choices=["none", "pyinstrument"], default="none")
    p.add_argument("--json", type=Path)
    p.add_argument("--candidates", type=int, help="SearchConfig.candidates (default: its own)")
    p.add_argument("--index-type", choices=["auto", "flat", "hnsw"], default="auto",
                   help="the store's FAISS indexes (another kind than its files: converted"
                        " and saved at open)")
    args = p.parse_args()
    t0 = time.perf_counter()
    index, khabar = open_khabar(args.home, args.encoder, args.index_type, args.candidates)
    print(f"opened {index.store.count_passages():,} passages in "
          f"{time.perf_counter() - t0:.1f} s; {C.load_avg()}", file=sys.stderr)
    questions = [q for _, q in C.questions()]
    run(khabar, questions, args.warmup)
    results = []
    for _ in range(args.rounds):
        before = os.getloadavg()
        if args.profile == "pyinstrument":
            from pyinstrument import Profiler

            prof = Profiler(interval=0.0005)
            prof.start()
            out = run(khabar, questions, args.repeats)
            prof.stop()
            print(prof.output_text(unicode=False, color=False, show_all=False),
                  file=sys.stderr)
        else:
            out = run(khabar, questions, args.repeats)
        out["load"] = [round(x, 2) for x in (*before, *os.getloadavg())]
        results.append(out)
        print(json.dumps(out), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    index.close()


if __name__ == "__main__":
    main()
