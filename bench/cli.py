"""The one-shot command: ``khabar ask "who struck Aleppo?"``, wall time and peak memory.

    python bench/cli.py --runs 5
    python bench/cli.py --runs 5 --home ~/.local/share/khabar   # an index already built

Unless ``--home`` names a built index, a seed index is built first (untimed beyond its
own line: the first ``khabar ask`` on an empty home indexes the seed article) in a
temporary KHABAR_HOME whose ``models/`` is the configured one's (``--models``), so no
model is rebuilt. Then the command runs ``--runs`` times, each a fresh process as a
user starts it (the ``khabar`` script of this interpreter's environment, the working
directory the home, stdout discarded): wall time around the process, and its peak
resident memory (its own rusage, from ``wait4``); median and range. Last, one run under
``python -X importtime`` lists what costs most to import: modules by their own time,
and top-level packages by cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def khabar_command() -> list[str]:
    script = Path(sys.executable).parent / "khabar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "khabar"]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time and its own peak resident memory."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n"
                               f"{err.read().decode(errors='replace')[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "user_s": usage.ru_utime, "sys_s": usage.ru_stime}


def importtime(cmd: list[str], env: dict[str, str], cwd: Path, top: int
               ) -> dict[str, list[tuple[str, float]]]:
    """``-X importtime`` of one run: (module, ms) by self time, and top-level packages
    (imported at nesting level 0) by cumulative time."""
    # "-m khabar …", or the console script, a Python file
    argv = [sys.executable, "-X", "importtime", *(cmd[1:] if cmd[0] == sys.executable else cmd)]
    err = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True).stderr
    own, top_level = [], []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line.removeprefix("import time:").split("|", 2)
        own.append((name.strip(), int(self_us) / 1000))
        if not name[1:].startswith(" "):  # one space after the bar: nesting level 0
            top_level.append((name.strip(), int(cum_us) / 1000))
    return {"self": sorted(own, key=lambda x: -x[1])[:top],
            "top_level_cumulative": sorted(top_level, key=lambda x: -x[1])[:top],
            "total_ms": [("all imports", sum(ms for _, ms in top_level))]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--question", default="who struck Aleppo?")
    p.add_argument("--home", type=Path, help="a KHABAR_HOME with a built index (default: a "
                   "temporary one, seeded)")
    p.add_argument("--models", type=Path, help="models folder with the built e5 for the "
                   "temporary home (default: the configured KHABAR_HOME's)")
    p.add_argument("--top", type=int, default=12, help="import offenders listed")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    command = "python bench/cli.py " + " ".join(sys.argv[1:])
    cmd = [*khabar_command(), "ask", args.question]
    out: dict[str, Any] = {"command": cmd, "uptime_before": C.uptime()}
    with tempfile.TemporaryDirectory(prefix="khabar-cli-") as tmp:
        home = args.home or C.share_models(Path(tmp) / "home",
                                            args.models or C.default_models())
        env = {**os.environ, "KHABAR_HOME": str(home)}
        env.pop("KHABAR_CONFIG", None)
        if args.home is None:
            out["seeding_run"] = timed(cmd, env, home)
            print(f"first run (indexes the seed article): {out['seeding_run']['wall_s']:.1f} s",
                  file=sys.stderr)
        runs = [timed(cmd, env, home) for _ in range(args.runs)]
        out["runs"] = runs
        out["imports"] = importtime(cmd, env, home, args.top)
    out["uptime_after"] = C.uptime()
    wall = [r["wall_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    cpu = [r["user_s"] + r["sys_s"] for r in runs]
    out["median_wall_s"] = statistics.median(wall)
    out["median_peak_rss_mb"] = statistics.median(rss)
    lines = [f"`{command}` — `{' '.join(['khabar', *cmd[-2:]])}`, {args.runs} runs; "
             f"{out['uptime_before']}", "",
             "| measure | median | min | max |", "| --- | --- | --- | --- |",
             f"| wall time, s | {statistics.median(wall):.2f} | {min(wall):.2f} | "
             f"{max(wall):.2f} |",
             f"| peak RSS, MB | {statistics.median(rss):.0f} | {min(rss):.0f} | "
             f"{max(rss):.0f} |",
             f"| CPU (user + sys), s | {statistics.median(cpu):.2f} | {min(cpu):.2f} | "
             f"{max(cpu):.2f} |", "",
             f"Imports (`-X importtime`, one run): "
             f"{out['imports']['total_ms'][0][1] / 1000:.2f} s in all. Top-level packages, "
             "cumulative ms: " + ", ".join(f"{n} {ms:.0f}" for n, ms
                                          in out["imports"]["top_level_cumulative"]) + ".",
             "", "Modules by own import time, ms: " + ", ".join(
                 f"{n} {ms:.0f}" for n, ms in out["imports"]["self"]) + ".",
             "", f"finished: {out['uptime_after']}"]
    md = "\n".join(lines) + "\n"
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    print(md)


if __name__ == "__main__":
    main()
