"""Two writer processes and two reader processes on one Milvus server at once: articles
lost or stored twice (must be 0), citations of uncommitted articles (must be 0), new
articles a reader missed on its next question (must be 0), each writer's put rate and
each reader's question latency.

The articles are embedded once, beforehand, by this process (the real e5 encoder: a
2.3 server allows one vector field; or the hash encoder with ``--hash``), so the writers
time the store's puts, where they meet, not the encoder. Writer A puts articles 0..60%,
in order; writer B 40..100%, backwards (they meet in the middle); the 20% both put have
the same URL and text, and one in four of them has another URL in B's list (the same
text: one is ``duplicate``). With
``--crash`` a third writer dies in the middle of a put (after its rows, before its commit)
holding the lease: its article must never be seen. Each reader asks, again and again
until the writers are done, about the article whose put returned last (every article
has a word of its own), and its answer must cite it.

Without ``--uri``, a Milvus 2.3 standalone server is started from the ``milvus`` package
(``pip install milvus==2.3.5``; Linux x86_64) in a temporary folder, with
``proxy.timeTickInterval`` = ``--tick`` ms (Milvus's default is 200: a Strong read
waits for the next tick).

    python bench/milvus_writers.py --articles 120 --crash --json /tmp/writers.json
    python bench/milvus_writers.py --hash --articles 40      # no model, a minute
    python bench/milvus_writers.py --hash --articles 200 --batch 32   # put_many
    python bench/milvus_writers.py --hash --articles 200 --lite 1 32  # Milvus Lite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SYLLABLES = ["ka", "lo", "mi", "ru", "ze", "ta", "vo", "ni", "xu", "pe"]
FILLER = ["The council said the plan would be reviewed again before the end of the year.",
          "Residents of the district asked for more buses and a new school near the port.",
          "Officials gave no figures but promised a report to parliament within weeks.",
          "The ministry said talks with the unions would go on through the weekend."]


def word(i: int) -> str:
    """The made-up word that only article ``i`` has (a question finds it by it)."""
    return "zo" + "".join(SYLLABLES[int(d)] for d in f"{i:04d}") + "x"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RUNNING: dict[str, Any] = {}
"""The servers :func:`serve` started, by ``KHABAR_STORE`` (their process: memory)."""


@contextlib.contextmanager
def serve(base: Path, tick_ms: int = 20) -> Iterator[str]:
    """A Milvus 2.3 standalone server (the ``milvus`` package) in ``base``, on ports of
    its own (its embedded etcd's too: the package fixes them at 2379/2380, so a second
    server on the machine would not start); yields its ``KHABAR_STORE``."""
    from milvus import MilvusServer

    base.mkdir(parents=True, exist_ok=True)
    client, peer = _free_port(), _free_port()
    (base / "etcd.yaml").write_text(
        f"name: khabar\ndata-dir: {base}/etcd-data\n"
        f"listen-client-urls: http://127.0.0.1:{client}\n"
        f"advertise-client-urls: http://127.0.0.1:{client}\n"
        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-cluster: khabar=http://127.0.0.1:{peer}\n")
    before = os.environ.get("ETCD_CONFIG_PATH")
    os.environ["ETCD_CONFIG_PATH"] = str(base / "etcd.yaml")  # read by the server
    server = MilvusServer()
    server.config.set("proxy.timeTickInterval", tick_ms)
    server.config.set("etcd_port", client)
    server.set_base_dir(str(base))
    server.listen_port = _free_port()
    try:
        server.start()
        uri = f"milvus://127.0.0.1:{server.listen_port}"
        RUNNING[uri] = server
        yield uri
    finally:
        RUNNING.pop(f"milvus://127.0.0.1:{server.listen_port}", None)
        server.stop()
        if before is None:
            os.environ.pop("ETCD_CONFIG_PATH", None)
        else:
            os.environ["ETCD_CONFIG_PATH"] = before


def articles(n: int, real: bool) -> list[Any]:
    """``n`` English articles, each with its own word in its title and first paragraph:
    real NTREX and XQuAD articles, or (``real=False``, or without the data) made-up
    ones."""
    from khabar.index import Article

    texts: list[tuple[str, list[str]]] = []
    if real:
        with contextlib.suppress(OSError):
            import _corpus as C

            texts = [(a.title, a.paragraphs[:3]) for a in
                     C.ntrex_articles(("en",)) + C.xquad_articles() if a.lang == "en"]
    out = []
    for i in range(n):
        w = word(i)
        if texts:
            title, body = texts[i % len(texts)]
            body = [f"{body[0]} The {w} file was named in it.", *body[1:]]
            title = f"{title} ({w})"
        else:
            title = f"The {w} plan"
            body = [f"The {w} committee met on Tuesday to discuss the {w} budget and "
                    "the harbour.", FILLER[i % 4], FILLER[(i + 1) % 4]]
        out.append(Article(title=title, paragraphs=body, outlets=["Bench"], lang="en",
                           url=f"https://writers.test/{i}"))
    return out


def plan(n: int, writers: int = 2) -> dict[str, list[tuple[int, str]]]:
    """Each writer's (article, URL) list: A 0..60% in order, B 40..100% backwards; one
    in four shared articles under another URL in B's list. One writer: A puts all."""
    if writers == 1:
        return {"A": [(i, f"https://writers.test/{i}") for i in range(n)]}
    lo, hi = int(n * 0.4), int(n * 0.6)
    b = []
    for i in reversed(range(lo, n)):
        url = f"https://writers.test/{i}"
        b.append((i, url + "?amp" if lo <= i < hi and i % 4 == 0 else url))
    return {"A": [(i, f"https://writers.test/{i}") for i in range(hi)], "B": b}


def _encoders(real: bool) -> list[Any]:
    if not real:
        from tests.fakes import HashEncoder

        if os.environ.get("KHABAR_BENCH_SCALE_HASH") == "1":  # a bench/scale.py store's
            return [HashEncoder("e5", 384, "hash-e5")]
        return [HashEncoder()]
    from khabar import Settings
    from khabar.model import load_encoders

    # e5 alone: Milvus 2.3 (the server the `milvus` package bundles) allows one vector
    # field per collection, and these articles are English (USE serves cross-language).
    # Settings.load(): KHABAR_HOME's models (Settings() would take the default home's).
    return [e for e in load_encoders(Settings.load()) if e.space == "e5"]


def _settings(home: Path, uri: str) -> Any:
    from khabar import Settings

    return Settings(home=home, store=uri)


def _wait_for(path: Path, timeout: float = 600) -> None:
    start = time.monotonic()
    while not path.exists():
        if time.monotonic() - start > timeout:
            raise TimeoutError(path)
        time.sleep(0.01)


def _consistency() -> None:
    """``--strong`` (passed on in the environment): every read Strong, as before reads
    at the last commit's timestamp (khabar/store/_milvus_ts.py)."""
    if os.environ.get("KHABAR_BENCH_STRONG") == "1":
        from khabar.store import MilvusStore

        MilvusStore.read_at_commit = False


def _why_empty(khabar: Any, question: str, answer: Any) -> dict[str, Any]:
    """What a reader saw when an answer came back empty: the same question again at
    once, read as configured and every read Strong."""
    from khabar.store import MilvusStore

    store = khabar.index.store
    st = dict(store._state_cache or {})
    out: dict[str, Any] = {"timings": answer.timings, "abstained": answer.abstained,
                           "state": {k: st.get(k) for k in ("passage", "article", "ts",
                                                            "generation")},
                           "counts": khabar.searcher.lexical.counts()}
    query = khabar.understand(question)
    out["filters"] = str(query.filters)
    out["again"] = len(khabar.search(query).hits)
    before = MilvusStore.read_at_commit
    MilvusStore.read_at_commit = False
    try:
        out["strong"] = len(khabar.search(query).hits)
    finally:
        MilvusStore.read_at_commit = before
    return out


class Counting:
    """A client whose calls to the server are counted by method (the lease's and the
    store's: calls per article)."""

    def __init__(self, bare: Any) -> None:
        self._bare = bare
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._bare, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return call


def count_calls(store: Any) -> Counting:
    """Count every server call of ``store`` (a MilvusStore) from now on."""
    counting = Counting(store._client._bare)
    store._client._bare = counting
    store._lease._client = counting
    return counting


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the roles (each a process of its own) ----------------------------------------------
def writer(work: Path, uri: str, name: str, batch: int = 1) -> None:
    """Put this writer's prepared articles, ``batch`` at a time (``put_many``: one turn
    of the lease and one commit for them), one line of progress per article."""
    _consistency()
    from khabar.store import open_store

    prepared = pickle.loads((work / "prepared.pkl").read_bytes())
    todo = json.loads((work / "plan.json").read_text())[name]
    store = open_store(_settings(work / f"home-{name}", uri))
    if name == "C":  # the crasher: its ticket expires soon, then it dies before its commit
        from khabar.store import _milvus_commit

        _milvus_commit.TTL = 3.0
        _milvus_commit.RENEW = 0.5  # a slow put (a 200 ms tick) renews, then dies

        def die(state: dict[str, Any]) -> None:
            os._exit(9)

        store._write_state = die  # type: ignore[attr-defined,method-assign]
    (work / f"ready-{name}").touch()
    counting = count_calls(store)
    _wait_for(work / "go")
    if name == "C":
        time.sleep(1.0)  # in the middle of the others' work
    t0, c0 = time.perf_counter(), _cpu()
    with (work / f"progress-{name}.jsonl").open("a") as log:
        for at in range(0, len(todo), batch):
            group = todo[at:at + batch]
            news = []
            for i, url in group:
                new = prepared[i]
                new.article.url = url
                news.append(new)
            try:  # one at a time by put (as before put_many: the A/B's "before")
                got = put(store, news)
            except Exception as exc:
                got = [exc] * len(news)
            t = time.time()
            for (i, url), r in zip(group, got, strict=True):
                line = ({"i": i, "url": url, "status": "error", "error": repr(r)[:300]}
                        if isinstance(r, Exception) else
                        {"i": i, "url": url, "id": r.article_id, "status": r.status,
                         "passages": r.passages})
                line["t"] = t
                log.write(json.dumps(line) + "\n")
            log.flush()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    (work / f"result-{name}.json").write_text(json.dumps({
        "puts": len(todo), "batch": batch, "wall_s": wall, "cpu_s": cpu,
        "calls": counting.calls, "calls_per_article": sum(counting.calls.values()) / len(todo),
        "lease_waits": store._lease.waits}))  # type: ignore[attr-defined]


def _progress(work: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(work.glob("progress-*.jsonl")):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line being written
                out.append(json.loads(line))
    return out


def reader(work: Path, uri: str, name: str, real: bool) -> None:
    """Ask about the article put last, until the writers are done; every answer's
    citations kept for the final check."""
    from khabar.index import Index
    from khabar.retrieval import AnswerConfig, Khabar

    _consistency()

    index = Index.open(_settings(work / f"home-{name}", uri), encoders=_encoders(real))
    # Never abstaining: every answer cites what it found (the hash encoder's scores
    # would abstain), so that every question checks its citations.
    khabar = Khabar(index, answer=AnswerConfig(min_confidence=0.0, sure=0.0))
    khabar.ask("what did the committee discuss?")  # warm: the lexical index, caches
    (work / f"ready-{name}").touch()
    _wait_for(work / "go")
    asked: list[dict[str, Any]] = []
    walls: list[float] = []
    cpus: list[float] = []
    while True:
        finished = (work / "writers-done").exists()
        done = [p for p in _progress(work) if p["status"] != "error"]
        if done:
            target = max(done, key=lambda p: p["t"])
            t0, c0 = time.perf_counter(), _cpu()
            answer = khabar.ask(f"What was said about {word(target['i'])}?")
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu() - c0)
            cited = sorted({(s.article_id, s.url or "") for s in answer.sources})
            asked.append({"target": target["id"], "i": target["i"], "cited": cited,
                          "seen": target["id"] in {a for a, _ in cited},
                          "empty": not answer.sources})
            if not answer.sources:
                asked[-1]["why"] = _why_empty(khabar, f"What was said about "
                                              f"{word(target['i'])}?", answer)
        if finished:
            break
        if not done:
            time.sleep(0.05)
    (work / f"result-{name}.json").write_text(json.dumps({
        "questions": len(asked), "asked": asked, "wall_s": walls, "cpu_s": cpus,
        "versions_read": getattr(index.store, "versions_read", 0),
        "older_states_read": getattr(index.store, "older_states_read", 0)}))


# -- the run -----------------------------------------------------------------------------
def run(uri: str, n: int, *, real: bool, crash: bool, work: Path, writers: int = 2,
        batch: int = 1) -> dict[str, Any]:
    """Prepare, start the four (five) processes, wait, and count."""
    from khabar.index import Index

    work.mkdir(parents=True, exist_ok=True)
    arts = articles(n, real)
    index = Index.open(_settings(work / "home-prep", uri), encoders=_encoders(real))
    t0, c0 = time.perf_counter(), _cpu()
    prepared = [index.prepare(a) for a in arts]
    embed = {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0}
    index.close()
    crash_i = n  # an article nobody else puts
    if crash:
        prepared.append(Index.open(_settings(work / "home-prep", uri),
                                   encoders=_encoders(real)).prepare(articles(n + 1, real)[n]))
    (work / "prepared.pkl").write_bytes(pickle.dumps(prepared))
    roles = plan(n, writers)
    if crash:
        roles["C"] = [(crash_i, f"https://writers.test/{crash_i}")]
    (work / "plan.json").write_text(json.dumps(roles))
    me = [sys.executable, str(Path(__file__).resolve())]
    procs = {}
    for name in [*roles, "R1", "R2"]:
        role = "writer" if name in roles else "reader"
        cmd = [*me, "--role", role, "--name", name, "--work", str(work), "--uri", uri,
               "--batch", str(batch)]
        if not real:
            cmd.append("--hash")
        procs[name] = subprocess.Popen(cmd, cwd=REPO, stderr=(work / f"{name}.err").open("w"))
    for name in procs:
        _wait_for(work / f"ready-{name}", timeout=900)
    load_before = os.getloadavg()
    (work / "go").touch()
    t0 = time.perf_counter()
    for name in roles:
        procs[name].wait(timeout=1800)
    writers_wall = time.perf_counter() - t0
    (work / "writers-done").touch()
    for name in ("R1", "R2"):
        procs[name].wait(timeout=900)
    failed = {n_: p.returncode for n_, p in procs.items()
              if p.returncode != 0 and not (n_ == "C" and p.returncode == 9)}
    if failed:
        raise RuntimeError(f"{failed}: see {work}/*.err")
    return count(uri, work, n, roles, crash, embed, writers_wall, load_before)


def put(store: Any, news: list[Any]) -> list[Any]:
    """``put_many``, or ``put`` of each (a store from before ``put_many``: the A/B)."""
    if len(news) > 1 or not hasattr(store, "put_many"):
        return store.put_many(news) if hasattr(store, "put_many") else [
            _put_one(store, n) for n in news]
    return [_put_one(store, news[0])]


def _put_one(store: Any, new: Any) -> Any:
    try:
        return store.put(new)
    except Exception as exc:
        return exc


def lite_run(n: int, *, real: bool, work: Path, batches: list[int]) -> dict[str, Any]:
    """One process on Milvus Lite (which lets one process open its file): the same
    articles put into a new file for each batch size, in turn; put rate, calls per
    article, CPU."""
    from khabar.index import Index

    arts = articles(n, real)
    index = Index.open(_settings(work / "home-prep", f"milvus-lite://{work}/prep.db"),
                       encoders=_encoders(real))
    prepared = [index.prepare(a) for a in arts]
    index.close()
    out: dict[str, Any] = {"articles": n, "passages": sum(len(p.chunks) for p in prepared),
                           "load_before": os.getloadavg(), "runs": {}}
    for batch in batches:
        uri = f"milvus-lite://{work}/b{batch}.db"
        ix = Index.open(_settings(work / f"home-{batch}", uri), encoders=_encoders(real))
        store = ix.store
        counting = count_calls(store)
        t0, c0 = time.perf_counter(), _cpu()
        statuses: dict[str, int] = {}
        for at in range(0, n, batch):
            for r in put(store, prepared[at:at + batch]):
                key = "error" if isinstance(r, Exception) else r.status
                statuses[key] = statuses.get(key, 0) + 1
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        out["runs"][batch] = {"wall_s": wall, "cpu_s": cpu, "articles_per_s": n / wall,
                              "calls_per_article": sum(counting.calls.values()) / n,
                              "calls": counting.calls, "statuses": statuses,
                              "check": store.check()}
        ix.close()
    out["load_after"] = os.getloadavg()
    return out


def count(uri: str, work: Path, n: int, roles: dict[str, list[tuple[int, str]]],
          crash: bool, embed: dict[str, float], writers_wall: float,
          load_before: tuple[float, float, float]) -> dict[str, Any]:
    """What the store holds at the end, read by a fresh client, against what was put."""
    from khabar.store import open_store

    store = open_store(_settings(work / "home-check", uri))
    # What a dead put left stays (unseen) until the next writer's turn: if the writers
    # were done before the crash, this client's turn is that (an id nobody has).
    check_before = store.check()
    store.delete_articles([-1])
    stored = store.articles_in()
    by_word: dict[int, list[int]] = {}
    for a in stored:
        for i in range(n + 1):
            if word(i) in a.title:
                by_word.setdefault(i, []).append(a.id)
    by_url: dict[str, int] = {}
    for a in stored:
        by_url[a.url or ""] = by_url.get(a.url or "", 0) + 1
    progress = _progress(work)
    added: dict[int, int] = {}
    for p in progress:
        if p["status"] == "added":
            added[p["i"]] = added.get(p["i"], 0) + 1
    ids = {a.id: a.url or "" for a in stored}
    out: dict[str, Any] = {
        "articles": n, "stored": len(stored),
        "lost": sum(1 for i in range(n) if not by_word.get(i)),
        "duplicated": sum(1 for i in range(n) if len(by_word.get(i, [])) > 1)
        + sum(1 for c in by_url.values() if c > 1),
        "added_twice": sum(1 for c in added.values() if c > 1),
        "errors": [p for p in progress if p["status"] == "error"],
        "statuses": {s: sum(1 for p in progress if p["status"] == s)
                     for s in ("added", "unchanged", "duplicate", "replaced")},
        "crashed_put_seen": bool(by_word.get(n)) if crash else None,
        "check_before_next_write": check_before, "check": store.check(),
        "embed": embed, "writers_wall_s": writers_wall,
        "load_before": load_before, "load_after": os.getloadavg(), "writers": {},
        "readers": {}}
    for name in roles:
        if name == "C":
            continue
        r = json.loads((work / f"result-{name}.json").read_text())
        mine = [p for p in progress if p["url"] in {u for _, u in roles[name]}
                and p["status"] == "added"]
        r["added"] = len(mine)
        r["passages_added"] = sum(p.get("passages", 0) for p in mine)
        r["puts_per_s"] = r["puts"] / r["wall_s"]
        out["writers"][name] = r
    uncommitted, missed, empty = 0, 0, 0
    for name in ("R1", "R2"):
        r = json.loads((work / f"result-{name}.json").read_text())
        for q in r["asked"]:
            uncommitted += sum(1 for a, url in q["cited"] if ids.get(a) != url)
            missed += 0 if q["seen"] else 1
            empty += 1 if q.get("empty") else 0
        walls = r["wall_s"]
        out["readers"][name] = {
            "questions": r["questions"],
            "p50_ms": 1000 * statistics.median(walls) if walls else None,
            "p95_ms": 1000 * sorted(walls)[int(0.95 * (len(walls) - 1))] if walls else None,
            "cpu_ms_per_question": 1000 * sum(r["cpu_s"]) / max(1, len(walls)),
            "missed": [q for q in r["asked"] if not q["seen"]][:5],
            "state_versions_read": r.get("versions_read", 0),
            "older_states_read": r.get("older_states_read", 0)}
    out["uncommitted_citations"] = uncommitted
    out["missed_new_articles"] = missed
    out["empty_answers"] = empty
    store.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=120)
    p.add_argument("--hash", action="store_true", help="the hash encoder, not the model")
    p.add_argument("--scale-hash", action="store_true",
                   help="with --hash: bench/scale.py's hash e5 (384 wide), to write into a "
                        "store that `bench/scale.py --encoder hash --store milvus` grew")
    p.add_argument("--crash", action="store_true", help="a third writer dies in a put")
    p.add_argument("--writers", type=int, choices=(1, 2), default=2,
                   help="1: one writer puts every article (what taking turns costs)")
    p.add_argument("--uri", help="a running Milvus (milvus://host:port), else one started")
    p.add_argument("--tick", type=int, default=20, help="the started server's time tick, ms")
    p.add_argument("--strong", action="store_true",
                   help="every read Strong (not at the last commit's timestamp)")
    p.add_argument("--batch", type=int, default=1,
                   help="articles a writer puts at once (put_many: one lease turn)")
    p.add_argument("--lite", type=int, nargs="*",
                   help="one process on Milvus Lite instead: these batch sizes in turn")
    p.add_argument("--json", type=Path)
    p.add_argument("--role", choices=("writer", "reader"), help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.strong:
        os.environ["KHABAR_BENCH_STRONG"] = "1"  # the writers' and readers' processes
    if args.scale_hash:
        os.environ["KHABAR_BENCH_SCALE_HASH"] = "1"
    if args.role == "writer":
        return writer(args.work, args.uri, args.name, args.batch)
    if args.role == "reader":
        return reader(args.work, args.uri, args.name, not args.hash)
    if args.lite:
        with tempfile.TemporaryDirectory(prefix="khabar-writers-") as tmp:
            out = lite_run(args.articles, real=not args.hash, work=Path(tmp),
                           batches=args.lite)
        text = json.dumps(out, indent=1, default=str)
        print(text)
        if args.json:
            args.json.write_text(text)
        return
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))  # stop the server on the way
    with tempfile.TemporaryDirectory(prefix="khabar-writers-") as tmp, \
            contextlib.ExitStack() as stack:
        uri = args.uri or stack.enter_context(serve(Path(tmp) / "milvus", args.tick))
        out = run(uri, args.articles, real=not args.hash, crash=args.crash,
                  work=Path(tmp) / "work", writers=args.writers, batch=args.batch)
    out.update(uri_given=bool(args.uri), tick_ms=None if args.uri else args.tick,
               batch=args.batch,
               reads="strong" if args.strong else "at the last commit")
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
