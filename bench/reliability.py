"""khabar's reliability promises, measured (issue #13; the report is docs/reliability.md).

    python bench/reliability.py crash --trials 20            # SIGKILL during ingest and reindex
    python bench/reliability.py crash --trials 3 --articles 10   # a quick look

**crash**: each trial kills (SIGKILL) a real ``khabar ingest`` of a folder of real news
articles (NTREX-128, English and Arabic, one JSON file each) at a random moment between
its start and the time a whole run takes, then runs ``khabar check`` on what was left,
then the same ``khabar ingest`` again, which must complete the batch (every article
stored once), then ``khabar check`` again. The reindex trials do the same to ``khabar
reindex`` on a store that holds the whole batch (the same model, so the vectors it
writes must equal the ones it replaces). A trial fails when either check fails, the
second run fails, or the store does not hold each article exactly once. Every run uses
the real encoders (e5 on onnxruntime, USE) from the built model (``KHABAR_HOME`` or
``--models``), in a fresh home per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
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


def kill_after(cmd: list[str], delay: float) -> tuple[bool, float]:
    """Run ``cmd``, SIGKILL it after ``delay`` s; (killed before it finished, its age)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env())
    try:
        proc.wait(timeout=delay)
        return False, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, time.perf_counter() - t0


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
            delay = rng.uniform(0.05, 1.0) * whole
            cmd = [sys.executable, "-m", "khabar", "--home", str(home)]
            cmd += ["ingest", str(batch)] if kind == "ingest" else ["reindex"]
            killed, age = kill_after(cmd, delay)
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
    args = p.parse_args()
    result = crash(args)
    print(json.dumps(result["summary"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
