"""``khabar repl``: try questions the way a newsroom would, with filters, sources and timing.

:class:`ReplSession` holds the state (filters, the previous question, the last
answer) and turns one input line into rendered output, so it is tested without a
terminal; :func:`run` is the prompt loop around it. Any line not starting with
``:`` is a question; follow-ups pass the previous question to ``Khabar.ask``
exactly as the Telegram bot does.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from khabar.index import IngestReport
from khabar.retrieval import Answer, Filters, Khabar, Summary, summarize, timeline
from rich.console import Console
from rich.table import Table
from rich.text import Text

from khabar import KhabarError
from khabar._redact import redact
from khabar.text import one_line, strip_controls

from ._filters import PERIOD_HELP, is_period, parse_filter_args, parse_since
from ._render_summary import render_summary_plain, render_timeline_plain
from ._terminal import (
    WHY_LEGEND,
    outlets_table,
    print_answer,
    print_sources,
    stats_table,
    timings_table,
    why_table,
)
from ._texts import t

log = logging.getLogger(__name__)

PAGE = 3  # passages per :more, as many as an answer shows
COMMANDS: list[tuple[str, str]] = [
    ("QUESTION", "any other line: answered from the index (Arabic or English)"),
    (":sources", "the indexed outlets and their article counts"),
    (":filter outlet=… since=… until=… lang=…", "restrict the next questions (quote names"
     " with spaces); :filter alone shows them, :filter clear removes them"),
    (":clear", "forget the conversation (follow-ups start afresh) and the filters"),
    (":more", "the next passages of the last answer"),
    (":why [QUESTION]", "the ranked candidates with dense, lexical and fused scores, and the"
     " time each stage took (the last question by default)"),
    (":summary [PERIOD] [TOPIC]", f"what the index covered (default 24h; {PERIOD_HELP})"),
    (":timeline [PERIOD] [TOPIC]", "the articles of the most covered story (about TOPIC) in"
     " date order, with outlets, languages and links (default 7d)"),
    (":ingest PATH|URL …", "index files, folders, archives, web pages or feeds"),
    (":stats", "what the index holds"),
    (":help", "this list"),
    (":quit", "leave (also Ctrl-D)"),
]


class ReplSession:
    """One REPL conversation over a :class:`Khabar`."""

    def __init__(self, khabar: Khabar, *, console: Console | None = None,
                 progress: bool = False) -> None:
        self.khabar = khabar
        self.index = khabar.index
        # Output is captured and returned by handle(); a plain console for tests.
        self.console = console or Console(file=io.StringIO(), width=100, highlight=False,
                                          force_terminal=False, color_system=None)
        self.progress = progress
        self.filters = Filters()
        self.previous: str | None = None  # the previous question, for follow-ups
        self.last: Answer | None = None
        # What the last question was asked with, for :why to explain that very answer.
        self.last_previous: str | None = None
        self.last_filters = Filters()
        self.shown_more = 0  # how many of last.more :more has shown
        self.done = False

    @property
    def lang(self) -> str:
        """Labels follow the last question's language."""
        return self.last.lang if self.last else "en"

    def prompt(self) -> str:
        return f"khabar [{self.filters.describe()}]> " if self.filters else "khabar> "

    def handle(self, line: str) -> str:
        """Run one input line; return what to print (ANSI-styled on a terminal console)."""
        with self.console.capture() as cap:
            try:
                self._dispatch(line.strip())
            except KhabarError as exc:  # a FilterError's message says what is expected
                self._error(str(exc))
        return cap.get()

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch(self, line: str) -> None:
        if not line:
            return
        if not line.startswith(":"):
            self.ask(line)
            return
        name, _, rest = line[1:].partition(" ")
        command = self._commands().get(name.lower())
        if command is None:
            self._error(f"unknown command :{name} (:help lists them)")
            return
        command(rest.strip())

    def _commands(self) -> dict[str, Callable[[str], None]]:
        return {
            "sources": self.cmd_sources, "filter": self.cmd_filter, "clear": self.cmd_clear,
            "more": self.cmd_more, "why": self.cmd_why, "summary": self.cmd_summary,
            "timeline": self.cmd_timeline,
            "ingest": self.cmd_ingest, "stats": self.cmd_stats, "help": self.cmd_help,
            "h": self.cmd_help, "?": self.cmd_help, "quit": self.cmd_quit,
            "q": self.cmd_quit, "exit": self.cmd_quit,
        }

    def _error(self, msg: str) -> None:
        # Errors name files, archive members and feed links: no terminal control of
        # theirs reaches the terminal (rich passes ESC and bidi overrides through).
        self.console.print(Text(redact(strip_controls(f"error: {msg}")), style="bold red"))

    def _note(self, msg: str) -> None:
        self.console.print(Text(msg, style="dim"))

    # -- questions --------------------------------------------------------------------
    def ask(self, question: str) -> Answer:
        answer = self.khabar.ask(question, previous=self.previous,
                                 filters=self.filters or None)
        self.last, self.last_previous, self.shown_more = answer, self.previous, 0
        self.last_filters = Filters(**vars(self.filters))
        # As the Telegram bot: chained follow-ups ("and Homs?", then "and when?") keep
        # the original subject.
        self.previous = answer.query.conversation
        print_answer(answer, self.console, footer=True)
        return answer

    def cmd_more(self, _: str) -> None:
        if self.last is None:
            self._note("ask a question first")
            return
        from khabar.retrieval import to_source  # the same numbering as the answer's

        hits = self.last.more[self.shown_more:self.shown_more + PAGE]
        if not hits:
            self.console.print(Text(t(self.lang, "no_more"), style="dim"))
            return
        first = len(self.last.sources or self.last.related) + self.shown_more + 1
        sources = [to_source(first + i, h) for i, h in enumerate(hits)]
        self.shown_more += len(hits)
        self.console.print(Text(t(self.lang, "more"), style="bold"))
        print_sources(self.console, sources, self.lang)
        left = len(self.last.more) - self.shown_more
        self._note(f"{left} more: :more" if left else t(self.lang, "no_more"))

    def cmd_why(self, rest: str) -> None:
        if rest:
            question, previous, filters = rest, self.previous, self.filters
        elif self.last is not None:
            question, previous, filters = self.last.question, self.last_previous, self.last_filters
        else:
            self._note("ask a question first, or :why QUESTION")
            return
        t0 = time.perf_counter()
        query = self.khabar.understand(question, previous=previous, filters=filters or None)
        t_understand = time.perf_counter() - t0
        shown = len(self.last.sources or self.last.related) if self.last and not rest else 0
        k = max(10, shown + (len(self.last.more) if self.last and not rest else 0))
        result = self.khabar.search(query, k=k)
        cited: dict[int, int] = {}
        if self.last is not None and not rest:
            for src in self.last.sources or self.last.related:
                cited[src.passage_id] = src.n
        c = self.console
        c.print(Text(f"question: {query.text}", style="bold"), overflow="fold")
        if query.search_text != query.text:
            c.print(Text(f"searched: {query.search_text}"), overflow="fold")
        facts = [f"language: {query.lang}"]
        if query.filters:
            facts.append(f"filters: {query.filters.describe()}")
        if query.follow_up_of:
            facts.append("follow-up")
        if self.last is not None and not rest:
            threshold = getattr(self.khabar.answer_config, "min_confidence", None)
            facts.append(f"confidence {self.last.confidence:.2f}"
                         + (f" (abstains below {threshold:.2f})" if threshold is not None else ""))
        c.print(Text(" · ".join(facts)), overflow="fold")
        if not result.hits:
            self._note("no candidates (nothing indexed matches the filters)")
        else:
            c.print(Text("ranked candidates", style="bold"))
            c.print(why_table(result.hits, cited))
            c.print(Text(WHY_LEGEND, style="dim"), overflow="fold")
        # The stages of the answer being explained; of this search for :why QUESTION.
        if self.last is not None and not rest and self.last.timings:
            timings = dict(self.last.timings)
            title = "time per stage of the last answer"
        else:
            timings = {"understand": t_understand, **result.timings}
            timings["total"] = time.perf_counter() - t0
            title = "time per stage of this search"
        c.print()
        c.print(Text(title, style="bold"))
        c.print(timings_table(timings))

    # -- state ------------------------------------------------------------------------
    def cmd_filter(self, rest: str) -> None:
        if rest.lower() in ("clear", "off", "none", "-"):
            self.filters = Filters()
            self._note("filters cleared")
            return
        if rest:
            known = [name for name, _ in self.index.store.outlets()]
            self.filters = self.filters.merged(parse_filter_args(rest, known))
        self._note(f"filters: {self.filters.describe()}" if self.filters
                   else "no filters (:filter outlet=… since=7d lang=ar)")

    def cmd_clear(self, _: str) -> None:
        self.filters = Filters()
        self.previous = self.last = self.last_previous = None
        self.last_filters = Filters()
        self.shown_more = 0
        self._note("conversation and filters cleared")

    # -- index ------------------------------------------------------------------------
    def cmd_sources(self, _: str) -> None:
        outlets = self.index.store.outlets()
        if not outlets:
            self._note(t(self.lang, "empty"))
            return
        self.console.print(outlets_table(outlets))

    def cmd_stats(self, _: str) -> None:
        stats = self.index.store.stats()
        self.console.print(stats_table(stats))

    def cmd_ingest(self, rest: str) -> None:
        targets = rest.split()
        if not targets:
            self._note("usage: :ingest PATH|URL …")
            return
        report = IngestReport()
        for target in targets:
            if target.startswith(("http://", "https://")):
                report.extend(self.index.add_url(target, progress=self.progress))
            else:
                path = Path(target).expanduser()
                if not path.exists():
                    self._error(f"no such file or folder: {target}")
                    continue
                report.extend(self.index.add_path(path, progress=self.progress))
        for item in report.errors:
            self._error(one_line(f"{item.name}: {item.message}"))
        if report.items:
            self.console.print(Text(report.summary(), style="bold"))

    def _period_and_topic(self, rest: str, default: str) -> tuple[datetime, str | None, str]:
        """``[PERIOD] [TOPIC]`` within the filters: the start, the topic, the labels' language."""
        words = rest.split()
        period = default
        for n in (2, 1):  # "7d", or two words as in "7 أيام"
            if len(words) >= n and is_period(" ".join(words[:n])):
                period, words = " ".join(words[:n]), words[n:]
                break
        since = parse_since(period)
        if self.filters.since and self.filters.since > since:
            since = self.filters.since
        topic = " ".join(words) or None
        return since, topic, self.khabar.understand(topic).lang if topic else self.lang

    def _summarize(self, since: datetime, topic: str | None, lang: str,
                   limit: int | None = 10) -> Summary:
        return summarize(self.index, since=since, until=self.filters.until, topic=topic,
                         outlets=tuple(self.filters.outlets), langs=tuple(self.filters.langs),
                         lang=lang, limit=limit)

    def cmd_summary(self, rest: str) -> None:
        since, topic, lang = self._period_and_topic(rest, "24h")
        summary = self._summarize(since, topic, lang)
        self.console.print(Text(render_summary_plain(summary, lang)), overflow="fold")

    def cmd_timeline(self, rest: str) -> None:
        since, topic, lang = self._period_and_topic(rest, "7d")
        summary = self._summarize(since, topic, lang, limit=1)
        if summary.empty:
            self.console.print(Text(render_summary_plain(summary, lang)), overflow="fold")
            return
        story = summary.stories[0]
        self.console.print(Text(render_timeline_plain(story, timeline(self.index, story), lang)),
                           overflow="fold")

    def cmd_help(self, _: str) -> None:
        t = Table(show_header=False, box=None, pad_edge=False)
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        for name, text in COMMANDS:
            t.add_row(name, text)
        self.console.print(t)

    def cmd_quit(self, _: str) -> None:
        self.done = True


def run(khabar: Khabar, history: Path, *, debug: bool = False) -> int:
    """The prompt loop: prompt_toolkit on a terminal, plain ``input()`` when scripted."""
    interactive = sys.stdin.isatty()
    console = Console(highlight=False)
    session = ReplSession(khabar, console=console, progress=interactive and sys.stderr.isatty())
    if interactive:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history.parent.mkdir(parents=True, exist_ok=True)
        prompt = PromptSession(history=FileHistory(str(history)))

        def read() -> str:
            return prompt.prompt(session.prompt())

        n = khabar.index.store.count_articles()
        console.print(Text(f"khabar: {n} article(s) indexed. Ask in Arabic or English;"
                           " :help lists the commands, :quit leaves.", style="dim"))
    else:
        def read() -> str:
            return input()

    while not session.done:
        try:
            line = read()
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as in a shell
            continue
        except EOFError:
            break
        try:
            out = session.handle(line)
        except KeyboardInterrupt:
            out = "interrupted\n"
        except Exception as exc:  # a bug must not end the session; say it in one line
            if debug:
                log.exception("REPL command failed")
            out = redact(f"error: internal: {type(exc).__name__}: {exc}\n")
        sys.stdout.write(out)
        sys.stdout.flush()
    return 0
