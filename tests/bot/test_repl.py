"""The REPL: ReplSession on the real seed index, and ``khabar repl`` through a pseudo-terminal."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from khabar.bot._filters import parse_filter_args, parse_since
from khabar.bot._repl import COMMANDS, ReplSession, run
from khabar.index import Index
from khabar.retrieval import Khabar

from khabar import FilterError

REPO = Path(__file__).resolve().parents[2]
SEED_TITLE = "أميركا تقصف في حلب ردا على القصف الروسي في حمص"
PROMPT = r"khabar(?: \[[^\]]*\])?>"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class SpyKhabar(Khabar):
    """The real Khabar, recording what each question was asked with."""

    def __init__(self, index: Index) -> None:
        super().__init__(index)
        self.calls: list[dict[str, Any]] = []

    def ask(self, text: str, **kw: Any):  # type: ignore[no-untyped-def]
        self.calls.append({"text": text, **kw})
        return super().ask(text, **kw)


@pytest.fixture
def session(seed_index: Index) -> ReplSession:
    return ReplSession(SpyKhabar(seed_index))


# -- filters and periods (no model) -----------------------------------------------------
def test_filter_arguments_are_parsed() -> None:
    f = parse_filter_args('outlet="Al Jazeera" outlet=Reuters,AFP lang=ar since=7d',
                          known_outlets=["Reuters", "AFP", "Al Jazeera"])
    assert f.outlets == ["Al Jazeera", "Reuters", "AFP"]
    assert f.langs == ["ar"] and f.since is not None
    assert parse_filter_args("outlet=reuters", ["Reuters"]).outlets == ["Reuters"]


@pytest.mark.parametrize("bad", ["outlet", "colour=red", "lang=fr", "since=soon",
                                 "outlet=Nowhere"])
def test_bad_filters_say_what_is_expected(bad: str) -> None:
    with pytest.raises(FilterError):
        parse_filter_args(bad, known_outlets=["Reuters"])


def test_periods_read_like_telegrams_summary() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("7 أيام", now) == now - timedelta(days=7)
    assert parse_since("1y", now) == now - timedelta(days=365)
    assert parse_since("2015-09-30", now) == datetime(2015, 9, 30, tzinfo=UTC)
    with pytest.raises(FilterError, match="24h"):
        parse_since("3x", now)


# -- ReplSession on the real seed index ---------------------------------------------------
@pytest.mark.model
def test_an_arabic_question_is_answered_with_numbered_citations(session: ReplSession) -> None:
    out = session.handle("من قصف حلب؟")
    assert "[1]" in out and SEED_TITLE in out
    assert "المصادر" in out or "مقاطع ذات صلة" in out  # Arabic labels for an Arabic question
    assert "\u2068" in out  # the title is isolated inside the citation line
    assert session.last is not None and session.last.lang == "ar"


@pytest.mark.model
def test_follow_ups_pass_the_previous_question_as_telegram_does(session: ReplSession) -> None:
    spy = session.khabar
    assert isinstance(spy, SpyKhabar)
    session.handle("من قصف حلب؟")
    out = session.handle("وماذا عن حمص؟")
    assert spy.calls[0]["previous"] is None
    assert spy.calls[1]["previous"] == "من قصف حلب؟"
    assert "فُهم كمتابعة" in out  # "read as a follow-up to"
    session.handle("and when?")  # a chained follow-up keeps the original subject
    assert spy.calls[2]["previous"] == "من قصف حلب؟ وماذا عن حمص؟"
    session.handle(":clear")
    session.handle("who struck Aleppo?")
    assert spy.calls[3]["previous"] is None


@pytest.mark.model
def test_filter_shows_applies_and_clears(session: ReplSession) -> None:
    assert "no filters" in session.handle(":filter")
    out = session.handle(":filter lang=en since=30d")
    assert "lang=en" in out and session.filters.langs == ["en"]
    assert session.prompt().startswith("khabar [") and "lang=en" in session.prompt()
    assert "lang=en" in session.handle(":filter")
    out = session.handle("who struck Aleppo?")  # the seed is Arabic: nothing left to cite
    assert session.khabar.calls[-1]["filters"].langs == ["en"]  # type: ignore[attr-defined]
    assert "does not cover" in out and SEED_TITLE not in out
    assert "error" in session.handle(":filter outlet=Nowhere")
    assert session.filters.langs == ["en"]  # a bad filter changes nothing
    assert "cleared" in session.handle(":filter clear")
    assert not session.filters and session.prompt() == "khabar> "
    out = session.handle(":filter outlet=reuters")
    assert session.filters.outlets == ["Reuters"]  # the indexed spelling


@pytest.mark.model
def test_more_pages_on_with_continued_numbers(session: ReplSession) -> None:
    session.handle("who struck Aleppo?")
    last = session.last
    assert last is not None and last.more
    shown = len(last.sources or last.related)
    out = session.handle(":more")
    assert f"[{shown + 1}]" in out and SEED_TITLE in out
    while session.shown_more < len(last.more):
        session.handle(":more")
    assert "No more sources" in session.handle(":more")


@pytest.mark.model
def test_why_shows_every_signal_and_the_stage_times(session: ReplSession) -> None:
    assert "ask a question first" in session.handle(":why")
    session.handle("من قصف حلب؟")
    out = session.handle(":why")
    for column in ("e5", "e5 sent.", "USE", "USE sent.", "BM25", "fused", "cited"):
        assert column in out
    assert re.search(r"0\.\d{3} #1\b", out)  # a score with its rank
    assert "[1]" in out  # the cited passage is marked
    for stage in ("embed", "dense", "lexical", "fuse", "answer", "total"):
        assert re.search(rf"^\s*{stage}\s+\d+\.\d", out, re.M), stage
    assert "confidence" in out
    out = session.handle(":why who struck Aleppo?")  # any question, without answering it
    assert "who struck Aleppo?" in out and "understand" in out


@pytest.mark.model
def test_sources_stats_help_and_unknown_commands(session: ReplSession) -> None:
    out = session.handle(":sources")
    assert "Reuters" in out and "AFP" in out
    out = session.handle(":stats")
    assert re.search(r"articles\s+1\b", out) and "ar: " in out
    out = session.handle(":help")
    for name, _ in COMMANDS:
        assert name.split()[0] in out
    assert "unknown command" in session.handle(":frobnicate")
    assert session.handle("   ") == ""
    assert not session.done
    session.handle(":quit")
    assert session.done


@pytest.mark.model
def test_summary_of_the_index(session: ReplSession) -> None:
    out = session.handle(":summary 100y")
    assert SEED_TITLE in out
    assert "error" in session.handle(":filter since=nonsense")


@pytest.mark.model
def test_timeline_of_a_story(session: ReplSession) -> None:
    out = session.handle(":timeline 100y")
    assert "Timeline: " in out and SEED_TITLE in out
    # The seed states no date: it is placed, and marked, by when it was indexed.
    assert re.search(r"^\S*\[1\] [-\d]{10} [:\d]{5} \(indexed\) · ar — .*Reuters", out, re.M)
    assert "Nothing about" in session.handle(":timeline 100y cricket world cup")
    assert SEED_TITLE in session.handle(":timeline حلب")  # 7 days by default


@pytest.mark.model
def test_ingest_adds_to_the_index(real_index: Index, tmp_path: Path) -> None:
    session = ReplSession(Khabar(real_index))
    assert "usage" in session.handle(":ingest")
    assert "no such file" in session.handle(f":ingest {tmp_path / 'missing.txt'}")
    # An error line carries no terminal control nor bidi override of the names it shows.
    out = session.handle(f":ingest {tmp_path / 'a' / chr(0x1B)}]0;pwned{chr(7)}\u202emissing")
    assert "no such file" in out and "\x1b" not in out and "\u202e" not in out, repr(out)
    article = tmp_path / "cairo.md"
    article.write_text("# Metro line opens in Cairo\n\nThe third line of the Cairo metro "
                       "opened on Tuesday, the transport ministry said.\n", encoding="utf-8")
    out = session.handle(f":ingest {article}")
    assert "1 added" in out
    out = session.handle("what opened in Cairo?")
    assert "Metro line opens in Cairo" in out


@pytest.mark.model
def test_run_reads_plain_lines_when_stdin_is_not_a_terminal(
        seed_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("who struck Aleppo?\n:sources\n"))
    assert run(Khabar(seed_index), tmp_path / "history") == 0  # ends at EOF
    out = capsys.readouterr().out
    assert SEED_TITLE in out and "Reuters" in out
    assert "\x1b[" not in out  # no terminal, no escape codes
    assert not (tmp_path / "history").exists()  # history is for interactive sessions


# -- khabar repl in a pseudo-terminal -----------------------------------------------------
@pytest.mark.model
def test_repl_in_a_pseudo_terminal(khabar_home: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    # No cursor-position requests: pexpect is not a terminal that answers them.
    env.update(KHABAR_HOME=str(khabar_home), TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(sys.executable, ["-m", "khabar", "repl"], env=env, cwd=str(REPO),
                          encoding="utf-8", dimensions=(50, 160), timeout=240)
    transcript = io.StringIO()
    child.logfile_read = transcript

    def run_line(line: str, marker: str) -> str:
        """Send a line; wait for a sign of its output, then for the next prompt."""
        child.sendline(line)
        child.expect(marker)
        out = child.before + child.after
        child.expect(PROMPT)
        return ANSI.sub("", out + child.before)

    try:
        child.expect(PROMPT)  # the model is loaded and the seed indexed
        out = run_line("من قصف حلب؟", r"ranking")  # the footer ends every answer
        assert SEED_TITLE in out and "[1]" in out
        assert "المصادر" in out or "مقاطع ذات صلة" in out
        out = run_line("who struck Aleppo?", r"ranking")
        assert SEED_TITLE in out
        assert "Sources" in out or "Related passages" in out
        out = run_line(":filter lang=ar", r"filters: lang=ar")
        child.sendline(":why")
        child.expect("time per stage")
        child.expect(PROMPT)
        why = ANSI.sub("", transcript.getvalue().split(":filter lang=ar")[-1])
        assert "fused" in why and "BM25" in why and "embed" in why
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, ANSI.sub("", transcript.getvalue())[-2000:]
    history = (khabar_home / "repl_history").read_text(encoding="utf-8")
    assert "من قصف حلب؟" in history and ":why" in history  # kept across sessions
