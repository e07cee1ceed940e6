"""The store's own machinery at scale: ingest rate as it grows, opening, other writers.

Uses the tiny hash encoder of the tests (``tests/fakes.py``), so what is measured is
khabar's store and ingest path (SQLite, FAISS, near-duplicate links, sentence
vectors), not the model. Articles are made of real NTREX news sentences (English
and Arabic, five paragraphs of two random sentences each) when ``shared/`` is
there, else of made-up words.

    python bench/store_scale.py --passages 50000

Prints the ingest rate per slice of passages (it should not fall as the store
grows), the time a new process takes from opening the store to its first search,
and the time of a warm reader's first search after another process added one
article (with the writer closing cleanly, and killed before saving anything).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar.index import Article, Index  # noqa: E402

from khabar import Settings  # noqa: E402
from tests.fakes import HashEncoder  # noqa: E402

NTREX = REPO.parent / "shared" / "data" / "raw" / "ntrex"
PARAGRAPHS = 5


def sentences() -> dict[str, list[str]]:
    files = {"en": next(NTREX.glob("*eng*"), None), "ar": next(NTREX.glob("*arb*"), None)}
    if all(files.values()):
        return {k: [s for s in f.read_text(encoding="utf-8").splitlines() if len(s) > 40]
                for k, f in files.items() if f}
    rng = random.Random(1)
    words = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou")
                     for _ in range(rng.randint(2, 4))) for _ in range(5000)]
    made = [" ".join(rng.choices(words, k=rng.randint(12, 25))) + "." for _ in range(4000)]
    return {"en": made}


def articles(start: int, n: int, pool: dict[str, list[str]], seed: int = 0) -> list[Article]:
    rng = random.Random(seed * 1_000_003 + start)
    langs = sorted(pool)
    out = []
    for i in range(start, start + n):
        lang = langs[i % len(langs)]
        body = [" ".join(rng.sample(pool[lang], 2)) for _ in range(PARAGRAPHS)]
        out.append(Article(title=f"Story {i}", paragraphs=body, url=f"https://x.test/{seed}/{i}",
                           outlets=[f"Outlet {i % 40}"], lang=lang))
    return out


def ingest(home: Path, total: int, slice_: int, pool: dict[str, list[str]]) -> None:
    """Articles in batches of 32 (as `khabar ingest` of a folder adds them), the rate
    printed per ``slice_`` passages."""
    ix = Index.open(Settings(home=home), encoders=[HashEncoder()])
    batch, at = 32, 0
    done, t0 = 0, time.perf_counter()
    mark = (0, t0)  # passages, time at the start of the slice
    while done < total:
        done += ix.add_articles(articles(at, batch, pool)).passages
        at += batch
        if done >= mark[0] + slice_ or done >= total:
            t = time.perf_counter()
            print(f"  {mark[0]:>7,}–{done:<7,} passages: {(done - mark[0]) / (t - mark[1]):6.0f}"
                  " passages/s", flush=True)
            mark = (done, t)
    t = time.perf_counter()
    ix.close()
    print(f"  closing (saving the FAISS files): {time.perf_counter() - t:.2f} s; "
          f"{done:,} passages in {time.perf_counter() - t0:.0f} s")


_OPEN = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
from pathlib import Path
from khabar.store import Store
from tests.fakes import HashEncoder
t1 = time.perf_counter()
store = Store(Path({path!r}))
q = HashEncoder().embed_queries(["the minister said on Tuesday"])[0]
hits = store.search("e5", "en", q, 10)
t2 = time.perf_counter()
print(f"{{t2 - t1:.3f}} {{len(hits)}} {{getattr(store._faiss, 'rebuilds', '?')}}")
"""

_WRITE = """
import os, sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from pathlib import Path
from khabar import Settings
from khabar.index import Index
from tests.fakes import HashEncoder
from store_scale import articles, sentences
ix = Index.open(Settings(home=Path({home!r})), encoders=[HashEncoder()])
t0 = time.perf_counter()
report = ix.add_articles(articles(10_000_000 + {n}, 1, sentences(), seed=7))
t1 = time.perf_counter()
print(f"{{t1 - t0:.3f}} {{report.summary()}}", flush=True)
if {kill}:
    os._exit(0)  # as if killed: nothing saved on the way out
ix.close()
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=50_000)
    p.add_argument("--slice", type=int, default=10_000)
    p.add_argument("--home", type=Path, help="keep the store here (default: a temp folder)")
    args = p.parse_args()
    pool = sentences()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        print(f"ingest, {PARAGRAPHS} passages an article, hash encoder, "
              f"{'NTREX sentences' if 'ar' in pool else 'made-up words'}:")
        ingest(home, args.passages, args.slice, pool)
        path = home / "store"
        for label in ("open to the first search, a new process (files current)",):
            out = subprocess.run([sys.executable, "-c", _OPEN.format(repo=str(REPO),
                                                                     path=str(path))],
                                 check=True, capture_output=True, text=True).stdout.split()
            print(f"{label}: {float(out[0]):.2f} s ({out[2]} rebuilds)")

        from khabar.store import Store
        reader = Store(path)
        q = HashEncoder().embed_queries(["the minister said on Tuesday"])[0]
        reader.search("e5", "en", q, 10)
        for n, kill in ((1, False), (2, True)):
            out = subprocess.run(
                [sys.executable, "-c", _WRITE.format(repo=str(REPO), bench=str(REPO / "bench"),
                                                     home=str(home), n=n, kill=kill)],
                check=True, capture_output=True, text=True).stdout
            t = time.perf_counter()
            reader.search("e5", "en", q, 10)
            took = time.perf_counter() - t
            how = "killed before saving" if kill else "closed cleanly"
            print(f"another process adds one article ({how}; its put+flush took "
                  f"{float(out.split()[0]) * 1000:.0f} ms): a warm reader's next search "
                  f"{took * 1000:.1f} ms ({getattr(reader._faiss, 'rebuilds', '?')} rebuilds)")
        out = subprocess.run([sys.executable, "-c", _OPEN.format(repo=str(REPO),
                                                                 path=str(path))],
                             check=True, capture_output=True, text=True).stdout.split()
        print(f"open to the first search, a new process (files one article behind): "
              f"{float(out[0]):.2f} s ({out[2]} rebuilds)")
        reader.close()


if __name__ == "__main__":
    main()
