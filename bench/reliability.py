"""khabar's reliability promises, measured (issue #13; the report is docs/reliability.md).

    python bench/reliability.py crash --trials 20            # SIGKILL during ingest and reindex
    python bench/reliability.py crash --trials 3 --articles 10   # a quick look
    python bench/reliability.py load --chats 200             # 200 chats asking at once
    python bench/reliability.py fuzz --examples 2000         # every parser and renderer
    python bench/reliability.py budget --articles 300        # the per-item budget's overhead
    python bench/reliability.py all                          # all four -> docs/reliability.md

**crash**: each trial kills (SIGKILL) a real ``khabar ingest`` of a folder of real news
articles (NTREX-128, English and Arabic, one JSON file each) at a random moment once it
has started writing (its first article stored; for a reindex, its first new vectors),
within what a whole run leaves, then runs ``khabar check`` on what was left,
then the same ``khabar ingest`` again, which must complete the batch (every article
stored once), then ``khabar check`` again. The reindex trials do the same to ``khabar
reindex`` on a store that holds the whole batch (the same model, so the vectors it
writes must equal the ones it replaces). A trial fails when either check fails, the
second run fails, or the store does not hold each article exactly once. Every run uses
the real encoders (e5 on onnxruntime, USE) from the built model (``KHABAR_HOME`` or
``--models``), in a fresh home per trial.

**load**: the real bot (PTB's real HTTP client, its ``SendLimiter`` and per-user limit)
polling the fake Bot API (tests/bot/fake_telegram.py), over an index of real news
articles and the real encoders; ``--chats`` chats ask one real question each at once,
one of them after Telegram told it ``RetryAfter``, one more has its answer's connection
dropped, and one user floods ``--flood`` questions. The scenario is tests/bot/load.py
(the test runs it with 30 chats). Reports answered/dropped, p50/p95/max latency (update
queued -> answer at the fake; wall time on a shared machine: see the load average and
the process CPU time next to it) and what the flood, the RetryAfter and the dropped
connection got.

**fuzz**: the properties of tests/index/test_fuzz_parsers.py, tests/bot/test_fuzz_render.py
and tests/bot/test_fuzz_commands.py (each input within a CPU budget, read or refused with
khabar's own error, Telegram HTML always valid and within 4096) with ``--examples``
examples each instead of the suite's 40; reports the inputs tried and refused per target
and each failing property with its minimal input.

**budget**: the per-item budget's overhead (bench/item_budget.py): real articles as HTML
pages parsed and chunked in the parse worker (index/_worker.py) and in this process,
alternating, CPU of both processes.

**all**: crash, load, fuzz and budget with their defaults (or the options given), each written
into its block of the figures section of docs/reliability.md (``--skip crash`` keeps a
block as it is, for a machine too busy for the crash trials).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402
import item_budget  # noqa: E402


def khabar(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "khabar", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KHABAR_HOME", None)
    return env


def write_batch(folder: Path, n: int) -> int:
    """``n`` real articles as JSON files; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    articles = C.ntrex_articles()[:n]
    for i, a in enumerate(articles):
        (folder / f"{i:03d}.json").write_text(json.dumps({
            "title": a.title, "text": a.paragraphs, "outlets": a.outlets, "url": a.url,
            "lang": a.lang}, ensure_ascii=False), encoding="utf-8")
    return len(articles)


def stored(home: Path) -> dict[str, Any]:
    out = khabar(home, "stats", "--json")
    if out.returncode:
        return {"error": out.stderr.strip()[-300:]}
    return json.loads(out.stdout)


def kill_after(cmd: list[str], whole: float, writing: Callable[[], bool],
               rng: random.Random) -> tuple[bool, float]:
    """Run ``cmd``, wait until it writes (``writing()``), then SIGKILL it at a random
    moment of what a whole run (``whole`` s) leaves; (killed before it finished, its
    age when killed or done)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env())
    while proc.poll() is None and not writing():
        time.sleep(0.05)
    left = max(whole - (time.perf_counter() - t0), 0.5)
    try:
        proc.wait(timeout=rng.uniform(0.0, 0.9) * left)
        return False, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, time.perf_counter() - t0


def _rows(db: Path, table: str) -> int:
    """Rows of ``table`` in a store being written by another process (0 when the
    database or the table is not there yet)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=0.5)) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def new_home(root: Path, models: Path, name: str) -> Path:
    home = root / name
    shutil.rmtree(home, ignore_errors=True)
    return C.share_models(home, models)


def crash(args: argparse.Namespace) -> dict[str, Any]:
    models = args.models or C.default_models()
    root = Path(tempfile.mkdtemp(prefix="khabar-crash-"))
    rng = random.Random(args.seed)
    batch = root / "batch"
    n = write_batch(batch, args.articles)
    # One whole run of each, for the kill window and a store to reindex.
    full = new_home(root, models, "full")
    t0 = time.perf_counter()
    out = khabar(full, "ingest", str(batch))
    ingest_s = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    want = stored(full)
    assert want.get("articles") == n, want
    t0 = time.perf_counter()
    out = khabar(full, "reindex")
    reindex_s = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    print(f"{n} articles, {want.get('passages')} passages: a whole ingest {ingest_s:.1f} s, "
          f"a whole reindex {reindex_s:.1f} s ({C.load_avg()})", flush=True)
    trials = []
    for kind, whole in (("ingest", ingest_s), ("reindex", reindex_s)):
        for t in range(args.trials):
            home = new_home(root, models, f"{kind}-{t}")
            if kind == "reindex":
                shutil.rmtree(home / "store", ignore_errors=True)
                shutil.copytree(full / "store", home / "store")
            cmd = [sys.executable, "-m", "khabar", "--home", str(home)]
            cmd += ["ingest", str(batch)] if kind == "ingest" else ["reindex"]
            db = home / "store" / "khabar.sqlite3"
            table = "articles" if kind == "ingest" else "reindex_vectors"
            killed, age = kill_after(cmd, whole, lambda db=db, table=table: _rows(db, table) > 0,
                                     rng)
            after_kill = khabar(home, "check")
            again = khabar(home, *cmd[5:])
            final = khabar(home, "check")
            have = stored(home)
            ok = (after_kill.returncode == 0 and again.returncode == 0
                  and final.returncode == 0 and have.get("articles") == n
                  and have.get("passages") == want.get("passages"))
            row = {"kind": kind, "trial": t, "killed_at_s": round(age, 2), "killed": killed,
                   "check_after_kill": after_kill.returncode, "rerun": again.returncode,
                   "check_after_rerun": final.returncode, "articles": have.get("articles"),
                   "passages": have.get("passages"), "ok": ok}
            if not ok:
                row["why"] = (after_kill.stdout + after_kill.stderr + again.stderr
                              + final.stdout)[-600:]
            trials.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    summary = {k: {"trials": sum(r["kind"] == k for r in trials),
                   "killed mid-run": sum(r["kind"] == k and r["killed"] for r in trials),
                   "failures": sum(r["kind"] == k and not r["ok"] for r in trials)}
               for k in ("ingest", "reindex")}
    return {"articles": n, "passages": want.get("passages"), "ingest_s": ingest_s,
            "reindex_s": reindex_s, "load": C.load_avg(), "summary": summary,
            "trials": trials}


def load(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from khabar.index import Index
    from khabar.retrieval import Khabar

    from khabar import Settings
    from khabar.model import load_encoders
    from tests.bot.conftest import bot_settings, run_bot
    from tests.bot.load import TimedTelegram, run_load

    models = args.models or C.default_models()
    root = Path(tempfile.mkdtemp(prefix="khabar-load-"))
    home = C.share_models(root / "home", models)
    ix = Index.open(Settings(home=home), encoders=load_encoders(Settings(home=home)))
    report = ix.add_articles(C.ntrex_articles()[:args.articles])
    questions = [q for _, q in C.questions()]
    print(f"{report.count('added')} articles, {report.passages} passages; "
          f"{args.chats} chats asking at once ({C.load_avg()})", flush=True)

    skipped: dict[str, int] = {}

    async def go() -> tuple[Any, list[str]]:
        async with TimedTelegram(webhook_retry_delay=0.05) as fake:
            settings = bot_settings(home, fake, rate_limit_per_minute=args.per_minute)
            async with run_bot(fake, settings, Khabar(ix), ix) as running:
                res = await run_load(fake, questions, chats=args.chats, flood=args.flood,
                                     per_minute=args.per_minute,
                                     retry_after=args.retry_after, timeout=args.timeout)
            limiter = running.app.bot.rate_limiter
            skipped.update(getattr(limiter, "skipped", {}))
            return res, [f"{type(e).__name__}: {e}" for e in running.errors]

    cpu0, t0 = time.process_time(), time.perf_counter()
    res, errors = asyncio.run(go())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    ix.close()
    shutil.rmtree(root, ignore_errors=True)
    lat = res.latencies or [float("nan")]
    return {
        "chats": res.chats, "answered": res.answered, "dropped": res.dropped,
        "wrong": res.wrong, "first_s": round(res.first_s, 2),
        "p50_s": round(C.percentile(lat, 50), 2), "p95_s": round(C.percentile(lat, 95), 2),
        "max_s": round(max(lat), 2),
        "all_answered_in_s": round(res.wall_s, 1), "process_cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1), "load": C.load_avg(),
        "retry_after": {"waited_s": round(res.flooded_waited_s, 1),
                        "answered": res.flooded_answered,
                        "other_chats_answered_meanwhile": res.others_during_wait},
        "dropped_connection": {"told_politely": res.dropped_told,
                               "next_question_answered": res.dropped_next_answered},
        "flood": {"sent": res.flood_sent, "answered": res.flood_answers,
                  "refused_politely": res.flood_refusals, "other": res.flood_other,
                  "per_minute": args.per_minute},
        "handler_errors": errors, "chat_actions_skipped": skipped,
        "articles": report.count("added"),
        "passages": report.passages, "ok": res.ok}


FUZZ_MODULES = ("tests.index.test_fuzz_parsers", "tests.bot.test_fuzz_commands",
                "tests.bot.test_fuzz_render")


def fuzz(args: argparse.Namespace) -> dict[str, Any]:
    import importlib
    import traceback
    import warnings

    os.environ["KHABAR_FUZZ_EXAMPLES"] = str(args.examples)
    os.environ["KHABAR_FUZZ_BUDGET"] = str(args.budget)
    warnings.simplefilter("ignore")  # zipfile's "Duplicate name" while making archives
    from tests import fuzz as F

    failures = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    for mod_name in FUZZ_MODULES:
        mod = importlib.import_module(mod_name)
        for name in sorted(n for n in dir(mod) if n.startswith("test_fuzz_")):
            c0 = time.process_time()
            try:
                getattr(mod, name)()
                ok = True
            except Exception as exc:  # a failing property: reported
                ok = False
                lines = traceback.format_exception_only(exc)
                failures.append({"property": f"{mod_name}.{name}",
                                 "error": "".join(lines)[-1500:]})
            print(f"{'ok  ' if ok else 'FAIL'} {name} ({time.process_time() - c0:.0f} s CPU)",
                  flush=True)
    return {"examples_per_property": args.examples, "budget_cpu_s": args.budget,
            "targets": {k: {"tried": v, "refused": F.REFUSED.get(k, 0)}
                        for k, v in sorted(F.TRIED.items())},
            "inputs_tried": sum(F.TRIED.values()), "failures": failures,
            "process_cpu_s": round(time.process_time() - cpu0, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "load": C.load_avg()}


DOC = REPO / "docs" / "reliability.md"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def crash_figures(r: dict[str, Any], cmd: str) -> list[str]:
    rows = [[k, v["trials"], v["killed mid-run"], v["failures"]]
            for k, v in r["summary"].items()]
    return [f"`{cmd}` ({time.strftime('%Y-%m-%d')}, {r['load']}): {r['articles']} real "
            f"articles ({r['passages']} passages); a whole ingest took {r['ingest_s']:.1f} s, "
            f"a whole reindex {r['reindex_s']:.1f} s (wall).", "",
            *_table(["SIGKILL during", "trials", "killed mid-run", "failures"], rows)]


def load_figures(r: dict[str, Any], cmd: str) -> list[str]:
    ra, dc, fl = r["retry_after"], r["dropped_connection"], r["flood"]
    return [f"`{cmd}` ({time.strftime('%Y-%m-%d')}, {r['load']}; {r['articles']} articles, "
            f"{r['passages']} passages):", "",
            *_table(["chats", "answered", "dropped", "first answer", "p50", "p95", "max",
                     "all answered in", "process CPU"],
                    [[r["chats"], r["answered"], r["dropped"], f"{r['first_s']} s",
                      f"{r['p50_s']} s", f"{r['p95_s']} s", f"{r['max_s']} s",
                      f"{r['all_answered_in_s']} s", f"{r['process_cpu_s']} s"]]), "",
            f"- RetryAfter: the flooded chat waited {ra['waited_s']} s and was "
            f"{'answered' if ra['answered'] else 'NOT answered'}; meanwhile "
            f"{ra['other_chats_answered_meanwhile']} other chats were answered.",
            f"- Dropped connection: told politely: {dc['told_politely']}; its next question "
            f"answered: {dc['next_question_answered']}.",
            f"- Flood: {fl['sent']} questions at once from one user (limit {fl['per_minute']} "
            f"a minute): {fl['answered']} answered, {fl['refused_politely']} polite refusal, "
            f"{fl['other']} other replies.",
            f"- Errors seen by handlers: {len(r['handler_errors'])} "
            f"({'; '.join(sorted(set(e.split(':')[0] for e in r['handler_errors'])))}: the "
            f"dropped connection). Scenario passed: {r['ok']}."]


def fuzz_figures(r: dict[str, Any], cmd: str) -> list[str]:
    rows = [[k, v["tried"], v["refused"]] for k, v in r["targets"].items()]
    def why(error: str) -> str:  # the assertion or error line, not the input's repr
        lines = [ln.strip(" |") for ln in error.splitlines()]
        return next((ln for ln in lines if re.match(r"\w+(Error|Exception|Group): ", ln)),
                    lines[0])[:300]

    fails = [f"- FAILED {f['property']}: {why(f['error'])}"
             for f in r["failures"]] or ["- No property failed."]
    return [f"`{cmd}` ({time.strftime('%Y-%m-%d')}, {r['load']}): {r['inputs_tried']} inputs "
            f"in {r['process_cpu_s']} s of CPU ({r['wall_s']} s wall), each within "
            f"{r['budget_cpu_s']} s of CPU.", "",
            *_table(["target", "inputs tried", "refused with khabar's error"], rows), "",
            *fails]


def write_block(name: str, lines: list[str], doc: Path = DOC) -> None:
    """Replace the ``<!-- name:begin -->…<!-- name:end -->`` block of the report."""
    text = doc.read_text(encoding="utf-8")
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(begin)
    if not found or end not in rest:
        raise SystemExit(f"{doc}: no {begin} … {end} block")
    doc.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end
                   + rest.partition(end)[2], encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("crash", help="SIGKILL trials during ingest and reindex")
    c.add_argument("--trials", type=int, default=20, help="per kind (ingest, reindex)")
    c.add_argument("--articles", type=int, default=24)
    c.add_argument("--seed", type=int, default=13)
    c.add_argument("--models", type=Path, help="a models folder with the built e5")
    c.add_argument("--json", type=Path)
    ld = sub.add_parser("load", help="many chats asking at once through the fake Bot API")
    ld.add_argument("--chats", type=int, default=200)
    ld.add_argument("--flood", type=int, default=30, help="questions one user sends at once")
    ld.add_argument("--per-minute", type=int, default=5, help="the bot's per-user limit")
    ld.add_argument("--retry-after", type=int, default=10)
    ld.add_argument("--articles", type=int, default=48)
    ld.add_argument("--timeout", type=float, default=900)
    ld.add_argument("--models", type=Path, help="a models folder with the built e5")
    ld.add_argument("--json", type=Path)
    fz = sub.add_parser("fuzz", help="every parser and renderer under hypothesis")
    fz.add_argument("--examples", type=int, default=1000, help="per property")
    fz.add_argument("--budget", type=float, default=2.0, help="CPU seconds per input")
    fz.add_argument("--json", type=Path)
    bd = sub.add_parser("budget", help="the per-item budget's overhead at ingest")
    bd.add_argument("--articles", type=int, default=300)
    bd.add_argument("--json", type=Path)
    al = sub.add_parser("all", help="crash + load + fuzz + budget, written to "
                                    "docs/reliability.md")
    al.add_argument("--trials", type=int, default=20)
    al.add_argument("--articles", type=int, default=24, help="for the crash trials")
    al.add_argument("--seed", type=int, default=13)
    al.add_argument("--chats", type=int, default=200)
    al.add_argument("--examples", type=int, default=1000)
    al.add_argument("--budget-articles", type=int, default=300)
    al.add_argument("--skip", action="append", default=[],
                    choices=["crash", "load", "fuzz", "budget"])
    al.add_argument("--models", type=Path)
    al.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.what == "all":
        result = run_all(args)
    elif args.what == "crash":
        result = crash(args)
        print(json.dumps(result["summary"], indent=1))
    elif args.what == "budget":
        result = budget(args.articles)
        print("\n".join(item_budget.figures(result, "")))
    elif args.what == "fuzz":
        result = fuzz(args)
        print(json.dumps(result, indent=1, ensure_ascii=False))
    else:
        result = load(args)
        print(json.dumps({k: v for k, v in result.items() if k != "wrong"}, indent=1,
                         ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    here = "python bench/reliability.py"
    if "crash" not in args.skip:
        result["crash"] = crash(args)
        write_block("crash", crash_figures(
            result["crash"], f"{here} crash --trials {args.trials} --articles {args.articles}"))
    if "load" not in args.skip:
        ns = argparse.Namespace(chats=args.chats, flood=30, per_minute=5, retry_after=10,
                                articles=48, timeout=900, models=args.models)
        result["load"] = load(ns)
        write_block("load", load_figures(result["load"], f"{here} load --chats {args.chats}"))
    if "fuzz" not in args.skip:
        result["fuzz"] = fuzz(argparse.Namespace(examples=args.examples, budget=2.0))
        write_block("fuzz", fuzz_figures(result["fuzz"],
                                         f"{here} fuzz --examples {args.examples}"))
    if "budget" not in args.skip:
        result["budget"] = budget(args.budget_articles)
        write_block("budget", item_budget.figures(
            result["budget"], f"{here} budget --articles {args.budget_articles}"))
    print(f"wrote {DOC}")
    return result


def budget(articles: int) -> dict[str, Any]:
    """Item 4's budget: parsing and chunking in the worker against in this process."""
    return item_budget.measure(articles)


if __name__ == "__main__":
    main()
