"""A real ``khabar ingest`` killed (SIGKILL) in the middle of a batch leaves a store
that passes ``khabar check``, and running the same command again completes the batch:
every article stored once. (``bench/reliability.py crash`` runs many such trials at
random moments, of ingest and of reindex.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

PARAGRAPHS = [
    "Rescue teams searched the rubble of the city's market on {day} after the earthquake, "
    "the regional governor said, as the count of the missing rose to {n}.",
    "Officials said {n} families had moved into tents near the stadium, and that water "
    "trucks reached the northern districts on {day} afternoon.",
    "قال محافظ المنطقة إن فرق الإنقاذ واصلت البحث يوم {day} بين أنقاض السوق، وإن عدد "
    "المفقودين ارتفع إلى {n}.",
]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KHABAR_HOME"}
    return subprocess.run([sys.executable, "-m", "khabar", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, env=env)


def _articles(folder: Path, n: int) -> None:
    folder.mkdir()
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    for i in range(n):
        day = days[i % 7]
        text = [p.format(day=day, n=100 + 7 * i) for p in PARAGRAPHS]
        (folder / f"{i:03d}.json").write_text(json.dumps(
            {"title": f"Quake report {i}: the search goes on ({day})", "text": text,
             "url": f"https://example.com/quake/{i}", "outlets": ["Example Wire"]},
            ensure_ascii=False), encoding="utf-8")


def _articles_stored(home: Path) -> int:
    out = _cli(home, "stats", "--json")
    return int(json.loads(out.stdout).get("articles", 0)) if out.returncode == 0 else 0


def test_an_ingest_killed_mid_batch_leaves_a_sound_store_and_completes_on_rerun(
        khabar_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    _articles(folder, 120)
    env = {k: v for k, v in os.environ.items() if k != "KHABAR_HOME"}
    proc = subprocess.Popen([sys.executable, "-m", "khabar", "--home", str(khabar_home),
                             "ingest", str(folder)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if _articles_stored(khabar_home) > 0:  # some articles are in: kill mid-batch
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = _articles_stored(khabar_home)
    assert 0 < partial < 120
    check = _cli(khabar_home, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    again = _cli(khabar_home, "ingest", str(folder))
    assert again.returncode == 0, again.stderr[-2000:]
    assert _articles_stored(khabar_home) == 120
    check = _cli(khabar_home, "check")
    assert check.returncode == 0, check.stdout + check.stderr
