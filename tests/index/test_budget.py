"""The per-item budget: one item over its CPU or memory is an error, the batch goes on."""

from __future__ import annotations

import os
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest
from khabar.index import Article, Index, IngestReport
from khabar.index._chunk import chunk_paragraphs

from khabar import ConfigError, Settings
from tests.fakes import HashEncoder

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = "{n}. Officials said on Tuesday that the talks on the harbour would resume next week."
_PARA = ("<p>The minister said on Tuesday that the talks would resume next week in the "
         "capital, officials said.</p>\n")
# A long page, not a malformed one: ~6 MB, about 5 s of CPU to read on this machine.
SLOW_PAGE = ("<html><head><title>Long</title></head><body><article>" + _PARA * 60_000
             + "</article></body></html>").encode()
# ~30 MB of memory to read (five million strings) from 35 MB of JSON.
GREEDY_JSON = b"[" + b'"aaaa",' * 5_000_000 + b'"a"]'


def _index(home: Path, **settings: object) -> Index:
    return Index.open(Settings(home=home, **settings), encoders=[HashEncoder()])


def _by_name(report: IngestReport) -> dict[str, tuple[str, str]]:
    return {Path(i.name.split("!")[-1]).name: (i.status, i.message) for i in report.items}


def _folder(tmp_path: Path, bad_name: str, bad: bytes) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.txt").write_text("First story\n\n" + GOOD.format(n=1))
    (folder / bad_name).write_bytes(bad)
    (folder / "c_good.txt").write_text("Third story\n\n" + GOOD.format(n=3))
    return folder


def test_an_item_over_its_cpu_budget_is_stopped_and_the_batch_goes_on(tmp_path: Path) -> None:
    ix = _index(tmp_path / "home", item_cpu_seconds=1)
    report = ix.add_path(_folder(tmp_path, "b_long.html", SLOW_PAGE))
    got = _by_name(report)
    assert got["b_long.html"][0] == "error"
    assert "budget of 1 s of CPU" in got["b_long.html"][1]
    assert got["a_good.txt"][0] == got["c_good.txt"][0] == "added"
    assert ix.store.count_articles() == 2
    assert ix.parser is not None and ix.parser.started == 2  # replaced after the kill
    ix.close()


def test_an_archive_member_over_its_budget_is_an_error_of_that_member(tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a_good.txt", "First story\n\n" + GOOD.format(n=1))
        z.writestr("b_long.html", SLOW_PAGE, compress_type=zipfile.ZIP_STORED)  # no bomb
        z.writestr("c_good.txt", "Third story\n\n" + GOOD.format(n=3))
    ix = _index(tmp_path / "home", item_cpu_seconds=1)
    got = _by_name(ix.add_path(archive))
    assert got["b_long.html"][0] == "error" and "budget" in got["b_long.html"][1]
    assert got["a_good.txt"][0] == got["c_good.txt"][0] == "added"
    ix.close()


def test_an_item_over_its_memory_is_an_error_and_the_batch_goes_on(tmp_path: Path) -> None:
    ix = _index(tmp_path / "home", item_memory_mb=64)
    got = _by_name(ix.add_path(_folder(tmp_path, "b_big.json", GREEDY_JSON)))
    assert got["b_big.json"] == ("error", "too large to process in memory")
    assert got["a_good.txt"][0] == got["c_good.txt"][0] == "added"
    ix.close()


def _cpu_ticks(pid: int) -> int:
    """A process's user CPU time, in clock ticks (/proc/PID/stat's utime)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def test_a_worker_that_dies_mid_item_is_that_items_error(tmp_path: Path) -> None:
    # Whatever kills the worker (a crash in C, the system's OOM killer): the item it was
    # reading is reported, and a new worker reads the rest.
    ix = _index(tmp_path / "home", item_cpu_seconds=60)
    assert ix.parser is not None
    ix.add_bytes(b"Warm up\n\n" + GOOD.format(n=0).encode(), "warm.txt")  # the worker runs
    proc = ix.parser._proc
    assert proc is not None

    idle = _cpu_ticks(proc.pid)

    def kill_when_busy() -> None:
        start = time.monotonic()
        while time.monotonic() - start < 60:
            if _cpu_ticks(proc.pid) > idle + 20:  # 0.2 s into the long page
                os.kill(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    got = _by_name(ix.add_path(_folder(tmp_path, "b_long.html", SLOW_PAGE)))
    killer.join()
    assert got["b_long.html"][0] == "error"
    assert "parser stopped (signal SIGKILL)" in got["b_long.html"][1]
    assert got["a_good.txt"][0] == got["c_good.txt"][0] == "added"
    assert ix.parser.started == 2
    ix.close()


def test_the_budget_is_a_setting_and_zero_parses_in_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHABAR_ITEM_CPU_SECONDS", "2.5")
    monkeypatch.setenv("KHABAR_ITEM_MEMORY_MB", "512")
    settings = Settings.load(home=tmp_path)
    assert (settings.item_cpu_seconds, settings.item_memory_mb) == (2.5, 512)
    monkeypatch.setenv("KHABAR_ITEM_CPU_SECONDS", "-1")
    with pytest.raises(ConfigError, match="item_cpu_seconds"):
        Settings.load(home=tmp_path)
    ix = _index(tmp_path / "home", item_cpu_seconds=0)
    assert ix.parser is None
    assert ix.add_bytes(b"Story\n\n" + GOOD.format(n=1).encode(), "a.txt").count("added") == 1
    ix.close()


def test_an_article_over_its_budget_to_chunk_is_stopped(tmp_path: Path) -> None:
    # Chunking counts too: ~8 MB of run-on text, about 4 s of CPU to cut into passages.
    words = ["minister", "said", "talks", "harbour", "week", "capital", "resume", "city"]
    huge = " ".join(words[i % 7] + ("." if i % 12 == 11 else "") for i in range(1_200_000))
    ix = _index(tmp_path / "home", item_cpu_seconds=1)
    arts = [Article(title=t, paragraphs=[p], lang="en", url=f"https://x.test/{t}")
            for t, p in (("first", GOOD.format(n=1)), ("huge", huge), ("third", GOOD.format(n=3)))]
    report = ix.add_articles(arts)
    assert [i.status for i in report.items] == ["added", "error", "added"]
    assert "budget of 1 s of CPU" in report.items[1].message
    ix.close()


@pytest.mark.model
def test_the_worker_chunks_as_the_model_counts(tmp_path: Path, encoders: list) -> None:
    # The worker counts tokens with the ONNX export's tokenizer: the same passages as
    # chunking in the ingesting process with the loaded model.
    from khabar.index._ingest import MAX_PASSAGE_TOKENS
    from khabar.index._parse import parse_document

    ix = Index.open(Settings(home=tmp_path), encoders=encoders)
    assert ix.parser is not None and ix.model.runtime == "onnx"
    for name in ("article_ar.html", "article_en.html", "ntrex_sample.jsonl"):
        for art in parse_document((FIXTURES / name).read_bytes(), name)[0]:
            art.paragraphs = [" ".join(art.paragraphs)] * 3  # long: cut by token counts
            here = chunk_paragraphs(art.paragraphs, max_tokens=MAX_PASSAGE_TOKENS,
                                    count_tokens=ix.model.count_tokens)
            assert len(here) > 1 and ix.chunk(art) == here
    ix.close()
