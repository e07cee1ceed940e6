"""Retrieval's BM25 on Milvus Lite: asked of the store (Milvus's BM25 over the stored
tokens) or kept in the reader's process (arrays built from ``changes_since``): a reader
in a fresh process, open to first answer, resident memory, answers p50/p95.

    python bench/milvus_lexical.py --home /tmp/mlex-20k --passages 20000   # build, measure
    python bench/milvus_lexical.py --home /tmp/mlex-20k --measure-only --rounds 2

The archive is built once in ``--home`` (resumable: the store is kept) through the
public API (``Index.add_articles``, 32 articles a call), with bench/scale.py's replay
vectors (the real encoders' vectors of the real passages, plus noise: ``--base``), so
readers ask with the real encoders. Each round runs four readers, one process each, in
turn: the store's BM25 and the in-process one, each *cold* (the machine's derived files
beside the store deleted first: a new machine, or a new reader host) and *warm* (the
files the previous reader left). The lexical bridge (USE word vocabulary) is the same
in both modes: it still follows ``changes_since`` and keeps its files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402


def _settings(home: Path) -> Any:
    from khabar import Settings

    return Settings(home=home, store=f"milvus-lite://{home}/milvus/khabar.db")


def build(args: argparse.Namespace) -> None:
    from khabar.index import Index

    C.share_models(args.home, args.models or C.default_models())
    synth = C.Synth(C.real_articles())
    replay = C.Replay(C.Base.load(args.base), synth, 0.0)
    ix = Index.open(_settings(args.home), encoders=replay.encoders())
    state_path = args.home / "build.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"pos": 0}
    real = synth.real
    count = ix.store.count_passages()
    t0, c0 = time.perf_counter(), time.process_time()
    pos = state["pos"]
    while count < args.passages:
        end = len(real) if pos < len(real) else pos + 32
        batch = [real[j] if j < len(real) else synth.article(j - len(real))
                 for j in range(pos, min(pos + 32, end))]
        replay.noise = 0.0 if pos < len(real) else args.noise
        count += ix.add_articles(batch).passages
        pos += len(batch)
        synth.origin.clear()
        state["pos"] = pos
        state_path.write_text(json.dumps(state))
        if pos % 640 < 32:
            print(f"  {count:,} passages, {time.perf_counter() - t0:.0f} s, {C.load_avg()}",
                  file=sys.stderr, flush=True)
    ix.close()
    state.update(passages=count, build_s=time.perf_counter() - t0,
                 build_cpu_s=time.process_time() - c0)
    state_path.write_text(json.dumps(state))


def probe(args: argparse.Namespace) -> None:
    """One reader, a fresh process: open → first answer, warm answers, memory."""
    t0 = time.perf_counter()
    from khabar.index import Index
    from khabar.retrieval import Khabar, SearchConfig

    from khabar.model import load_encoders
    from khabar.store import MilvusStore

    MilvusStore.row_cache = not args.mode.endswith("-norows")
    settings = _settings(args.home)
    encoders = load_encoders(settings)
    t_load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    index = Index.open(settings, encoders=encoders)
    khabar = Khabar(index, search=SearchConfig(store_lexical=args.mode.startswith("store")))
    first = khabar.ask(C.questions()[0][1])
    out: dict[str, Any] = {
        "mode": args.mode, "cold": args.cold, "load_s": t_load,
        "open_to_first_answer_s": time.perf_counter() - t0,
        "open_to_first_answer_cpu_s": time.process_time() - c0,
        "first_sources": len(first.sources),
        "lexical": type(khabar.searcher.lexical).__name__, "after_first": C.memory_mb()}
    calls = _count_calls(index.store)
    walls, cpus = [], []
    for _lang, q in C.questions()[:args.questions]:
        t0, c0 = time.perf_counter(), time.process_time()
        khabar.ask(q)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    out.update({f"{k}_per_question": v / max(len(walls), 1) for k, v in calls.items()})
    out.update(questions=len(walls), p50_ms=1000 * C.percentile(walls, 50),
               p95_ms=1000 * C.percentile(walls, 95), cpu_p50_ms=1000 * C.percentile(cpus, 50),
               load=os.getloadavg(), **C.memory_mb())
    index.close()
    print(json.dumps(out), flush=True)


def _count_calls(store: Any) -> dict[str, int]:
    """Count the store client's queries and searches from now on."""
    calls = {"query": 0, "search": 0}
    bare = store._client._bare
    for name in calls:
        real = getattr(bare, name)

        def counted(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls[_name] += 1
            return _real(*a, **kw)

        setattr(bare, name, counted)
    return calls


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    cache = args.home / "milvus-cache"
    rows = []
    if args.warmup:  # the USE word cache filled, the files written: not counted
        subprocess.run([sys.executable, __file__, "--home", str(args.home), "--role", "probe",
                        "--mode", "process", "--questions", "1"], check=True,
                       stdout=subprocess.DEVNULL, cwd=REPO)
    for _ in range(args.rounds):
        for mode in args.modes:
            for cold in (True, False):
                if cold:
                    for lexical in cache.glob("*/lexical"):
                        shutil.rmtree(lexical)
                cmd = [sys.executable, __file__, "--home", str(args.home), "--role", "probe",
                       "--mode", mode, "--questions", str(args.questions)]
                got = subprocess.run(cmd + (["--cold"] if cold else []), check=True,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO)
                row = json.loads(got.stdout.strip().splitlines()[-1])
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--passages", type=int, default=20_000)
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--base", type=Path, default=C.BASE)
    p.add_argument("--models", type=Path)
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--measure-only", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--role", choices=("run", "probe", "build"), default="run",
                   help=argparse.SUPPRESS)
    p.add_argument("--modes", nargs="+", default=["store", "process"],
                   choices=("store", "process", "store-norows", "process-norows"),
                   help="BM25 asked of the store or kept in process; -norows: every read "
                   "of vectors its own query (no VectorRows)")
    p.add_argument("--warmup", action="store_true",
                   help="one reader first, not counted (the bridge's word cache)")
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "probe":
        return probe(args)
    if args.role == "build":
        return build(args)
    t0, c0 = time.perf_counter(), time.process_time()
    if not args.measure_only:  # a process of its own: Milvus Lite keeps its file locked
        subprocess.run([sys.executable, __file__, "--home", str(args.home), "--role", "build",
                        "--passages", str(args.passages), "--noise", str(args.noise),
                        "--base", str(args.base),
                        *(["--models", str(args.models)] if args.models else [])],
                       check=True, cwd=REPO)
    rows = measure(args)
    children = os.times()
    summary = {"rows": rows, "wall_s": time.perf_counter() - t0,
               "cpu_s": time.process_time() - c0 + children.children_user
               + children.children_system, "load": C.load_avg(),
               "build": json.loads((args.home / "build.json").read_text())}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
