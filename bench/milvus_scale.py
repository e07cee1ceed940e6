"""The Milvus store at 100k and 1M passages, on a Milvus server (and on Milvus Lite):
the dense index (FLAT, HNSW, IVF_FLAT) and the language as partition key against a
``lang ==`` filter, by search latency, Recall@10 against exact search, memory and disk;
then, on the same archive, two writer and two reader processes (bench/milvus_writers.py).

    KHABAR_HOME=… python bench/milvus_scale.py --passages 100000 --variants flat hnsw hnsw+pk
    KHABAR_HOME=… python bench/milvus_scale.py --passages 100000 --lite --variants flat flat+pk
    KHABAR_HOME=… python bench/milvus_scale.py --passages 1000000 --variants hnsw+pk --writers 40

Passages are real: the real encoders' vectors of the real articles' passages and
sentences (``bench/.cache/scale-base.npz``, bench/scale.py's replay base: 9,087 texts,
Arabic and English), each copied with Gaussian noise (0.02 a dimension, renormalised:
a copy at cosine ~0.93 of its source, as bench/scale.py's replay), articles of three
passages of one language, 20 outlets, two years of dates. They are written straight
into the store's collections (what ``put`` writes, without its dedupe and lease: ``put``
at 1M would take days here) and committed; the puts' own rate is the writers' below.
Questions are bench/_corpus.py's 40 real ones, embedded by the real e5 (cached).

Each variant gets a server of its own (the ``milvus`` package: Milvus 2.3.5 standalone,
time tick 20 ms), so its memory (the server's RSS) and disk (its data folder) are its
own. A 2.3 server allows one vector field a collection: the server runs khabar's e5
space alone (USE serves cross-language retrieval; docs/milvus.md); Lite runs both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

from khabar.store import (  # noqa: E402
    MilvusStore,
    SpaceInfo,
    _milvus_filter,
)

OUTLETS = [f"outlet{i}" for i in range(20)]
START = datetime(2024, 1, 1, tzinfo=UTC)
ARABIC = re.compile(r"[\u0600-\u06FF]")
QCACHE = C.CACHE / "milvus-scale-questions.npz"
VARIANTS = {  # name: (index_type, language partition key)
    "flat": ("flat", False), "flat+pk": ("flat", True),
    "hnsw": ("hnsw", False), "hnsw+pk": ("hnsw", True),
    "ivf": ("ivf", False), "ivf+pk": ("ivf", True),
}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children() -> list[int]:
    """This process's descendants (the server and its etcd)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [os.getpid()]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def server_usage() -> dict[str, float]:
    """The server processes' resident memory (MB) and CPU time (s) so far."""
    rss, cpu_s = 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in children():
        with contextlib.suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_s += (int(fields[11]) + int(fields[12])) / tick
    return {"rss_mb": rss, "cpu_s": cpu_s}


def questions() -> dict[str, np.ndarray]:
    """The 40 questions' e5 (and USE) vectors, cached."""
    if QCACHE.exists():
        with np.load(QCACHE) as z:
            return {k: z[k] for k in z.files}
    from khabar import Settings
    from khabar.model import load_encoders

    texts = [q for _, q in C.questions()]
    encoders = load_encoders(Settings.load())
    out = {e.space: np.asarray(e.embed_queries(texts), np.float32) for e in encoders}
    out |= {f"fingerprint_{e.space}": np.array(e.fingerprint) for e in encoders}
    QCACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(QCACHE, **out)
    return out


def pools(base: C.Base) -> dict[str, np.ndarray]:
    """The base's rows by language (Arabic script or not)."""
    rows = sorted(base.texts.items(), key=lambda kv: kv[1])
    ar = np.array([bool(ARABIC.search(t)) for t, _ in rows])
    return {"ar": np.flatnonzero(ar), "en": np.flatnonzero(~ar)}


def build(store: MilvusStore, n: int, base: C.Base, spaces: list[str],
          rng: np.random.Generator, noise: float = 0.02) -> dict[str, Any]:
    """``n`` passages committed (articles of three); the vectors kept by language.
    The rows go in through the bare client (no lease: nobody else writes here), the
    state under the lease, as a put commits."""
    c = store._client._bare
    by_lang = pools(base)
    vecs: dict[str, dict[str, list[np.ndarray]]] = {s: {"en": [], "ar": []} for s in spaces}
    ids: dict[str, list[int]] = {"en": [], "ar": []}
    outlet_of: dict[str, list[int]] = {"en": [], "ar": []}
    step = 3000
    t_insert = 0.0
    for start in range(0, n, step):
        m = min(step, n - start)
        pids = np.arange(start + 1, start + m + 1)
        arts = (pids - 1) // 3 + 1
        # An article's language: 60 % English, by its number (repeatable).
        langs = np.where((arts * 2654435761 % 100) < 60, "en", "ar")
        src = np.array([rng.choice(by_lang[lang]) for lang in langs])
        got = {}
        for s in spaces:
            x = base.vecs[s][src] + rng.standard_normal((m, base.vecs[s].shape[1])
                                                        ).astype(np.float32) * noise
            got[s] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        rows, art_rows = [], []
        for i in range(m):
            pid, art, lang = int(pids[i]), int(arts[i]), str(langs[i])
            outlet = art % len(OUTLETS)
            when = START + timedelta(hours=art % (24 * 730))
            row = {"id": pid, "article_id": art, "position": (pid - 1) % 3,
                   "text": f"passage {pid} of article {art}", "lang": lang,
                   "tokens": f"passag {pid} articl {art}", "words": "passage article",
                   "dup_of": -1, "when_us": _milvus_filter.us(when),
                   "published_us": _milvus_filter.us(when), "origin": "",
                   "outlets_lc": [OUTLETS[outlet]]}
            for s in spaces:
                row[f"v_{s}"] = got[s][i].tolist()
                row[f"s_{s}"] = ""
                vecs[s][lang].append(got[s][i])
            rows.append(row)
            ids[lang].append(pid)
            outlet_of[lang].append(outlet)
            if (pid - 1) % 3 == 0:
                art_rows.append({
                    "id": art, "url": f"bench://{art}", "content_hash": str(art),
                    "title": f"Article {art}", "author": "", "published": when.isoformat(),
                    "ingested": when.isoformat(), "lang": lang, "section": "", "tags": "[]",
                    "source": "", "site_name": "", "origin": "", "when_us": _milvus_filter.us(when),
                    "n_passages": min(3, n - pid + 1), "outlets": [OUTLETS[outlet]],
                    "outlets_lc": [OUTLETS[outlet]], "v": [0.0, 0.0]})
        t0 = time.perf_counter()
        c.insert(store._name("passages"), rows)
        c.insert(store._name("articles"), art_rows)
        t_insert += time.perf_counter() - t0
        if start // step % 50 == 0:
            print(f"    {start + m:,} rows  {C.load_avg()}", file=sys.stderr, flush=True)
    last_art = (n - 1) // 3 + 1
    with store._writing():
        st = store._state()
        st.update(passage=n, article=last_art, articles=last_art,
                  generation=int(st["generation"]) + 1,
                  langs={k: len(v) for k, v in ids.items()})
        store._write_state(st)
    return {"insert_s": t_insert,
            "vecs": {s: {lg: np.asarray(v, np.float32) for lg, v in d.items()}
                     for s, d in vecs.items()},
            "ids": {lg: np.asarray(v) for lg, v in ids.items()},
            "outlet": {lg: np.asarray(v) for lg, v in outlet_of.items()}}


def wait_indexed(store: MilvusStore, n: int, spaces: list[str], timeout: float = 7200) -> None:
    """Seal everything and wait until every sealed row of each dense field is indexed."""
    c = store._client._bare
    name = store._name("passages")
    c.flush(name)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        infos = [c.describe_index(name, f"v_{s}") for s in spaces]
        if all(int(i.get("indexed_rows", 0)) >= n for i in infos):
            return
        time.sleep(2)
    raise TimeoutError("index build")


def disk_mb(tmp: Path) -> float:
    """The archive's bytes: Lite's file, or the server's data (its write-ahead log,
    etcd and segments), not the server's own binaries (``bin``, 246 MB)."""
    return sum(f.stat().st_size for f in tmp.rglob("*")
               if f.is_file() and "bin" not in f.relative_to(tmp).parts[1:2]) / 2**20


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def exact_top(mat: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    scores = mat @ q
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = np.argpartition(-scores, k)[:k]
    top = top[np.argsort(-scores[top])]
    return ids[top], float(scores[top[-1]])


def measure(store: MilvusStore, data: dict[str, Any], qv: dict[str, np.ndarray],
            spaces: list[str], repeats: int) -> dict[str, Any]:
    """Search latency (wall and client CPU) and Recall@10, per space, over every
    question in both languages; and with a one-outlet filter (5 %)."""
    out: dict[str, Any] = {}
    outlet = 3
    flt = store.passage_filter(outlets=[OUTLETS[outlet]])
    out["outlet_filter_form"] = type(flt).__name__
    for s in spaces:
        for k in (10, 50):
            walls: list[float] = []
            cpus: list[float] = []
            for _ in range(repeats):
                for q in qv[s]:
                    for lang in ("en", "ar"):
                        t0, c0 = time.perf_counter(), cpu()
                        store.search(s, lang, q, k)
                        walls.append(time.perf_counter() - t0)
                        cpus.append(cpu() - c0)
            out[f"{s} k={k}"] = {"p50_ms": pct(walls, .5), "p95_ms": pct(walls, .95),
                                 "cpu_p50_ms": 1000 * statistics.median(cpus), "n": len(walls)}
        walls, hits, fhits = [], [], []
        for q in qv[s]:
            for lang in ("en", "ar"):
                mat, ids = data["vecs"][s][lang], data["ids"][lang]
                _, kth = exact_top(mat, ids, q, 10)
                got = store.search(s, lang, q, 10)
                hits.append(sum(score >= kth - 1e-5 for _, score in got) / 10)
                _, fkth = exact_top(mat, ids, q, 10, data["outlet"][lang] == outlet)
                t0 = time.perf_counter()
                fgot = store.search(s, lang, q, 10, flt)
                walls.append(time.perf_counter() - t0)
                fhits.append(sum(score >= fkth - 1e-5 for _, score in fgot) / 10)
        # The index's own cost: the same search read Bounded (no wait for the server's
        # time tick, which a Strong read pays: ~33 ms at a 20 ms tick).
        bare, name = store._client._bare, store._name("passages")
        bwalls: list[float] = []
        for q in qv[s]:
            for lang in ("en", "ar"):
                t0 = time.perf_counter()
                bare.search(name, data=[q.tolist()], anns_field=f"v_{s}", limit=10,
                            filter=f"lang == {_milvus_filter.lit(lang)}", output_fields=["id"],
                            search_params=store._dense_params(s, 10),
                            consistency_level="Bounded")
                bwalls.append(time.perf_counter() - t0)
        out[f"{s} k=10 bounded"] = {"p50_ms": pct(bwalls, .5), "p95_ms": pct(bwalls, .95)}
        if store.dense_index_kinds().get(s) == "HNSW":  # the search breadth, swept
            for ef in (32, 64, 128, 256):
                ewalls, ehits = [], []
                for q in qv[s]:
                    for lang in ("en", "ar"):
                        _, kth = exact_top(data["vecs"][s][lang], data["ids"][lang], q, 10)
                        t0 = time.perf_counter()
                        found = bare.search(
                            name, data=[q.tolist()], anns_field=f"v_{s}", limit=10,
                            filter=f"lang == {_milvus_filter.lit(lang)}", output_fields=["id"],
                            search_params={"metric_type": "IP", "params": {"ef": ef}},
                            consistency_level="Bounded")
                        ewalls.append(time.perf_counter() - t0)
                        ehits.append(sum(h["distance"] >= kth - 1e-5 for h in found[0]) / 10)
                out[f"{s} ef={ef}"] = {"recall@10": float(np.mean(ehits)),
                                       "p50_ms": pct(ewalls, .5), "p95_ms": pct(ewalls, .95)}
        out[f"{s} recall@10"] = float(np.mean(hits))
        out[f"{s} recall@10 outlet 5%"] = float(np.mean(fhits))
        out[f"{s} k=10 outlet 5%"] = {"p50_ms": pct(walls, .5), "p95_ms": pct(walls, .95)}
    return out


@contextlib.contextmanager
def archive(lite: bool, tmp: Path) -> Iterator[str]:
    if lite:
        yield str(tmp / "lite" / "khabar.db")
        return
    import milvus_writers as W

    for attempt in range(3):  # a start may time out on a loaded machine: again
        try:
            server = W.serve(tmp / f"milvus{attempt or ''}")
            uri = server.__enter__()
        except TimeoutError:
            print("  the server did not start in time: again", file=sys.stderr, flush=True)
            continue
        try:
            yield uri
        finally:
            server.__exit__(None, None, None)
        return
    raise TimeoutError("the Milvus server did not start, three times")


def variant(name: str, args: argparse.Namespace, base: C.Base, qv: dict[str, np.ndarray],
            spaces: list[SpaceInfo]) -> dict[str, Any]:
    index_type, pk = VARIANTS[name]
    res: dict[str, Any] = {"variant": name, "backend": "lite" if args.lite else "server 2.3.5",
                           "passages": args.passages, "spaces": [s.name for s in spaces],
                           "load_before": os.getloadavg()}
    print(f"{name}: building {args.passages:,} passages  {C.load_avg()}", file=sys.stderr,
          flush=True)
    with tempfile.TemporaryDirectory(prefix="khabar-mscale-", dir=args.tmp) as tmp_s, \
            archive(args.lite, Path(tmp_s)) as where:
        tmp = Path(tmp_s)
        uri = where if args.lite else "http://" + where.removeprefix("milvus://")
        store = MilvusStore(uri, cache=tmp / "cache", index_type=index_type,
                            lang_partitions=pk)
        store.bind_spaces(spaces)
        names = [s.name for s in spaces]
        rng = np.random.default_rng(7)
        t0, c0, s0 = time.perf_counter(), cpu(), server_usage()["cpu_s"]
        data = build(store, args.passages, base, names, rng)
        res["insert"] = {"wall_s": time.perf_counter() - t0, "client_cpu_s": cpu() - c0,
                         "rows_per_s": args.passages / data["insert_s"]}
        t0 = time.perf_counter()
        if args.lite:
            store._seal(1)
        else:
            wait_indexed(store, args.passages, names)
        res["seal_index_s"] = time.perf_counter() - t0
        res["build_server_cpu_s"] = server_usage()["cpu_s"] - s0
        res["dense_index"] = store.dense_index_kinds()
        qv = {s: v for s, v in qv.items() if s in names}
        s0 = server_usage()["cpu_s"]
        c0 = cpu()
        res["search"] = measure(store, data, qv, names, args.repeats)
        res["search_client_cpu_s"] = cpu() - c0
        res["search_server_cpu_s"] = server_usage()["cpu_s"] - s0
        res["server"] = server_usage()
        res["client_max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        res["disk_mb"] = disk_mb(tmp)
        store.close()
        del data
        if args.writers and not args.lite and name == args.variants[-1]:
            import milvus_writers as W

            print(f"{name}: two writers, two readers, {args.writers} articles  "
                  f"{C.load_avg()}", file=sys.stderr, flush=True)
            try:  # the figures above are kept whatever happens here
                res["writers"] = W.run(where, args.writers, real=True, crash=False,
                                       work=tmp / "writers")
            except Exception as exc:
                res["writers"] = {"error": repr(exc)[:500]}
                print(f"  the writers' run failed: {exc!r}", file=sys.stderr, flush=True)
            res["disk_mb_after_writers"] = disk_mb(tmp)
    res["load_after"] = os.getloadavg()
    return res


def line(r: dict[str, Any]) -> str:
    s = r["search"]
    sp = r["spaces"][0]
    return (f"| {r['backend']} | {r['passages']:,} | {r['variant']} "
            f"({'/'.join(r['dense_index'].values())}) | {r['insert']['rows_per_s']:.0f} | "
            f"{r['seal_index_s']:.0f} | {s[f'{sp} k=10']['p50_ms']:.1f} / "
            f"{s[f'{sp} k=10']['p95_ms']:.1f} (CPU {s[f'{sp} k=10']['cpu_p50_ms']:.1f}) | "
            f"{s[f'{sp} k=50']['p50_ms']:.1f} / {s[f'{sp} k=50']['p95_ms']:.1f} | "
            f"{s[f'{sp} k=10 bounded']['p50_ms']:.1f} / {s[f'{sp} k=10 bounded']['p95_ms']:.1f} | "
            f"{s[f'{sp} recall@10']:.3f} | {s[f'{sp} k=10 outlet 5%']['p50_ms']:.1f}, "
            f"{s[f'{sp} recall@10 outlet 5%']:.3f} | {r['server']['rss_mb']:.0f} | "
            f"{r['client_max_rss_mb']:.0f} | {r['disk_mb']:.0f} | "
            f"{r['search_server_cpu_s']:.1f} | {r['load_before'][0]:.1f}–"
            f"{r['load_after'][0]:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["flat", "hnsw",
                                                                                 "hnsw+pk"])
    p.add_argument("--lite", action="store_true", help="Milvus Lite (both spaces)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--writers", type=int, default=0,
                   help="then two writers and two readers put this many articles (server;"
                   " on the last variant's archive)")
    p.add_argument("--base", type=Path, default=C.BASE)
    p.add_argument("--tmp", type=Path, help="where the archives go (default: the system's)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    base = C.Base.load(args.base)
    qv = questions()
    # The configured encoders' fingerprints (the base may come from an older build of
    # the same models): the writers' and readers' Index opens the store with them.
    infos = [SpaceInfo(s, str(qv.pop(f"fingerprint_{s}")), base.meta["spaces"][s]["dim"])
             for s in (("e5", "use") if args.lite else ("e5",))]
    qv = {k: v for k, v in qv.items() if not k.startswith("fingerprint_")}
    results = []
    for name in args.variants:
        results.append(variant(name, args, base, qv, infos))
        print(line(results[-1]), file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    print("| backend | passages | variant (index) | insert rows/s | seal+index s | search k=10 "
          "p50 / p95 ms (client CPU) | k=50 p50 / p95 ms | k=10 Bounded p50 / p95 ms | "
          "Recall@10 | one outlet (5 %): "
          "k=10 p50 ms, Recall@10 | server RSS MB | client peak RSS MB | disk MB | server "
          "CPU s (searches) | load |")
    print("| --- " * 15 + "|")
    for r in results:
        print(line(r))


if __name__ == "__main__":
    main()
