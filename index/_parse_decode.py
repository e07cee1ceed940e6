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
# The WHATWG Encoding Standard's labels (encoding.spec.whatwg.org, "Names and labels"),
# by the Python codec that decodes them. Only these reach a codec: Python's own names
# would let in codecs no browser knows (utf-7, hz, base64), and codecs.lookup caches
# every label it fails to find, forever. Left out: the "replacement" labels
# (iso-2022-kr, iso-2022-cn, hz-gb-2312), x-user-defined, and UTF-32, which no web
# label names.
_WHATWG_LABELS = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "cp866": "866 cp866 csibm866 ibm866",
    "iso8859-2": "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2"
                 " iso_8859-2:1987 l2 latin2",
    "iso8859-3": "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3"
                 " iso_8859-3:1988 l3 latin3",
    "iso8859-4": "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4"
                 " iso_8859-4:1988 l4 latin4",
    "iso8859-5": "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595"
                 " iso_8859-5 iso_8859-5:1988",
    "iso8859-6": "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114"
                 " iso-8859-6 iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596"
                 " iso_8859-6 iso_8859-6:1987",
    "iso8859-7": "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126"
                 " iso8859-7 iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    # ISO-8859-8 and ISO-8859-8-I differ in display direction only, not in bytes.
    "iso8859-8": "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138"
                 " iso8859-8 iso88598 iso_8859-8 iso_8859-8:1988 visual"
                 " csiso88598i iso-8859-8-i logical",
    "iso8859-10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859-13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859-14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859-15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859-16": "iso-8859-16",
    "koi8-r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8-u": "koi8-ru koi8-u",
    "mac-roman": "csmacintosh mac macintosh x-mac-roman",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1250": "cp1250 windows-1250 x-cp1250",
    "cp1251": "cp1251 windows-1251 x-cp1251",
    # Latin-1 and ASCII labels too, as browsers read them.
    "cp1252": "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100"
              " iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii"
              " windows-1252 x-cp1252",
    "cp1253": "cp1253 windows-1253 x-cp1253",
    "cp1254": "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9"
              " iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
    "cp1255": "cp1255 windows-1255 x-cp1255",
    "cp1256": "cp1256 windows-1256 x-cp1256",
    "cp1257": "cp1257 windows-1257 x-cp1257",
    "cp1258": "cp1258 windows-1258 x-cp1258",
    "mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    # The standard decodes GBK with its GB18030 decoder, Big5 with HKSCS,
    # Shift_JIS as Windows-31J and EUC-KR as Windows-949.
    "gb18030": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58"
               " x-gbk gb18030",
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "euc-jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022-jp": "csiso2022jp iso-2022-jp",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "cp949": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987"
             " ks_c_5601-1989 ksc5601 ksc_5601 windows-949",
    "utf-16-be": "unicodefffe utf-16be",
    "utf-16-le": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
}
_CODEC_BY_LABEL = {
    label: codec for codec, labels in _WHATWG_LABELS.items() for label in labels.split()
}


def split_content_type(value: str) -> tuple[str, str | None]:
    """A content type's MIME type and charset, both lower case ("text/html; charset=UTF-8"
    -> ("text/html", "utf-8")); the charset None when it gives none."""
    mime, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'").lower() or None
    return mime.strip().lower(), charset


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
    """``data`` in the charset a server or page declares; None when the label is none
    of the Encoding Standard's or the bytes do not fit it. Bytes that are valid UTF-8
    with non-ASCII text are UTF-8 whatever a legacy label says: a server's default
    ("iso-8859-1") is far likelier than legacy text that happens to be valid UTF-8."""
    # Matched as the standard does: ASCII whitespace trimmed, ASCII case ignored (a
    # non-ASCII label is none: str.lower() would make "\u212a" a "k").
    label = charset.strip("\t\n\f\r ")
    codec = _CODEC_BY_LABEL.get(label.lower()) if label.isascii() else None
    if codec is None:
        return None
    if codec.startswith("utf-16"):
        # Without a BOM, a UTF-16 label holds only when the NULs say so: a wrong one
        # (a server's) would make any even-length page CJK. They also tell the order.
        codec = _utf16_without_bom(data[:4096])
        if codec is None:
            return None
    legacy = not codec.startswith("utf-")
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
