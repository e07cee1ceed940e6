"""The CLI as a user has it after ``pip install khabar``, without the extras.

``python-telegram-bot`` (``khabar[telegram]``), ``langchain`` (``khabar[llm]``) and
``pymilvus``/``milvus-lite`` (``khabar[milvus]``) are
installed here for the other tests, so one process hides them: a meta-path finder
refuses every import of ``telegram`` and ``langchain`` (not ``langchain_core``, a core
dependency) and records each attempt. In that process the CLI's commands run on the
seed, each as ``main(argv)``: none may try those imports, ``serve`` and a configured
``KHABAR_LLM`` and a ``KHABAR_STORE`` on Milvus must each name their extra in one line and
exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from khabar.bot.cli import EXIT_OK, EXIT_USAGE

from tests.conftest import share_models

BLOCKED = ("telegram", "langchain", "pymilvus", "milvus_lite")

DRIVER = r"""
import contextlib, io, json, os, sys
from importlib.abc import MetaPathFinder

BLOCKED = set(json.loads(sys.argv[1]))
attempts = []


class NoExtras(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoExtras())
from khabar.bot.cli import main  # noqa: E402

results = []
for run in json.loads(sys.argv[2]):
    os.environ.update(run["env"])
    sys.stdin = io.StringIO(run["stdin"])
    out, err = io.StringIO(), io.StringIO()
    del attempts[:]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(run["argv"])
    for name in run["env"]:
        del os.environ[name]
    results.append({"argv": run["argv"], "code": code, "out": out.getvalue(),
                    "err": err.getvalue(), "attempts": sorted(set(attempts))})
print(json.dumps(results))
"""


def _run(*argv: str, stdin: str = "", **env: str) -> dict[str, object]:
    return {"argv": list(argv), "stdin": stdin, "env": env}


@pytest.mark.model
def test_the_cli_runs_without_the_telegram_and_llm_extras(tmp_path: Path,
                                                         model_home: Path) -> None:
    home = share_models(tmp_path / "home", model_home)
    article = tmp_path / "article.txt"
    article.write_text("Title: Flood in Valencia\n\nHeavy rain flooded the streets of "
                       "Valencia on Tuesday, the city council said.\n", encoding="utf-8")
    runs = [
        _run("ask", "who struck Aleppo?"),
        _run("repl", stdin="who struck Aleppo?\n:stats\n"),
        _run("summary", "--since", "100y"),
        _run("ingest", str(article)),
        _run("stats", "--json"),
        _run("check", "--no-model"),
        _run("forget", "--url", "https://example.com/none"),
        _run("model", "info"),
        _run("config"),
        _run("completion", "bash"),
        # Without the extras these two name the extra to install, as configuration errors.
        _run("serve", KHABAR_TELEGRAM_TOKEN="123456:not-a-real-token"),
        _run("ask", "who struck Aleppo?", KHABAR_LLM="openai:gpt-4o-mini"),
        _run("stats", KHABAR_STORE=f"milvus-lite://{tmp_path}/milvus/khabar.db"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    env["KHABAR_HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(BLOCKED), json.dumps(runs)],
                          capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *works, serve, llm, milvus = json.loads(proc.stdout.splitlines()[-1])
    for r in works:
        assert r["code"] == EXIT_OK, r
        assert r["attempts"] == [], r  # nothing on the CLI's paths reaches for an extra
    out = {r["argv"][0]: r["out"] for r in works}
    for answer in (out["ask"], out["repl"]):
        assert "[1]" in answer and ("Aleppo" in answer or "حلب" in answer), answer
    assert json.loads(out["stats"])["articles"] == 2  # the seed and the ingested one
    assert "_shtab_khabar" in out["completion"]

    for r, extra in ((serve, "telegram"), (llm, "llm"), (milvus, "milvus")):
        assert r["code"] == EXIT_USAGE, r
        lines = r["err"].strip().splitlines()
        assert len(lines) == 1, r["err"]
        assert lines[0].startswith("khabar: error:"), lines
        assert f"pip install 'khabar[{extra}]'" in lines[0]
        assert r["out"] == ""
