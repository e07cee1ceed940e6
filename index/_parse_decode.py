"""Text out of bytes: BOMs, a declared charset, UTF-8, UTF-16 without a BOM,
Windows-1256/1252; binary and empty content refused.
"""

from __future__ import annotations

import codecs
import re

from khabar._errors import ParseError
from khabar.text import strip_controls

_BINARY_MAGIC = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"BZh",
    b"\x7fELF", b"7z\xbc\xaf", b"Rar!", b"OggS", b"ID3", b"RIFF", b"\x00\x00\x01\x00",
)
_ARABIC_LETTER_RE = re.compile("[\u0621-\u064a]")
# NULs in more than this share of the bytes (and not UTF-16's pattern) are a binary
# format's: executables, databases, images carry them by the hundred. Fewer are damage
# (a stray byte, a padded end) in a text that is still worth reading.
_MAX_NUL_SHARE = 0.01
# Invalid sequences allowed per valid multi-byte UTF-8 sequence for a text to be read
# as damaged UTF-8. Legacy text is the reverse: Windows-1256 Arabic and Latin-1 prose
# make a valid UTF-8 pair once in tens of invalid ones (a letter before "،" or "“").
_UTF8_ERRORS_PER_VALID = 0.1
# Python codecs that are no charset (the HTML standard knows none of these labels).
_NOT_CHARSETS = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape"})


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


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared(data: bytes, charset: str) -> str | None:
    """``data`` in the charset a server or page declares; None when Python knows no
    such text encoding or the bytes do not fit it. Bytes that are valid UTF-8 with
    non-ASCII text are UTF-8 whatever a legacy label says: a server's default
    ("iso-8859-1") is far likelier than legacy text that happens to be valid UTF-8."""
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        return None
    if codec in _NOT_CHARSETS:
        return None
    if codec in ("iso8859-1", "ascii"):
        codec = "cp1252"  # as browsers read these labels (the HTML standard)
    legacy = not codec.startswith(("utf-8", "utf-16", "utf-32"))
    if legacy and not data.isascii() and _is_utf8(data):
        return None
    try:
        return data.decode(codec)
    except (LookupError, ValueError):  # not text (base64), or not these bytes
        return None


def _damaged_utf8(data: bytes) -> str | None:
    """``data`` as UTF-8 with U+FFFD for its invalid bytes, when it is plainly UTF-8:
    cut inside its last character, or a few invalid bytes among many valid multi-byte
    sequences; else None."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=False)  # a sequence cut at the end is held back
    invalid = text.count("\ufffd") - data.count("\ufffd".encode())
    valid = len(text) - len(text.encode("ascii", "ignore")) - invalid
    if valid < 1 or invalid > valid * _UTF8_ERRORS_PER_VALID:
        return None
    return text + decoder.decode(b"", final=True)


def decode_bytes(data: bytes, *charsets: str | None) -> str:
    """Text from bytes: BOM, else the first declared ``charsets`` (most authoritative
    first: an HTTP header's, a page's meta tag) that is known and fits the bytes, else
    UTF-8 (also when only a few bytes are invalid), UTF-16 (by NUL pattern),
    Windows-1256/1252.

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
    for charset in charsets:
        if charset and (text := _declared(data, charset)) is not None:
            return _check_text(text)
    nuls = data.count(0)
    if nuls:
        codec = _utf16_without_bom(data[:4096])
        if codec is not None:
            try:
                return _check_text(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise _binary() from exc
        if nuls > len(data) * _MAX_NUL_SHARE:
            raise _binary()
        data = data.replace(b"\x00", b"")
    try:
        return _check_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    if (text := _damaged_utf8(data)) is not None:
        return _check_text(text)
    # Legacy single-byte files: Arabic ones are Windows-1256, the rest most likely 1252.
    text = data.decode("cp1256")
    letters = sum(1 for ch in text if ch.isalpha())
    if letters and len(_ARABIC_LETTER_RE.findall(text)) / letters >= 0.3:
        return _check_text(text)
    return _check_text(data.decode("cp1252", errors="replace"))
