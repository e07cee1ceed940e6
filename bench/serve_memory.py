"""``khabar serve``'s resident memory on a built store, asked real questions.

    python bench/serve_memory.py --home HOME [--questions 20] [--index-type hnsw]

Runs the real ``khabar serve`` (a separate process, as deployed) against the tests'
fake Bot API server (tests/bot/fake_telegram.py, python-telegram-bot's real HTTP
client on the other side), with ``KHABAR_HOME=HOME`` (a home made by
``bench/scale.py --home``: its ``store/`` and shared ``models/``). Once the bot polls,
it asks ``--questions`` of bench/_corpus.py's fixed questions, one chat each, one at a
time, and reports the process's ``VmRSS`` (with ``RssAnon``/``RssFile``: mapped files
count once touched) and peak ``VmHWM`` after start and after each question, with its
children's RSS, the wall time of each answer and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

from tests.bot.fake_telegram import FakeTelegram  # noqa: E402


def status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def children_rss(pid: int) -> float:
    """RSS of the process's descendants (parse workers, if any), MB."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            todo.append(kid)
            with contextlib.suppress(OSError):
                total += status(kid).get("VmRSS", 0.0)
    return round(total, 1)


def command() -> list[str]:
    script = Path(sys.executable).parent / "khabar"
    found = str(script) if script.exists() else shutil.which("khabar")
    return [found, "serve"] if found else [sys.executable, "-m", "khabar", "serve"]


async def run(args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    async with FakeTelegram() as telegram:
        env = {**os.environ, "KHABAR_HOME": str(args.home),
               "KHABAR_TELEGRAM_TOKEN": telegram.token,
               "KHABAR_TELEGRAM_BASE_URL": telegram.base_url,
               "KHABAR_TELEGRAM_FILE_URL": telegram.base_file_url,
               "PYTHONUNBUFFERED": "1"}
        if args.index_type:
            env["KHABAR_INDEX_TYPE"] = args.index_type
        env.pop("KHABAR_CONFIG", None)
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *command(), env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        try:
            await telegram.wait_for_call("getUpdates", timeout=600)
            rows.append({"stage": "polling", "s": round(time.perf_counter() - started, 2),
                         **status(proc.pid), "children": children_rss(proc.pid)})
            for i, (_, q) in enumerate(C.questions()[: args.questions]):
                chat = 7000 + i
                t0 = time.perf_counter()
                telegram.private_text(chat, q)
                await telegram.wait_for_messages(chat, 1, timeout=120)
                rows.append({"stage": f"question {i + 1}",
                             "answer_ms": round((time.perf_counter() - t0) * 1000),
                             **status(proc.pid), "children": children_rss(proc.pid)})
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
                except TimeoutError:
                    proc.kill()
                    _, err = await proc.communicate()
                if len(rows) <= args.questions:  # stopped early: say why
                    print(err.decode(errors="replace")[-3000:], file=sys.stderr)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--index-type", choices=["auto", "flat", "hnsw"],
                   help="KHABAR_INDEX_TYPE for the served store (default: the setting's)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    before = os.getloadavg()
    rows = asyncio.run(run(args))
    for row in rows:
        print(json.dumps(row))
    last = rows[-1]
    peak = max(float(r["VmHWM"]) for r in rows)  # type: ignore[arg-type]
    print(f"serve RSS after {len(rows) - 1} questions: {last['VmRSS']} MB (anon "
          f"{last['RssAnon']}, file {last['RssFile']}), peak {peak} MB, children "
          f"{last['children']} MB; load {before} -> {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
