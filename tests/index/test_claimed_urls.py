"""Issue 13, item 2: an article is cited only by a URL of the site it came from, and
only the origin that added an article may replace it (over real HTTP, a real store)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from khabar.index import Article, Index
from khabar.index._site import own_url, site_of

from khabar import Settings
from tests.fakes import HashEncoder
from tests.index.test_ingest import _Site  # the local site both tests serve

FIXTURES = Path(__file__).parent / "fixtures"
REUTERS = "https://www.reuters.com/markets/central-bank-holds-rates-2024-03-20/"


def _index(home: Path) -> Index:
    return Index.open(Settings(home=home, allow_private_urls=True), encoders=[HashEncoder()])


@pytest.fixture
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    spoof = (FIXTURES / "article_en.html").read_bytes()  # canonical: reuters.com
    own = spoof.replace(REUTERS.encode(), f"{base}/canonical.html".encode())
    entries = "".join(
        f"<item><title>Story {n}</title><link>https://www.bbc.co.uk/news/{n}</link>"
        f"<description>The feed's own words for story {n} are long enough to stand as a"
        f" passage of their own, about harvest number {n} in the valley.</description></item>"
        for n in (1, 2))
    feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Spoof Wire</title>'
            f"<link>{base}/</link><description>d</description>{entries}</channel></rss>")
    _Site.pages = {"/spoof.html": ("text/html; charset=utf-8", spoof),
                   "/own.html": ("text/html; charset=utf-8", own),
                   "/feed.xml": ("application/rss+xml", feed.encode())}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def test_registrable_domains_from_the_bundled_public_suffix_list() -> None:
    assert site_of("https://news.bbc.co.uk/a") == site_of("https://www.bbc.co.uk/b")
    assert site_of("https://a.github.io/") != site_of("https://b.github.io/")  # private suffix
    assert site_of("https://evil.co.uk/") != site_of("https://bbc.co.uk/")
    assert site_of("http://127.0.0.1:8000/x") == "127.0.0.1"
    assert own_url(REUTERS, "http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"
    assert own_url("https://reuters.com/a", "https://www.reuters.com/b") == \
        "https://reuters.com/a"
    assert own_url("javascript:alert(1)", "https://x.com/a") == "https://x.com/a"


def test_a_canonical_link_off_the_fetched_site_is_not_the_citation(tmp_path: Path,
                                                                   site: str) -> None:
    ix = _index(tmp_path)
    assert ix.add_url(f"{site}/spoof.html").count("added") == 1
    assert ix.store.article_ids(url=f"{site}/spoof.html")
    assert not ix.store.article_ids(url=REUTERS)
    ix.store.clear()
    # On its own site the canonical link is kept.
    assert ix.add_url(f"{site}/own.html").count("added") == 1
    assert ix.store.article_ids(url=f"{site}/canonical.html")


def test_a_feed_cannot_file_its_text_under_another_sites_links(tmp_path: Path,
                                                               site: str) -> None:
    ix = _index(tmp_path)
    report = ix.add_url(f"{site}/feed.xml", follow_feed_links=False)
    assert report.count("added") == 2, report.items
    rows = [ix.store.passages([r["id"]]) for r in ix.store.iter_passages()]
    cited = {p.url for found in rows for p in found.values()}
    assert len(cited) == 2 and all(u and u.startswith(f"{site}/feed.xml#entry-")
                                   for u in cited), cited
    # Read again: the same two anchors, unchanged (no entry replaced another).
    assert ix.add_url(f"{site}/feed.xml", follow_feed_links=False).count("unchanged") == 2


def _article(text: str) -> Article:
    return Article(title="Rates", paragraphs=[text], url="https://wire.test/rates",
                   lang="en", outlets=["Wire"])


def test_only_the_origin_that_added_an_article_replaces_it(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    first = ix.add_articles([_article("The central bank held its main rate at five.")],
                            origin="chat:-100")
    (kept,) = ix.store.article_ids(url="https://wire.test/rates")
    other = ix.add_articles([_article("The central bank slashed rates to zero today.")],
                            origin="chat:-200")
    assert first.count("added") == 1
    assert other.count("error") == 1 and "already indexed" in other.errors[0].message
    assert ix.store.article_ids(url="https://wire.test/rates", origin="chat:-100") == [kept]
    assert ix.store.count_articles() == 1
    same = ix.add_articles([_article("The central bank held its main rate at four.")],
                           origin="chat:-100")
    (item,) = same.items
    assert item.status == "replaced" and item.message == f"replaced article {kept} " \
        "(same URL, same source)"
    assert ix.store.article_ids(url="https://wire.test/rates", origin="chat:-100") != [kept]


def test_a_document_given_in_a_chat_claims_no_url(tmp_path: Path) -> None:
    # An uploaded page has no fetched site to check its canonical link against: given
    # in a chat (whose writer may be the group's own admin), it is cited without a link,
    # so it can neither pose as reuters.com nor hold that URL against the newsroom.
    ix = _index(tmp_path / "home")
    spoof = (FIXTURES / "article_en.html").read_bytes()  # canonical: reuters.com
    report = ix.add_bytes(spoof, "page.html", "text/html", origin="chat:-100")
    assert report.count("added") == 1
    stored = ix.store.articles_in()
    assert [a.url for a in stored] == [None] and stored[0].title
    assert ix.store.find_article(url=REUTERS) is None
    # An operator's upload to the shared archive keeps it: operators are trusted.
    shared = _index(tmp_path / "shared")
    shared.add_bytes(spoof, "page.html", "text/html", origin="operator:1")
    assert [a.url for a in shared.store.articles_in()] == [REUTERS]
    ix.close()
    shared.close()
