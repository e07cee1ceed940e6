"""Control characters out of article text, so that text shown in a terminal (or a
chat) can carry no escape sequence and no reordering trick.

Removed: the C0 controls but tab and newline (ESC starts every terminal sequence; BEL,
backspace and NUL are never text), DEL, the C1 controls (U+009B is a one-character
CSI on 8-bit terminals) and the bidi overrides LRO/RLO (which reorder what follows:
the "Trojan source" trick). A carriage return becomes a newline, form and vertical
feeds a space. Kept: LRM, RLM and the Arabic letter mark, the bidi embeddings and
isolates, ZWJ and ZWNJ: Arabic and Persian text needs them to display as written.

``strip_bidi`` removes the embeddings and isolates too, from a short run shown inside
a line of other text (a title, an outlet), which an unbalanced one would reorder.
"""

from __future__ import annotations

_TABLE: dict[int, str | None] = {c: None for c in range(0x20) if chr(c) not in "\t\n\r\f\v"}
_TABLE.update({ord("\r"): "\n", ord("\f"): " ", ord("\v"): " ", 0x7F: None})
_TABLE.update({c: None for c in range(0x80, 0xA0)})
_TABLE.update({0x202D: None, 0x202E: None})  # LRO, RLO
# Every explicit bidi formatting character: LRE RLE PDF LRO RLO, LRI RLI FSI PDI.
_BIDI_TABLE: dict[int, str | None] = {
    c: None for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def strip_controls(text: str) -> str:
    """``text`` without terminal controls or bidi overrides ("\\r\\n" reads as "\\n")."""
    return text.replace("\r\n", "\n").translate(_TABLE)


def one_line(text: str) -> str:
    """``text`` as one line of a report or an error: :func:`strip_controls`, its line
    breaks joined by spaces (a name from a file, an archive or a feed may hold any)."""
    return " ".join(strip_controls(text).splitlines())


def strip_bidi(text: str) -> str:
    """``text`` without explicit bidi formatting (embeddings, overrides, isolates and
    what ends them); the marks LRM, RLM and ALM stay, since they open nothing.

    For a run shown inside a line of other text in an isolate of its own: a stray PDI
    in it would close that isolate early and an RLE after it would hold to the end of
    the line, reordering the date and the link that follow.
    """
    return text.translate(_BIDI_TABLE)
