"""Lexical search at scale: BM25 and the lexical bridge's vocabulary as the store grows.

Uses the tiny hash encoder of the tests (``tests/fakes.py``) for the passages and, at
USE's width (512), as the bridge's word encoder, so what is measured is khabar's own
machinery (SQLite, the change log, the inverted index, the vocabulary), not a model.
Articles are those of ``bench/store_scale.py`` (real NTREX sentences, English and
Arabic). Grow a store once and measure it at several sizes:

    python bench/lexical_scale.py --home /tmp/lex --passages 50000
    python bench/lexical_scale.py --home /tmp/lex --passages 100000   # grows it on

Prints, for a new process: open to its first lexical search (BM25 in the question's
language, and the bridge into the other: vocabulary match plus BM25 of the matches),
with no lexical files yet (built from the tokens SQLite holds), with files current,
and with files an article behind; for a warm reader: its first search after another
process added one article; and warm search p50/p95. ``--old REV`` measures the
lexical modules of an older commit too (they analyse every passage's text at open).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from khabar.index import Index  # noqa: E402
from store_scale import articles, sentences  # noqa: E402

from khabar import Settings  # noqa: E402
from tests.fakes import HashEncoder  # noqa: E402

_SEARCH = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
sys.path.insert(0, {modules!r})
from pathlib import Path
from khabar.store import Store
from tests.fakes import HashEncoder
from _lexical import LexicalIndex
from _bridge import LexicalBridge
home = Path({home!r})
t1 = time.perf_counter()
c1 = time.process_time()
store = Store(home / "store")
lexical = LexicalIndex(store)
bridge = LexicalBridge(store, HashEncoder("use", 512, "hash-use"), home / "cache")
t2 = time.perf_counter()
hits = lexical.search("en", {q_en!r}, 100)
t3 = time.perf_counter()
groups = bridge.query_groups({q_en!r}, "ar")
bridged = lexical.search_groups("ar", groups, 100)
t4 = time.perf_counter()
c4 = time.process_time()
for index in (lexical, bridge):
    if hasattr(index, "wait_saved"):
        index.wait_saved()
store.close()
print(json.dumps({{"bm25": t3 - t1, "bridge": t4 - t3, "total": t4 - t1, "cpu": c4 - c1,
                  "hits": len(hits), "bridged": len(bridged),
                  "rebuilds": [getattr(lexical, "rebuilds", "?"),
                               getattr(bridge, "rebuilds", "?")]}}))
"""

_WRITE = """
import sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from pathlib import Path
from khabar import Settings
from khabar.index import Index
from tests.fakes import HashEncoder
from store_scale import articles, sentences
ix = Index.open(Settings(home=Path({home!r})), encoders=[HashEncoder()])
report = ix.add_articles(articles(20_000_000 + {n}, 1, sentences(), seed=11))
assert report.count("added") == 1, report.summary()
ix.close()
"""


def _passages(home: Path) -> int:
    from khabar.store import Store
    store = Store(home / "store")
    n = store.count_passages()
    store.close()
    return n


def grow(home: Path, total: int) -> None:
    """Add articles (32 at a time, as `khabar ingest` of a folder does) up to ``total``
    passages."""
    pool = sentences()
    ix = Index.open(Settings(home=home), encoders=[HashEncoder()])
    done = ix.store.count_passages()
    at = ix.store.count_articles()
    t0, start = time.perf_counter(), done
    while done < total:
        done += ix.add_articles(articles(at, 32, pool)).passages
        at += 32
    ix.close()
    if done > start:
        print(f"grown {start:,} → {done:,} passages at "
              f"{(done - start) / (time.perf_counter() - t0):.0f} passages/s")


def _modules(rev: str | None, tmp: Path) -> Path:
    """A folder holding ``_lexical.py`` and ``_bridge.py`` of ``rev`` (the work tree's
    without), importable on their own."""
    out = tmp / (rev or "current")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("_lexical.py", "_bridge.py"):
        text = (subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:retrieval/{name}"],
                               check=True, capture_output=True, text=True).stdout
                if rev else (REPO / "retrieval" / name).read_text())
        (out / name).write_text(text)
    return out


def _run(script: str, **kw: object) -> dict:
    out = subprocess.run([sys.executable, "-c", script.format(repo=str(REPO), **kw)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(home: Path, modules: Path, q_en: str, label: str, *, warm: bool) -> dict:
    res: dict[str, object] = {}
    kw = dict(modules=str(modules), home=str(home), q_en=q_en)
    lexical = home / "store" / "lexical"
    if label == "now":
        shutil.rmtree(lexical, ignore_errors=True)
        res["open_no_files"] = _run(_SEARCH, **kw)
        res["open_files_current"] = _run(_SEARCH, **kw)
        _run(_WRITE + "\nprint('{{}}')", bench=str(REPO / "bench"), home=str(home),
             n=_passages(home) * 10)  # a new article each time
        res["open_files_one_article_behind"] = _run(_SEARCH, **kw)
    else:  # it has no files: every open is alike
        res["open"] = _run(_SEARCH, **kw)
    for key in [k for k in res if k.startswith("open")]:
        r = res[key]
        assert isinstance(r, dict)
        print(f"  [{label}] new process, {key.replace('_', ' ')}: {r['total']:.2f} s "
              f"(BM25 {r['bm25']:.2f} s, bridge {r['bridge']:.2f} s; CPU {r['cpu']:.2f} s; "
              f"rebuilds {r['rebuilds']})", flush=True)
    if not warm:
        return res
    sys.path.insert(0, str(modules))
    from _bridge import LexicalBridge  # type: ignore[import-not-found]
    from _lexical import LexicalIndex  # type: ignore[import-not-found]

    from khabar.store import Store
    store = Store(home / "store")
    lex = LexicalIndex(store)
    bridge = LexicalBridge(store, HashEncoder("use", 512, "hash-use"), home / "cache")
    lex.search("en", q_en, 100)
    lex.search_groups("ar", bridge.query_groups(q_en, "ar"), 100)
    after = []
    for n in range(1, 6):
        _run(_WRITE + "\nprint('{{}}')", bench=str(REPO / "bench"), home=str(home),
             n=_passages(home) * 10 + n)
        t0, c0 = time.perf_counter(), time.process_time()
        lex.search("en", q_en, 100)
        t1, c1 = time.perf_counter(), time.process_time()
        lex.search_groups("ar", bridge.query_groups(q_en, "ar"), 100)
        t2, c2 = time.perf_counter(), time.process_time()
        after.append((t1 - t0, t2 - t1, c1 - c0, c2 - c1))
    res["after_write_ms"] = [[round(x * 1000, 1) for x in a] for a in after]
    print(f"  [{label}] warm reader, first search after another process added one "
          f"article (5 times): BM25 {[x[0] for x in res['after_write_ms']]} ms "
          f"(CPU {[x[2] for x in res['after_write_ms']]}), "
          f"bridge {[x[1] for x in res['after_write_ms']]} ms "
          f"(CPU {[x[3] for x in res['after_write_ms']]}); rebuilds "
          f"{getattr(lex, 'rebuilds', '?')}/{getattr(bridge, 'rebuilds', '?')}", flush=True)
    pool = sentences()
    rng = random.Random(5)
    qs = [" ".join(rng.choice(pool["en"]).split()[:12]) for _ in range(200)]
    times_bm25, times_bridge = [], []
    for q in qs:
        t0 = time.perf_counter()
        lex.search("en", q, 100)
        t1 = time.perf_counter()
        lex.search_groups("ar", bridge.query_groups(q, "ar"), 100)
        t2 = time.perf_counter()
        times_bm25.append(t1 - t0)
        times_bridge.append(t2 - t1)

    def pct(xs: list[float], p: float) -> float:
        return statistics.quantiles(xs, n=100)[int(p) - 1] * 1000

    res["warm_ms"] = {"bm25_p50": pct(times_bm25, 50), "bm25_p95": pct(times_bm25, 95),
                      "bridge_p50": pct(times_bridge, 50), "bridge_p95": pct(times_bridge, 95)}
    w = res["warm_ms"]
    assert isinstance(w, dict)
    print(f"  [{label}] warm search (200 questions of 12 words): BM25 p50 "
          f"{w['bm25_p50']:.1f} ms, p95 {w['bm25_p95']:.1f} ms; bridge (match + BM25) p50 "
          f"{w['bridge_p50']:.1f} ms, p95 {w['bridge_p95']:.1f} ms", flush=True)
    store.close()
    sys.path.remove(str(modules))
    for name in ("_lexical", "_bridge"):
        sys.modules.pop(name, None)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True, help="the store's KHABAR_HOME (kept)")
    p.add_argument("--passages", type=int, default=50_000)
    p.add_argument("--old", help="also measure the lexical modules of this commit")
    p.add_argument("--old-cold", action="store_true",
                   help="of the older commit, measure only new processes")
    p.add_argument("--only-old", action="store_true", help="skip the work tree's modules")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    grow(args.home, args.passages)
    n = _passages(args.home)
    q_en = "What did the minister say about the election results on Tuesday?"
    tmp = args.home / "modules"
    results = {"passages": n}
    print(f"{n:,} passages:")
    if not args.only_old:
        results["current"] = measure(args.home, _modules(None, tmp), q_en, "now", warm=True)
    if args.old:
        results["old"] = measure(args.home, _modules(args.old, tmp), q_en, args.old,
                                 warm=not args.old_cold)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
