"""The ``khabar`` command as scripts use it: --help, --json, exit codes, one-line errors.

Commands that load the model cost ~10 s per process, so only ``ask`` (which
indexes the seed) and ``stats`` run on the real model; the rest fail or answer
before any model load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from khabar.bot.cli import EXIT_FAULT, EXIT_OK, EXIT_USAGE, benchmarks, build_parser

from khabar.store import INT8_SENTENCES

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["ask", "repl", "ingest", "forget", "reindex", "migrate", "stats", "check",
               "summary", "timeline", "serve", "model", "bench", "config", "completion"]
SEED_TITLE = "أميركا تقصف في حلب ردا على القصف الروسي في حمص"


def khabar(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    full.update(env or {})
    if home is not None:
        full["KHABAR_HOME"] = str(home)
    full.setdefault("KHABAR_HOME", "/nonexistent/khabar-home")  # never the user's own
    return subprocess.run([sys.executable, "-m", "khabar", *args], capture_output=True,
                          text=True, env=full, cwd=REPO, timeout=timeout, check=False)


def test_top_level_help_lists_every_subcommand_and_the_exit_codes() -> None:
    r = khabar("--help")
    assert r.returncode == EXIT_OK, r.stderr
    for name in SUBCOMMANDS:
        assert f"    {name} " in r.stdout
    assert "Exit status" in r.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    r = khabar(command, "--help")
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stdout.startswith(f"usage: khabar {command}")
    assert "--debug" in r.stdout  # the common flags work after the subcommand too


def test_the_parser_knows_exactly_these_subcommands() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(SUBCOMMANDS)  # type: ignore[arg-type]


def test_json_flags_exist_where_scripts_need_them() -> None:
    parser = build_parser()
    for command in ("ask", "summary", "timeline", "stats"):
        argv = [command, "--json"] + (["q"] if command == "ask" else [])
        assert parser.parse_args(argv).json is True


def test_a_bad_since_is_one_line_and_exit_2() -> None:
    r = khabar("ask", "--since", "yesterdayish", "who struck Aleppo?")
    assert r.returncode == EXIT_USAGE
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--since" in lines[0] and "24h" in lines[0]
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_usage_errors_exit_2_before_any_model_load(tmp_path: Path) -> None:
    r = khabar("forget", home=tmp_path)  # nothing named to forget
    assert r.returncode == EXIT_USAGE and "--url" in r.stderr
    r = khabar("ingest", str(tmp_path / "missing.txt"), home=tmp_path)
    assert r.returncode == EXIT_USAGE and "missing.txt" in r.stderr
    assert not (tmp_path / "store").exists()  # refused before opening anything


def test_bench_lists_the_benchmarks() -> None:
    assert "quality" in benchmarks()
    r = khabar("bench")
    assert r.returncode == EXIT_OK
    assert "quality" in r.stdout
    r = khabar("bench", "no-such-bench")
    assert r.returncode == EXIT_USAGE and "available" in r.stderr


def test_bench_passes_arguments_through() -> None:
    r = khabar("bench", "quality", "--help")
    assert r.returncode == EXIT_OK, r.stderr
    assert "--max-queries" in r.stdout  # quality.py's own help


@pytest.mark.model
def test_ask_json_then_stats_json_on_the_seed(khabar_home: Path) -> None:
    r = khabar("ask", "--json", "who struck Aleppo?", home=khabar_home)
    assert r.returncode == EXIT_OK, r.stderr
    answer = json.loads(r.stdout)  # stdout is the JSON alone: messages go to stderr
    assert answer["question"] == "who struck Aleppo?"
    assert answer["lang"] == "en"
    shown = answer["passages"] + answer["related"]
    assert shown, answer
    assert all(p["title"] == SEED_TITLE for p in shown)
    assert any("حلب" in p["text"] for p in shown)
    assert [p["n"] for p in shown[: len(answer["passages"])]] == list(
        range(1, len(answer["passages"]) + 1))
    numbers = {p["n"] for p in answer["passages"]}
    assert all(s["source"] in numbers for s in answer["answer"])  # every citation resolves
    assert answer["abstained"] == (not answer["answer"])
    assert answer["timings_ms"]["total"] > 0
    assert "seed" in r.stderr  # the empty index was filled from seeds/ first

    r = khabar("stats", "--json", home=khabar_home)
    assert r.returncode == EXIT_OK, r.stderr
    stats = json.loads(r.stdout)
    assert stats["articles"] == 1 and stats["passages"] >= 10
    assert set(stats["languages"]) == {"ar"}
    assert "Reuters" in stats["outlet_counts"]
    assert {"e5", "use"} <= set(stats["spaces"])
    assert stats["sentence_vectors"] == {"e5": stats["passages"], "use": stats["passages"]}


@pytest.mark.model
def test_timeline_of_the_seed_story(khabar_home: Path) -> None:
    r = khabar("timeline", "--json", "--since", "100y", home=khabar_home)
    assert r.returncode == EXIT_OK, r.stderr
    data = json.loads(r.stdout)
    assert data["story"]["headline"] == SEED_TITLE and data["topic"] is None
    (entry,) = data["timeline"]
    assert entry["title"] == SEED_TITLE and entry["lang"] == "ar" and "Reuters" in entry["outlets"]
    r = khabar("timeline", "--since", "100y", "حلب", home=khabar_home)
    assert r.returncode == EXIT_OK, r.stderr
    lines = r.stdout.splitlines()
    assert "التسلسل الزمني" in lines[0] and SEED_TITLE in lines[0]  # the topic's language
    assert lines[2].lstrip("\u200f").startswith("[1] ") and " · ar" in lines[2]
    r = khabar("timeline", "--since", "100y", "cricket world cup", home=khabar_home)
    assert r.returncode == EXIT_OK and "Nothing about" in r.stdout


def test_stats_on_an_empty_home_is_zero_without_a_model(tmp_path: Path) -> None:
    r = khabar("stats", "--json", home=tmp_path)
    assert r.returncode == EXIT_OK, r.stderr
    assert json.loads(r.stdout)["articles"] == 0


def test_migrate_copies_the_archive_to_milvus_and_refuses_itself(tmp_path: Path) -> None:
    from khabar.index import Article, Index

    from khabar import Settings
    from tests.fakes import HashEncoder

    ix = Index.open(Settings(home=tmp_path), encoders=[HashEncoder()])
    ix.add_articles([Article(title=f"Story {n}", url=f"https://wire.test/{n}", lang="en",
                             outlets=["Wire"], paragraphs=[f"Story {n} is about the harvest "
                                                           f"of {2000 + n} in the valley."])
                     for n in range(3)])
    ix.close()
    target = f"milvus-lite://{tmp_path}/milvus/khabar.db"
    r = khabar("migrate", "--to", target, "--json", home=tmp_path)
    assert r.returncode == EXIT_OK, r.stderr
    report = json.loads(r.stdout)
    assert report == {"counts": {"added": 3}, "source_faults": [], "target_faults": []}
    r = khabar("stats", "--json", home=tmp_path, env={"KHABAR_STORE": target})
    assert r.returncode == EXIT_OK, r.stderr
    assert (json.loads(r.stdout)["articles"], json.loads(r.stdout)["path"]) == (
        3, f"{tmp_path}/milvus/khabar.db")
    r = khabar("migrate", "--to", target, home=tmp_path, env={"KHABAR_STORE": target})
    assert r.returncode == EXIT_USAGE and "names the store being copied" in r.stderr


def test_check_without_model_on_an_empty_store(tmp_path: Path) -> None:
    r = khabar("check", "--no-model", home=tmp_path)
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert r.stdout.strip() == "ok"


@pytest.mark.model
def test_reindex_adds_sentence_vectors_to_a_store_from_before_them(
        khabar_home: Path, encoders: list) -> None:
    from khabar.index import Index

    from khabar import Settings

    ix = Index.open(Settings(home=khabar_home, sentence_vectors=False), encoders=encoders)
    ix.add_path(REPO / "seeds")
    ix.close()
    r = khabar("check", "--no-model", home=khabar_home)
    assert r.returncode == EXIT_OK and "khabar reindex" in r.stdout  # a note, not a fault
    r = khabar("reindex", "--sentences", home=khabar_home)  # only what is missing
    assert r.returncode == EXIT_OK, r.stderr
    assert "added sentence vectors" in r.stdout
    r = khabar("check", home=khabar_home)
    assert r.returncode == EXIT_OK and r.stdout.strip() == "ok", r.stdout + r.stderr
    stats = json.loads(khabar("stats", "--json", home=khabar_home).stdout)
    assert stats["sentence_vectors"] == {"e5": stats["passages"], "use": stats["passages"]}
    r = khabar("reindex", home=khabar_home)  # everything again, sentence vectors included
    assert r.returncode == EXIT_OK, r.stderr
    assert khabar("check", "--no-model", home=khabar_home).stdout.strip() == "ok"
    again = json.loads(khabar("stats", "--json", home=khabar_home).stdout)
    assert again["sentence_vectors"] == stats["sentence_vectors"]


@pytest.mark.model
def test_check_finds_vectors_its_model_did_not_make(khabar_home: Path, encoders: list) -> None:
    # What an interrupted reindex of an older khabar left: the recorded model's
    # fingerprint over vectors of another model (same width, so no width fault).
    import numpy as np
    from khabar.index import Index

    from khabar import Settings
    from tests.store._data import forge_vectors

    ix = Index.open(Settings(home=khabar_home), encoders=encoders)
    ix.add_path(REPO / "seeds")
    rows = [(r["id"], r["text"]) for r in ix.store.iter_passages()]
    rng = np.random.default_rng(3)
    other = rng.standard_normal((len(rows), 384)).astype(np.float32)
    forge_vectors(ix.store, "e5", [(pid, v / np.linalg.norm(v))
                                   for (pid, _), v in zip(rows, other, strict=True)])
    ix.close()
    r = khabar("check", "--no-model", home=khabar_home)
    assert r.returncode == EXIT_OK  # widths and counts are right: only the model can tell
    r = khabar("check", home=khabar_home)
    assert r.returncode == EXIT_FAULT, r.stdout + r.stderr
    assert "sampled e5 vectors differ" in r.stdout
    assert khabar("reindex", home=khabar_home).returncode == EXIT_OK
    r = khabar("check", home=khabar_home)
    assert r.returncode == EXIT_OK and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_ingest_reports_hostile_files_one_by_one_and_ingests_the_rest(
        khabar_home: Path, tmp_path: Path) -> None:
    from tests.index.test_ingest import hostile_files

    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in hostile_files().items():
        (folder / name).write_bytes(data)
    r = khabar("ingest", "--json", str(folder), home=khabar_home)
    assert r.returncode == 1, r.stderr  # an item failed; not a crash (3, 4 or 70)
    report = json.loads(r.stdout)
    errors = {Path(i["name"]).name: i["message"] for i in report["items"]
              if i["status"] == "error"}
    assert "nested too deeply" in errors["a_deep.json"]
    assert report["counts"]["added"] >= 4, report
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("period", ["5000y", "999999999999d", "99999999999999999999y"])
def test_a_period_beyond_any_date_is_a_usage_error(tmp_path: Path, period: str) -> None:
    r = khabar("ask", "--since", period, "who?", home=tmp_path)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "--since" in r.stderr and "Traceback" not in r.stderr
    assert "before the year 1" in r.stderr or "not a period" in r.stderr or "not '" in r.stderr


def test_a_store_from_a_newer_khabar_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    from khabar.store import Store, _schema

    store_dir = tmp_path / "store"
    Store(store_dir).close()
    db = sqlite3.connect(store_dir / _schema.DB_NAME)
    db.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION + 1}")
    db.close()
    before = (store_dir / _schema.DB_NAME).read_bytes()
    r = khabar("stats", home=tmp_path)
    assert r.returncode == 3, r.stderr  # the store is unusable here, said in one line
    assert "made by a newer khabar" in r.stderr and "upgrade khabar" in r.stderr
    assert "Traceback" not in r.stderr
    assert (store_dir / _schema.DB_NAME).read_bytes() == before


@pytest.mark.model
def test_check_and_reindex_on_both_ways_of_making_sentence_vectors(
        khabar_home: Path, encoders: list) -> None:
    from khabar.index import Index

    from khabar import Settings
    from khabar.model import embed_for_store
    from tests.store._data import forge_sentence_vectors

    # A store from before late chunking: each sentence embedded alone.
    ix = Index.open(Settings(home=khabar_home, sentence_method="each"), encoders=encoders)
    ix.add_path(REPO / "seeds")
    ix.close()
    as_each = {"KHABAR_SENTENCE_METHOD": "each"}
    assert khabar("check", home=khabar_home, env=as_each).stdout.strip() == "ok"
    # Configured int8: the store stays as it is, and a note says how to move.
    r = khabar("check", home=khabar_home, env={"KHABAR_SENTENCE_METHOD": "int8"})
    assert r.returncode == EXIT_OK and "at int8" in r.stdout and "reindex" in r.stdout, r.stdout
    late = {"KHABAR_SENTENCE_METHOD": "late"}
    r = khabar("check", home=khabar_home, env=late)  # works on; a note says how to move
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert "embedded one by one" in r.stdout and "khabar reindex" in r.stdout
    assert khabar("reindex", home=khabar_home, env=late).returncode == EXIT_OK
    spaces = json.loads(khabar("stats", "--json", home=khabar_home).stdout)["spaces"]
    assert spaces["e5"]["fingerprint"].endswith("+late-sentences")
    assert not spaces["use"]["fingerprint"].endswith("+late-sentences")
    # Configured "each" again: the late store stays late, and says so.
    r = khabar("check", home=khabar_home, env=as_each)
    assert r.returncode == EXIT_OK and "pooled from each passage's run" in r.stdout, r.stdout
    assert khabar("check", home=khabar_home, env=late).stdout.strip() == "ok"
    # Sentence vectors of the other kind slipped in (a store written by hand): a fault.
    ix = Index.open(Settings(home=khabar_home), encoders=encoders)
    rows = [(r["id"], r["text"]) for r in ix.store.iter_passages()]
    each = embed_for_store(encoders[:1], [t for _, t in rows]).sentences["e5"]
    forge_sentence_vectors(ix.store, "e5", [(pid, m) for (pid, _), m in
                                            zip(rows, each, strict=True)])
    ix.close()
    r = khabar("check", home=khabar_home, env=late)
    assert r.returncode == EXIT_FAULT and "sentence vectors that differ" in r.stdout, r.stdout
    assert khabar("reindex", home=khabar_home, env=late).returncode == EXIT_OK
    assert khabar("check", home=khabar_home, env=late).stdout.strip() == "ok"


@pytest.mark.model
def test_check_and_reindex_with_int8_sentence_vectors(khabar_home: Path, encoders: list) -> None:
    from khabar.index import Index

    from khabar import Settings

    ix = Index.open(Settings(home=khabar_home, sentence_method="each"), encoders=encoders)
    ix.add_path(REPO / "seeds")
    ix.close()
    int8 = {"KHABAR_SENTENCE_METHOD": "int8"}
    r = khabar("check", home=khabar_home, env=int8)  # works on; a note says how to move
    assert r.returncode == EXIT_OK and "khabar reindex" in r.stdout, r.stdout + r.stderr
    assert khabar("reindex", home=khabar_home, env=int8).returncode == EXIT_OK
    spaces = json.loads(khabar("stats", "--json", home=khabar_home).stdout)["spaces"]
    assert spaces["e5"]["fingerprint"].endswith(INT8_SENTENCES)
    assert not spaces["use"]["fingerprint"].endswith(INT8_SENTENCES)
    # Its sampled sentence vectors, embedded again at int8, are the store's own.
    assert khabar("check", home=khabar_home, env=int8).stdout.strip() == "ok"
    # Configured "each": the store stays int8.
    r = khabar("check", home=khabar_home, env={"KHABAR_SENTENCE_METHOD": "each"})
    assert r.returncode == EXIT_OK and "at int8" in r.stdout, r.stdout
    # Late-chunked vectors slipped in (a store written by hand): a fault.
    from khabar.model import embed_for_store
    from tests.store._data import forge_sentence_vectors

    ix = Index.open(Settings(home=khabar_home), encoders=encoders)
    rows = [(r["id"], r["text"]) for r in ix.store.iter_passages()]
    late = embed_for_store(encoders[:1], [t for _, t in rows], late={"e5"}).sentences["e5"]
    forge_sentence_vectors(ix.store, "e5", [(pid, m) for (pid, _), m in
                                            zip(rows, late, strict=True)])
    ix.close()
    r = khabar("check", home=khabar_home, env=int8)
    assert r.returncode == EXIT_FAULT and "at int8" in r.stdout, r.stdout


def test_a_bulk_ingest_leaves_the_lexical_files_up_to_date(
        khabar_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from khabar.bot import cli

    from khabar import Settings
    from khabar.store import open_store

    folder = tmp_path / "in"
    folder.mkdir()
    for i, text in enumerate(["Floods closed the coastal road to Latakia on Sunday.",
                              "أغلقت السيول الطريق الساحلي إلى اللاذقية يوم الأحد."]):
        (folder / f"{i}.txt").write_text(f"Headline {i}\n\n{text}\n", encoding="utf-8")
    settings = Settings(home=khabar_home)
    store_dir = settings.store_dir
    for key in [k for k in os.environ if k.startswith("KHABAR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("KHABAR_HOME", str(khabar_home))
    monkeypatch.setattr(cli, "BULK_PASSAGES", 1)  # two passages make this a bulk ingest
    assert cli.main(["ingest", str(folder)]) == EXIT_OK
    store = open_store(settings)
    try:
        top = store.change_mark().passage
    finally:
        store.close()
    for name in ("bm25.json", *[p.name for p in (store_dir / "lexical").glob("bridge-*.json")]):
        state = json.loads((store_dir / "lexical" / name).read_text())
        assert state["mark"]["passage"] == top, name  # a reader has nothing to apply
    assert list((store_dir / "lexical").glob("bridge-*.json"))


# -- what an ingest prints: names from files and URLs, one plain line each -------------

ESCAPES = "\x1b]0;owned\x07\x1b[2K\rfake: all good\x1b[8m"  # title, erase, CR, hide
TOKEN_URL = "https://ghp_S3cretT0kenABCDEFGH@10.0.0.1/feed.xml"


def _hostile_tar(path: Path) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w") as tf:  # empty members: each an error line
        for name in (f"{ESCAPES}.txt", "rlo-\u202etxt.exe.txt", "c1-\x9b31m.txt"):
            tf.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return path


def _plain(text: str) -> bool:
    """No terminal control (but newlines) and no bidi override in ``text``."""
    return not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0
                   or c in "\u202d\u202e" for c in text)


def test_an_ingest_report_prints_names_and_reasons_as_plain_lines(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Names of files, archive members and feed links, and reasons quoting them, were
    printed raw: an escape sequence in a name retitled the terminal or hid lines, an
    RLO reversed them; --json escaped ESC but kept C1 controls and RLO."""
    from khabar.bot.cli import print_report
    from khabar.index import IngestReport, ItemResult

    report = IngestReport([
        ItemResult(f"a.tar!{ESCAPES}.txt", "error", f"bad\x9b31m\r\nfake: {ESCAPES}"),
        ItemResult("https://x.org/rlo-\u202etxt.exe", "added", passages=1),
        ItemResult(TOKEN_URL, "error", f"blocked: {TOKEN_URL}")])
    print_report(report, as_json=False)
    out = capsys.readouterr().out
    assert _plain(out) and "ghp_S3cret" not in out, ascii(out)
    assert out.splitlines()[0] == "error: a.tar!]0;owned[2K fake: all good[8m.txt: bad31m " \
                                  "fake: ]0;owned[2K fake: all good[8m"
    assert len(out.splitlines()) == 3  # two errors and the summary
    print_report(report, as_json=True)
    out = capsys.readouterr().out
    assert _plain(out) and "ghp_S3cret" not in out, ascii(out)
    items = json.loads(out)["items"]
    assert all(_plain(i["name"] + i["message"]) for i in items), items
    assert items[1]["name"] == "https://x.org/rlo-txt.exe"
    assert report.items[1].name == "https://x.org/rlo-\u202etxt.exe"  # the report as it was


@pytest.mark.model
def test_ingest_prints_no_control_from_names_nor_a_urls_token(
        khabar_home: Path, tmp_path: Path) -> None:
    """End to end (./escape_in_names.sh, ./cli_userinfo_leak.sh of the audit)."""
    tar = _hostile_tar(tmp_path / "esc.tar")
    r = khabar("ingest", str(tar), TOKEN_URL, home=khabar_home)
    assert r.returncode == EXIT_FAULT, r.stderr
    assert _plain(r.stdout + r.stderr) and "ghp_S3cret" not in r.stdout + r.stderr, r.stdout
    assert "error: https://10.0.0.1/feed.xml: " in r.stdout
    assert f"error: {tar.as_posix()}!]0;owned[2K fake: all good[8m.txt: " in r.stdout
    r = khabar("ingest", "--json", str(tar), TOKEN_URL, home=khabar_home)
    assert r.returncode == EXIT_FAULT, r.stderr
    assert _plain(r.stdout) and "ghp_S3cret" not in r.stdout, r.stdout
    names = [i["name"] for i in json.loads(r.stdout)["items"]]
    assert names == [f"{tar.as_posix()}!]0;owned[2K fake: all good[8m.txt",
                     f"{tar.as_posix()}!rlo-txt.exe.txt", f"{tar.as_posix()}!c1-31m.txt",
                     "https://10.0.0.1/feed.xml"]
