"""Answers in a terminal, with rich: numbered citations, links, the answer highlighted.

Article text is printed as ``rich.text.Text``, never as markup, so brackets in
the news cannot restyle the output.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from retrieval import Answer, Source

from ._render import citation_line, labels


def _source(console: Console, src: Source, lang: str, style: str = "") -> None:
    head = Text(f"[{src.n}] ", style="bold cyan")
    head.append(citation_line(src, lang), style="dim")
    console.print(head)
    console.print(Text(src.text, style=style), overflow="fold")
    console.print()


def print_answer(answer: Answer, console: Console | None = None,
                 ui_lang: str | None = None) -> None:
    console = console or Console(highlight=False)
    lang = ui_lang or answer.lang
    lab = labels(lang)
    if answer.abstained:
        console.print(Text(lab["abstain"], style="bold yellow"))
        if answer.related:
            console.print(Text(lab["related"] + ":", style="italic"))
            for src in answer.related:
                _source(console, src, lang)
        return
    if answer.generated:
        console.print(Text(lab["generated"], style="bold"))
        console.print(Text(answer.generated))
        console.print()
    console.print(Text(lab["answer"], style="bold"))
    for s in answer.sentences:
        line = Text(s.text, style="bold green")
        line.append(f" [{s.source}]", style="cyan")
        console.print(line, overflow="fold")
    console.print()
    console.print(Text(lab["sources"], style="bold"))
    for src in answer.sources:
        _source(console, src, lang)
