"""Ingestion end to end: files of every kind, URLs and feeds over real HTTP, a crash
mid-ingest, a reader during a write, and syndicated copies."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from khabar.index import ITEM_STATUSES, Article, Index, IngestReport, ItemResult
from khabar.index._ingest import url_without_userinfo

from khabar import Settings
from khabar.store import Store
from khabar.text import passage_sentences
from tests.fakes import HashEncoder

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def _index(home: Path, **settings) -> Index:
    return Index.open(Settings(home=home, **settings), encoders=[HashEncoder()])


def test_folder_of_every_kind_goes_in_and_bad_files_are_reported(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    report = ix.add_path(FIXTURES)
    by_name: dict[str, list] = {}
    for item in report.items:
        by_name.setdefault(Path(item.name.split("#")[0]).name, []).append(item)
    for good in ("article_en.html", "article_ar.html", "article.md", "article_en.txt",
                 "legacy_cp1256.txt", "utf16_le_bom.txt", "feed_rss.xml"):
        assert "added" in {i.status for i in by_name[good]}, by_name[good]
    assert [i.status for i in by_name["empty.txt"]] == ["error"]
    assert "empty" in by_name["empty.txt"][0].message
    assert {i.status for i in by_name["feed_broken.xml"]} == {"error"}
    assert report.count("added") >= 10
    bad = [i for i in report.items if "articles_bad.jsonl" in i.name and i.status == "error"]
    assert bad, "the malformed JSONL record is reported"
    stats = ix.store.stats()
    assert stats["articles"] == report.count("added")
    assert ix.store.check([]) == []
    # Re-ingesting the same folder changes nothing.
    again = ix.add_path(FIXTURES)
    assert again.count("added") == 0 and ix.store.stats()["articles"] == stats["articles"]


def test_binary_named_explicitly_is_refused_clearly(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    report = ix.add_path(FIXTURES / "binary.dat")
    assert report.count("error") == 1 and ix.store.count_articles() == 0


class _Site(http.server.SimpleHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        if self.path not in self.pages:
            self.send_error(404)
            return
        ctype, body = self.pages[self.path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    page = (FIXTURES / "article_en.html").read_bytes()
    feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Test Wire</title>
      <link>{base}/</link><description>d</description>
      <item><title>Linked story</title><link>{base}/story.html</link>
        <pubDate>Wed, 30 Sep 2015 12:00:00 GMT</pubDate><description>Short.</description></item>
      <item><title>Gone story</title><link>{base}/missing.html</link>
        <pubDate>Wed, 30 Sep 2015 13:00:00 GMT</pubDate>
        <description>The feed's own text for this item is long enough to stand alone as a
        passage when the linked page cannot be fetched from the site.</description></item>
      </channel></rss>""".encode()
    _Site.pages = {"/story.html": ("text/html; charset=utf-8", page),
                   "/feed.xml": ("application/rss+xml", feed)}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def test_url_refused_unless_private_addresses_allowed(tmp_path: Path, site: str) -> None:
    report = _index(tmp_path).add_url(f"{site}/story.html")
    assert report.count("error") == 1 and "127.0.0.1" in report.errors[0].message


def test_url_and_feed_ingested_over_http(tmp_path: Path, site: str) -> None:
    ix = _index(tmp_path, allow_private_urls=True)
    page = ix.add_url(f"{site}/story.html")
    assert page.count("added") == 1, page.items
    feed = ix.add_url(f"{site}/feed.xml")
    # The linked page is already stored under its URL (its canonical link points off
    # the site, so it is not the citation); the missing one falls back to the feed's
    # own text.
    statuses = sorted(i.status for i in feed.items)
    assert statuses == ["added", "unchanged"], feed.items
    stored = ix.store.passages([r["id"] for r in ix.store.iter_passages()])
    outlets = {o for p in stored.values() for o in p.outlets}
    assert "Test Wire" in outlets
    assert ix.add_url(f"{site}/nothing-here.html").count("error") == 1


def test_damaged_text_files_are_stored_as_text(tmp_path: Path) -> None:
    """Findings: an Arabic UTF-8 file cut inside its last letter was stored as
    Windows-1256 mojibake, and one stray NUL refused a text file as binary."""
    folder = tmp_path / "in"
    folder.mkdir()
    ar = (FIXTURES / "article_ar.md").read_bytes().rstrip()
    (folder / "ar-cut.md").write_bytes(ar.replace("الحج".encode(), "العمرة".encode())
                                       + "ب".encode()[:1])
    en = (FIXTURES / "article_en.txt").read_bytes()
    (folder / "en-nul.txt").write_bytes(en.replace(b"Storm", b"Gale") + b"\x00")
    ix = _index(tmp_path / "home")
    report = ix.add_path(folder)
    assert report.count("added") == 2, report.items
    rows = ix.store.article_rows(ix.store.article_ids())
    assert sorted(r["title"] for r in rows) == [
        "Gale closes schools across the north", "انطلاق موسم العمرة وسط إجراءات صحية مشددة"]


AR_TITLE = "انقطاع الكهرباء في بيروت"
AR_BODY = ("أعلنت مؤسسة كهرباء لبنان اليوم توقف المعمل عن العمل بسبب نقص الوقود، وقالت إن "
           "التيار سيعود إلى المنازل خلال يومين بعد وصول شحنة جديدة إلى المرفأ.")


def test_the_http_charset_decodes_pages_and_files(tmp_path: Path, site: str) -> None:
    """Finding: the Content-Type header's charset was ignored, and Arabic served as
    ISO-8859-6 without a meta tag was stored as Windows-1256 mojibake."""
    page = (f"<html><head><title>{AR_TITLE}</title></head><body><article><h1>{AR_TITLE}"
            f"</h1><p>{AR_BODY}</p><p>{AR_BODY}</p></article></body></html>")
    text = f"{AR_TITLE} (نص)\n\n{AR_BODY} {AR_BODY}"
    _Site.pages.update({
        "/ar.html": ("text/html; charset=iso-8859-6", page.encode("iso-8859-6")),
        # The header over the meta tag, as browsers read it.
        "/ar-meta.html": ("text/html; charset=ISO-8859-6", page.replace(
            "<head>", '<head><meta charset="windows-1256">').replace(
            AR_TITLE, f"{AR_TITLE} (ميتا)").encode("iso-8859-6")),
        "/ar.txt": ('text/plain; charset="iso-8859-6"', text.encode("iso-8859-6")),
    })
    ix = _index(tmp_path, allow_private_urls=True)
    for path in ("/ar.html", "/ar-meta.html", "/ar.txt"):
        report = ix.add_url(f"{site}{path}")
        assert report.count("added") == 1, report.items
    rows = ix.store.article_rows(ix.store.article_ids())
    assert sorted(r["title"] for r in rows) == sorted(
        [AR_TITLE, f"{AR_TITLE} (ميتا)", f"{AR_TITLE} (نص)"])


def test_credentials_in_a_url_are_never_stored_nor_named(tmp_path: Path, site: str) -> None:
    """A URL's user information (a password, a token as user name) was stored as the
    article's url and source, cited as such, and named in the report."""
    ix = _index(tmp_path, allow_private_urls=True)
    host = site.removeprefix("http://")
    secrets = ("hunter2pass", "ghp_T0kenXYZ123456", "s3cretword")
    reports = [ix.add_url(f"http://reader:hunter2pass@{host}/story.html"),
               ix.add_url(f"http://ghp_T0kenXYZ123456@{host}/feed.xml"),
               ix.add_url(f"http://ghp_T0kenXYZ123456@{host}/nothing-here.html")]
    record = tmp_path / "records.json"
    record.write_text('{"title": "Budget", "text": "' + GOOD_BODY + '", '
                      '"url": "https://editor:s3cretword@news.example/budget"}')
    reports.append(ix.add_path(record))
    items = [i for r in reports for i in r.items]
    rows = ix.store.article_rows(sorted({r["article_id"] for r in ix.store.iter_passages()}))
    shown = repr(rows) + repr([vars(i) for i in items])
    assert not any(secret in shown for secret in secrets), shown
    assert reports[2].errors[0].name == f"{site}/nothing-here.html"
    assert len(rows) == 3 and f"{site}/feed.xml" in {r["source"] for r in rows}, rows
    assert f"{site}/story.html" in {r["url"] for r in rows}
    assert "https://news.example/budget" in {r["url"] for r in rows}
    # The feed's link to the page already stored is that page: the same URL now.
    assert {i.status for i in items} == {"added", "unchanged", "error"}, items



@pytest.mark.parametrize("url", [
    "https://editor:s3cret\\word@news.example/budget",
    "http://TOKEN\\x@example.com/a",
    "https://example.org\\x@news.example/a",  # the host follows the last "@"
    "http://user:p\"w<x>@example.com/a?b=c@d",
    "http://tok@en@example.com:8080#a@b",
    "HTTP://user:p w@example.com",
])
def test_user_information_is_cut_where_httpx_ends_it(url: str) -> None:
    """Finding: it was cut at a backslash (a path separator to browsers in web URLs), but
    httpx sends ``editor:s3cret\\word`` as the credentials: it was stored as such."""
    kept, sent = httpx.URL(url_without_userinfo(url)), httpx.URL(url)
    assert sent.userinfo and not kept.userinfo
    assert (kept.host, kept.port, kept.raw_path, kept.fragment) == (
        sent.host, sent.port, sent.raw_path, sent.fragment)


def test_credentials_with_a_backslash_are_never_stored_nor_named(tmp_path: Path,
                                                                  site: str) -> None:
    ix = _index(tmp_path, allow_private_urls=True)
    host = site.removeprefix("http://")
    missing = ix.add_url(f"http://reader:hunter\\2pass@{host}/nothing-here.html")
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"title": "Budget", "text": GOOD_BODY,
                                  "url": "https://editor:s3cret\\word@news.example/budget"}))
    assert ix.add_path(record).count("added") == 1
    assert missing.count("error") == 1 and missing.errors[0].name == f"{site}/nothing-here.html"
    assert "hunter" not in repr([vars(i) for i in missing.items])
    rows = ix.store.article_rows(ix.store.article_ids())
    assert [r["url"] for r in rows] == ["https://news.example/budget"]

_CRASH_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from khabar import Settings
from khabar.index import Article, Index
from tests.fakes import HashEncoder
ix = Index.open(Settings(home=Path({home!r})), encoders=[HashEncoder()])
for i in range(100000):
    body = [f"Paragraph {{j}} of article {{i}} has enough words to stand alone here, "
            f"about topic {{i * 7 + j}} and its consequences for everyone involved."
            for j in range(5)]
    ix.add_articles([Article(title=f"Article {{i}}", paragraphs=body,
                             url=f"https://x.test/{{i}}", outlets=["AFP"])])
    print(i, flush=True)
"""


def test_killed_mid_ingest_leaves_a_whole_store(tmp_path: Path) -> None:
    script = _CRASH_SCRIPT.format(repo=str(REPO), home=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(40):  # let it write a few dozen articles
        proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path / "store")
    assert store.check([]) == []
    n = store.count_articles()
    assert n >= 40
    db = store._conn()
    partial = db.execute("SELECT count(*) FROM articles a WHERE a.n_passages != "
                         "(SELECT count(*) FROM passages p WHERE p.article_id = a.id)"
                         ).fetchone()[0]
    assert partial == 0
    # And the store still takes writes and answers.
    ix = Index(Settings(home=tmp_path), store, [HashEncoder()])
    assert ix.add_articles([Article(title="After", paragraphs=[
        "A new article written after the crash, long enough to be a passage on its own."],
        url="https://x.test/after")]).count("added") == 1
    assert store.check([]) == []


def test_reader_answers_while_a_writer_ingests(tmp_path: Path) -> None:
    writer = _index(tmp_path)
    reader = _index(tmp_path)  # a second connection, as the bot beside `khabar ingest`
    errors: list[BaseException] = []
    q = HashEncoder().embed_queries(["topic consequences"])[0]

    def read() -> None:
        try:
            for _ in range(60):
                hits = reader.store.search("e5", "en", q, 3)
                reader.store.passages([h for h, _ in hits])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=read)
    t.start()
    for i in range(30):
        writer.add_articles([Article(title=f"A{i}", paragraphs=[
            f"Article {i} about topic consequences and many other words to pass the bar."],
            url=f"https://x.test/{i}")])
    t.join()
    assert not errors
    assert reader.store.count_articles() == 30
    assert len(reader.store.search("e5", "en", q, 50)) == 30


def test_same_article_from_two_outlets_is_stored_once_and_cited_with_both(
        tmp_path: Path) -> None:
    from khabar.retrieval import Khabar

    ix = _index(tmp_path)
    body = ["Russian aircraft carried out their first strikes in Syria on Wednesday, "
            "the defence ministry in Moscow said in a statement.",
            "The ministry said the strikes destroyed military equipment and ammunition "
            "depots belonging to the militants."]
    ix.add_articles([Article(title="Russia strikes Syria", paragraphs=body,
                             url="https://reuters.test/1", outlets=["Reuters"])])
    # The wire copy as another outlet ran it: its own headline and a local paragraph.
    report = ix.add_articles([Article(
        title="Moscow begins air campaign", paragraphs=[*body, "Local reaction was muted in "
                                                        "the capital, residents told AFP."],
        url="https://afp.test/2", outlets=["AFP"])])
    assert report.count("added") == 1
    hits = Khabar(ix).search(Khabar(ix).understand("first Russian strikes in Syria"), k=5).hits
    top = hits[0]
    assert set(top.outlets) == {"Reuters", "AFP"} and len(top.copies) == 1
    texts = [h.passage.text for h in hits]
    assert len(texts) == len(set(texts)), "copies collapsed into one result"


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_check_command_reports_faults(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([Article(title="T", paragraphs=[
        "A paragraph long enough to be stored as a passage of its own in the store."])])
    ix.close()
    store = Store(tmp_path / "store")
    store._conn().execute("DELETE FROM vectors")
    assert any("no e5 vector" in f for f in store.check([]))


class _CountingEncoder(HashEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed_passages(self, texts):  # type: ignore[no-untyped-def,override]
        self.texts += len(texts)
        return super().embed_passages(texts)


def test_articles_embedded_together_keep_their_own_vectors(tmp_path: Path) -> None:
    enc = _CountingEncoder()
    ix = Index.open(Settings(home=tmp_path), encoders=[enc])
    arts = [Article(title=f"Story {i}", url=f"https://x.test/{i}", paragraphs=[
        f"Story number {i} tells of event {i} in town {i}. The mayor of town {i} spoke.",
        f"A second paragraph about river {i} and bridge {i}, reported in the evening."])
        for i in range(40)]  # more passages than one embedding group
    report = ix.add_articles(arts)
    assert report.count("added") == 40
    for row in ix.store.iter_passages():
        vec = ix.store.vectors("e5", [row["id"]])[row["id"]]
        assert np.allclose(vec, enc.embed_passages([row["text"]])[0], atol=1e-3)  # float16
        sents = ix.store.sentence_vectors("e5", [row["id"]])[row["id"]]
        exact = enc.embed_passages(passage_sentences(row["text"]))
        cos = (sents * exact).sum(axis=1) / np.linalg.norm(sents, axis=1)  # int8 in the store
        assert sents.shape == exact.shape and np.allclose(cos, 1, atol=1e-3)
    # Polled again (a feed): nothing is embedded twice; a changed story is.
    enc.texts = 0
    again = ix.add_articles(arts)
    assert again.count("unchanged") == 40 and enc.texts == 0
    edited = Article(title="Story 3", url="https://x.test/3", paragraphs=["Story 3, corrected."])
    assert ix.add_articles([edited]).count("replaced") == 1 and enc.texts > 0
    copy = Article(title="Story 5", url="https://elsewhere.test/5", paragraphs=arts[5].paragraphs)
    enc.texts = 0
    assert ix.add_articles([copy]).count("duplicate") == 1 and enc.texts == 0


def test_a_large_folder_is_reported_file_by_file_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    for i in range(70):  # more files than one parsing batch
        body = f"Report {i:02d}.\n\nThe council of district {i} met on Monday to vote on {i}."
        (folder / f"{i:02d}.txt").write_text(body if i not in (5, 41) else "", encoding="utf-8")
    (folder / "66.txt").write_bytes(b"\x00\x01binary\x00" * 50)
    ix = _index(tmp_path / "home")
    report = ix.add_path(folder)
    assert [Path(i.name).name for i in report.items] == [f"{i:02d}.txt" for i in range(70)]
    assert {Path(i.name).name for i in report.errors} == {"05.txt", "41.txt", "66.txt"}
    assert report.count("added") == 67 == ix.store.count_articles()


def test_item_statuses_serialise_as_before() -> None:
    assert ITEM_STATUSES == ("added", "replaced", "unchanged", "duplicate", "error")
    report = IngestReport([ItemResult("a.txt", "added", passages=2),
                           ItemResult("b.txt", "error", "empty")])
    assert report.summary() == "1 added, 1 error (2 passages)"
    assert report.to_dict()["counts"] == {"added": 1, "replaced": 0, "unchanged": 0,
                                          "duplicate": 0, "error": 1}


# -- one bad item never aborts a batch --------------------------------------------------

GOOD_BODY = ("The council approved the new budget for schools and hospitals on Monday after "
             "a long debate. Officials said the spending would begin next month.")
DEEP = 100_000  # far past Python's recursion limit


def _page(title: str, head: str = "") -> str:
    return (f"<html><head><title>{title}</title>{head}</head><body><article><h1>{title}</h1>"
            f"<p>{GOOD_BODY} {title} is the subject of this report about the city.</p>"
            f"<p>{GOOD_BODY}</p></article></body></html>")


def hostile_files() -> dict[str, bytes]:
    """Files each of which once ended a whole batch, and one good file after them."""
    deep = "[" * DEEP + "]" * DEEP
    ld = '<script type="application/ld+json">' + deep + "</script>"
    return {
        "a_deep.json": deep.encode(),
        "b_deep.jsonl": ('{"text": ' + deep + "}\n"
                         + '{"title": "Budget", "text": "Budget: ' + GOOD_BODY + '"}\n'
                         ).encode(),
        "c_deep_ld.html": _page("Deep JSON-LD", ld).encode(),
        "d_punycode.html": _page("Café punycode", '<meta charset="punycode">').encode(),
        "e_good.txt": f"Good story\n\n{GOOD_BODY}".encode(),
    }


def _bad_and_good(report: IngestReport) -> tuple[dict[str, str], set[str]]:
    errors = {Path(i.name.split("!")[-1].split("#")[0]).name: i.message for i in report.errors}
    added = {Path(i.name.split("!")[-1].split("#")[0]).name for i in report.items
             if i.status == "added"}
    return errors, added


def test_a_folder_of_hostile_files_is_reported_item_by_item(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in hostile_files().items():
        (folder / name).write_bytes(data)
    report = _index(tmp_path / "home").add_path(folder)
    errors, added = _bad_and_good(report)
    assert "nested too deeply" in errors["a_deep.json"]
    assert "nested too deeply" in errors["b_deep.jsonl"]
    assert {"b_deep.jsonl", "c_deep_ld.html", "d_punycode.html", "e_good.txt"} <= added


def test_an_archive_of_hostile_files_is_reported_item_by_item(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in hostile_files().items():
            z.writestr(name, data)
    errors, added = _bad_and_good(_index(tmp_path / "home").add_path(archive))
    assert "nested too deeply" in errors["a_deep.json"]
    assert {"b_deep.jsonl", "c_deep_ld.html", "d_punycode.html", "e_good.txt"} <= added


def test_a_feed_whose_pages_are_hostile_is_ingested_item_by_item(tmp_path: Path,
                                                                  site: str) -> None:
    pages = {"/deep.html": _page("Deep JSON-LD", '<script type="application/ld+json">'
                                 + "[" * DEEP + "</script>"),
             "/puny.html": _page("Punycode page", '<meta charset="punycode">'),
             "/good.html": _page("Good page")}
    items = "".join(
        f"<item><title>{path}</title><link>{site}{path}</link><description>{GOOD_BODY} "
        f"{path}</description></item>" for path in pages)
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}' \
           "</channel></rss>"
    _Site.pages.update({p: ("text/html", body.encode("utf-8")) for p, body in pages.items()})
    _Site.pages["/hostile.xml"] = ("application/rss+xml", feed.encode())
    report = _index(tmp_path, allow_private_urls=True).add_url(f"{site}/hostile.xml")
    assert report.count("added") == 3, report.items


def test_a_full_disk_is_a_store_error_per_item_and_the_batch_goes_on(tmp_path: Path) -> None:
    from khabar import StoreError

    ix = _index(tmp_path)
    ix.add_articles([Article(title="First", paragraphs=[GOOD_BODY], url="https://x.test/0")])
    db = ix.store._conn()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    # Each article far larger than the room left in the file's 16 KB pages.
    articles = [Article(title=f"Story {i}", paragraphs=[f"{GOOD_BODY} Story {i}. " * 20] * 12,
                        url=f"https://x.test/{i}") for i in range(1, 4)]
    report = ix.add_articles(articles)
    assert report.count("error") == 3
    assert all("full" in i.message and "store" in i.message for i in report.errors)
    db.execute("PRAGMA max_page_count = 1073741823")
    assert ix.add_articles(articles).count("added") == 3  # nothing half-written before
    assert ix.store.check([]) == []
    with pytest.raises(StoreError):
        from khabar.store import _schema

        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        with _schema.transaction(db) as tx:
            tx.execute("INSERT INTO meta(key, value) VALUES ('filler', ?)", ("x" * 100_000,))


def test_a_locked_store_is_a_clear_store_error(tmp_path: Path) -> None:
    import sqlite3

    ix = _index(tmp_path)
    ix.store._conn().execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(ix.store.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        report = ix.add_articles([Article(title="Locked", paragraphs=[GOOD_BODY])])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert report.count("error") == 1
    assert "locked" in report.errors[0].message


ESC = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"  # set the title, clear the screen, turn red
C1 = "\x9b31m"  # the one-byte CSI of 8-bit terminals


def test_terminal_controls_never_reach_stored_text(tmp_path: Path) -> None:
    # Raw in a text file and a page, as escapes in JSON: none survives. The marks
    # Arabic needs (RLM, ALM, ZWNJ) are not controls, nor are newlines and tabs.
    arabic = "قال المسؤول\u200f إن\u061c الوضع\u200c مستقر تماما في المدينة اليوم."
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "raw.txt").write_text(f"Raw {ESC}title\n\n{GOOD_BODY} {ESC}{C1} {arabic}")
    (folder / "page.html").write_text(_page(f"Page {ESC} title").replace(
        "<p>", f"<p>{ESC}{C1} ", 1))
    (folder / "record.json").write_text(
        '{"title": "JSON \\u001b[31m title", "author": "A\\u001b[0m", "text": "'
        + "JSON story: " + GOOD_BODY + ' \\u001b[2J\\u202eevil"}')
    ix = _index(tmp_path / "home")
    report = ix.add_path(folder)
    assert report.count("added") == 3, report.items
    stored = ix.store.passages([r["id"] for r in ix.store.iter_passages()])
    texts = [p.text for p in stored.values()] + [p.title for p in stored.values()]
    for text in texts:
        assert not any(ord(c) < 32 and c not in "\n\t" for c in text), repr(text)
        assert not any(0x7F <= ord(c) < 0xA0 or c in "\u202d\u202e" for c in text), repr(text)
    from khabar.text import strip_controls

    assert strip_controls(arabic + "\r\nx\ry\tz") == arabic + "\nx\ny\tz"


def test_a_file_name_that_is_not_utf8_loses_no_article(tmp_path: Path) -> None:
    """Its name (surrogates in Python) was the article's source, which SQLite refused:
    "not stored: UnicodeEncodeError … surrogates not allowed"."""
    from tests.index.test_sources import make_tar

    folder = tmp_path / "in"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9-news.txt"), "wb") as f:
        f.write(f"Gale warning\n\n{GOOD_BODY} Gale.".encode())
    (folder / "names.tar").write_bytes(make_tar(
        {"caf\udce9-tar.txt": f"Hail warning\n\n{GOOD_BODY} Hail.".encode()}, "w"))
    ix = _index(tmp_path / "home")
    report = ix.add_path(folder)
    assert [i.status for i in report.items] == ["added", "added"], report.items
    names = [i.name for i in report.items]
    assert names == [f"{folder.as_posix()}/caf\ufffd-news.txt",
                     f"{folder.as_posix()}/names.tar!caf\ufffd-tar.txt"]
    rows = ix.store.article_rows([i.article_id for i in report.items if i.article_id])
    assert [r["source"] for r in rows] == names


def test_titles_and_outlets_are_stored_without_bidi_embeddings_or_isolates(
        tmp_path: Path) -> None:
    # A stray PDI then an RLE in a title would leave an embedding open to the end of
    # the citation line it is shown in; paragraphs lose these in cleaning, so must the
    # title and the outlets. The marks (RLM here) open nothing and stay.
    ix = _index(tmp_path)
    report = ix.add_articles([Article(
        title="Talks\u200f collapse\u2069\u202b in \u2066Geneva\u202c",
        paragraphs=[GOOD_BODY], outlets=["\u2067Reuters\u2069\u202a"])])
    assert report.count("added") == 1
    assert report.items[0].title == "Talks\u200f collapse in Geneva"
    (stored,) = ix.store.passages([r["id"] for r in ix.store.iter_passages()]).values()
    assert stored.title == "Talks\u200f collapse in Geneva"
    assert stored.outlets == ["Reuters"]
    assert [name for name, _ in ix.store.outlets()] == ["Reuters"]


class _SlowSite(http.server.BaseHTTPRequestHandler):
    """Pages that take a moment, counting how many are being served at once."""

    lock = threading.Lock()
    in_flight = 0
    most: ClassVar[list[int]] = [0]

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most[0] = max(cls.most[0], cls.in_flight)
        try:
            time.sleep(0.3)
            n = self.path.strip("/").split(".")[0]
            body = _page(f"Story {n}").replace(GOOD_BODY, f"{GOOD_BODY} Number {n}.").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def log_message(self, *args: object) -> None:
        pass


def _feed(base: str, n: int) -> bytes:
    items = "".join(f"<item><title>Story {i}</title><link>{base}/{i}.html</link>"
                    f"<description>{GOOD_BODY} Feed item {i}.</description></item>"
                    for i in range(n))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}'
            "</channel></rss>").encode()


def test_a_feeds_links_are_fetched_a_few_at_a_time(tmp_path: Path) -> None:
    from khabar.index._ingest import FEED_FETCHES

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        ix = _index(tmp_path, allow_private_urls=True)
        report = ix._add_feed(_feed(base, 12), f"{base}/feed.xml", None,
                              _fetcher(ix), True, False)
    finally:
        server.shutdown()
    assert report.count("added") == 12, report.items
    assert [i.name for i in report.items] == [f"{base}/{i}.html" for i in range(12)]
    assert 1 < _SlowSite.most[0] <= FEED_FETCHES


def _fetcher(ix: Index) -> object:
    from khabar.index._fetch import Fetcher

    return Fetcher(ix.settings)


def test_a_feed_is_read_up_to_its_entry_cap(tmp_path: Path) -> None:
    from khabar.index._ingest import MAX_FEED_ENTRIES

    ix = _index(tmp_path)
    report = ix._add_feed(_feed("https://x.test", MAX_FEED_ENTRIES + 50),
                          "https://x.test/feed.xml", None, _fetcher(ix), False, False)
    assert report.count("added") == MAX_FEED_ENTRIES


def _stories(n: int) -> list[Article]:
    return [Article(title=f"Story {i}", url=f"https://x.test/{i}",
                    paragraphs=[f"Story number {i} tells of event {i} in town {i}."])
            for i in range(n)]


def test_a_batch_that_fails_after_storing_reports_its_articles_added(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ix = _index(tmp_path)
    real = ix.store.put_many

    def stored_then_failed(news, **kw):  # e.g. the old versions' cleanup after the commit
        real(news, **kw)
        raise RuntimeError("connection lost after the commit")

    monkeypatch.setattr(ix.store, "put_many", stored_then_failed)
    report = ix.add_articles(_stories(3))
    assert [r.status for r in report.items] == ["added"] * 3  # never "unchanged"
    assert ix.store.count_articles() == 3


def test_a_store_wide_failure_is_reported_not_waited_out_once_an_article(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ix = _index(tmp_path)
    puts = []

    def down(*args, **kw):
        puts.append(1)
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(ix.store, "put_many", down)
    monkeypatch.setattr(ix.store, "put", down)
    report = ix.add_articles(_stories(10))
    assert [r.status for r in report.items] == ["error"] * 10
    assert all("unreachable" in r.message for r in report.items)
    assert len(puts) == 1 + 2  # the batch, then two lone puts in a row


def test_one_article_failing_in_a_batch_loses_none_of_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ix = _index(tmp_path)
    real = ix.store.put

    def one_bad(new, **kw):
        if new.article.title == "Story 2":
            raise ValueError("a vector of the wrong width")
        return real(new, **kw)

    monkeypatch.setattr(ix.store, "put", one_bad)  # SQLite's put_many puts each
    report = ix.add_articles(_stories(5))
    assert [r.status for r in report.items] == ["added", "added", "error", "added", "added"]
    assert "wrong width" in report.items[2].message
