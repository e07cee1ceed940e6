"""Control characters out of article text, so that text shown in a terminal (or a
chat) can carry no escape sequence and no reordering trick.

Removed: the C0 controls but tab and newline (ESC starts every terminal sequence; BEL,
backspace and NUL are never text), DEL, the C1 controls (U+009B is a one-character
CSI on 8-bit terminals) and the bidi overrides LRO/RLO (which reorder what follows:
the "Trojan source" trick). A carriage return becomes a newline, form and vertical
feeds a space. Kept: LRM, RLM and the Arabic letter mark, the bidi embeddings and
isolates, ZWJ and ZWNJ: Arabic and Persian text needs them to display as written.
"""

from __future__ import annotations

_TABLE: dict[int, str | None] = {c: None for c in range(0x20) if chr(c) not in "\t\n\r\f\v"}
_TABLE.update({ord("\r"): "\n", ord("\f"): " ", ord("\v"): " ", 0x7F: None})
_TABLE.update({c: None for c in range(0x80, 0xA0)})
_TABLE.update({0x202D: None, 0x202E: None})  # LRO, RLO


def strip_controls(text: str) -> str:
    """``text`` without terminal controls or bidi overrides ("\\r\\n" reads as "\\n")."""
    return text.replace("\r\n", "\n").translate(_TABLE)
