"""A question's filters in each backend's own form: SQLite hands over the matching ids;
Milvus the ids while they are few, else its boolean expression (``Matching``), which
must select exactly the same passages, in a search, in BM25 and among candidates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from khabar.index import Article
from khabar.retrieval._lexical import LexicalIndex

import khabar.store._milvus as milvus_module
from khabar.store import Excluding, Matching, allowed_among
from tests.fakes import HashEncoder
from tests.store._data import open_index

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _article(n: int, outlet: str, lang: str, published: datetime | None) -> Article:
    text = (f"Story number {n} is about the harvest of the year {2000 + n} in the valley."
            if lang == "en" else f"القصة رقم {n} عن حصاد العام {2000 + n} في الوادي والقرية.")
    return Article(title=f"Story {n}", url=f"https://wire.test/{n}", lang=lang,
                   outlets=[outlet], paragraphs=[text], published=published)


FILTERS: list[dict[str, Any]] = [
    {"outlets": ["wire"]},
    {"outlets": ["Desk", "nobody"]},
    {"since": DAY},
    {"until": DAY},
    {"since": DAY, "until": datetime(2026, 3, 3, tzinfo=UTC), "outlets": ["WIRE"]},
    {"langs": ["ar"]},
    {"origin": "chat:-100"},
    {"scope": "chat:-100", "langs": ["en"]},
    {"outlets": ["nobody"]},
]


def test_every_filter_selects_the_same_passages_as_ids_or_as_an_expression(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_backend: str) -> None:
    ix = open_index(tmp_path)
    store = ix.store
    for n in range(12):
        origin = {3: "chat:-100", 4: "chat:-200", 5: "chat:-200"}.get(n)
        when = None if n % 5 == 0 else datetime(2026, 2, 27 + n % 4, tzinfo=UTC) \
            if n % 4 < 2 else datetime(2026, 3, n % 4, tzinfo=UTC)
        ix.add_articles([_article(n, ["Wire", "Desk", "Post"][n % 3], "ar" if n % 4 == 3
                                  else "en", when)], origin=origin)
    ids = [r["id"] for r in store.iter_passages()]
    passages = store.passages(ids)
    arts = {a.id: a for a in store.articles_in()}
    q = HashEncoder().embed_queries(["the harvest in the valley"])[0]
    lexical = LexicalIndex(store)
    for f in FILTERS:
        listed = store.passage_filter(**f)
        assert isinstance(listed, set), f  # a dozen passages: their ids
        # What the filter means, from the passages' own fields.
        expected = set()
        for pid, p in passages.items():
            a = arts[p.article_id]
            ok = (not f.get("outlets") or {o.lower() for o in a.outlets}
                  & {o.lower() for o in f["outlets"]})
            ok = ok and (not f.get("since") or (p.published and p.published >= f["since"]))
            ok = ok and (not f.get("until") or (p.published and p.published < f["until"]))
            ok = ok and (not f.get("langs") or p.lang in f["langs"])
            ok = ok and (not f.get("origin") or f["origin"] == _origin(store, a.id))
            if f.get("scope"):
                ok = ok and _origin(store, a.id) in (None, f["scope"])
            if ok:
                expected.add(pid)
        assert listed == expected, f
        if store_backend != "milvus-lite":
            continue
        monkeypatch.setattr(milvus_module, "SMALL", 0)  # every filter an expression
        matching = store.passage_filter(**f)
        monkeypatch.undo()
        if not expected:
            assert matching == set()  # nothing matches: said at once
            continue
        assert isinstance(matching, Matching), f
        assert matching.ids() == expected
        assert allowed_among(matching, ids) == expected
        assert matching.among(ids[:3]) == expected & set(ids[:3])
        for lang in ("en", "ar"):
            by_ids = store.search("e5", lang, q, 20, listed)
            by_expr = store.search("e5", lang, q, 20, matching)
            assert by_expr == by_ids and {pid for pid, _ in by_expr} <= expected, (f, lang)
            assert lexical.search(lang, "harvest valley حصاد الوادي", 3, matching) == \
                lexical.search(lang, "harvest valley حصاد الوادي", 3, listed), (f, lang)
    ix.close()


def test_a_scope_alone_is_an_expression_when_other_chats_hide_many(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_backend: str) -> None:
    ix = open_index(tmp_path)
    store = ix.store
    ix.add_articles([_article(1, "Wire", "en", DAY)])
    ix.add_articles([_article(2, "Wire", "en", DAY)], origin="chat:-100")
    ix.add_articles([_article(3, "Wire", "en", DAY)], origin="chat:-200")
    few = store.passage_filter(scope="chat:-100")
    assert isinstance(few, Excluding) and len(few.ids) == 1
    if store_backend == "milvus-lite":
        monkeypatch.setattr(milvus_module, "SMALL", 0)
        many = store.passage_filter(scope="chat:-100")
        assert isinstance(many, Matching)
        every = [r["id"] for r in store.iter_passages()]
        assert many.among(every) == {p for p in every if p not in few.ids}
        q = HashEncoder().embed_queries(["the harvest in the valley"])[0]
        assert store.search("e5", "en", q, 5, many) == store.search("e5", "en", q, 5, few)
    ix.close()


def _origin(store: Any, article_id: int) -> str | None:
    rows = store.article_rows([article_id])
    return rows[0]["origin"] if rows else None
