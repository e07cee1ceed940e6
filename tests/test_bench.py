"""The speed benchmarks run end to end at a tiny size (``-m bench`` selects them).

They measure whatever the store, search and encoders become, through the public API
only, so a change that breaks a benchmark shows here rather than on the day of a long
run. The scale run with the hash encoder needs no model; the others use the session's
built model (``model``), and the LangChain comparison its own packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from khabar.index import Index

from khabar import Settings

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
NTREX = REPO.parent / "shared" / "data" / "raw" / "ntrex"

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(not NTREX.is_dir(), reason="needs ../shared/data"),
]


def run(script: str, *args: str, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    out = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_scale_hash_grows_measures_and_resumes(tmp_path: Path) -> None:
    home = tmp_path / "scale"
    common = ["--encoder", "hash", "--home", str(home), "--repeats", "1",
              "--questions", "4", "--recall", "always"]
    table = run("scale.py", "--passages", "200", *common)
    assert "| passages |" in table and "hash" in table
    first = json.loads((home / "scale.json").read_text())["rows"]
    assert len(first) == 1 and first[0]["passages"] >= 200
    # The same home, further: it resumes after the last checkpoint.
    run("scale.py", "--passages", "700", *common, "--json", str(tmp_path / "out.json"))
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert [r["passages"] for r in rows[:1]] == [first[0]["passages"]]
    assert len(rows) == 2 and rows[1]["passages"] >= 700
    row = rows[1]
    assert row["ingest_rate"] > 0 and row["ingest_from"] > first[0]["passages"]
    assert row["disk_bytes_per_passage"] > 0
    reader = row["reader"]
    assert reader["warm_n"] == 4 and reader["warm_p50_ms"] <= reader["warm_p95_ms"]
    assert reader["after_new_article_ms"] > 0 and "added" in reader["new_article"]["summary"]
    assert reader["again"]["open_to_first_answer_s"] > 0
    assert all(0.9 <= v <= 1.0 for v in reader["recall_at_10"].values())
    assert reader["rss_mb"] > 0 and row["writer"]["peak_rss_mb"] > 0
    # Where the disk goes: every file counted, SQLite by table.
    fp = json.loads(run("footprint.py", str(home / "store")))[0]
    assert fp["passages"] > row["passages"]  # and the "one new article" writers' passages
    assert fp["sqlite_per_passage"]["sentence_vectors"] > 0
    assert fp["payload_per_passage"]["vectors.vec"] == 2 * (384 + 512)  # float16, 2 spaces
    assert fp["bytes_per_passage"] >= sum(fp["files_per_passage"].values()) - 10


@pytest.mark.model
def test_scale_replay_with_a_tiny_base(tmp_path: Path, model_home: Path,
                                       seed_index: Index) -> None:
    sys.path.insert(0, str(BENCH))
    import _corpus

    base = tmp_path / "base.npz"
    meta = _corpus.export_base(seed_index.store, base)
    assert meta["texts"] > meta["passages"] > 0  # passages and their sentences
    run("scale.py", "--passages", "200", "--encoder", "replay", "--base", str(base),
        "--models", str(Settings(home=model_home).models_dir), "--home", str(tmp_path / "s"),
        "--repeats", "1", "--questions", "2", "--json", str(tmp_path / "out.json"))
    row = json.loads((tmp_path / "out.json").read_text())["rows"][0]
    assert row["vectors"].startswith("replayed") and row["passages"] >= 200
    assert sum(row["replay_lookups"].values()) > 0
    assert row["reader"]["warm_n"] == 2


@pytest.mark.model
def test_cli_bench(tmp_path: Path, model_home: Path) -> None:
    out = run("cli.py", "--runs", "1", "--models", str(Settings(home=model_home).models_dir),
              "--json", str(tmp_path / "cli.json"))
    assert "wall time, s" in out and "peak RSS, MB" in out
    data = json.loads((tmp_path / "cli.json").read_text())
    assert data["runs"][0]["wall_s"] > 0 and data["runs"][0]["peak_rss_mb"] > 50
    assert data["imports"]["top_level_cumulative"]


@pytest.mark.model
def test_versus_langchain(tmp_path: Path, model_home: Path) -> None:
    pytest.importorskip("langchain_huggingface")
    pytest.importorskip("langchain_community")
    out = run("versus_langchain.py", "--articles", "3", "--questions", "2",
              "--models", str(Settings(home=model_home).models_dir),
              "--json", str(tmp_path / "vs.json"))
    assert "khabar / LangChain" in out
    data = json.loads((tmp_path / "vs.json").read_text())
    assert data["khabar"]["passages"] == data["langchain"]["passages"] > 0
    assert data["ratio"]["ingest_rate"] > 0 and data["khabar"]["hit_queries"] == 3


@pytest.mark.model
def test_ingest_bench(tmp_path: Path, model_home: Path) -> None:
    out = run("ingest.py", "--articles", "4", "--rounds", "2", "--slice", "4", "--stages",
              "--models", str(Settings(home=model_home).models_dir),
              "--json", str(tmp_path / "ingest.json"))
    assert "store put" in out and "embed_for_store" in out
    data = json.loads((tmp_path / "ingest.json").read_text())
    before, after = data["totals"]["before"], data["totals"]["after"]
    assert before["passages"] == after["passages"] > 0 and after["rate"] > 0
    assert [s["stored"] for s in data["slices"] if s["way"] == "after"][1] > 0


@pytest.mark.model
def test_multipara_bench(tmp_path: Path, model_home: Path) -> None:
    out = run("multipara.py", "--articles", "2", "--control", "3", "--no-abstain",
              "--models", str(Settings(home=model_home).models_dir),
              "--cache", str(tmp_path / "cache.sqlite3"), "--json", str(tmp_path / "mp.json"))
    assert "spanning: lead / shown" in out and "compose CPU ms/question" in out
    data = json.loads((tmp_path / "mp.json").read_text())
    figures = data["figures"]
    assert {"shipped", "today", "shipped (no abstain)"} <= set(figures)
    control = figures["today (no abstain)"]["control"]
    assert control["n"] > 0 and 0 <= control["lead"] <= control["shown"] <= 1
    assert figures["shipped (no abstain)"]["control"]["abstained"] == 0
