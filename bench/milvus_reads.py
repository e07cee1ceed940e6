"""The Milvus store's reads at a size ``put`` could not build here in time: a question's
store calls on Milvus Lite over N synthetic passages, each new way beside the old one
(interleaved, same process), with Recall@10 of the dense search against exact search.

Rows are written straight into the store's collections in batches (random unit vectors,
articles of three passages, 20 outlets, two years of dates, two languages), then the
state row is committed and the collection sealed, as ``put`` and ``flush`` would leave
them; nothing is embedded. What is timed is the store, not the model:

* ``passages``/``duplicate_groups``/``neighbours``: primary-key lookups (``id in``
  alone) against the old expressions (``id in [...] and id <= committed``, the
  neighbours' ``article_id == … and position …``), which Milvus Lite answers by a scan;
* a filtered search: a filter matching 5% of the passages as an expression
  (``MilvusMatching``) against the same passages as ``id in [...]``;
* dense search: FLAT sealed against the same rows unsealed (growing).

    python bench/milvus_reads.py --passages 100000 --questions 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar.store import MilvusStore, SpaceInfo  # noqa: E402
from khabar.store._milvus_filter import id_list  # noqa: E402

SPACES = [SpaceInfo("e5", "bench:384", 384), SpaceInfo("use", "bench:512", 512)]
OUTLETS = [f"outlet{i}" for i in range(20)]
START = datetime(2024, 1, 1, tzinfo=UTC)


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(store: MilvusStore, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` passages (articles of three), committed; the e5 vectors by language."""
    c = store._client._bare  # no lease for the rows: nobody else writes here
    use = "use" in store.spaces()  # a Milvus 2.3 server holds e5 alone
    by_lang: dict[str, list[np.ndarray]] = {"en": [], "ar": []}
    ids_by_lang: dict[str, list[int]] = {"en": [], "ar": []}
    step = 3000
    for start in range(0, n, step):
        m = min(step, n - start)
        e5, use_v = _unit(rng, m, 384), _unit(rng, m, 512)
        rows, arts = [], []
        for i in range(m):
            pid = start + i + 1
            art = (pid - 1) // 3 + 1
            lang = "en" if art % 2 else "ar"
            outlet = OUTLETS[art % len(OUTLETS)]
            when = START + timedelta(hours=art % (24 * 730))
            rows.append({"id": pid, "article_id": art, "position": (pid - 1) % 3,
                         "text": f"passage {pid} of article {art}", "lang": lang,
                         "tokens": f"passag {pid} articl {art}", "words": "passage article",
                         "dup_of": pid - 3 if pid % 50 == 0 else -1, "when_us": _us(when),
                         "published_us": _us(when), "origin": "", "outlets_lc": [outlet],
                         "v_e5": e5[i].tolist(), "s_e5": "",
                         **({"v_use": use_v[i].tolist(), "s_use": ""} if use else {})})
            by_lang[lang].append(e5[i])
            ids_by_lang[lang].append(pid)
            if (pid - 1) % 3 == 0:
                arts.append({"id": art, "url": f"bench://{art}", "content_hash": str(art),
                             "title": f"Article {art}", "author": "", "published":
                             when.isoformat(), "ingested": when.isoformat(), "lang": lang,
                             "section": "", "tags": "[]", "source": "", "site_name": "",
                             "origin": "", "when_us": _us(when),
                             "n_passages": min(3, n - pid + 1), "outlets": [outlet],
                             "outlets_lc": [outlet], "v": [0.0, 0.0]})
        c.insert(store._name("passages"), rows)
        c.insert(store._name("articles"), arts)
    with store._writing():  # the state under the lease, as a put commits
        st = store._state()
        st.update(passage=n, article=(n - 1) // 3 + 1, articles=(n - 1) // 3 + 1,
                  generation=int(st["generation"]) + 1,
                  langs={k: len(v) for k, v in ids_by_lang.items()})
        store._write_state(st)
    return {lang: np.asarray(v) for lang, v in by_lang.items()} | {
        f"ids_{lang}": np.asarray(v) for lang, v in ids_by_lang.items()}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], object], walls: list[float], cpus: list[float]) -> object:
    t0, c0 = time.perf_counter(), cpu()
    out = fn()
    walls.append(time.perf_counter() - t0)
    cpus.append(cpu() - c0)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    rng = np.random.default_rng(7)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = MilvusStore(f"{tmp}/m/khabar.db", cache=Path(tmp) / "cache")
        store.bind_spaces(SPACES)
        t0, c0 = time.perf_counter(), cpu()
        data = build(store, args.passages, rng)
        results["build"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - c0}
        n = args.passages
        queries = _unit(rng, args.questions, 384)
        cases: dict[str, Callable[[int], object]] = {}
        st = store._state()

        def rand_ids(k: int) -> list[int]:
            return [int(x) for x in rng.integers(1, n + 1, k)]

        def old_passages(ids: list[int]) -> object:
            return store._query("passages", f"id in {id_list(sorted(ids))} and id <= "
                                f"{st['passage']}", store._PASSAGE_FIELDS)

        def old_neighbours(ids: list[int]) -> object:
            places = store._query("passages", f"id in {id_list(ids)} and id <= {st['passage']}",
                                  ["id", "article_id", "position"])
            around = " or ".join(f"(article_id == {r['article_id']} and position >= "
                                 f"{r['position'] - 1} and position <= {r['position'] + 1})"
                                 for r in places)
            return store._query("passages", f"({around}) and id <= {st['passage']}",
                                store._PASSAGE_FIELDS)

        cases["passages(50) new"] = lambda q: store.passages(rand_ids(50))
        cases["passages(50) old"] = lambda q: old_passages(rand_ids(50))
        cases["neighbours(10) new"] = lambda q: store.neighbours(rand_ids(10))
        cases["neighbours(10) old"] = lambda q: old_neighbours(rand_ids(10))
        cases["duplicate_groups(30)"] = lambda q: store.duplicate_groups(rand_ids(30))
        wide = store.passage_filter(outlets=["outlet3"])  # 5%: an expression
        listed = wide.ids() if wide is not None and not isinstance(wide, set) else wide
        results["filter"] = {"form": type(wide).__name__, "passages": len(listed or ())}
        cases["search e5 k=50, filter 5% as expression"] = lambda q: store.search(
            "e5", "en", queries[q], 50, wide)
        cases["search e5 k=50, filter 5% as id list"] = lambda q: store.search(
            "e5", "en", queries[q], 50, listed)
        cases["passage_filter(outlets) 5%"] = lambda q: store.passage_filter(
            outlets=["outlet3"])
        cases["search e5 k=50 growing (unsealed)"] = lambda q: store.search(
            "e5", "en", queries[q], 50)
        recall: list[float] = []
        walls: dict[str, list[float]] = {k: [] for k in cases}
        cpus: dict[str, list[float]] = {k: [] for k in cases}
        sealed_walls: list[float] = []
        sealed_cpus: list[float] = []
        for q in range(args.questions):  # growing rows first: the same rows, unsealed
            timed(lambda q=q: cases["search e5 k=50 growing (unsealed)"](q),
                  walls["search e5 k=50 growing (unsealed)"],
                  cpus["search e5 k=50 growing (unsealed)"])
        t0 = time.perf_counter()
        store._seal(1)
        results["seal"] = {"wall_s": time.perf_counter() - t0}
        for q in range(args.questions):
            for name, fn in cases.items():
                if "growing" not in name:
                    timed(lambda fn=fn, q=q: fn(q), walls[name], cpus[name])
            got = timed(lambda q=q: store.search("e5", "en", queries[q], 10),
                        sealed_walls, sealed_cpus)
            exact = data["ids_en"][np.argsort(-(data["en"] @ queries[q]))[:10]]
            recall.append(len({pid for pid, _ in got} & set(exact.tolist())) / 10)  # type: ignore[attr-defined]
        walls["search e5 k=10 sealed"] = sealed_walls
        cpus["search e5 k=10 sealed"] = sealed_cpus
        for name in walls:
            results[name] = {"p50_ms": pct(walls[name], 0.5), "p95_ms": pct(walls[name], 0.95),
                             "cpu_p50_ms": 1000 * statistics.median(cpus[name])}
        results["recall@10 sealed FLAT"] = {"value": float(np.mean(recall))}
        size = sum(f.stat().st_size for f in Path(f"{tmp}/m").rglob("*") if f.is_file())
        results["footprint"] = {"disk_mb": size / 2**20, "max_rss_mb":
                                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                "load": os.getloadavg()[0]}
        store.close()
    for name, r in results.items():
        print(f"{name:45} " + "  ".join(f"{k} {v:.1f}" if isinstance(v, float) else
                                        f"{k} {v}" for k, v in r.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
