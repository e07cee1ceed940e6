"""Answers in a terminal, with rich: numbered citations, links, the answer highlighted.

Article text is printed as ``rich.text.Text``, never as markup, so brackets in
the news cannot restyle the output. Arabic stays in logical order (the terminal's
bidi, where it has one, lays it out); lines mixing directions use the isolates
and marks of ``_render``, which terminals without bidi print as nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from khabar.retrieval import Answer, AnswerSentence, ContextSentence, Hit, Source
from rich import box
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ._render import LRM, RLM, citation_line, isolate, notes, where
from ._texts import t

ANSWER_STYLE = "bold green"
STAGES = ("filter", "embed", "dense", "lexical", "fuse", "collapse", "answer", "generate")


def _mark(lang: str) -> str:
    """Sets a line's base direction to the UI language's."""
    return RLM if lang == "ar" else LRM


def citation_text(src: Source, lang: str) -> Text:
    """``[n] outlets — title — date — link``, the link clickable where supported."""
    line = citation_line(src, lang)
    text = Text(f"[{src.n}] ", style="bold cyan")
    start = len(text)
    text.append(line, style="dim")
    if src.url:
        at = line.rfind(src.url)
        if at >= 0:
            text.stylize(Style(link=src.url, underline=True), start + at,
                         start + at + len(src.url))
    return text


def passage_text(src: Source, highlight: Iterable[str] = ()) -> Text:
    """A passage as published, with the answering sentences taken from it highlighted."""
    text = Text(src.text)
    for sentence in highlight:
        at = src.text.find(sentence.strip())
        if at >= 0:
            text.stylize(ANSWER_STYLE, at, at + len(sentence.strip()))
    return text


def context_text(c: ContextSentence, src: Source, lang: str) -> Text:
    """A neighbour paragraph's sentence shown with its source, labelled with where it is."""
    text = Text(f"({where(c.position, src, lang)}) ", style="italic dim")
    text.append(c.text, style=ANSWER_STYLE)
    return text


def print_sources(console: Console, sources: Sequence[Source], lang: str,
                  sentences: Sequence[AnswerSentence] = ()) -> None:
    for src in sources:
        console.print(citation_text(src, lang), overflow="fold")
        used = [s.text for s in sentences if s.source == src.n]
        for c in (c for c in src.context if c.position < src.position):
            console.print(context_text(c, src, lang), overflow="fold")
        console.print(passage_text(src, used), overflow="fold")
        for c in (c for c in src.context if c.position > src.position):
            console.print(context_text(c, src, lang), overflow="fold")
        console.print()


def print_answer(answer: Answer, console: Console | None = None,
                 ui_lang: str | None = None, *, footer: bool = False) -> None:
    """The answer, then its sources; ``footer`` adds paging and timing (the REPL)."""
    console = console or Console(highlight=False)
    lang = ui_lang or answer.lang
    mark = _mark(lang)
    q = answer.query
    if q.follow_up_of:
        console.print(Text(f"{mark}{t(lang, 'follow_up')}: {isolate(q.follow_up_of)}",
                           style="italic dim"), overflow="fold")
    if q.filters:
        console.print(Text(f"{mark}{t(lang, 'filters')}: {isolate(q.filters.describe())}",
                           style="italic dim"), overflow="fold")
    for note in notes(answer, lang):
        console.print(Text(mark + note, style="italic yellow"), overflow="fold")
    if answer.abstained:
        console.print(Text(mark + t(lang, "abstain"), style="bold yellow"))
        if answer.related:
            console.print(Text(f"{mark}{t(lang, 'related')}:", style="italic"))
            print_sources(console, answer.related, lang)
    else:
        if answer.generated:
            console.print(Text(mark + t(lang, "generated"), style="bold"))
            console.print(Text(answer.generated), overflow="fold")
            console.print()
        console.print(Text(mark + t(lang, "probably" if answer.probably else "answer"),
                           style="bold yellow" if answer.probably else "bold"))
        by_n = {src.n: src for src in answer.sources}
        for s in answer.sentences:
            line = Text(mark + isolate(s.text), style=ANSWER_STYLE)
            line.append(f" [{s.source}]", style="bold cyan")
            if s.position is not None and s.source in by_n:
                line.append(f" ({where(s.position, by_n[s.source], lang)})", style="dim")
            console.print(line, overflow="fold")
        console.print()
        console.print(Text(mark + t(lang, "sources"), style="bold"))
        print_sources(console, answer.sources, lang, answer.sentences)
    if footer:
        bits = []
        if answer.more:
            bits.append(f"{len(answer.more)} more passage(s): :more")
        bits.append(":why for the ranking")
        if "total" in answer.timings:
            bits.append(f"{answer.timings['total'] * 1000:.0f} ms")
        console.print(Text(" · ".join(bits), style="dim"))


# -- :why -------------------------------------------------------------------------
def _score(signals: Mapping[str, float], name: str) -> str:
    if name not in signals:
        return "-"
    rank = signals.get(name + "_rank")
    value = f"{signals[name]:.3f}"
    return f"{value} #{int(rank)}" if rank else value


def why_table(hits: Sequence[Hit], cited: Mapping[int, int]) -> Table:
    """The ranked candidates with each signal's score and rank (``score #rank``).

    ``cited`` maps passage ids to the citation numbers they were shown under.
    """
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # Only the passage column may shrink: rich collapses wrapable columns first.
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("cited", justify="right", style="bold cyan", no_wrap=True)
    t.add_column("lang", no_wrap=True)
    for name in ("e5", "e5 sent.", "USE", "USE sent.", "BM25"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("fused", justify="right", no_wrap=True, style="bold")
    t.add_column("passage", overflow="ellipsis")
    for rank, hit in enumerate(hits, 1):
        p = hit.passage
        n = cited.get(p.id)
        names = hit.outlets or p.outlets
        outlets = (names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")) if names else "?"
        where = Text(f"{isolate(outlets)} ¶{p.position + 1} ", style="dim", no_wrap=True,
                     overflow="ellipsis")
        where.append(isolate(" ".join(p.text.split()[:30])))
        t.add_row(str(rank), f"[{n}]" if n else "", p.lang,
                  *(_score(hit.signals, s) for s in ("e5", "e5_sent", "use", "use_sent", "bm25")),
                  f"{hit.score:.4f}", where)
    return t


WHY_LEGEND = ("dense: e5 and USE cosines of the whole passage and of its best sentence (sent.);"
              " lexical: BM25 in the question's language (score #rank in each list); fused:"
              " z-scored e5 and BM25 within the question's language, z-scored e5, USE, the"
              " lexical bridge and closeness to the top same-language hit across languages")


def timings_table(timings: Mapping[str, float]) -> Table:
    """Milliseconds per stage in order; what the stages do not account for is ``other``."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("stage")
    t.add_column("ms", justify="right")
    known = [s for s in STAGES if s in timings]
    known += [s for s in timings if s not in STAGES and s != "total"]
    for stage in known:
        t.add_row(stage, f"{timings[stage] * 1000:.1f}")
    if "total" in timings:
        other = timings["total"] - sum(timings[s] for s in known)
        if other > 0.0005:
            t.add_row("other", f"{other * 1000:.1f}", style="dim")
        t.add_row("total", f"{timings['total'] * 1000:.1f}", style="bold")
    return t


# -- store --------------------------------------------------------------------------
def stats_table(stats: Mapping[str, object]) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for key in ("articles", "passages", "outlets", "linked_duplicates", "index_type"):
        if key in stats:
            t.add_row(key, str(stats[key]))
    langs = stats.get("languages") or {}
    t.add_row("languages", ", ".join(f"{k}: {v}" for k, v in langs.items()) or "-")  # type: ignore[attr-defined]
    sentences = stats.get("sentence_vectors") or {}
    t.add_row("sentence vectors", ", ".join(f"{k}: {v}" for k, v in sentences.items())  # type: ignore[attr-defined]
              or ("none (`khabar reindex --sentences` adds them)" if stats.get("passages")
                  else "-"))
    t.add_row("published", f"{stats.get('published_from') or '-'} … "
                           f"{stats.get('published_to') or '-'}")
    t.add_row("size on disk", f"{int(stats.get('size_bytes') or 0) / 1e6:.1f} MB")  # type: ignore[call-overload]
    t.add_row("path", str(stats.get("path", "")))
    for name, info in (stats.get("spaces") or {}).items():  # type: ignore[attr-defined]
        t.add_row(f"model {name}", str(info.get("fingerprint", "")))
    return t


def outlets_table(outlets: Sequence[tuple[str, int]]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("outlet")
    t.add_column("articles", justify="right")
    for name, count in outlets:
        t.add_row(Text(isolate(name)), str(count))
    return t
