"""Text out of bytes: BOMs, UTF-8, UTF-16 without a BOM, Windows-1256/1252; binary and
empty content refused.
"""

from __future__ import annotations

import re

from khabar._errors import ParseError
from khabar.text import strip_controls

_BINARY_MAGIC = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"BZh",
    b"\x7fELF", b"7z\xbc\xaf", b"Rar!", b"OggS", b"ID3", b"RIFF", b"\x00\x00\x01\x00",
)
_ARABIC_LETTER_RE = re.compile("[\u0621-\u064a]")


def _binary() -> ParseError:
    return ParseError("the content looks binary, not text")


def _utf16_without_bom(sample: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" when NULs fall on one side of the byte pairs."""
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = max(len(sample) // 2, 1)
    # Text always has spaces and newlines, whose high byte is NUL in UTF-16.
    if odd / half >= 0.1 and even / half <= 0.02:
        return "utf-16-le"
    if even / half >= 0.1 and odd / half <= 0.02:
        return "utf-16-be"
    return None


def _check_text(text: str) -> str:
    if not text.strip():
        raise ParseError("the content is empty")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls / len(text) > 0.05:
        raise _binary()
    text = strip_controls(text)
    if not text.strip():  # only control characters (DEL, C1): nothing to read
        raise ParseError("the content is empty")
    return text


def decode_bytes(data: bytes) -> str:
    """Text from bytes: BOM, UTF-8, UTF-16 (by NUL pattern), else Windows-1256/1252.

    Raises ParseError for empty and binary content.
    """
    if not data.strip():
        raise ParseError("the content is empty")
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise _binary() from exc
    if data.startswith(_BINARY_MAGIC):
        raise _binary()
    if b"\x00" in data:
        codec = _utf16_without_bom(data[:4096])
        if codec is None:
            raise _binary()
        try:
            return _check_text(data.decode(codec))
        except UnicodeDecodeError as exc:
            raise _binary() from exc
    try:
        return _check_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    # Legacy single-byte files: Arabic ones are Windows-1256, the rest most likely 1252.
    text = data.decode("cp1256")
    letters = sum(1 for ch in text if ch.isalpha())
    if letters and len(_ARABIC_LETTER_RE.findall(text)) / letters >= 0.3:
        return _check_text(text)
    return _check_text(data.decode("cp1252", errors="replace"))
