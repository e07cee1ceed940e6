"""The Milvus store's whole-archive reads at 100k passages on Milvus Lite: ``outlets()``,
``stats()`` and ``check()``, wall and CPU time and the process's peak RSS during each
call (Milvus Lite's engine runs inside the process, so the RSS is client and engine).

The archive is built once into ``--store`` (bench/milvus_reads.py's synthetic rows:
articles of three passages, 20 outlets, two languages, nothing embedded) and kept, so a
run of another version of the code reads the same rows; each run copies it first
(``--copy``) since opening a store as a writer may change it.

    python bench/milvus_whole.py --passages 100000 --store /tmp/mread/s100k --repeats 3

``--server``: the same on a Milvus 2.3.5 standalone server of its own (the ``milvus``
package, as bench/milvus_writers.py starts it), e5 alone (a 2.3 server holds one vector
field a collection), built afresh in a temporary folder; the RSS is then the client's.

    python bench/milvus_whole.py --passages 100000 --server --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import milvus_writers as W  # noqa: E402
from milvus_reads import SPACES, build  # noqa: E402

from khabar.store import MilvusStore  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_during(fn: Callable[[], object]) -> tuple[float, float, float, object]:
    """Wall s, CPU s, and how far the process's peak RSS rose above its RSS before (MB)."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS")
    t0, c0 = time.perf_counter(), cpu()
    out = fn()
    return time.perf_counter() - t0, cpu() - c0, _status("VmHWM") - before, out


def open_store(path: Path, cache: Path) -> MilvusStore:
    return MilvusStore(str(path / "khabar.db"), cache=cache)


def measure(store: MilvusStore, repeats: int, names: list[str],
            results: dict[str, object]) -> None:
    """The summary rows made where the code keeps them, then each call timed."""
    try:  # the writer's summary rows, made once for a store from before them
        from khabar.store._milvus_summary import ensure
    except ImportError:  # the code from before them
        pass
    else:
        w, c, m, made = peak_during(lambda: ensure(store))
        results["summary rows made"] = {"wall_s": w, "cpu_s": c, "peak_rise_mb": m,
                                        "made": made}

    def cold(fn: Callable[[], object]) -> object:
        """As a question's first call after another process's commit: nothing of this
        process's last reads kept."""
        store._state_cache = None
        if hasattr(store, "_summary_cache"):
            store._summary_cache = None
        return fn()

    calls: dict[str, Callable[[], object]] = {
        "outlets": store.outlets, "stats": store.stats, "check": store.check,
        "outlets(scope)": lambda: store.outlets(scope="chat:bench"),
        "outlets, cold": lambda: cold(store.outlets)}
    for name in names:
        walls, cpus, rises = [], [], []
        out: object = None
        for _ in range(repeats):
            w, c, m, out = peak_during(calls[name])
            walls.append(w)
            cpus.append(c)
            rises.append(m)
        results[name] = {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                         "peak_rise_mb": max(rises), "out": out if name != "stats" else {
                             k: v for k, v in out.items() if k != "spaces"}}  # type: ignore[union-attr]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--store", type=Path, help="built here once, then reused (Lite)")
    p.add_argument("--server", action="store_true", help="a Milvus 2.3.5 server, e5 alone")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--calls", nargs="+", default=["outlets, cold", "outlets", "stats",
                                                     "check"])
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results: dict[str, object] = {"load_start": os.getloadavg()[0]}
    if args.server:
        with tempfile.TemporaryDirectory() as tmp, W.serve(Path(tmp) / "server") as uri:
            store = MilvusStore(uri.replace("milvus://", "http://"), cache=Path(tmp) / "c")
            store.bind_spaces(SPACES[:1])
            t0, c0 = time.perf_counter(), cpu()
            build(store, args.passages, np.random.default_rng(7))
            results["build"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0,
                                "rss_mb": _status("VmRSS")}
            measure(store, args.repeats, args.calls, results)
            store.close()
    else:
        if args.store is None:
            p.error("--store (Lite) or --server")
        if not (args.store / "khabar.db").exists():
            args.store.mkdir(parents=True, exist_ok=True)
            store = open_store(args.store, args.store / "cache")
            store.bind_spaces(SPACES)
            t0, c0 = time.perf_counter(), cpu()
            build(store, args.passages, np.random.default_rng(7))
            store._seal(1)
            results["build"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0}
            store.close()
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = args.store / "khabar.db", Path(tmp) / "khabar.db"
            shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
            t0, c0 = time.perf_counter(), cpu()
            store = open_store(Path(tmp), Path(tmp) / "cache")
            results["open"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0,
                               "rss_mb": _status("VmRSS")}
            measure(store, args.repeats, args.calls, results)
            store.close()
    results["load_end"] = os.getloadavg()[0]
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(results, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
