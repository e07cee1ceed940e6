"""Every parser of what khabar ingests, under hypothesis with a CPU budget per input
(tests/fuzz.py): bytes of any encoding, plain text and Markdown, HTML with JSON-LD,
JSON/JSONL, RSS/Atom, Telegram channel posts, dates, and tar/zip/gzip archives (made
whole, then cut and corrupted). Each input is either read or refused with khabar's own
error (a ParseError/SourceError with a one-line message), never anything else, and
none takes more than the budget. ``bench/reliability.py fuzz`` runs these with many
more examples."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from khabar.index._parse import (
    decode_bytes,
    entry_to_article,
    parse_date,
    parse_document,
    parse_feed,
    parse_html,
    parse_json,
    parse_telegram_post,
    parse_text,
)
from khabar.index._sources import SourceItem, iter_path

from khabar import SourceError
from khabar.text import (
    detect_lang,
    lexical_tokens,
    normalize_for_search,
    split_sentences,
    strip_controls,
)
from tests.fuzz import FUZZ, HOSTILE, TEXT, budget, long_text

# feedparser's own notice on entries with "updated" but no "published".
pytestmark = pytest.mark.filterwarnings(
    "ignore:To avoid breaking existing software:DeprecationWarning")
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "cp1256", "latin-1", "utf-8-sig"])


@st.composite
def encoded(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """Text in some encoding (lossy where it cannot be encoded), or raw bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=2000))
    return draw(text).encode(draw(ENCODINGS), errors="replace")


@FUZZ
@given(encoded(TEXT))
def test_fuzz_decode(data: bytes) -> None:
    with budget("decode (bytes -> text)"):
        assert isinstance(decode_bytes(data), str)


@FUZZ
@given(st.one_of(TEXT, long_text(100_000)), st.sampled_from([None, True, False]))
def test_fuzz_plain_text_and_markdown(text: str, markdown: bool | None) -> None:
    with budget("text / Markdown"):
        parse_text(text, "x.txt", markdown=markdown)


@FUZZ
@given(st.one_of(TEXT, long_text(300_000)))
def test_fuzz_text_analysis(text: str) -> None:
    with budget("text analysis (sentences, tokens, language, controls)", allowed=()):
        split_sentences(text)
        lexical_tokens(normalize_for_search(text))
        detect_lang(text)
        strip_controls(text)


# -- HTML and JSON-LD ---------------------------------------------------------------------
HTML_PIECES = st.sampled_from([
    "<html>", "<head>", "<title>", "</title>", "<body>", "<article>", "<p>", "</p>", "<div>",
    "<br>", "<h1>", "</h1>", '<meta charset="punycode">', '<meta charset="utf-7">',
    '<meta http-equiv="content-type" content="text/html; charset=bogus">',
    '<meta property="og:title" content="', '<meta name="author" content="',
    '<link rel="canonical" href="', '<time datetime="', '">', '"/>', "<script>", "</script>",
    '<script type="application/ld+json">', '{"@type": "NewsArticle", "datePublished": "',
    '"headline": ', "[" * 50, "{" * 50, "<table><tr><td>", "<ul><li>", "<!-- ", " -->",
    "<![CDATA[", "<svg><foreignObject>", "&nbsp;", "&#x0;", "&#99999999;", "\x00",
])
PROSE = st.sampled_from([
    "The minister said on Monday that the talks would resume next week in Geneva. " * 3,
    "قال الوزير يوم الاثنين إن المحادثات ستستأنف الأسبوع المقبل في جنيف. " * 3])
SOUP = st.lists(st.one_of(HTML_PIECES, TEXT, PROSE), max_size=60).map("".join)


@st.composite
def pages(draw: st.DrawFn) -> str:
    """A page shaped like an article, hostile pieces in every field."""
    def field() -> str:
        return draw(st.one_of(TEXT, SOUP))
    return (f"<html><head><title>{field()}</title><meta charset=\"{field()}\">"
            f'<meta property="og:title" content="{field()}">'
            f'<link rel="canonical" href="{field()}">'
            f'<script type="application/ld+json">{field()}</script></head>'
            f"<body><article><h1>{field()}</h1><time datetime=\"{field()}\">{field()}</time>"
            + "".join(f"<p>{draw(PROSE)}{field()}</p>" for _ in range(draw(st.integers(0, 6))))
            + "</article></body></html>")


HTML = st.one_of(SOUP, pages())


@FUZZ
@given(st.one_of(HTML, SOUP.map(lambda h: h * 20)), ENCODINGS,
       st.one_of(st.none(), st.just("https://example.com/a"), TEXT))
def test_fuzz_html(html: str, encoding: str, url: str | None) -> None:
    with budget("HTML (with JSON-LD, meta charset)"):
        parse_html(html.encode(encoding, errors="replace"), url=url)


# -- JSON / JSONL ------------------------------------------------------------------------
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
RECORD_KEYS = st.sampled_from(["title", "text", "body", "content", "paragraphs", "url",
                               "outlets", "outlet", "source", "published", "date", "lang",
                               "tags", "author", "items", "articles", "@graph", "@type"])
JSON_VALUE = st.recursive(SCALAR, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.dictionaries(st.one_of(RECORD_KEYS, TEXT), kids, max_size=6)),
    max_leaves=40)


@st.composite
def json_docs(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a record or list of records
        return json.dumps(draw(JSON_VALUE), ensure_ascii=draw(st.booleans()))
    if kind == 1:  # JSON Lines, some broken
        return "\n".join(json.dumps(draw(JSON_VALUE)) if draw(st.booleans()) else draw(TEXT)
                         for _ in range(draw(st.integers(0, 8))))
    if kind == 2:  # deep nesting
        depth = draw(st.integers(100, 200_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + draw(st.sampled_from(["1", '"x"', ""])) + closer * depth
    return draw(TEXT)  # not JSON at all


@FUZZ
@given(json_docs())
def test_fuzz_json(text: str) -> None:
    with budget("JSON / JSONL"):
        _, errors = parse_json(text, "x.json")
        assert all(isinstance(e, str) and e for e in errors)


@FUZZ
@given(json_docs())
def test_fuzz_json_ld_in_html(ld: str) -> None:
    html = (f'<html><head><script type="application/ld+json">{ld}</script></head>'
            f"<body><p>{'A sentence of news. ' * 20}</p></body></html>")
    with budget("JSON-LD in HTML"):
        parse_html(html)


# -- feeds -------------------------------------------------------------------------------
FEED_PIECES = st.sampled_from([
    '<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0" encoding="bogus"?>',
    '<rss version="2.0">', "<channel>", "<item>", "</item>", "<title>", "</title>",
    "<link>", "</link>", "<description>", "</description>", "<pubDate>", "</pubDate>",
    '<feed xmlns="http://www.w3.org/2005/Atom">', "<entry>", "</entry>", '<link href="',
    '"/>', "<content type=\"html\">", "</content>", "<![CDATA[", "]]>", "&lt;p&gt;",
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>', "&a;", "<category>", "</category>",
    "</channel></rss>", "</feed>", "<dc:creator>", "</dc:creator>", "&#0;",
])
FEED_SOUP = st.lists(st.one_of(FEED_PIECES, TEXT, PROSE), max_size=60).map("".join)


@st.composite
def rss(draw: st.DrawFn) -> str:
    """An RSS or Atom feed shaped like one, hostile pieces in every field."""
    def field() -> str:
        return draw(st.one_of(TEXT, FEED_SOUP, PROSE))
    if draw(st.booleans()):
        items = "".join(f"<item><title>{field()}</title><link>{field()}</link>"
                        f"<description>{field()}</description><pubDate>{field()}</pubDate>"
                        f"<category>{field()}</category></item>"
                        for _ in range(draw(st.integers(0, 5))))
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{field()}</title><language>{field()}</language>{items}"
                f"</channel></rss>")
    entries = "".join(f'<entry><title>{field()}</title><link href="{field()}"/>'
                      f"<updated>{field()}</updated><content type=\"html\">{field()}</content>"
                      f"</entry>" for _ in range(draw(st.integers(0, 5))))
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{field()}</title>{entries}</feed>'


FEED = st.one_of(FEED_SOUP, rss())


@FUZZ
@given(st.one_of(FEED, FEED_SOUP.map(lambda f: f * 20)))
def test_fuzz_feeds(feed: str) -> None:
    entries: list[Any] = []
    with budget("feeds (RSS/Atom)"):
        entries = parse_feed(feed.encode("utf-8", errors="replace"), "feed.xml")
    for entry in entries:
        with budget("feed entries -> articles"):
            entry_to_article(entry)


# -- documents, by name and content type ---------------------------------------------------
NAMES = st.sampled_from(["a.txt", "a.md", "a.html", "a.json", "a.jsonl", "a.xml", "a.rss",
                         "a", "a.dat", "a.exe", "a.pdf", "A.HTML", ".json"])
TYPES = st.sampled_from([None, "text/plain", "text/html; charset=cp1256", "application/json",
                         "application/rss+xml", "image/png", "", "text/weird"])


@FUZZ
@given(st.one_of(encoded(HTML), encoded(FEED), json_docs().map(str.encode), encoded(TEXT)),
       NAMES, TYPES)
def test_fuzz_documents(data: bytes, name: str, content_type: str | None) -> None:
    with budget("documents (by name, type or sniffing)"):
        parse_document(data, name, content_type)


# -- Telegram channel posts and dates ------------------------------------------------------
@FUZZ
@given(st.one_of(TEXT, long_text(5000)), TEXT, st.one_of(st.none(), TEXT),
       st.integers(-(2**63), 2**63 - 1), st.one_of(st.none(), st.integers(-(2**63), 2**63)),
       st.datetimes(timezones=st.just(UTC)))
def test_fuzz_telegram_posts(text: str, title: str, username: str | None, message_id: int,
                             chat_id: int | None, date: datetime) -> None:
    with budget("Telegram channel posts"):
        parse_telegram_post(text, channel_title=title, username=username,
                            message_id=message_id, date=date, chat_id=chat_id)


DATES = st.one_of(TEXT, st.sampled_from([
    "2024-01-01T00:00:00Z", "Mon, 01 Jan 2024 00:00:00 +0000", "0000-00-00", "9999-12-31T23:59",
    "-1", "1e400", "١٥ يناير ٢٠٢٤", "30 February 2024", "2024-13-45", "T" * 5000]),
    st.integers(), st.floats(), st.none(), st.datetimes())


@FUZZ
@given(DATES)
def test_fuzz_dates(value: Any) -> None:
    with budget("dates"):
        got = parse_date(value)
        assert got is None or (isinstance(got, datetime) and got.tzinfo is not None)


# -- archives ----------------------------------------------------------------------------
MEMBER_NAMES = st.one_of(st.sampled_from([
    "a.txt", "d/b.json", "../evil.txt", "/abs.html", "c.zip", "d.tar", "x.bin", "." * 300,
    "a" * 5000 + ".txt", "n\x00.txt", "ملف.md"]), TEXT.map(lambda s: s + ".txt"))


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, bytes]:
    """A zip, tar or tar.gz of a few members, then maybe truncated or with bytes changed."""
    members = draw(st.lists(st.tuples(MEMBER_NAMES, st.one_of(encoded(TEXT), st.binary())),
                            max_size=5))
    kind = draw(st.sampled_from(["zip", "tar", "tar.gz", "gz"]))
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name.replace("\x00", "_") or "_", data)
    elif kind == "gz":
        buf.write(gzip.compress(members[0][1] if members else b""))
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w",
                          format=draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT,
                                                       tarfile.USTAR_FORMAT]))) as tf:
            for name, data in members:
                short = name.replace("\x00", "_").encode()[:90].decode(errors="ignore")
                info = tarfile.TarInfo(short or "_")
                info.size = len(data)
                info.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE,
                                                  tarfile.SYMTYPE, tarfile.DIRTYPE, b"Z"]))
                if info.type == tarfile.SYMTYPE:
                    info.linkname, info.size, data = "../../etc/passwd", 0, b""
                elif info.type == tarfile.DIRTYPE:
                    info.size, data = 0, b""
                tf.addfile(info, io.BytesIO(data))
    blob = bytearray(buf.getvalue())
    if blob and draw(st.booleans()):  # corrupt: cut short, or change some bytes
        if draw(st.booleans()):
            blob = blob[:draw(st.integers(0, len(blob)))]
        else:
            for _ in range(draw(st.integers(1, 8))):
                blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    return kind, bytes(blob)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile, writing the test's archives
@FUZZ
@given(archives(), st.sampled_from([64, 4096, 1 << 20]))
def test_fuzz_archives(archive: tuple[str, bytes], max_file_bytes: int) -> None:
    kind, blob = archive
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload.{kind}"
        path.write_bytes(blob)
        with budget("archives (zip, tar, tar.gz, gz)"):
            for item in iter_path(path, max_file_bytes=max_file_bytes):
                if isinstance(item, SourceError):
                    assert item.message.strip() and "\n" not in item.message, item.message
                    continue
                assert isinstance(item, SourceItem) and len(item.data) <= max_file_bytes
                assert ".." not in Path(item.name.partition("!")[2]).parts, item.name


@FUZZ
@given(st.lists(HOSTILE, min_size=1, max_size=4).map("".join))
def test_fuzz_hostile_pieces_as_every_kind(text: str) -> None:
    """The hostile pieces alone, as every kind of document (short inputs, odd corners)."""
    for name in ("a.txt", "a.md", "a.html", "a.json", "a.xml"):
        with budget("documents (by name, type or sniffing)"):
            parse_document(text.encode("utf-8", errors="replace"), name)


@pytest.mark.parametrize("piece", ["00<000000000\x1b[31m", "[a](", "![x", "<http://a", "**a ",
                                   "*a ", "_a ", "~~a "])
def test_markdown_lines_of_unclosed_openers_stay_within_the_budget(piece: str) -> None:
    """Found by the fuzz: Markdown's inline patterns scanned the rest of the line for
    every opener without a closer (80 kB of "<0…" took 2.2 s, 40 kB of "**a " 5.3 s)."""
    with budget("text / Markdown"):
        parse_text((piece * (200_000 // len(piece)))[:200_000], "x.md", markdown=True)
