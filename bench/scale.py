"""khabar at scale: grows a store to N passages and measures it at checkpoints.

    python bench/scale.py --passages 100000                   # replayed vectors (below)
    python bench/scale.py --passages 1000000 --home /big/disk/scale-1m   # resumable
    python bench/scale.py --passages 10000 --encoder hash     # khabar's machinery only
    python bench/scale.py --passages 2600 --encoder model     # every passage embedded
    python bench/scale.py --home /big/disk/scale-1m --measure-only   # readers only, again

Articles go in through the public API, ``Index.add_articles``, 32 at a time (as
``khabar ingest`` of a folder adds them), after the seed article (``Index.add_path``).
First come the real articles of ``../shared/data`` (NTREX news in English and Arabic,
XQuAD and ARCD paragraphs: about 2,500 passages), then synthetic ones: real articles
with small edits to every paragraph (a sentence swapped for another real sentence of
the language, sometimes one dropped, a number changed, a dateline), each with its own
URL, outlet and date. ``bench/_corpus.py`` makes them.

Vectors (``--encoder``):

* ``model``: the real encoders (e5 + USE) embed every passage and sentence. The true
  ingest rate, but ~5 passages/s on 2 cores: a million would take days.
* ``replay`` (default): the real encoders' vectors of the real passages and sentences
  (from one real ingest, cached in ``bench/.cache/scale-base.npz`` and made on first
  use, ~10 minutes), given to the synthetic texts made from them, plus Gaussian noise
  (``--noise`` per dimension, renormalised; 0.02 puts a copy at cosine ~0.93 of its
  source, as bench/ann.py does). The store carries the real encoders' fingerprints, so
  the readers below use the real encoders for questions. Ingest rates in this mode are
  khabar's machinery without the model (the model's cost is the ``model`` rate).
* ``hash``: the tests' hash encoder (``tests/fakes.py``) in both spaces at the real
  widths, for writer and readers: khabar's own machinery only, no model anywhere.

At each checkpoint (``--checkpoints``; by default 10k, 50k, 100k, 200k, 500k, 1M up to
``--passages``, and ``--passages`` itself) the writer closes its index (saving the FAISS
files, as a finished ``khabar ingest`` does) and measures:

* ingest rate, passages/s over the interval since the last checkpoint (time in
  ``add_articles`` only), and the writer's resident memory (now, peak);
* disk bytes per passage (every file of the store folder);
* a reader in a fresh process (the real encoders, except with ``hash``): import, model
  load, then ``Index.open`` + ``Khabar`` to the first answer ("open to first answer");
  warm ``Khabar.ask`` p50/p95 over a fixed set of 40 real Arabic and English questions
  (``--repeats`` passes; wall and CPU time); then another process adds one article and
  exits, and the reader's next answer is timed; again with a writer killed right after
  its write (the FAISS files left behind SQLite); the reader's resident memory (now,
  peak);
* the same open to first answer in a second fresh process (files and caches as the
  first left them);
* Recall@10 of ``Store.search`` against exact search over the stored vectors, per space
  and language, where an index is approximate (HNSW; ``--recall always`` for every
  checkpoint).

``bench/store_scale.py`` measures the store layer alone (``Store.search``, no retrieval).

Results: a Markdown table on stdout and ``<home>/scale.md``, every figure in
``<home>/scale.json`` (and ``--json PATH``). With ``--home`` the run can be stopped and
started again with the same command: it resumes after the last checkpoint. A million
passages in replay mode needs ~8 GB of RAM (two processes each holding the FAISS
indexes: 1M × (384 + 512) × 4 bytes) and ~15 GB of disk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

LADDER = [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000]
NEW_ARTICLE = 10_000_000  # synthetic article numbers of the "one new article" writers
NEW_QUESTION = "who struck Aleppo?"
MARK = "@@"  # protocol lines between this script and its children


def emit(data: dict[str, Any]) -> None:
    print(MARK + json.dumps(data), flush=True)


def read_mark(stream: Any) -> dict[str, Any]:
    for line in stream:
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError("the child process ended without reporting (see its log)")


# -- encoders per mode ---------------------------------------------------------------------
def one_space(encoders: list[Any], settings: Any) -> list[Any]:
    """e5 alone on a Milvus server (the 2.3 server of the ``milvus`` package allows
    one vector field a collection); every space elsewhere."""
    if settings.store_location[0] != "milvus":
        return encoders
    return [e for e in encoders if e.space == "e5"]


def writer_encoders(mode: str, settings: Any, noise: float, base: Path
                    ) -> tuple[list[Any], Any, Any]:
    """(encoders, Replay or None, Synth) for a process that ingests."""
    synth = C.Synth(C.real_articles())
    if mode == "hash":
        return one_space(C.hash_encoders(), settings), None, synth
    if mode == "model":
        from khabar.model import load_encoders

        return load_encoders(settings), None, synth
    if not base.exists():
        build_base(settings.models_dir, base)
    replay = C.Replay(C.Base.load(base), synth, noise)
    return replay.encoders(), replay, synth


def reader_encoders(mode: str, settings: Any) -> list[Any]:
    if mode == "hash":
        return one_space(C.hash_encoders(), settings)
    from khabar.model import load_encoders

    return load_encoders(settings)


def build_base(models: Path, path: Path) -> None:
    """One real ingest of the real articles (and the seed), whose vectors replay mode
    replays."""
    from khabar.index import Index

    from khabar import Settings
    from khabar.model import load_encoders

    print(f"no {path}: embedding the real articles once with the real encoders "
          "(~10 minutes on 2 cores)…", file=sys.stderr, flush=True)
    home = C.CACHE / "scale-base-home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=C.share_models(home, models))
    ix = Index.open(settings, encoders=load_encoders(settings))
    t0 = time.perf_counter()
    ix.add_path(C.SEEDS)
    ix.add_articles(C.real_articles(), progress=sys.stderr.isatty())
    meta = C.export_base(ix.store, path, took=time.perf_counter() - t0)
    ix.close()
    shutil.rmtree(home, ignore_errors=True)
    print(f"  {meta['passages']} passages, {meta['texts']} texts in {meta['ingest_s']:.0f} s",
          file=sys.stderr, flush=True)


def settings_of(args: argparse.Namespace) -> Any:
    """The home's settings: its store on ``--store`` (a Milvus Lite file in the home,
    or the server at ``--uri``)."""
    from khabar import Settings

    store = {"sqlite": None, "milvus-lite": f"milvus-lite://{args.home}/milvus/khabar.db",
             "milvus": args.uri}[args.store]
    return Settings(home=args.home, index_type=args.index_type, store=store)


def release_lite(args: argparse.Namespace) -> None:
    """Milvus Lite's engine keeps its file open in this process after the client closes
    (till exit): stopped, so that the readers' processes can open it."""
    if args.store == "milvus-lite":
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(str(args.home / "milvus" / "khabar.db"))


def store_bytes(args: argparse.Namespace, settings: Any) -> int:
    """The archive's bytes on disk: the SQLite store's folder, the Milvus Lite file's,
    or the server's data folder (``--server-dir``, when this run started it)."""
    if args.store == "milvus-lite":
        return C.folder_bytes(args.home / "milvus")
    if args.store == "milvus":
        return C.folder_bytes(Path(args.server_dir)) if args.server_dir else 0
    return C.folder_bytes(settings.store_dir)


def server_memory(args: argparse.Namespace) -> dict[str, float]:
    """The Milvus server's resident memory now and at its peak, MB (when started here)."""
    out = {"rss_mb": float("nan"), "peak_rss_mb": float("nan")}
    if not args.server_pid:
        return out
    for line in Path(f"/proc/{args.server_pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            out["peak_rss_mb"] = int(line.split()[1]) / 1024
    return out


# -- the children ----------------------------------------------------------------------------
def probe(args: argparse.Namespace) -> None:
    """A reader in a fresh process: open to first answer, warm answers, the answer
    after another process's article, memory, recall."""
    t0 = time.perf_counter()
    from khabar.index import Index
    from khabar.retrieval import Khabar


    t_import = time.perf_counter() - t0
    settings = settings_of(args)
    t0 = time.perf_counter()
    encoders = reader_encoders(args.encoder, settings)
    t_encoders = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = Index.open(settings, encoders=encoders)
    khabar = Khabar(index)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    khabar.ask(NEW_QUESTION)
    t_first = time.perf_counter() - t0
    out: dict[str, Any] = {"import_s": t_import, "encoders_s": t_encoders, "open_s": t_open,
                           "first_answer_s": t_first, "open_to_first_answer_s": t_open + t_first}
    if args.lite:
        emit({**out, **C.memory_mb()})
        return
    times, cpu, stages = [], [], {}
    for _ in range(args.repeats):
        for _lang, q in C.questions()[:args.questions]:
            t0, c0 = time.perf_counter(), time.process_time()
            answer = khabar.ask(q)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            for k, v in answer.timings.items():
                stages.setdefault(k, []).append(v)
    out.update(warm_n=len(times), warm_p50_ms=C.percentile(times, 50) * 1000,
               warm_p95_ms=C.percentile(times, 95) * 1000,
               warm_mean_ms=sum(times) / len(times) * 1000,
               warm_cpu_p50_ms=C.percentile(cpu, 50) * 1000,
               warm_cpu_p95_ms=C.percentile(cpu, 95) * 1000,
               warm_stage_p50_ms={k: C.percentile(v, 50) * 1000 for k, v in stages.items()},
               **C.memory_mb())
    if args.alone:  # Milvus Lite: no other process may open the file meanwhile
        finish_probe(args, index, out)
        return
    emit({"stage": "ready"})
    sys.stdin.readline()  # another process adds an article meanwhile
    t0, c0 = time.perf_counter(), time.process_time()
    answer = khabar.ask(NEW_QUESTION)
    out["after_new_article_ms"] = (time.perf_counter() - t0) * 1000
    out["after_new_article_cpu_ms"] = (time.process_time() - c0) * 1000
    out["after_new_article_stages_ms"] = {k: v * 1000 for k, v in answer.timings.items()}
    t0 = time.perf_counter()
    khabar.ask(NEW_QUESTION)
    out["after_new_article_second_ms"] = (time.perf_counter() - t0) * 1000
    if args.killed_writer:
        emit({"stage": "ready"})
        sys.stdin.readline()  # another article, its writer killed before saving anything
        t0 = time.perf_counter()
        answer = khabar.ask(NEW_QUESTION)
        out["after_killed_writer_ms"] = (time.perf_counter() - t0) * 1000
        out["after_killed_writer_stages_ms"] = {k: v * 1000 for k, v in answer.timings.items()}
    finish_probe(args, index, out)


def finish_probe(args: argparse.Namespace, index: Any, out: dict[str, Any]) -> None:
    """The index's kind, Recall@10 where it is approximate, and the report."""
    stats = index.store.stats()
    kind = str(stats.get("index_type") or ",".join(
        sorted(set(index.store.dense_index_kinds().values()))).lower())
    out["index_type"] = kind
    if args.recall == "always" or (args.recall == "auto" and kind != "flat"):
        out["recall_at_10"] = recall_at_10(index, [q for _, q in C.questions()[:args.questions]])
    emit(out)
    index.close()


def recall_at_10(index: Any, texts: list[str]) -> dict[str, float]:
    """Mean share of the exact top 10 (inner product over every stored vector of the
    language) that ``Store.search`` returns, per space and language; a passage tied with
    the exact 10th counts as one of them."""
    import numpy as np

    store = index.store
    out: dict[str, float] = {}
    for enc in index.encoders:
        queries = np.asarray(enc.embed_queries(texts), np.float32)
        for lang in store.language_counts():
            ids = [row["id"] for row in store.iter_passages(lang)]
            best_s = np.full((len(texts), 0), -np.inf, np.float32)
            best_i = np.zeros((len(texts), 0), np.int64)
            for part in C.batched(ids, 50_000):
                got = store.vectors(enc.space, part)
                pids = np.fromiter(got, np.int64, len(got))
                mat = np.stack([got[int(p)] for p in pids]) if len(pids) else \
                    np.zeros((0, queries.shape[1]), np.float32)
                s = np.concatenate([best_s, queries @ mat.T], axis=1)
                i = np.concatenate([best_i, np.broadcast_to(pids, (len(texts), len(pids)))],
                                   axis=1)
                top = np.argsort(-s, axis=1)[:, :10]
                best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
            hits = []
            for q, exact in zip(queries, best_s, strict=True):
                # Ties count: a passage scoring as high as the exact 10th is a right one.
                kth = exact[min(10, len(ids)) - 1] - 1e-5
                got = [score for _, score in store.search(enc.space, lang, q, 10)]
                hits.append(sum(score >= kth for score in got) / max(1, min(10, len(ids))))
            out[f"{enc.space}/{lang}"] = float(np.mean(hits))
    return out


def add_one(args: argparse.Namespace) -> None:
    """Another process adds one article and exits: cleanly, or (``--kill``) at once
    after the write, as if killed, leaving the FAISS files behind SQLite."""
    from khabar.index import Index


    t0 = time.perf_counter()
    settings = settings_of(args)
    encoders, _, synth = writer_encoders(args.encoder, settings, args.noise, args.base)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    ix = Index.open(settings, encoders=encoders)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = ix.add_articles([synth.article(args.article)])
    t_add = time.perf_counter() - t0
    out = {"load_s": t_load, "open_s": t_open, "add_s": t_add, "summary": report.summary()}
    if args.kill:
        emit(out)
        os._exit(0)
    t0 = time.perf_counter()
    ix.close()
    emit({**out, "close_s": time.perf_counter() - t0})


# -- the run ---------------------------------------------------------------------------------
def checkpoints(args: argparse.Namespace) -> list[int]:
    marks = args.checkpoints or [n for n in LADDER if n < args.passages]
    return sorted({*(n for n in marks if n <= args.passages), args.passages})


def child(args: argparse.Namespace, role: str, *extra: str) -> list[str]:
    return [sys.executable, __file__, "--role", role, "--home", str(args.home),
            "--encoder", args.encoder, "--noise", str(args.noise), "--base", str(args.base),
            "--questions", str(args.questions), "--index-type", args.index_type,
            "--store", args.store, *(["--uri", args.uri] if args.uri else []), *extra]


def measure(args: argparse.Namespace, n_checkpoint: int, log: Path) -> dict[str, Any]:
    """The readers of one checkpoint: a full probe, with another process adding an
    article in the middle (closing cleanly, then another killed before saving), then a
    second open."""
    added = []
    if args.store == "milvus-lite":  # one process a file: the probe alone, then again
        with log.open("a") as err:
            run_ = [subprocess.run(child(args, "probe", *extra), stdout=subprocess.PIPE,
                                   stderr=err, text=True, check=True)
                    for extra in (("--repeats", str(args.repeats), "--recall", args.recall,
                                   "--alone"), ("--lite",))]
        out = read_mark(run_[0].stdout.splitlines())
        out["again"] = read_mark(run_[1].stdout.splitlines())
        return out
    with log.open("a") as err:
        p = subprocess.Popen(child(args, "probe", "--repeats", str(args.repeats),
                                   "--recall", args.recall, "--killed-writer"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                             text=True)
        assert p.stdin is not None and p.stdout is not None
        try:
            for k, kill in enumerate(("", "--kill")):
                read_mark(p.stdout)  # ready
                article = str(NEW_ARTICLE + 2 * n_checkpoint + k)
                added.append(subprocess.run(
                    child(args, "add-one", "--article", article, *([kill] if kill else [])),
                    stdout=subprocess.PIPE, stderr=err, text=True, check=True))
                p.stdin.write("go\n")
                p.stdin.flush()
            out = read_mark(p.stdout)
        finally:
            p.stdin.close()
            if p.wait() != 0:
                raise RuntimeError(f"the reader failed; its log: {log}")
        out["new_article"] = read_mark(added[0].stdout.splitlines())
        out["killed_writer"] = read_mark(added[1].stdout.splitlines())
        again = subprocess.run(child(args, "probe", "--lite"), stdout=subprocess.PIPE,
                               stderr=err, text=True, check=True)
        out["again"] = read_mark(again.stdout.splitlines())
    return out


def measure_only(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The readers' figures of the store as it stands (no ingest): after a change to
    the query path, on a store an earlier run grew. Appended to ``scale.json``'s
    ``remeasured``."""
    from khabar import Settings

    home: Path = args.home
    state_path = home / "scale.json"
    state = json.loads(state_path.read_text())
    args.encoder = state["encoder"]
    if args.encoder != "hash":
        C.share_models(home, args.models or C.default_models())
    settings = Settings(home=home, index_type=args.index_type)
    from khabar.store import Store

    store = Store(settings.store_dir)
    count, articles = store.count_passages(), store.count_articles()
    store.close()
    last = state["rows"][-1] if state["rows"] else {}
    row: dict[str, Any] = {
        "passages": count, "articles": articles, "vectors": last.get("vectors", args.encoder),
        "ingest_rate": float("nan"), "ingest_from": count, "remeasured": True,
        "writer": {"rss_mb": float("nan"), "peak_rss_mb": float("nan")},
        "disk_bytes": C.folder_bytes(settings.store_dir)}
    row["disk_bytes_per_passage"] = row["disk_bytes"] / max(count, 1)
    row["load_before"] = C.load_avg()
    print(f"{count:,} passages: measuring (readers in fresh processes)…", file=sys.stderr,
          flush=True)
    row["reader"] = measure(args, len(state["rows"]) + 100 + len(state.get("remeasured", [])),
                            home / "scale.log")
    row["load_after"] = C.load_avg()
    row["uptime"] = C.uptime()
    state.setdefault("remeasured", []).append(row)
    state_path.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    print(table_line(row), file=sys.stderr, flush=True)
    return [row]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from khabar.index import Index


    home: Path = args.home
    if args.encoder != "hash":
        C.share_models(home, args.models or C.default_models())
    state_path = home / "scale.json"
    state: dict[str, Any] = {"pos": 0, "seeded": False, "rows": []}
    if state_path.exists() and not args.fresh:
        state = json.loads(state_path.read_text())
        if state["encoder"] != args.encoder:
            raise SystemExit(f"{home} holds a {state['encoder']} run; --fresh to start over")
        print(f"resuming at {state['rows'][-1]['passages'] if state['rows'] else 0:,} "
              "passages", file=sys.stderr)
    elif (home / "store").exists():
        if not args.fresh:
            raise SystemExit(f"{home}/store exists without scale.json: --fresh replaces it")
        shutil.rmtree(home / "store")
        shutil.rmtree(home / "cache", ignore_errors=True)
    state.update(encoder=args.encoder, noise=args.noise, passages_target=args.passages,
                 store=args.store)
    settings = settings_of(args)
    t0 = time.perf_counter()
    encoders, replay, synth = writer_encoders(args.encoder, settings, args.noise, args.base)
    print(f"writer's encoders ({args.encoder}): {time.perf_counter() - t0:.1f} s",
          file=sys.stderr, flush=True)
    real = synth.real
    ix = Index.open(settings, encoders=encoders)
    if not state["seeded"]:
        ix.add_path(C.SEEDS)
        state["seeded"] = True
    count = ix.store.count_passages()
    todo = [n for n in checkpoints(args) if n > count]
    log = home / "scale.log"
    interval = {"passages": 0, "seconds": 0.0, "from": count}
    started = time.perf_counter()
    next_report = count + args.report
    pos = state["pos"]
    vectors = {"model": "real (e5 + USE)", "hash": "hash (tests/fakes.py)",
               "replay": f"replayed real + noise {args.noise}"}[args.encoder]
    while todo:
        end = len(real) if pos < len(real) else pos + args.batch
        batch = [real[j] if j < len(real) else synth.article(j - len(real))
                 for j in range(pos, min(pos + args.batch, end))]
        if replay is not None:
            replay.noise = 0.0 if pos < len(real) else args.noise
        t, c = time.perf_counter(), time.process_time()
        report = ix.add_articles(batch)
        interval["seconds"] += time.perf_counter() - t
        interval["cpu_s"] = interval.get("cpu_s", 0.0) + time.process_time() - c
        interval["passages"] += report.passages
        count += report.passages
        pos += len(batch)
        synth.origin.clear()
        if args.encoder == "model" and pos == len(real) and not args.base.exists():
            C.export_base(ix.store, args.base)  # what replay mode replays, for free
        if count >= next_report:
            rate = interval["passages"] / max(interval["seconds"], 1e-9)
            left = (todo[-1] - count) / max(rate, 1e-9)
            print(f"  {count:>9,} passages  {rate:7.1f} passages/s since {interval['from']:,}"
                  f"  elapsed {time.perf_counter() - started:7.0f} s  ingest left ~{left:.0f} s"
                  f"  {C.load_avg()}", file=sys.stderr, flush=True)
            next_report = count + args.report
        if count < todo[0]:
            continue
        todo = [n for n in todo if n > count]
        count = ix.store.count_passages()
        row: dict[str, Any] = {
            "passages": count, "articles": ix.store.count_articles(), "vectors": vectors,
            "ingest_passages": interval["passages"], "ingest_s": interval["seconds"],
            "ingest_rate": interval["passages"] / max(interval["seconds"], 1e-9),
            "ingest_cpu_s": interval.get("cpu_s", 0.0),
            "ingest_from": interval["from"],
            "synthetic_articles": max(0, pos - len(real)),
        }
        if replay is not None:
            row["replay_lookups"] = dict(replay.counts)
        t = time.perf_counter()
        ix.close()
        release_lite(args)
        row["writer_close_s"] = time.perf_counter() - t
        row["writer"] = C.memory_mb()
        row["writer_cpu_s"] = time.process_time()
        row["server"] = server_memory(args)
        row["disk_bytes"] = store_bytes(args, settings)
        row["disk_bytes_per_passage"] = row["disk_bytes"] / max(count, 1)
        row["load_before"] = C.load_avg()
        print(f"checkpoint {count:,} passages: measuring (readers in fresh processes)…",
              file=sys.stderr, flush=True)
        row["reader"] = measure(args, len(state["rows"]), log)
        row["load_after"] = C.load_avg()
        row["uptime"] = C.uptime()
        state["rows"].append(row)
        state["pos"] = pos
        state_path.write_text(json.dumps(state, indent=1, ensure_ascii=False))
        print(table_line(row), file=sys.stderr, flush=True)
        ix = Index.open(settings, encoders=encoders)
        count = ix.store.count_passages()
        interval = {"passages": 0, "seconds": 0.0, "from": count}
    ix.close()
    return state["rows"]


# -- the report ------------------------------------------------------------------------------
HEADER = ("| passages | vectors | ingest passages/s (interval) | open → 1st answer s "
          "(after ingest; again) | model load s | warm p50 / p95 ms | 1st answer after another "
          "process's new article ms (writer closed; killed) | reader RSS MB (now / peak) | "
          "writer RSS MB (now / peak) | disk bytes/passage | recall@10 | load (1, 5, 15 min) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def cpu_note(reader: dict[str, Any], key: str) -> str:
    """`` (CPU n)``: the reader's CPU time beside a wall time, where measured."""
    return f" (CPU {reader[key]:.0f})" if key in reader else ""


def after_new(r: dict[str, Any]) -> str:
    """The answer after another process's article, ms ("–": Milvus Lite, one process)."""
    if "after_new_article_ms" not in r:
        return "–"
    return f"{r['after_new_article_ms']:.0f}{cpu_note(r, 'after_new_article_cpu_ms')}"


def server_note(row: dict[str, Any]) -> str:
    """``; server now / peak`` MB: a Milvus server's memory, where this run started it."""
    mem = row.get("server") or {}
    rss = mem.get("rss_mb", float("nan"))
    return "" if rss != rss else f"; server {rss:.0f} / {mem['peak_rss_mb']:.0f}"


def table_line(row: dict[str, Any]) -> str:
    r = row["reader"]
    recall = r.get("recall_at_10")
    rec = (", ".join(f"{k} {v:.3f}" for k, v in recall.items()) if recall
           else f"– ({r.get('index_type', '?')}: exact)")
    load = row["load_before"].removeprefix("load ").split(" (")[0]
    killed = f"{r['after_killed_writer_ms']:.0f}" if "after_killed_writer_ms" in r else "–"
    ingest = ("– (measured again)" if row.get("remeasured") else
              f"{row['ingest_rate']:.0f} ({row['ingest_from']:,}–{row['passages']:,})")
    return (f"| {row['passages']:,} | {row['vectors']} | {ingest} | "
            f"{r['open_to_first_answer_s']:.2f}; {r['again']['open_to_first_answer_s']:.2f} | "
            f"{r['encoders_s']:.1f} | {r['warm_p50_ms']:.0f} / {r['warm_p95_ms']:.0f}"
            f"{cpu_note(r, 'warm_cpu_p50_ms')} | "
            f"{after_new(r)}; {killed} | "
            f"{r['rss_mb']:.0f} / {r['peak_rss_mb']:.0f} | "
            f"{row['writer']['rss_mb']:.0f} / {row['writer']['peak_rss_mb']:.0f}"
            f"{server_note(row)} | "
            f"{row['disk_bytes_per_passage']:,.0f} | {rec} | {load} |")


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    lines = [f"`{command}`", "", HEADER, *(table_line(r) for r in rows)]
    if rows and rows[0]["vectors"].startswith("replayed"):
        lines += ["", "Vectors: synthetic — the real encoders' vectors of the real passages "
                  "they were made from, plus noise; the first ~2,500 passages are real "
                  "articles with their exact real vectors."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--checkpoints", type=int, nargs="*",
                   help="passage counts to measure at (default: 10k, 50k, 100k, 200k, 500k,"
                        " 1M below --passages, and --passages)")
    p.add_argument("--encoder", choices=["replay", "model", "hash"], default="replay")
    p.add_argument("--noise", type=float, default=0.02,
                   help="replay: Gaussian noise per dimension added to each vector")
    p.add_argument("--home", type=Path,
                   help="keep the store here and resume from it (default: a temp folder)")
    p.add_argument("--fresh", action="store_true", help="start over in --home")
    p.add_argument("--models", type=Path, help="a models folder with the built e5 (default:"
                   " the configured KHABAR_HOME's)")
    p.add_argument("--batch", type=int, default=32, help="articles per add_articles call")
    p.add_argument("--repeats", type=int, default=2,
                   help="passes over the 40 questions for the warm figures")
    p.add_argument("--questions", type=int, default=40,
                   help="how many of the 40 fixed questions to ask (first ones)")
    p.add_argument("--recall", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--base", type=Path, default=C.BASE,
                   help=f"replay: the real vectors to replay (default {C.BASE.relative_to(REPO)};"
                        " made when missing)")
    p.add_argument("--report", type=int,
                   help="print the rate every N passages (default: a twentieth of the run, "
                        "100 to 10,000)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--index-type", choices=["auto", "flat", "hnsw"], default="auto",
                   help="the store's FAISS indexes, for the writer and the readers (auto:"
                        " flat below the HNSW threshold, KHABAR_HNSW_THRESHOLD)")
    p.add_argument("--store", choices=["sqlite", "milvus-lite", "milvus"], default="sqlite",
                   help="the archive: SQLite + FAISS, a Milvus Lite file in the home, or a "
                        "Milvus server (--uri, else a Milvus 2.3 standalone started here from"
                        " the `milvus` package, e5 alone: one vector field a collection)")
    p.add_argument("--uri", help="--store milvus: a running server's KHABAR_STORE "
                   "(milvus://host:port)")
    p.add_argument("--tick", type=int, default=20,
                   help="the started server's time tick, ms (Milvus's default: 200)")
    p.add_argument("--server-dir", help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--alone", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--measure-only", action="store_true",
                   help="no ingest: measure the readers of the store in --home as it stands"
                        " (e.g. after a change to the query path)")
    p.add_argument("--role", choices=["run", "probe", "add-one"], default="run",
                   help=argparse.SUPPRESS)
    p.add_argument("--lite", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--killed-writer", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kill", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--article", type=int, default=NEW_ARTICLE, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role != "run":
        (probe if args.role == "probe" else add_one)(args)
        return
    command = "python bench/scale.py " + " ".join(sys.argv[1:])
    args.report = args.report or min(10_000, max(100, args.passages // 20))
    with tempfile.TemporaryDirectory(prefix="khabar-scale-") as tmp, \
            contextlib.ExitStack() as stack:
        args.home = (args.home or Path(tmp)).resolve()
        args.home.mkdir(parents=True, exist_ok=True)
        if args.fresh and args.store != "sqlite" and args.role == "run":
            for folder in ("milvus", "milvus-server", "milvus-cache"):
                shutil.rmtree(args.home / folder, ignore_errors=True)
        if args.store == "milvus" and not args.uri:
            import milvus_writers

            args.server_dir = str(args.home / "milvus-server")
            args.uri = stack.enter_context(milvus_writers.serve(Path(args.server_dir),
                                                                args.tick))
            args.server_pid = milvus_writers.RUNNING[args.uri].server_proc.pid
        print(f"{C.uptime()}\nstore in {args.home}", file=sys.stderr, flush=True)
        rows = measure_only(args) if args.measure_only else run(args)
        md = markdown(rows, command)
        (args.home / "scale.md").write_text(md)
        if args.json:
            args.json.write_text((args.home / "scale.json").read_text())
        print(md)
        print(f"finished: {C.uptime()}")


if __name__ == "__main__":
    main()
