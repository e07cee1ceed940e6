import codecs
import encodings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from khabar.index._parse import (
    FeedEntry,
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
from khabar.index._parse_decode import _CODEC_BY_LABEL

from khabar._errors import ParseError

FIXTURES = Path(__file__).parent / "fixtures"
SEED = Path(__file__).parents[2] / "seeds" / "000_de49ba5b2d1ace7e.txt"
NTREX = Path(__file__).resolve().parents[3] / "shared" / "data" / "raw" / "ntrex"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --- the seed ---------------------------------------------------------------------


def test_seed_article() -> None:
    article = parse_text(SEED.read_text(encoding="utf-8"), str(SEED))
    assert article.section == "سياسة"
    assert article.title == "أميركا تقصف في حلب ردا على القصف الروسي في حمص"
    assert article.tags == ["usa"]
    assert article.outlets == ["Reuters", "AFP", "agencies"]
    assert article.lang == "ar"
    assert article.source == str(SEED)
    assert len(article.paragraphs) == 13
    assert article.paragraphs[0].startswith("قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية")
    assert article.paragraphs[1].startswith("ونقلت رويترز عن مصدر أميركي:")
    assert article.paragraphs[2] == (
        "وقال مسؤول أميركي: التحركات الروسية في سوريا خطيرة وموسكو لم تنسق معنا لتجنب الاشتباك"
    )
    assert article.paragraphs[-1].startswith("وقال المصدر الذي طلب عدم نشر اسمه")
    body = "\n".join(article.paragraphs)
    for junk in ("صورة فرانس 24", "مقالات ذات صلة", "زر الذهاب إلى الأعلى", "\u00a0", "  "):
        assert junk not in body
    assert "وكانت فرنسا قد قال ت إنه" in body  # words as published, spaces collapsed


def test_seed_through_parse_document() -> None:
    articles, errors = parse_document(SEED.read_bytes(), SEED.name)
    assert errors == []
    assert [a.title for a in articles] == ["أميركا تقصف في حلب ردا على القصف الروسي في حمص"]


# --- plain text and Markdown -----------------------------------------------------


def test_title_blank_line_body() -> None:
    article = parse_text("Port strike ends\n\nDock workers returned to work on Monday.\n")
    assert article.title == "Port strike ends"
    assert article.paragraphs == ["Dock workers returned to work on Monday."]
    assert article.lang == "en"


def test_text_with_byline_date_and_trailing_boilerplate() -> None:
    [article], errors = parse_document(fixture("article_en.txt"), "article_en.txt")
    assert errors == []
    assert article.title == "Storm closes schools across the north"
    assert article.author == "Tom Baker"
    assert article.published == datetime(2024, 3, 7, tzinfo=UTC)
    assert len(article.paragraphs) == 2
    assert article.paragraphs[1].startswith("Rail operators cancelled dozens")
    assert "Mr. Davies" in article.paragraphs[1]


def test_markdown_front_matter() -> None:
    [article], _ = parse_document(fixture("article.md"), "article.md")
    assert article.title == "Heatwave breaks records in India"
    assert article.url == "https://example.com/en/india-heatwave"
    assert article.outlets == ["AFP"]
    assert article.author == "Priya Sharma"
    assert article.tags == ["weather", "India"]
    assert article.published == datetime(2024, 5, 29, 11, 0, tzinfo=timezone(timedelta(hours=5.5)))
    first = article.paragraphs[0]
    assert first.startswith("New Delhi recorded its highest ever temperature of 52.3C")
    assert "India Meteorological Department, as" in first
    for marker in ("**", "*", "](", "![", "#"):
        assert all(marker not in p for p in article.paragraphs)
    assert "Forecasters expect temperatures to ease slightly by the weekend." in article.paragraphs
    assert not any("Monsoon arrives early" in p for p in article.paragraphs)


def test_markdown_heading_title_arabic() -> None:
    [article], _ = parse_document(fixture("article_ar.md"), "article_ar.md")
    assert article.title == "انطلاق موسم الحج وسط إجراءات صحية مشددة"
    assert article.lang == "ar"
    assert article.paragraphs[0].startswith("مكة المكرمة — بدأ أكثر من مليوني حاج")
    assert "إن خطة التفويج تهدف" in article.paragraphs[1]


def test_dateline_and_attribution_lines() -> None:
    text = (
        "Quake hits coast\n\n"
        "TOKYO (Reuters) - A strong earthquake struck off the coast of Japan on Friday, "
        "the meteorological agency said, but no tsunami warning was issued.\n\n"
        "AFP"
    )
    article = parse_text(text)
    assert article.outlets == ["AFP", "Reuters"]
    assert article.paragraphs[0].startswith("TOKYO (Reuters) - A strong earthquake")
    assert len(article.paragraphs) == 1


def test_header_dateline_line() -> None:
    text = (
        "أخبار\n\nقصف على حلب اليوم\n\nواشنطن - رويترز\n\n"
        "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم الأربعاء ضد أهداف في حلب."
    )
    article = parse_text(text)
    assert (article.section, article.title, article.tags) == ("أخبار", "قصف على حلب اليوم", [])
    assert article.outlets == ["Reuters"]


def test_hard_wrapped_text_is_joined() -> None:
    text = (
        "Storm hits the coast\n\n"
        "Schools across the north of the country were closed on\n"
        "Thursday as a winter storm brought heavy snow and winds of\n"
        "up to 80 miles per hour, forecasters said on Thursday.\n\n"
        "Rail operators cancelled dozens of services on Friday.\n"
    )
    article = parse_text(text)
    assert article.paragraphs[0] == (
        "Schools across the north of the country were closed on Thursday as a winter storm "
        "brought heavy snow and winds of up to 80 miles per hour, forecasters said on Thursday."
    )
    assert len(article.paragraphs) == 2


@pytest.mark.parametrize("text", ["", "   \n\n  ", "\ufeff"])
def test_empty_text_raises(text: str) -> None:
    with pytest.raises(ParseError):
        parse_text(text)


def test_title_only_raises() -> None:
    with pytest.raises(ParseError, match="no article body"):
        parse_text("Just a headline\n\nمقالات ذات صلة\n")


@pytest.mark.skipif(not NTREX.is_dir(), reason="NTREX corpus not present")
def test_ntrex_documents_round_trip_as_text() -> None:
    ids = (NTREX / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    for lang, name in (("en", "newstest2019-src.eng.txt"), ("ar", "newstest2019-ref.arb.txt")):
        lines = (NTREX / name).read_text(encoding="utf-8").splitlines()
        docs: dict[str, list[str]] = {}
        for doc_id, line in zip(ids, lines, strict=True):
            docs.setdefault(doc_id, []).append(line.strip())
        for doc_id, doc in list(docs.items())[:60]:
            article = parse_text(doc[0] + "\n\n" + "\n".join(doc[1:]), doc_id)
            assert article.title == doc[0], doc_id
            assert article.paragraphs == [" ".join(p.split()) for p in doc[1:] if p], doc_id
            assert article.lang == lang, doc_id


# --- decoding ---------------------------------------------------------------------

AR_TEXT = "انقطاع الكهرباء في بيروت\n\nأعلنت مؤسسة كهرباء لبنان اليوم توقف المعمل."


@pytest.mark.parametrize(
    "data",
    [
        AR_TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + AR_TEXT.encode("utf-8"),
        AR_TEXT.encode("utf-16"),
        AR_TEXT.encode("utf-16-le"),
        AR_TEXT.encode("utf-16-be"),
        b"\xfe\xff" + AR_TEXT.encode("utf-16-be"),
        AR_TEXT.encode("cp1256"),
    ],
)
def test_decode_bytes(data: bytes) -> None:
    assert decode_bytes(data) == AR_TEXT


def test_decode_latin_legacy() -> None:
    assert decode_bytes("Café crème à Paris".encode("cp1252")) == "Café crème à Paris"


def test_decode_fixture_files() -> None:
    assert decode_bytes(fixture("legacy_cp1256.txt")).startswith("انقطاع الكهرباء في بيروت")
    assert decode_bytes(fixture("utf16_le_bom.txt")).startswith("Storm closes schools")
    assert decode_bytes(fixture("utf16_be_nobom.txt")).startswith("انقطاع الكهرباء في بيروت")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        b"%PDF-1.7\n...",
        b"plain text\x00" * 20,  # NULs well past a stray one's share, no UTF-16 pattern
        # A DOS/Windows executable's header (no magic of ours catches "MZ").
        b"MZ\x90\x00\x03" + bytes(55) + b"This program cannot be run in DOS mode.\r\r\n$"
        + bytes(200),
        b"SQLite format 3\x00\x10\x00\x01\x01" + bytes(80) + b"CREATE TABLE t(x)" * 4,
        bytes(range(1, 32)) * 20,
    ],
)
def test_decode_rejects_binary(data: bytes) -> None:
    with pytest.raises(ParseError, match="binary"):
        decode_bytes(data)


def test_decode_keeps_a_text_with_a_few_stray_nuls() -> None:
    # Finding: one NUL anywhere refused the whole file as binary.
    en = fixture("article_en.txt")
    half = len(en) // 2
    text = decode_bytes(en[:half] + b"\x00" + en[half:] + b"\x00\x00")
    assert text == decode_bytes(en) and "\x00" not in text
    ar = AR_TEXT.encode() * 4
    assert decode_bytes(ar + b"\x00") == decode_bytes(ar)


AR_LONG = fixture("article_ar.md")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Its last character cut in half (a truncated download or copy).
        (AR_TEXT.encode() + "ب".encode()[:1], AR_TEXT + "\ufffd"),
        (AR_LONG.rstrip() + "ب".encode()[:1], AR_LONG.decode().rstrip() + "\ufffd"),
        # One bad byte among hundreds of good Arabic letters.
        (AR_LONG.replace(b" ", b" \xff ", 1), AR_LONG.decode().replace(" ", " \ufffd ", 1)),
        # English with typographic quotes and a dash cut at its end.
        ("“Quoted” — text".encode() + "—".encode()[:2], "“Quoted” — text\ufffd"),
    ],
    ids=["short-cut", "article-cut", "article-bad-byte", "english-cut"],
)
def test_decode_damaged_utf8_stays_utf8(data: bytes, expected: str) -> None:
    # Finding: one invalid byte sent the whole file to Windows-1256 (Arabic mojibake).
    assert decode_bytes(data) == expected


FRENCH = ("Le président a déclaré « qu’il n’y aurait pas de réforme » ; l’été dernier, "
          "25 € ou 3 £… À PARIS, Ô ciel ! ")
GERMAN = "Die Größe der Straße, daß „Übermäßig“ – Ärger über Öl. "


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        # Arabic commas after letters make valid UTF-8 pairs ("ة،" is C9 A1): still legacy.
        ("هذه القصة، وتلك الحكاية، في المدينة؛ أليس كذلك؟ " * 10, "cp1256"),
        (FRENCH * 10, "cp1252"),
        (GERMAN * 10, "cp1252"),  # "ß“" is DF 93, a valid UTF-8 pair
        ("café", "cp1252"),  # ends in what could be the start of a UTF-8 sequence
    ],
    ids=["arabic", "french", "german", "cafe"],
)
def test_decode_legacy_text_is_not_taken_for_damaged_utf8(text: str, codec: str) -> None:
    assert decode_bytes(text.encode(codec)) == text


AR_ISO = AR_TEXT.encode("iso-8859-6")


def test_decode_declared_charset_first() -> None:
    # Undeclared, ISO-8859-6 Arabic reads as Windows-1256: the declared charset settles it.
    assert decode_bytes(AR_ISO) != AR_TEXT
    assert decode_bytes(AR_ISO, "iso-8859-6") == AR_TEXT
    assert decode_bytes(AR_ISO, "ISO-8859-6", "windows-1256") == AR_TEXT
    assert decode_bytes(AR_ISO, None, "iso-8859-6") == AR_TEXT
    # Unknown labels, and codecs that are no charset, are passed over.
    assert decode_bytes(AR_ISO, "x-bogus", "base64", "iso-8859-6") == AR_TEXT
    assert decode_bytes(AR_TEXT.encode(), "punycode") == AR_TEXT
    # A BOM wins over any label.
    assert decode_bytes(b"\xef\xbb\xbf" + AR_TEXT.encode(), "iso-8859-6") == AR_TEXT
    assert decode_bytes(AR_TEXT.encode("utf-16"), "windows-1256") == AR_TEXT
    # A label the bytes do not fit is passed over (0xFF is no ISO-8859-6 byte).
    assert decode_bytes(AR_TEXT.encode("cp1256") + b"\xff", "iso-8859-6").startswith(AR_TEXT)
    # Valid UTF-8 is UTF-8 under a legacy label (a server's default); as browsers do,
    # "iso-8859-1" is read as Windows-1252.
    assert decode_bytes(AR_TEXT.encode(), "iso-8859-1") == AR_TEXT
    assert decode_bytes("“Quoted”".encode("cp1252"), "iso-8859-1") == "“Quoted”"


EN_PAGE = b"<html><head><title>Storm</title></head><body><p>Schools are closed.</p></body></html>"


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-16be", "unicode", "utf-32"])
def test_decode_utf16_label_needs_the_bytes_to_agree(label: str) -> None:
    # Finding: under a "charset=utf-16" header any even-length body read as UTF-16,
    # an ASCII page as CJK ("格浴㹬戼摯…"). The label holds only when the NULs say so.
    assert decode_bytes(EN_PAGE, label) == EN_PAGE.decode()
    assert decode_bytes(AR_TEXT.encode(), label) == AR_TEXT
    assert decode_bytes(AR_ISO, label, "iso-8859-6") == AR_TEXT  # the meta tag's turn
    # Real UTF-16 without a BOM still reads, whichever byte order the label names.
    for codec in ("utf-16-le", "utf-16-be"):
        assert decode_bytes(AR_TEXT.encode(codec), label) == AR_TEXT
        assert decode_bytes(EN_PAGE.decode().encode(codec), label) == EN_PAGE.decode()


WHATWG_LABELS = [
    ("utf-8", AR_TEXT, "utf-8"),
    ("UTF8", AR_TEXT, "utf-8"),
    ("windows-1256", AR_TEXT, "cp1256"),
    ("cp1256", AR_TEXT, "cp1256"),
    ("x-cp1256", AR_TEXT, "cp1256"),
    ("iso-8859-6", AR_TEXT, "iso-8859-6"),
    ("ISO_8859-6", AR_TEXT, "iso-8859-6"),
    ("arabic", AR_TEXT, "iso-8859-6"),
    ("ASMO-708", AR_TEXT, "iso-8859-6"),
    (" \tiso-8859-6-i\n", AR_TEXT, "iso-8859-6"),  # ASCII whitespace trimmed
    # Latin-1 and ASCII labels read as Windows-1252, as browsers do.
    ("iso-8859-1", "“Quoted” café", "cp1252"),
    ("latin1", "“Quoted” café", "cp1252"),
    ("us-ascii", "“Quoted” café", "cp1252"),
    ("windows-1252", "“Quoted” café", "cp1252"),
    ("ks_c_5601-1987", "뉴스 기사", "cp949"),
    ("shift_jis", "ニュース記事", "cp932"),
]


@pytest.mark.parametrize(("label", "text", "codec"), WHATWG_LABELS,
                         ids=[label.strip() for label, _, _ in WHATWG_LABELS])
def test_decode_whatwg_labels(label: str, text: str, codec: str) -> None:
    assert decode_bytes(text.encode(codec), label) == text


def test_every_whatwg_label_names_a_python_codec() -> None:
    for label, codec in _CODEC_BY_LABEL.items():
        assert label == label.strip().lower()
        codecs.lookup(codec)


@pytest.mark.parametrize(
    "label",
    # Python codecs that are no web charset, WHATWG's "replacement" labels, a label
    # padded with what is not ASCII whitespace, and one that lowers to ASCII only in
    # Unicode (KELVIN SIGN lowers to "k").
    ["utf-7", "hz", "iso2022_kr", "iso-2022-kr", "hz-gb-2312", "palmos", "base64",
     "rot13", "mbcs", "utf-8-sig", "latin_1", "iso8859_6", "\u00a0iso-8859-6",
     "\u212aoi8-r"],
)
def test_decode_refuses_labels_outside_the_encoding_standard(label: str) -> None:
    # Passed over: the bytes decide (ISO-8859-6 Arabic then reads as Windows-1256).
    assert decode_bytes(AR_ISO, label) == decode_bytes(AR_ISO)
    assert decode_bytes(AR_ISO, label, "iso-8859-6") == AR_TEXT
    # UTF-7 would turn "+AGE-" into "a", HZ "~~" into "~".
    assert decode_bytes(b"1+AGE- 2 ~~ text", label) == "1+AGE- 2 ~~ text"


def test_decode_unknown_labels_grow_no_codec_cache() -> None:
    # Finding: codecs.lookup caches every label it fails to find, forever, and each
    # fetch's Content-Type header now brings one.
    for label in ("iso-8859-6", "x-bogus-warmup"):
        decode_bytes(AR_ISO, label)
    before = len(encodings._cache)
    for n in range(100):
        decode_bytes(AR_ISO, f"x-bogus-{n}", f"charset{n}")
    assert len(encodings._cache) == before


@pytest.mark.parametrize("data", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_decode_rejects_empty(data: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        decode_bytes(data)


@settings(max_examples=200)
@example(b"\x7f")  # DEL alone: stripped, nothing is left
@given(st.binary(max_size=300))
def test_decode_random_bytes_never_crashes(data: bytes) -> None:
    try:
        text = decode_bytes(data)
    except ParseError:
        return
    assert text.strip()


# --- dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-09-30", datetime(2015, 9, 30, tzinfo=UTC)),
        ("2015-09-30T12:00:00Z", datetime(2015, 9, 30, 12, tzinfo=UTC)),
        ("2015-09-30T12:00:00", datetime(2015, 9, 30, 12, tzinfo=UTC)),
        ("2015-09-30T15:00:00+03:00", datetime(2015, 9, 30, 12, tzinfo=UTC)),
        ("Wed, 30 Sep 2015 14:00:00 +0300", datetime(2015, 9, 30, 11, tzinfo=UTC)),
        ("Wed, 30 Sep 2015 14:00:00 GMT", datetime(2015, 9, 30, 14, tzinfo=UTC)),
        ("September 30, 2015", datetime(2015, 9, 30, tzinfo=UTC)),
        ("الأربعاء 30 سبتمبر/أيلول 2015", datetime(2015, 9, 30, tzinfo=UTC)),
        ("٣٠ سبتمبر ٢٠١٥", datetime(2015, 9, 30, tzinfo=UTC)),
        ("1 تشرين الثاني 2020", datetime(2020, 11, 1, tzinfo=UTC)),
        ("30 أيلول 2015 10:30 م", datetime(2015, 9, 30, 22, 30, tzinfo=UTC)),
        ("٣٠/٩/٢٠١٥", datetime(2015, 9, 30, tzinfo=UTC)),
        (datetime(2015, 9, 30, 8), datetime(2015, 9, 30, 8, tzinfo=UTC)),
        (1443657600, datetime(2015, 10, 1, tzinfo=UTC)),
    ],
)
def test_parse_date(value: object, expected: datetime) -> None:
    got = parse_date(value)
    assert got == expected
    assert got is not None and got.tzinfo is not None


@pytest.mark.parametrize(
    "value", [None, "", "2015", "Wednesday", "not a date", "10 شوال 1440 هـ", "9999-01-01", [1]]
)
def test_parse_date_rejects(value: object) -> None:
    assert parse_date(value) is None


# --- HTML -------------------------------------------------------------------------


def test_html_arabic_page() -> None:
    article = parse_html(fixture("article_ar.html"), "https://www.aljazeera.net/x")
    assert article.title == "مجلس الأمن يبحث وقف إطلاق النار في غزة"
    assert article.url == "https://www.aljazeera.net/news/2023/10/20/security-council-gaza"
    assert article.published == datetime(2023, 10, 20, 14, 35, tzinfo=timezone(timedelta(hours=3)))
    assert article.author == "محمد العلي"
    assert article.outlets == ["Al Jazeera"]
    assert article.site_name == "الجزيرة نت"
    assert article.section == "سياسة"
    assert article.tags == ["غزة", "مجلس الأمن"]
    assert article.lang == "ar"
    assert len(article.paragraphs) == 5
    assert article.paragraphs[0].startswith("عقد مجلس الأمن الدولي مساء الجمعة")
    body = "\n".join(article.paragraphs)
    for junk in ("الرئيسية", "ملفات تعريف الارتباط", "مقالات ذات صلة", "قافلة مساعدات",
                 "جميع الحقوق", "زر الذهاب", "فيسبوك"):
        assert junk not in body


def test_html_english_page() -> None:
    [article], errors = parse_document(fixture("article_en.html"), "article_en.html")
    assert errors == []
    assert article.title == "Central bank holds rates steady as inflation cools"
    assert article.published == datetime(2024, 3, 20, 18, 5, tzinfo=UTC)
    assert article.author == "Jane Doe"
    assert article.outlets == ["Reuters"]
    assert article.tags == ["Markets", "Central Banks", "Inflation"]
    assert article.source == "article_en.html"
    assert article.lang == "en"
    assert len(article.paragraphs) == 4
    assert article.paragraphs[0].startswith("WASHINGTON, March 20 (Reuters) - The central bank")
    body = "\n".join(article.paragraphs)
    for junk in ("Skip to content", "cookies", "Advertisement", "Oil prices rise", "Reporting by",
                 "All rights reserved"):
        assert junk not in body


def test_html_legacy_charset() -> None:
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
        "<title>خبر</title></head><body><article><h1>عنوان الخبر هنا اليوم</h1><p>"
        + "هذا نص عربي طويل لاختبار الترميز القديم في صفحات الويب العربية القديمة. " * 5
        + "</p></article></body></html>"
    )
    article = parse_html(html.encode("cp1256"), "https://example.com/x")
    assert article.paragraphs[0].startswith("هذا نص عربي طويل")
    assert article.published is None


AR_PAGE = ("<html><head>{meta}<title>عنوان الخبر</title></head><body><article>"
           "<h1>عنوان الخبر هنا اليوم</h1><p>"
           + "هذا نص عربي طويل لاختبار الترميز في صفحات الويب العربية القديمة. " * 5
           + "</p></article></body></html>")


@pytest.mark.parametrize(
    ("meta", "codec", "header"),
    [
        ("", "iso-8859-6", "iso-8859-6"),
        # The HTTP header wins over the page's meta tag (the HTML standard's order).
        ('<meta charset="windows-1256">', "iso-8859-6", "iso-8859-6"),
        # An unknown header charset is ignored: the meta tag decides.
        ('<meta charset="iso-8859-6">', "iso-8859-6", "no-such-charset"),
        # One the bytes do not fit gives way to the meta tag ("ف", "ق" in Windows-1256
        # are DD, DE: no ISO-8859-6 bytes).
        ('<meta charset="windows-1256">', "cp1256", "iso-8859-6"),
    ],
    ids=["header", "header-over-meta", "unknown-header", "header-not-fitting"],
)
def test_html_charset_from_the_http_header(meta: str, codec: str, header: str) -> None:
    page = AR_PAGE.format(meta=meta).encode(codec)
    article = parse_html(page, "https://example.com/x", header)
    assert article.paragraphs[0].startswith("هذا نص عربي طويل")
    # Through parse_document too, from the content type's charset parameter.
    (doc,), _ = parse_document(page, "x.html", f"text/html; charset={header}")
    assert doc.paragraphs[0].startswith("هذا نص عربي طويل")


def test_html_without_main_text() -> None:
    with pytest.raises(ParseError):
        parse_html("<html><body><nav><a href='/'>Home</a></nav></body></html>")


def test_html_published_date_only_is_midnight_utc() -> None:
    html = (
        "<html><head><title>Budget passed</title>"
        '<meta name="date" content="2022-06-01"></head><body><article><h1>Budget passed</h1>'
        + "<p>Parliament passed the annual budget after a long debate on Tuesday night.</p>" * 3
        + "</article></body></html>"
    )
    article = parse_html(html)
    assert article.published == datetime(2022, 6, 1, tzinfo=UTC)


# --- JSON -------------------------------------------------------------------------


def test_jsonl_with_bad_records() -> None:
    articles, errors = parse_json(fixture("articles_bad.jsonl").decode("utf-8"), "bad.jsonl")
    assert [a.title for a in articles] == [
        "زلزال بقوة 5.8 درجات يضرب جنوب تركيا",
        "Port strike ends after pay deal",
    ]
    assert len(errors) == 3
    assert errors[0].startswith("line 2: invalid JSON")
    assert errors[1].startswith("line 4:") and "no text" in errors[1]
    assert errors[2].startswith("line 5:") and "date" in errors[2]
    quake, port = articles
    assert quake.outlets == ["Anadolu"]
    assert quake.published == datetime(2023, 8, 10, 3, 12, tzinfo=UTC)
    assert quake.tags == ["تركيا", "زلازل"]
    assert quake.url == "https://example.com/ar/quake"
    assert len(quake.paragraphs) == 2
    assert quake.lang == "ar"
    assert quake.source == "bad.jsonl"
    assert port.outlets == ["AP"]
    assert port.site_name == "Associated Press"
    assert port.published == datetime(2023, 8, 14, tzinfo=UTC)
    assert (port.author, port.section, port.tags) == ("Sam Lee", "Business", ["labour", "shipping"])


def test_json_array() -> None:
    articles, errors = parse_json(fixture("articles.json").decode("utf-8"))
    assert errors == ["record 3: expected an object, got str"]
    fires, fair = articles
    assert fires.outlets == ["Reuters", "AFP"]
    assert len(fires.paragraphs) == 3  # single newlines split when there are no blank lines
    assert fires.published == datetime(2023, 7, 19, 14, 20, tzinfo=UTC)
    assert fair.outlets == ["MENA"]
    assert fair.published == datetime(2024, 1, 24, 10, tzinfo=UTC)  # naive -> UTC
    assert fair.lang == "ar"


def test_json_single_object_and_wrappers() -> None:
    one = '{"title": "T", "body": "A paragraph of text.\\n\\nAnother one."}'
    articles, errors = parse_json(one)
    assert errors == [] and articles[0].paragraphs == ["A paragraph of text.", "Another one."]
    wrapped = '{"articles": [{"title": "T", "text": ["First.", "Second."]}]}'
    articles, errors = parse_json(wrapped)
    assert errors == [] and articles[0].paragraphs == ["First.", "Second."]
    untitled = '{"text": "Officials said the bridge would reopen on Monday. Traffic is light."}'
    assert parse_json(untitled)[0][0].title == "Officials said the bridge would reopen on Monday."


def test_json_lang_codes() -> None:
    text = (
        '[{"title": "t", "text": "x y", "lang": "ar-SA"}, {"title": "t", "text": "x y", '
        '"lang": "fr"}, {"title": "t", "text": "hello there"}]'
    )
    assert [a.lang for a in parse_json(text)[0]] == ["ar", "other", "en"]


@pytest.mark.parametrize("text", ["", "[1, 2", "not json at all\nnor this"])
def test_json_unreadable(text: str) -> None:
    with pytest.raises(ParseError):
        parse_json(text)


def test_json_type_errors_are_per_record() -> None:
    text = '[{"title": 5, "text": "ok text"}, {"title": {"a": 1}, "text": "x"}, {"text": 3}]'
    articles, errors = parse_json(text)
    assert [a.title for a in articles] == ["5"]
    assert errors[0].startswith("record 2:") and errors[1].startswith("record 3:")


def test_ntrex_jsonl_fixture() -> None:
    articles, errors = parse_json(fixture("ntrex_sample.jsonl").decode("utf-8"))
    assert errors == []
    assert [a.lang for a in articles] == ["en", "ar", "en", "en", "ar", "ar"]
    assert articles[0].title == "Welsh AMs worried about 'looking like muppets'"
    assert articles[0].outlets == ["BBC"]
    assert len(articles[0].paragraphs) == 15
    assert articles[3].outlets == ["The New York Times"]


# --- feeds ------------------------------------------------------------------------


def test_rss_feed() -> None:
    entries = parse_feed(fixture("feed_rss.xml"), "feed_rss.xml")
    assert len(entries) == 3
    first = entries[0]
    assert first.title == "الأمم المتحدة تحذر من مجاعة في السودان"
    assert first.link == "https://www.france24.com/ar/20240305-sudan-famine"
    assert first.published == datetime(2024, 3, 5, 8, 15, tzinfo=UTC)
    assert first.feed_title == "فرانس 24" and first.outlet == "France 24"
    assert first.summary_text == (
        "حذرت وكالات الأمم المتحدة من أن ملايين السودانيين يواجهون خطر المجاعة."
    )
    assert first.content_text is not None and "برنامج الأغذية العالمي" in first.content_text
    assert first.tags == ["أفريقيا"]
    assert first.lang == "ar"
    article = entry_to_article(first)
    assert article.outlets == ["France 24", "AFP"]  # "(أ ف ب)" at the end of the content
    assert len(article.paragraphs) == 2  # "صورة أرشيفية" dropped
    assert article.url == first.link and article.published == first.published
    second = entry_to_article(entries[1])
    assert second.paragraphs == [
        "ارتفعت أسعار النفط الاثنين بعد أن قررت مجموعة أوبك+ تمديد خفض الإنتاج الطوعي حتى نهاية "
        "حزيران/يونيو المقبل.",
        "وقال محللون إن القرار كان متوقعا على نطاق واسع.",
    ]
    with pytest.raises(ParseError, match="no text"):
        entry_to_article(entries[2])


def test_atom_feed() -> None:
    entries = parse_feed(fixture("feed_atom.xml").decode("utf-8"))
    assert [e.title for e in entries] == [
        "Floods force thousands from their homes in Kenya",
        "Election results delayed in Panama",
    ]
    kenya, panama = entries
    assert kenya.published == datetime(2024, 5, 2, 5, 30, tzinfo=UTC)
    assert kenya.author == "Jane Okafor"
    assert kenya.outlet == "BBC"
    assert panama.published == datetime(2024, 5, 1, 22, 10, tzinfo=UTC)  # only <updated>
    assert panama.content_text is None
    article = entry_to_article(kenya)
    assert article.outlets == ["BBC"]
    assert article.site_name == "BBC News - World"
    assert len(article.paragraphs) == 2  # cut at "Related articles"
    assert entry_to_article(panama).paragraphs[0].startswith("Officials in Panama say")


def test_parse_document_feed_collects_entry_errors() -> None:
    articles, errors = parse_document(fixture("feed_rss.xml"), "feed_rss.xml")
    assert len(articles) == 2
    assert len(errors) == 1 and errors[0].startswith("entry 3:")
    assert all(a.source == a.url for a in articles)


@pytest.mark.parametrize(
    "data", [b"", b"<rss version='2.0'><channel><title>Broken</title", b"just some words"]
)
def test_malformed_feeds(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(data)


def test_broken_feed_fixture() -> None:
    with pytest.raises(ParseError, match="malformed"):
        parse_feed(fixture("feed_broken.xml"))


def test_empty_but_valid_feed() -> None:
    assert parse_feed(b"<rss version='2.0'><channel><title>Quiet</title></channel></rss>") == []


def test_entry_to_article_from_plain_entry() -> None:
    entry = FeedEntry(link="https://x.test/1", title=None, summary_text="Only a summary here.")
    article = entry_to_article(entry)
    assert article.title == "Only a summary here."
    assert article.outlets == []


# --- Telegram ---------------------------------------------------------------------

POST = """🔴 عاجل | انفجار يهز العاصمة الليبية طرابلس

أفاد شهود عيان بسماع دوي انفجار قوي في منطقة السراج غربي طرابلس مساء اليوم.

(رويترز)
#ليبيا #طرابلس
@libya_news"""


def test_telegram_public_post() -> None:
    when = datetime(2024, 3, 1, 18, 0, tzinfo=UTC)
    article = parse_telegram_post(
        POST, channel_title="أخبار ليبيا", username="libya_news", message_id=1234, date=when
    )
    assert article.title == "🔴 عاجل | انفجار يهز العاصمة الليبية طرابلس"
    assert article.paragraphs == [
        "🔴 عاجل | انفجار يهز العاصمة الليبية طرابلس",
        "أفاد شهود عيان بسماع دوي انفجار قوي في منطقة السراج غربي طرابلس مساء اليوم.",
    ]
    assert article.url == "https://t.me/libya_news/1234"
    assert article.outlets == ["أخبار ليبيا", "Reuters"]
    assert article.tags == ["ليبيا", "طرابلس"]
    assert article.published == when
    assert article.lang == "ar"


def test_telegram_private_channel_and_long_title() -> None:
    text = " ".join(["word"] * 60)
    article = parse_telegram_post(
        text, channel_title="Ch", username=None, message_id=5,
        date=datetime(2024, 3, 1, 18, 0), chat_id=-1001234567890,
    )
    assert article.url == "https://t.me/c/1234567890/5"
    assert len(article.title) <= 120 and article.title.endswith("…")
    assert article.published == datetime(2024, 3, 1, 18, 0, tzinfo=UTC)
    assert article.paragraphs == [text]


def test_telegram_empty_post() -> None:
    with pytest.raises(ParseError):
        parse_telegram_post(
            "#tag\n@chan", channel_title="Ch", username="c", message_id=1, date=datetime.now(UTC)
        )


# --- dispatch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("article_ar.html", 1), ("article_en.html", 1), ("article.md", 1), ("article_ar.md", 1),
        ("article_en.txt", 1), ("articles.json", 2), ("articles_bad.jsonl", 2),
        ("ntrex_sample.jsonl", 6), ("feed_rss.xml", 2), ("feed_atom.xml", 2),
        ("legacy_cp1256.txt", 1), ("utf16_le_bom.txt", 1), ("utf16_be_nobom.txt", 1),
    ],
)
def test_parse_document_fixtures(name: str, count: int) -> None:
    articles, _ = parse_document(fixture(name), name)
    assert len(articles) == count
    for article in articles:
        assert article.title and article.paragraphs
        assert article.lang in ("ar", "en")
        assert article.published is None or article.published.tzinfo is not None


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (fixture("feed_atom.xml"), "feed", "application/atom+xml"),
        (fixture("feed_atom.xml"), "download", None),
        (fixture("article_en.html"), "page", "text/html; charset=utf-8"),
        (fixture("article_en.html"), "page.unknown-but-text", None),
        (fixture("articles.json"), "upload", None),
        (fixture("article_en.txt"), "notes", None),
    ],
)
def test_parse_document_sniffs(data: bytes, name: str, content_type: str | None) -> None:
    if name == "page.unknown-but-text":
        with pytest.raises(ParseError, match="unsupported"):
            parse_document(data, name, content_type)
        return
    articles, _ = parse_document(data, name, content_type)
    assert articles


@pytest.mark.parametrize(
    ("name", "message"),
    [("binary.dat", "binary"), ("empty.txt", "empty"), ("feed_broken.xml", "malformed")],
)
def test_parse_document_rejects(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_document(fixture(name), name)


@pytest.mark.parametrize(
    ("name", "content_type"), [("report.pdf", None), ("photo.png", None), ("x", "image/png")]
)
def test_parse_document_unsupported(name: str, content_type: str | None) -> None:
    with pytest.raises(ParseError, match="unsupported"):
        parse_document(b"%PDF-1.4 whatever", name, content_type)
