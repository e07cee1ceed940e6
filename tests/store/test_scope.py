"""A chat's scope: the shared archive and its own additions, never another chat's."""

from __future__ import annotations

from pathlib import Path

import pytest
from khabar.index import Article, Index
from khabar.retrieval._lexical import LexicalIndex

from khabar import Settings
from khabar.store import Excluding
from tests.fakes import HashEncoder
from tests.store._data import open_index


def _article(n: int, outlet: str) -> Article:
    return Article(title=f"Story {n}", url=f"https://wire.test/{n}", lang="en",
                   outlets=[outlet], paragraphs=[f"Story number {n} is about the harvest "
                                                 f"of the year {2000 + n} in the valley."])


def test_scope_hides_other_chats_additions_only(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    store = ix.store
    ix.add_articles([_article(1, "Wire")])  # the CLI's: shared
    ix.add_articles([_article(2, "Desk")], origin="operator:9")  # shared
    ix.add_articles([_article(3, "Mine")], origin="chat:-100")
    # While no other chat has anything of its own, a scope filters nothing.
    assert store.passage_filter(scope="chat:-100") is None
    ix.add_articles([_article(4, "Theirs")], origin="chat:-200")
    ix.add_articles([_article(5, "Theirs")], origin="chat:-1000")  # sorts between them
    by_article = {p.article_id: pid for pid, p in
                  store.passages([r["id"] for r in store.iter_passages()]).items()}
    ids = {a.id: a.title for a in store.articles_in()}
    seen = store.passage_filter(scope="chat:-100")
    # Only the few passages it hides are read, never a set of all it shows.
    assert isinstance(seen, Excluding)
    assert {ids[a] for a, pid in by_article.items() if pid in seen.ids} == \
        {"Story 4", "Story 5"}
    assert {ids[a] for a, pid in by_article.items() if pid in seen} == \
        {"Story 1", "Story 2", "Story 3"}
    q = HashEncoder().embed_queries(["the harvest in the valley"])[0]
    assert {pid for pid, _ in store.search("e5", "en", q, 10, seen)} == \
        {pid for pid in by_article.values() if pid in seen}
    assert {a.title for a in store.articles_in(scope="chat:-200")} == \
        {"Story 1", "Story 2", "Story 4"}
    assert dict(store.outlets(scope="chat:-100")) == {"Wire": 1, "Desk": 1, "Mine": 1}
    assert dict(store.outlets(scope="chat:-200")) == {"Wire": 1, "Desk": 1, "Theirs": 1}
    assert dict(store.outlets()) == {"Wire": 1, "Desk": 1, "Mine": 1, "Theirs": 2}
    # A private chat with nothing of its own sees the shared archive.
    assert {a.title for a in store.articles_in(scope="chat:5")} == {"Story 1", "Story 2"}
    ix.close()


def test_a_chats_text_added_again_to_the_shared_archive_is_shared(tmp_path: Path) -> None:
    ix = open_index(tmp_path)
    ix.add_articles([_article(1, "Wire")], origin="chat:-100")
    again = _article(1, "Wire")
    again.url = "https://elsewhere.test/1"  # the same text under another URL
    assert ix.add_articles([again], origin="operator:9").count("duplicate") == 1
    assert {a.title for a in ix.store.articles_in(scope="chat:-200")} == {"Story 1"}
    # Another chat's copy of it does not take it from the shared archive.
    assert ix.add_articles([_article(1, "Wire")], origin="chat:-200").count("unchanged") == 1
    assert ix.store.article_ids(origin="operator:9")
    ix.close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_scope_searches_as_the_set_of_what_it_shows_would(tmp_path: Path, kind: str) -> None:
    # Excluding other chats' passages finds what today's set of every visible passage
    # found, in the saved index (HNSW: with deleted ids still in the graph), in the
    # recent additions beside it, and in BM25.
    ix = Index.open(Settings(home=tmp_path, index_type=kind), encoders=[HashEncoder()])
    origins = [None, "chat:-100", "chat:-200", "operator:9", "chat:-1000"]
    added = [ix.add_articles([_article(n, "Wire")], origin=origins[n % 5]).items[0].article_id
             for n in range(40)]
    store = ix.store
    assert store._faiss.save(force=True)  # into the graph: deletions stay in it, marked
    store.delete_articles([added[0], added[2], added[7]])
    for n in range(40, 50):  # recent additions, beside the saved index
        ix.add_articles([_article(n, "Wire")], origin=origins[n % 5])
    index = store._faiss.by_space["e5"]
    assert index.fresh["en"].ntotal == 10
    if kind == "hnsw":
        assert index.deleted["en"]
    hidden = store.passage_filter(scope="chat:-100")
    assert isinstance(hidden, Excluding)
    shown = {r[0] for r in store._conn().execute(
        "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id WHERE"
        " a.origin IS NULL OR a.origin NOT LIKE 'chat:%' OR a.origin = 'chat:-100'")}
    assert len(shown) == 30 - 1 and hidden.ids.isdisjoint(shown)  # article 0 deleted
    lexical = LexicalIndex(store)
    for text in ["harvest of the year 2013 in the valley", "Story number 21", "valley"]:
        q = HashEncoder().embed_queries([text])[0]
        got = store.search("e5", "en", q, 50, hidden)
        assert got == store.search("e5", "en", q, 50, shown)
        assert {pid for pid, _ in got} <= shown and len(got) == len(shown)
        assert lexical.search("en", text, 50, hidden) == lexical.search("en", text, 50, shown)
    ix.close()

