"""Summaries (digests) and story timelines as text: plain (CLI) and Telegram HTML.

Labels follow the reader's language; headlines, sentences and outlet names stay
as published, escaped for HTML and wrapped in Unicode isolates so an English
headline in an Arabic digest (or the reverse) keeps its direction. Stories are
separated by blank lines, so a long digest splits cleanly between them; each
citation stands on its own line under its story.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from khabar.retrieval import Source, Story, Summary, TimelineEntry

from ._render import LRM, RLM, citation_line, esc, isolate
from ._texts import t

_MAX_OUTLETS = 5


def _mark(lang: str) -> str:
    """A strong mark that starts each line in the reader's direction."""
    return RLM if lang == "ar" else LRM


def _when(dt: datetime, zone: tzinfo = UTC) -> str:
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _period(summary: Summary, zone: tzinfo = UTC, zone_name: str = "UTC") -> str:
    return f"{_when(summary.since, zone)} → {_when(summary.until, zone)} {zone_name}"


def _span(story: Story, zone: tzinfo = UTC) -> str:
    if story.first is None or story.last is None:
        return ""
    first, last = story.first.astimezone(zone), story.last.astimezone(zone)
    if first == last:
        return _when(first, zone)
    if first.date() == last.date():
        return f"{_when(first, zone)}–{last:%H:%M}"
    return f"{first:%Y-%m-%d} → {last:%Y-%m-%d}"


def _outlets(story: Story, lang: str) -> str:
    names = ", ".join(story.outlets[:_MAX_OUTLETS]) or "?"
    extra = len(story.outlets) - _MAX_OUTLETS
    return isolate(names) + (" " + t(lang, "story_more_outlets", n=extra) if extra > 0 else "")


def _facts(story: Story, lang: str, zone: tzinfo = UTC) -> list[str]:
    """Articles, outlets, span (in ``zone``), and the single-outlet mark, as plain pieces."""
    parts = [t(lang, "story_articles", n=story.n_articles),
             t(lang, "story_outlets", n=story.n_outlets) + " " + _outlets(story, lang)]
    if span := _span(story, zone):
        parts.append(span)
    return parts


def _gaps(story: Story, lang: str) -> list[str]:
    """What the story's coverage lacks: one outlet, or one language of several."""
    out = [t(lang, "story_single_outlet")] if story.single_outlet else []
    if story.only_lang in ("ar", "en"):
        out.append(t(lang, f"story_only_lang_{story.only_lang}"))
    return out


MAX_VERSIONS = 6  # listed per story; the timeline lists every article


def _versions(story: Story, lang: str) -> str | None:
    """``versions: Reuters (en) · Reuters (ar, 2 wire copies) · …``: each distinct text
    with its outlets and language; None when the story has one."""
    if len(story.versions) < 2:
        return None
    parts = []
    for v in story.versions[:MAX_VERSIONS]:
        outlets = ", ".join(v.outlets[:3]) or "?"
        if len(v.outlets) > 3:
            outlets += " " + t(lang, "story_more_outlets", n=len(v.outlets) - 3)
        detail = v.lang + (", " + t(lang, "story_copies", n=v.copies) if v.copies else "")
        parts.append(f"{isolate(outlets)} ({detail})")
    more = len(story.versions) - MAX_VERSIONS
    tail = f" · {t(lang, 'story_more_outlets', n=more)}" if more > 0 else ""
    return f"{t(lang, 'story_versions')}: " + " · ".join(parts) + tail


def _empty_message(summary: Summary, lang: str) -> str:
    if summary.topic:
        topic = isolate(summary.topic)
        return t(lang, "summary_empty_topic",
                 topic=f"«{topic}»" if lang == "ar" else f"“{topic}”")
    return t(lang, "summary_empty")


def _filters(summary: Summary, lang: str) -> list[str]:
    out = []
    if summary.topic:
        out.append(f"{t(lang, 'summary_topic')}: {isolate(summary.topic)}")
    if summary.outlets:
        out.append(f"{t(lang, 'summary_outlets')}: {isolate(', '.join(summary.outlets))}")
    return out


# -- plain text ---------------------------------------------------------------------
def render_summary_plain(summary: Summary, lang: str) -> str:
    m = _mark(lang)
    head = [m + f"{t(lang, 'summary_title')} — {_period(summary)}"]
    head += [m + f for f in _filters(summary, lang)]
    if summary.empty:
        return "\n".join([*head, "", m + _empty_message(summary, lang)])
    counts = t(lang, "summary_counts", stories=summary.n_stories,
               articles=summary.n_articles, outlets=summary.n_outlets)
    if summary.n_stories > len(summary.stories):
        counts += " · " + t(lang, "summary_shown", n=len(summary.stories))
    head.append(m + counts)
    if summary.undated:
        head.append(m + t(lang, "summary_undated", n=summary.undated))
    if summary.omitted:
        head.append(m + t(lang, "summary_omitted", n=summary.omitted))
    blocks = ["\n".join(head)]
    for i, story in enumerate(summary.stories, 1):
        lines = [m + f"{i}. {isolate(story.headline)}",
                 m + "   " + " · ".join(_facts(story, lang) + _gaps(story, lang))]
        if versions := _versions(story, lang):
            lines.append(m + "   " + versions)
        if story.generated:
            lines.append(m + "   " + f"{t(lang, 'generated')}: {isolate(story.generated)}")
        lines += [m + f"   {isolate(s.text)} [{s.source}]" for s in story.sentences]
        lines += [f"   [{src.n}] {citation_line(src, lang)}" for src in story.sources]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _entry_when(e: TimelineEntry, lang: str, zone: tzinfo = UTC) -> str:
    """When, and in which language: ``2018-09-30 08:00 · en``; undated ones say so."""
    when = _when(e.when, zone) + ("" if e.dated else f" ({t(lang, 'timeline_indexed')})")
    return f"{when} · {e.lang}" if e.lang else when


def render_timeline_plain(story: Story, entries: Sequence[TimelineEntry], lang: str) -> str:
    """A story's articles in date order, each a numbered citation with its link."""
    m = _mark(lang)
    lines = [m + f"{t(lang, 'timeline')}: {isolate(story.headline)}",
             m + "   " + " · ".join(_facts(story, lang))]
    for n, e in enumerate(entries, 1):
        parts = [_entry_when(e, lang), isolate(", ".join(e.outlets) or "?"), isolate(e.title)]
        if e.url:
            parts.append(e.url)
        lines.append(m + f"[{n}] " + " — ".join(parts))
    return "\n".join(lines)


# -- Telegram (HTML parse mode) -------------------------------------------------------
def _link(url: str | None, text: str) -> str:
    """``text`` (already escaped) linked to ``url`` when it is a web address."""
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{esc(url)}">{text}</a>'
    return text


def _telegram_citation(src: Source, lang: str) -> str:
    outlets = isolate(esc(", ".join(src.outlets))) if src.outlets else "?"
    date = esc(src.published.date().isoformat() if src.published else t(lang, "no_date"))
    where = "" if src.url else " — " + esc(
        t(lang, "paragraph", i=src.position + 1, n=src.n_passages or "?"))
    return (f"{_mark(lang)}<b>[{src.n}]</b> {outlets} — "
            f"{_link(src.url, isolate(esc(src.title)))} — {date}{where}")


def render_summary_telegram(summary: Summary, lang: str, zone: tzinfo = UTC,
                            zone_name: str = "UTC") -> str:
    """The digest as Telegram HTML, every time in ``zone`` (the chat's); every piece of
    article or user text escaped."""
    m = _mark(lang)
    head = [m + f"<b>{esc(t(lang, 'summary_title'))}</b> — "
                f"{esc(_period(summary, zone, zone_name))}"]
    head += [m + f"<i>{esc(f)}</i>" for f in _filters(summary, lang)]
    if summary.empty:
        return "\n".join(head) + f"\n\n{m}<b>{esc(_empty_message(summary, lang))}</b>"
    counts = t(lang, "summary_counts", stories=summary.n_stories,
               articles=summary.n_articles, outlets=summary.n_outlets)
    if summary.n_stories > len(summary.stories):
        counts += " · " + t(lang, "summary_shown", n=len(summary.stories))
    head.append(m + f"<i>{esc(counts)}</i>")
    if summary.undated:
        head.append(m + f"<i>{esc(t(lang, 'summary_undated', n=summary.undated))}</i>")
    if summary.omitted:
        head.append(m + f"<i>{esc(t(lang, 'summary_omitted', n=summary.omitted))}</i>")
    blocks = ["\n".join(head)]
    for i, story in enumerate(summary.stories, 1):
        title = _link(story.url, isolate(esc(story.headline)))
        facts = esc(" · ".join(_facts(story, lang, zone)))
        for gap in _gaps(story, lang):
            facts += f" · <i>{esc(gap)}</i>"
        lines = [m + f"<b>{i}.</b> <b>{title}</b>", m + facts]
        if versions := _versions(story, lang):
            lines.append(m + f"<i>{esc(versions)}</i>")
        if story.generated:
            lines.append(m + f"<i>{esc(t(lang, 'generated'))}:</i> {isolate(esc(story.generated))}")
        lines += [m + f"{isolate(esc(s.text))} <b>[{s.source}]</b>" for s in story.sentences]
        lines += [_telegram_citation(src, lang) for src in story.sources]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_timeline_telegram(story: Story, entries: Sequence[TimelineEntry],
                             lang: str, zone: tzinfo = UTC) -> str:
    """The timeline as Telegram HTML, times in ``zone``; every piece of article text
    escaped."""
    m = _mark(lang)
    lines = [m + f"<b>{esc(t(lang, 'timeline'))}:</b> <b>{isolate(esc(story.headline))}</b>",
             m + f"<i>{esc(' · '.join(_facts(story, lang, zone)))}</i>"]
    for n, e in enumerate(entries, 1):
        outlets = isolate(esc(", ".join(e.outlets) or "?"))
        lines.append(m + f"<b>[{n}]</b> {esc(_entry_when(e, lang, zone))} — {outlets} — "
                     f"{_link(e.url, isolate(esc(e.title)))}")
    return "\n".join(lines)
