"""Split Telegram HTML into messages of at most 4096 visible characters.

Telegram counts the limit on the text left after parsing the HTML, so tags cost
nothing and an entity such as ``&amp;`` counts as one character. Cuts fall at the
best boundary that fits, in this order: paragraph, line, sentence, word, any
character. A cut falls only between grapheme clusters (what a reader takes for one
character: a flag, an emoji with its skin tone or ZWJ sequence, a letter with its
marks, an Indic conjunct), unless one cluster alone is longer than the limit; it
never falls inside a tag or an entity. Tags open at the cut are
closed at the end of one part and re-opened (same attributes) at the start of the
next, so every part is valid HTML on its own and the parts' visible texts, joined,
are the original visible text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

import regex

TELEGRAM_LIMIT = 4096

# A tag, an entity, or one character. Quoted attribute values may hold ">".
_TOKEN = re.compile(
    r"""<(?P<close>/)?(?P<name>[A-Za-z][\w-]*)(?:\s+(?:[^<>"']|"[^"]*"|'[^']*')*)?\s*>"""
    r"|(?P<entity>&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z]+);)"
    r"|(?P<char>[\s\S])",
)
_SENTENCE_END = frozenset(".!?؟…。;؛")
# Break levels, best first; a cut at a worse level is taken only when no better one
# leaves the part at least _MIN_FILL of the limit.
_PARAGRAPH, _LINE, _SENTENCE, _WORD, _ANY = range(5)
_MIN_FILL = 0.5
# One extended grapheme cluster (UAX #29, with GB9c's Indic conjuncts); `re` has no \X.
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class _Tok:
    raw: str
    kind: Literal["open", "close", "text"]
    name: str = ""
    visible: str = ""  # for text: the character it shows


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _tokenize(markup: str) -> list[_Tok]:
    toks: list[_Tok] = []
    for m in _TOKEN.finditer(markup):
        if m.group("name"):
            toks.append(_Tok(m.group(0), "close" if m.group("close") else "open",
                             m.group("name").lower()))
        elif m.group("entity"):
            toks.append(_Tok(m.group(0), "text", visible=html.unescape(m.group(0))))
        else:
            toks.append(_Tok(m.group(0), "text", visible=m.group(0)))
    return toks


def visible_text(markup: str) -> str:
    """The text Telegram will show for ``markup``."""
    return "".join(t.visible for t in _tokenize(markup) if t.kind == "text")


def visible_length(markup: str) -> int:
    """Characters Telegram will count (UTF-16 units: never fewer than code points)."""
    return sum(_utf16(t.visible) for t in _tokenize(markup) if t.kind == "text")


def _level_after(toks: list[_Tok], i: int) -> int:
    """How good a cut right after text token ``i`` is (lower is better)."""
    ch = toks[i].visible
    prev = _prev_visible(toks, i)
    if ch == "\n":
        return _PARAGRAPH if prev == "\n" else _LINE
    if ch.isspace():
        return _SENTENCE if prev in _SENTENCE_END else _WORD
    return _ANY


def _prev_visible(toks: list[_Tok], i: int) -> str:
    for j in range(i - 1, -1, -1):
        if toks[j].kind == "text":
            return toks[j].visible
    return ""


def _cluster_ends(toks: list[_Tok]) -> list[bool]:
    """For each token: is it a text token after which a grapheme cluster ends?

    Computed on the whole visible text, since Telegram draws clusters across tags.
    """
    visible = "".join(t.visible for t in toks if t.kind == "text")
    ends = {m.end() for m in _GRAPHEME.finditer(visible)}
    out: list[bool] = []
    offset = 0
    for t in toks:
        if t.kind == "text":
            offset += len(t.visible)
        out.append(t.kind == "text" and offset in ends)
    return out


def split_html(markup: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """``markup`` as a list of valid HTML parts, each at most ``limit`` visible characters."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    toks = _tokenize(markup)
    cuttable = _cluster_ends(toks)
    parts: list[str] = []
    stack: list[_Tok] = []  # tags open at the start of the current part
    start = 0
    while start < len(toks):
        end = _find_cut(toks, cuttable, start, limit)
        body = toks[start:end]
        opened = list(stack)
        for t in body:
            if t.kind == "open":
                stack.append(t)
            elif t.kind == "close" and stack:
                stack.pop()
        closing = "".join(f"</{t.name}>" for t in reversed(stack))
        parts.append("".join(t.raw for t in opened) + "".join(t.raw for t in body) + closing)
        start = end
    return parts


def _find_cut(toks: list[_Tok], cuttable: list[bool], start: int, limit: int) -> int:
    """Index of the first token of the next part (``len(toks)`` when all fits).

    Only cuts at the end of a grapheme cluster count; when none fits (one cluster, say a
    letter with thousands of marks, is longer than the limit) the cut falls after the
    last code point that fits, so no input fails to split.
    """
    best: list[int | None] = [None] * 5  # latest possible cut per level
    fill: list[int] = [0] * 5  # visible characters before that cut
    used = 0
    last_text: int | None = None
    for i in range(start, len(toks)):
        t = toks[i]
        if t.kind != "text":
            continue
        w = _utf16(t.visible)
        if used + w > limit and last_text is not None:
            break
        used += w
        last_text = i
        if not cuttable[i]:
            continue
        for lv in range(_level_after(toks, i), 5):
            best[lv], fill[lv] = i, used
    else:
        return len(toks)
    chosen = next((best[lv] for lv in range(5)
                   if best[lv] is not None and fill[lv] >= limit * _MIN_FILL), None)
    if chosen is None:  # nothing fills the part enough: take the best cut there is
        chosen = next((b for b in best if b is not None), last_text)
    assert chosen is not None
    return _after_cut(toks, chosen)


def _after_cut(toks: list[_Tok], idx: int) -> int:
    """Closing tags right after the cut stay with the part; opening tags go to the next."""
    j = idx + 1
    end = j
    while j < len(toks) and toks[j].kind != "text":
        if toks[j].kind == "close":
            end = j + 1
        j += 1
    if j == len(toks):
        return len(toks)  # only tags remain: keep them here
    return end
