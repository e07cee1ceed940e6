"""``khabar serve``'s resident memory on a built store, asked real questions.

    python bench/serve_memory.py --home HOME [--questions 20] [--posts 10] [--index-type hnsw]

Runs the real ``khabar serve`` (a separate process, as deployed) against the tests'
fake Bot API server (tests/bot/fake_telegram.py, python-telegram-bot's real HTTP
client on the other side), with ``KHABAR_HOME=HOME`` (a home made by
``bench/scale.py --home``: its ``store/`` and shared ``models/``). Once the bot polls,
it asks ``--questions`` of bench/_corpus.py's fixed questions, one chat each, one at a
time, and reports the process's ``VmRSS`` (with ``RssAnon``/``RssFile``: mapped files
count once touched) and peak ``VmHWM`` after start and after each question, with its
children's RSS, the wall time of each answer and the load average. With ``--posts N``,
a channel whose posts the bot indexes then posts N real news articles (NTREX, several
sentences a paragraph: their sentence vectors take the int8 graph), each measured
once the process is idle again, and the questions are asked once more.
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


CHANNEL = -1001234567  # where --posts are posted


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle(pid: int, quiet: float = 1.5, timeout: float = 300) -> float:
    """Wait until the process has used no CPU for ``quiet`` seconds; its CPU seconds."""
    end = time.monotonic() + timeout
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < end:
        await asyncio.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last > 0.02:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise TimeoutError("the bot did not go idle")


async def read_lines(stream: asyncio.StreamReader | None, into: list[str]) -> None:
    while stream is not None and (line := await stream.readline()):
        into.append(line.decode(errors="replace").rstrip())


async def logged(log: list[str], text: str, timeout: float = 300) -> None:
    """Wait until the bot logs a line holding ``text`` (a post indexed)."""
    end = time.monotonic() + timeout
    while not any(text in line for line in log):
        if time.monotonic() > end:
            raise TimeoutError(f"the bot never logged {text!r}")
        await asyncio.sleep(0.1)


def posts(n: int) -> list[str]:
    """Real news articles with paragraphs of several sentences, as channel posts."""
    out = []
    for art in C.ntrex_articles():
        text = "\n\n".join([art.title, *art.paragraphs])
        if sum(p.count(". ") + p.count("۔ ") for p in art.paragraphs) >= 3 \
                and len(text) < 4000:
            out.append(text)
        if len(out) == n:
            break
    return out


def command() -> list[str]:
    script = Path(sys.executable).parent / "khabar"
    found = str(script) if script.exists() else shutil.which("khabar")
    return [found, "serve"] if found else [sys.executable, "-m", "khabar", "serve"]


async def ask(telegram: FakeTelegram, pid: int, n: int, rows: list[dict[str, object]],
              stage: str, first_chat: int) -> None:
    for i, (_, q) in enumerate(C.questions()[:n]):
        chat = first_chat + i
        t0 = time.perf_counter()
        telegram.private_text(chat, q)
        await telegram.wait_for_messages(chat, 1, timeout=120)
        rows.append({"stage": f"{stage} {i + 1}",
                     "answer_ms": round((time.perf_counter() - t0) * 1000),
                     **status(pid), "children": children_rss(pid)})


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
        if args.posts:
            env["KHABAR_CHAT_ADMINS_WRITE"] = "1"  # the channel's own posts are indexed
            env["KHABAR_ALLOWED_CHATS"] = str(CHANNEL)
        env.pop("KHABAR_CONFIG", None)
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *command(), env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        log: list[str] = []  # the bot's log lines (JSON), read as they come
        reader = asyncio.create_task(read_lines(proc.stderr, log))
        try:
            await telegram.wait_for_call("getUpdates", timeout=600)
            rows.append({"stage": "polling", "s": round(time.perf_counter() - started, 2),
                         **status(proc.pid), "children": children_rss(proc.pid)})
            await ask(telegram, proc.pid, args.questions, rows, "question", 7000)
            if args.posts:
                telegram.add_channel(CHANNEL, "bench_news")
                for i, text in enumerate(posts(args.posts)):
                    before = cpu_seconds(proc.pid)
                    t0 = time.perf_counter()
                    telegram.channel_post(CHANNEL, "bench_news", 100 + i, text)
                    await logged(log, f"ingested post {100 + i}:")
                    cpu = await idle(proc.pid)
                    rows.append({"stage": f"post {i + 1}", "chars": len(text),
                                 "cpu_s": round(cpu - before, 2),
                                 "s": round(time.perf_counter() - t0, 2),
                                 **status(proc.pid), "children": children_rss(proc.pid)})
                await ask(telegram, proc.pid, args.questions, rows, "after posts, question",
                          8000)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=120)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            await reader
            # Stopped early: say why.
            if len(rows) <= args.questions * (2 if args.posts else 1) + args.posts:
                print("\n".join(log[-30:]), file=sys.stderr)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--posts", type=int, default=0,
                   help="then index this many channel posts of real news, and ask again")
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
    print(f"serve RSS after {len(rows) - 1} steps: {last['VmRSS']} MB (anon "
          f"{last['RssAnon']}, file {last['RssFile']}), peak {peak} MB, children "
          f"{last['children']} MB; load {before} -> {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
