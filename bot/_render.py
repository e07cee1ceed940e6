"""One place that turns answers into text for a medium: Telegram HTML, terminal, plain.

Labels follow the question's language (or the user's choice); article text stays
as published. Mixed right-to-left/left-to-right lines wrap the embedded runs in
Unicode isolates (FSI … PDI) so a Latin title inside an Arabic line, or an
Arabic outlet inside an English one, keeps its own direction; each citation
stands on its own line.
"""

from __future__ import annotations

import html
from datetime import datetime

from khabar.retrieval import Answer, AnswerSentence, Source

from khabar.text import strip_bidi

from ._texts import TEXTS, t

FSI, PDI, RLM, LRM = "\u2068", "\u2069", "\u200f", "\u200e"

def isolate(text: str) -> str:
    """Wrap a run whose direction may differ from its line's (FSI … PDI).

    Bidi embeddings and isolates inside the run are dropped: a stray PDI would end ours
    early, letting what follows it (an RLE, say) govern the rest of the line.
    """
    text = strip_bidi(text)
    return f"{FSI}{text}{PDI}" if text else text


def fmt_date(dt: datetime | None, lang: str) -> str:
    return dt.date().isoformat() if dt else t(lang, "no_date")


def citation_line(src: Source, lang: str) -> str:
    """``outlets — title — date — link`` (or the paragraph position), plain text."""
    parts = [isolate(", ".join(src.outlets)) if src.outlets else "?",
             isolate(src.title), fmt_date(src.published, lang)]
    where = src.url or t(lang, "paragraph", i=src.position + 1, n=src.n_passages or "?")
    parts.append(where)
    mark = RLM if lang == "ar" else LRM
    return mark + f" {mark}— ".join(parts)


def notes(answer: Answer, lang: str) -> list[str]:
    """What the reader must know about how the question was read (filters dropped)."""
    return [t(lang, "relaxed_" + what) for what in answer.relaxed
            if "relaxed_" + what in TEXTS["en"]]


# -- Telegram (HTML parse mode) -------------------------------------------------------
def esc(text: str) -> str:
    return html.escape(text, quote=True)


def web_url(url: str | None) -> str | None:
    """The address when it is a web one: a link in an answer is never javascript: etc."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def telegram_source(src: Source, lang: str, *, with_text: bool = True) -> str:
    outlets = esc(", ".join(src.outlets)) if src.outlets else "?"
    title = esc(src.title)
    date = esc(fmt_date(src.published, lang))
    # A strong mark first, so an Arabic citation line runs right to left even when it
    # opens with "[1]" and a Latin outlet.
    mark = RLM if lang == "ar" else ""
    if url := web_url(src.url):
        head = f'{mark}<b>[{src.n}]</b> {isolate(outlets)} — <a href="{esc(url)}">' \
               f"{isolate(title)}</a> — {date}"
    else:
        pos = esc(t(lang, "paragraph", i=src.position + 1, n=src.n_passages or "?"))
        head = f"{mark}<b>[{src.n}]</b> {isolate(outlets)} — {isolate(title)} — {date} — {pos}"
    if not with_text:
        return head
    # Neighbour sentences the answer quotes, before or after the passage as in the
    # article, each labelled with its paragraph: same article, same citation.
    before = [f"<i>({esc(where(c.position, src, lang))})</i> {esc(c.text)}"
              for c in src.context if c.position < src.position]
    after = [f"<i>({esc(where(c.position, src, lang))})</i> {esc(c.text)}"
             for c in src.context if c.position > src.position]
    return "\n".join([head, *before, esc(src.text), *after])


def where(position: int, src: Source, lang: str) -> str:
    """"paragraph 5 of 12" of ``src``'s article."""
    return t(lang, "paragraph", i=position + 1, n=src.n_passages or "?")


def answer_line(s: AnswerSentence, sources: dict[int, Source], lang: str) -> str:
    """An answer sentence with its citation; one from a paragraph next to the cited
    passage also names that paragraph."""
    # The sentence isolated and the line led by the reader's direction, so an Arabic
    # sentence in an English answer (or the reverse) keeps its citation on the side the
    # answer reads from, as in the terminal.
    mark = RLM if lang == "ar" else LRM
    line = f"{mark}{isolate(esc(s.text))} <b>[{s.source}]</b>"
    if s.position is not None and s.source in sources:
        line += f" <i>({esc(where(s.position, sources[s.source], lang))})</i>"
    return line


def read_as(answer: Answer, lang: str) -> list[str]:
    """How the question was read, when not just as asked: a follow-up, or filtered."""
    query = answer.query
    lines = []
    if query.follow_up_of:
        lines.append(f"{t(lang, 'follow_up')} “{isolate(query.follow_up_of)}”")
    if described := query.filters.describe():
        lines.append(f"{t(lang, 'filters')}: {isolate(described)}")
    return lines


def render_telegram(answer: Answer, ui_lang: str | None = None) -> str:
    """The answer as Telegram HTML; every piece of article or user text escaped."""
    lang = ui_lang or answer.lang
    parts: list[str] = [f"<i>{esc(line)}</i>" for line in read_as(answer, lang)]
    parts += [f"<i>{esc(note)}</i>" for note in notes(answer, lang)]
    if answer.abstained:
        parts.append(f"<b>{esc(t(lang, 'abstain'))}</b>")
        if answer.related:
            parts.append(f"<i>{esc(t(lang, 'related'))}:</i>")
            parts += [telegram_source(s, lang) for s in answer.related]
        return "\n\n".join(parts)
    if answer.generated:
        parts.append(f"<b>{esc(t(lang, 'generated'))}</b>\n{esc(answer.generated)}")
    by_n = {src.n: src for src in answer.sources}
    sentences = "\n".join(answer_line(s, by_n, lang) for s in answer.sentences)
    heading = t(lang, "probably" if answer.probably else "answer")
    parts.append(f"<b>{esc(heading)}</b>\n{sentences}")
    parts.append(f"<b>{esc(t(lang, 'sources'))}</b>")
    parts += [telegram_source(s, lang) for s in answer.sources]
    return "\n\n".join(parts)
