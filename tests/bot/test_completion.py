"""``khabar completion bash|zsh|fish``: a script for each shell, generated from the parser,
that the shell accepts and that knows every subcommand; fast, since shells run it at
start-up (nothing heavy is imported, no settings are read)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from khabar.bot.cli import SHELLS

from tests.bot.test_cli import SUBCOMMANDS

HEAVY = ("torch", "numpy", "faiss", "sentence_transformers", "transformers",
         "langchain_core", "telegram", "khabar.index", "khabar.retrieval", "khabar.model")

# Runs the command as the entry point does, then reports which heavy modules it imported.
DRIVER = """
import json, sys
from khabar.bot.cli import main
code = main(sys.argv[2:])
sys.stdout.flush()
heavy = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def completion(shell: str) -> tuple[str, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    env["KHABAR_TOP_K"] = "many"  # a broken setting: completion reads none
    r = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(HEAVY), "completion", shell],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    return r.stdout, json.loads(r.stderr.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    out = {}
    for shell in SHELLS:
        script, report = completion(shell)
        assert report == {"code": 0, "heavy": []}, (shell, report)
        out[shell] = script
    return out


def test_the_shells_are_bash_zsh_and_fish() -> None:
    assert SHELLS == ("bash", "zsh", "fish")


@pytest.mark.parametrize("shell", SHELLS)
def test_each_script_names_every_subcommand(scripts: dict[str, str], shell: str) -> None:
    script = scripts[shell]
    assert script.strip() and "_shtab_khabar" in script
    for name in SUBCOMMANDS:
        assert name in script, (shell, name)


@pytest.mark.parametrize("shell", SHELLS)
def test_the_shell_accepts_its_script(scripts: dict[str, str], shell: str,
                                      tmp_path: Path) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"khabar.{shell}"
    path.write_text(scripts[shell], encoding="utf-8")
    r = subprocess.run([exe, "-n", str(path)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def complete_in_bash(script: str, tmp_path: Path, *words: str) -> list[str]:
    path = tmp_path / "khabar.bash"
    path.write_text(script, encoding="utf-8")
    words_ = " ".join(f"'{w}'" for w in words)
    program = (f"source {path}; COMP_WORDS=(khabar {words_}); COMP_CWORD={len(words)};"
               f' _shtab_khabar; printf "%s\\n" "${{COMPREPLY[@]}}"')
    r = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True,
                       cwd=tmp_path)
    return r.stdout.split()


def test_bash_completes_subcommands_and_their_choices(scripts: dict[str, str],
                                                      tmp_path: Path) -> None:
    assert complete_in_bash(scripts["bash"], tmp_path, "co") == ["config", "completion"]
    assert complete_in_bash(scripts["bash"], tmp_path, "completion", "") == list(SHELLS)
    assert complete_in_bash(scripts["bash"], tmp_path, "ask", "--la") == ["--lang"]
    assert complete_in_bash(scripts["bash"], tmp_path, "ask", "--lang", "") == ["ar", "en"]


def test_ingest_completes_paths_in_bash(scripts: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "news.txt").write_text("x", encoding="utf-8")
    assert complete_in_bash(scripts["bash"], tmp_path, "ingest", "articles/n") == [
        "articles/news.txt"]
