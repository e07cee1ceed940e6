"""Ingest rate with the real encoders: passages/s through ``Index.add_articles``.

NTREX-128's news documents in English and in Arabic (``bench/_corpus.py``: 246 articles,
1,116 passages; ``--rounds`` goes through them again under new URLs with one word
changed per paragraph, so every text is new to the store and to the encoders), ingested
slice by slice into fresh stores with the default settings (e5 on onnxruntime + USE,
passage and sentence vectors, near-duplicate links, SQLite, FAISS). Two ways of
embedding, run on the same slice one after the other (alternating which goes first),
so both see the same machine load:

* ``before``: the encoders called one after another, passages then sentences, e5 in
  batches of 16 texts (the code before the ingest work, kept here as the baseline;
  ``--before-new-batches``: with today's batches of at most 512 tokens);
* ``after``: ``Index``'s own (``khabar.model.embed_for_store``) with every sentence at
  fp32 (``sentence_method="each"``, the default before session 7);
* ``late``: the same with ``sentence_method="late"``: e5's sentence vectors pooled from
  the passage's run (``khabar/model/_late.py``), no second e5 pass (``--ways``);
* ``int8``: the same with ``sentence_method="int8"`` (the default): e5's sentence
  vectors embedded by its graph quantised to int8 (``khabar/model/_int8.py``;
  ``--int8-keep``).

Per slice: passages, wall and CPU seconds, passages/s, load. The rate must not fall as
the store grows. At the end: totals, the CPU seconds per passage, and what they give
on this machine's CPUs when nothing else runs (CPUs / CPU-s per passage; an
estimate, said so). ``--stages`` first splits one slice's time into its parts.

    python bench/ingest.py                         # KHABAR_HOME's model, 1 round
    python bench/ingest.py --rounds 2 --slice 30 --stages
    python bench/ingest.py --only after --rounds 3
    python bench/ingest.py --ways after late
    python bench/ingest.py --ways after int8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402
from khabar.index import Article, Index  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import _int8, _onnx, embed_sentences, load_encoders  # noqa: E402
from khabar.store import NewArticle, content_hash  # noqa: E402

WAYS = ("before", "after", "late", "int8")
METHOD = {"late": "late", "int8": "int8"}  # the ways that are a sentence method


def before_embed(index: Index, old_batches: bool) -> Callable[..., list[NewArticle]]:
    """``Index._embed`` as it was: each encoder called on the passages, then
    ``embed_sentences`` on their sentences (each encoder in turn); with
    ``old_batches``, e5's batches as they were too (16 texts, no token cap)."""
    def embed(group: Sequence[tuple[Article, list[Any]]], origin: str | None
              ) -> list[NewArticle]:
        texts = [c.text for _, chunks in group for c in chunks]
        cap = _onnx.BATCH_TOKENS
        _onnx.BATCH_TOKENS = 10 ** 9 if old_batches else cap
        try:
            vectors = {e.space: np.asarray(e.embed_passages(texts)) for e in index.encoders}
            sentences = embed_sentences(index.encoders, texts, vectors)
        finally:
            _onnx.BATCH_TOKENS = cap
        out, at = [], 0
        for art, chunks in group:
            span = slice(at, at + len(chunks))
            at += len(chunks)
            out.append(NewArticle(art, chunks, {s: v[span] for s, v in vectors.items()},
                                  content_hash(art), origin,
                                  {s: m[span] for s, m in sentences.items()}))
        return out
    return embed


def articles(rounds: int, first: int = 0) -> list[Article]:
    """NTREX's articles (the ``first`` ones if given), ``rounds`` times: round r > 0
    under new URLs, each paragraph and title with its last word repeated (new texts,
    the same lengths to ~1%)."""
    base = C.ntrex_articles()[:first or None]
    out = list(base)
    for r in range(1, rounds):
        for a in base:
            def edit(text: str) -> str:
                return text + " " + (text.split() or ["."])[-1]
            out.append(Article(title=edit(a.title), paragraphs=[edit(p) for p in a.paragraphs],
                               outlets=a.outlets, url=f"{a.url}?round={r}", lang=a.lang,
                               source=a.source))
    return out


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def stages(index: Index, group: list[Article]) -> None:
    """One slice's time split into its parts (the ``before`` order), printed."""
    from khabar.model import embed_for_store
    from khabar.text import passage_sentences

    def show(label: str, t0: tuple[float, float], n: int | None = None) -> None:
        wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
        rate = f"{n / wall:7.1f} texts/s" if n else ""
        print(f"  {label:30} wall {wall:6.2f} s  CPU {cpu:6.2f} s  {rate}", flush=True)

    print(f"stages of one slice ({os.getloadavg()[0]:.1f} load):")
    t0 = clock()
    chunks = [index.chunk(a) for a in group]
    show("parse/chunk", t0)
    texts = [c.text for cs in chunks for c in cs]
    t0 = clock()
    split = [passage_sentences(t) for t in texts]
    show("sentence splitting", t0)
    flat = [s for ss, t in zip(split, texts, strict=True)
            if not (len(ss) == 1 and ss[0] == t.strip()) for s in ss]
    print(f"  {len(texts)} passages, {len(flat)} sentences to embed")
    vectors = {}
    for enc in index.encoders:
        t0 = clock()
        vectors[enc.space] = enc.embed_passages(texts)
        show(f"{enc.name} passages", t0, len(texts))
        t0 = clock()
        enc.embed_passages(flat)
        show(f"{enc.name} sentences", t0, len(flat))
    t0 = clock()
    embed_for_store(index.encoders, texts)
    show("all of it, embed_for_store", t0, len(texts))
    sentences = embed_sentences(index.encoders, texts, vectors)
    news, at = [], 0
    for art, cs in zip(group, chunks, strict=True):
        span = slice(at, at + len(cs))
        at += len(cs)
        news.append(NewArticle(art, cs, {s: v[span] for s, v in vectors.items()},
                               content_hash(art), None, {s: m[span] for s, m in sentences.items()}))
    t0 = clock()
    for new in news:
        index.store.put(new)
    index.store.flush()
    show("store put (near-dups, SQLite, FAISS)", t0, len(texts))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=1, help="passes over NTREX (1,116 passages each)")
    p.add_argument("--slice", type=int, default=40, help="articles per add_articles call")
    p.add_argument("--only", choices=WAYS, help="one way only")
    p.add_argument("--ways", nargs="+", choices=WAYS,
                   help="these ways, in turn on every slice (default: before after)")
    p.add_argument("--stages", action="store_true", help="split one slice's time first")
    p.add_argument("--before-new-batches", action="store_true",
                   help="`before` with today's e5 batches (the side-by-side work alone)")
    p.add_argument("--articles", type=int, default=0, help="the first N NTREX articles only")
    p.add_argument("--models", type=Path, default=None, help="models folder (KHABAR_HOME's)")
    p.add_argument("--json", type=Path, help="write the slices and totals here")
    p.add_argument("--late-tail", type=int, default=0,
                   help="`late`: the last N layers run again on each sentence (Pooling.tail)")
    p.add_argument("--int8-keep", nargs="*", default=sorted(_int8.KEEP_FP32),
                   choices=_int8.PARTS,
                   help="`int8`: the parts of each layer left at fp32 (khabar/model/_int8.py)")
    args = p.parse_args()
    _int8.KEEP_FP32 = frozenset(args.int8_keep)  # read when the int8 graph is made
    if args.late_tail:  # read by embed_for_store at each call
        from khabar.model import _late
        _late.POOLING = _late.Pooling(tail=args.late_tail)
    models = args.models or C.default_models()
    ways = args.ways or ([args.only] if args.only else ["before", "after"])
    work = articles(args.rounds, args.articles)
    slices: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        homes = {w: C.share_models(Path(tmp) / w, models) for w in ways}
        encoders = load_encoders(Settings(home=homes[ways[0]]))
        indexes = {w: Index.open(Settings(home=homes[w], sentence_method=METHOD.get(w, "each")),
                                 encoders=encoders) for w in ways}
        if "before" in indexes:
            indexes["before"]._embed = before_embed(  # type: ignore[method-assign]
                indexes["before"], not args.before_new_batches)
        for enc in encoders:  # loaded and warm: the first call pays neither
            enc.embed_passages(["warm up", "تسخين"])
            if "int8" in ways and hasattr(enc, "embed_int8"):  # nor making the int8 graph
                enc.embed_int8(["warm up"])
        print(f"{len(work)} articles; slices of {args.slice}; {C.load_avg()}", flush=True)
        if args.stages:
            with tempfile.TemporaryDirectory() as scratch:
                home = C.share_models(Path(scratch), models)
                stages(Index.open(Settings(home=home), encoders=encoders), work[:args.slice])
        totals = {w: [0, 0.0, 0.0] for w in ways}
        print(f"{'slice':>5} {'way':6} {'stored':>7} {'passages':>8} {'wall s':>7} "
              f"{'CPU s':>6} {'p/s':>6} {'load':>5}")
        for k, at in enumerate(range(0, len(work), args.slice)):
            group = work[at:at + args.slice]
            order = ways[k % len(ways):] + ways[:k % len(ways)]  # each goes first in turn
            for way in order:
                index = indexes[way]
                stored = index.store.count_passages()
                t0 = clock()
                report = index.add_articles(group)
                wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
                n = report.passages
                totals[way][0] += n
                totals[way][1] += wall
                totals[way][2] += cpu
                slices.append({"slice": k + 1, "way": way, "stored": stored, "passages": n,
                               "wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0]})
                print(f"{k + 1:5d} {way:6} {stored:7d} {n:8d} {wall:7.2f} {cpu:6.2f} "
                      f"{n / wall:6.1f} {os.getloadavg()[0]:5.1f}", flush=True)
        cpus = len(os.sched_getaffinity(0))
        # Passages/s with every CPU on this work alone, none waiting: an upper bound.
        print(f"\n{'way':6} {'passages':>8} {'p/s (wall)':>10} {'CPU ms/passage':>14} "
              f"{f'p/s on {cpus} idle CPUs (bound)':>32}")
        for way, (n, wall, cpu) in totals.items():
            print(f"{way:6} {n:8d} {n / wall:10.1f} {cpu / n * 1000:14.1f} "
                  f"{cpus * n / cpu:32.1f}")
        print(C.uptime())
        if args.json:
            args.json.write_text(json.dumps({
                "slices": slices, "cpus": cpus, "load": C.load_avg(),
                "totals": {w: {"passages": n, "wall_s": wall, "cpu_s": cpu,
                               "rate": n / wall, "cpu_ms_per_passage": cpu / n * 1000}
                           for w, (n, wall, cpu) in totals.items()}}, indent=1))
        for index in indexes.values():
            index.close()


if __name__ == "__main__":
    main()
