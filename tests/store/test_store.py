"""The store with a deterministic encoder: atomic puts, dedup, deletes, integrity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from khabar.index import Article, Index

from khabar import ModelMismatchError, Settings
from khabar.store import Store
from khabar.text import passage_sentences
from tests.fakes import HashEncoder


def _index(home: Path, encoders=None) -> Index:
    return Index.open(Settings(home=home), encoders=encoders or [HashEncoder()])


def _article(title: str, body: list[str], url: str | None = None, outlets=("Reuters",),
             published: datetime | None = None) -> Article:
    return Article(title=title, paragraphs=body, outlets=list(outlets), url=url,
                   published=published, lang="en")


BODY = ["The army said on Wednesday that it struck targets near the northern city, "
        "according to two officials.",
        "Officials said the strikes would continue despite the warnings from abroad and "
        "the protests at home."]


THIRD = "A third paragraph was added to the story later in the day by the editors on the desk."
EXTRA = "An extra local paragraph about the reaction of residents in the region and the mayor."
FOOTBALL = "Completely different words about football games, league tables and the transfers."


def test_put_search_and_reopen(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    r = ix.add_articles([_article("Strikes", BODY, url="https://x.test/a")])
    assert r.count("added") == 1 and r.passages == 2
    q = ix.model.embed_queries(["strikes continue warnings"])[0]
    hits = ix.store.search("e5", "en", q, 2)
    assert len(hits) == 2
    best = ix.store.passages([hits[0][0]])[hits[0][0]]
    assert "continue" in best.text and best.outlets == ["Reuters"]
    ix.close()
    # A second process (here: a second Store) sees the same, from the saved files.
    again = _index(tmp_path)
    assert again.store.search("e5", "en", q, 1)[0][0] == hits[0][0]
    assert again.store.check([]) == []


def test_same_url_unchanged_or_replaced_and_same_text_duplicate(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    a = _article("Strikes", BODY, url="https://x.test/a")
    assert ix.add_articles([a]).count("added") == 1
    assert ix.add_articles([a]).count("unchanged") == 1
    changed = _article("Strikes", [*BODY, THIRD],
                       url="https://x.test/a")
    assert ix.add_articles([changed]).count("replaced") == 1
    assert ix.store.count_articles() == 1 and ix.store.count_passages() == 3
    copy = _article("Strikes", [*BODY, THIRD],
                    url="https://y.test/copy", outlets=("AFP",))
    assert ix.add_articles([copy]).count("duplicate") == 1
    assert ix.store.check([]) == []


def test_near_duplicate_passages_are_linked(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([_article("Strikes", BODY, url="https://a.test/1")])
    # Syndicated copy: same paragraphs, other headline and outlet.
    ix.add_articles([_article("Air strikes go on", [*BODY, EXTRA],
                              url="https://b.test/2", outlets=("AFP",))])
    stats = ix.store.stats()
    assert stats["linked_duplicates"] == 2
    pid = next(r["id"] for r in ix.store.iter_passages() if r["dup_of"])
    group = ix.store.duplicate_groups([pid])[pid]
    assert len(group) == 2


def test_delete_by_outlet_and_date(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    old = datetime(2015, 9, 30, tzinfo=UTC)
    new = datetime(2024, 1, 2, tzinfo=UTC)
    ix.add_articles([_article("Old", BODY, url="https://a.test/old", published=old),
                     _article("New", [FOOTBALL],
                              url="https://a.test/new", outlets=("BBC",), published=new)])
    assert ix.store.delete_articles(ix.store.article_ids(before=datetime(2020, 1, 1,
                                                                         tzinfo=UTC))) == 1
    assert [a for a, _ in ix.store.outlets()] == ["BBC"]
    assert ix.store.delete_articles(ix.store.article_ids(outlet="bbc")) == 1
    assert ix.store.count_passages() == 0
    assert ix.store.check([]) == []
    q = ix.model.embed_queries(["football"])[0]
    assert ix.store.search("e5", "en", q, 5) == []


def test_other_model_is_refused(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([_article("Strikes", BODY)])
    ix.close()
    with pytest.raises(ModelMismatchError, match="khabar reindex"):
        _index(tmp_path, encoders=[HashEncoder(dim=32, name="other")])


def test_stale_faiss_files_are_rebuilt(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([_article("Strikes", BODY)])
    ix.close()
    # Simulate a crash after the SQLite commit but before the FAISS save.
    state = tmp_path / "store" / "faiss" / "state.json"
    state.write_text('{"generation": -5, "spaces": {}}')
    store = Store(tmp_path / "store")
    assert store.check([]) == []
    q = HashEncoder().embed_queries(["strikes"])[0]
    assert store.search("e5", "en", q, 1)


def test_filters_restrict_search(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([
        _article("A", BODY, url="https://a.test/1", outlets=("Reuters",),
                 published=datetime(2015, 9, 30, tzinfo=UTC)),
        _article("B", ["Strikes near the northern city were reported by another agency on "
                  "Monday, citing witnesses."],
                 url="https://a.test/2", outlets=("AFP",),
                 published=datetime(2015, 10, 5, tzinfo=UTC)),
    ])
    allowed = ix.store.passage_filter(outlets=["afp"])
    q = ix.model.embed_queries(["strikes northern city"])[0]
    hits = ix.store.search("e5", "en", q, 5, allowed)
    assert {ix.store.passages([h])[h].title for h, _ in hits} == {"B"}
    allowed = ix.store.passage_filter(since=datetime(2015, 10, 1, tzinfo=UTC))
    assert len(allowed or ()) == 1
    assert np.isfinite(hits[0][1])


def test_sentence_vectors_are_stored_per_passage_and_go_with_it(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    two = ("The army said on Wednesday that it struck targets near the city. "
           "Officials said the strikes would continue despite the warnings.")
    ix.add_articles([_article("Strikes", [two, EXTRA], url="https://x.test/a")])
    rows = {r["text"]: r["id"] for r in ix.store.iter_passages()}
    mats = ix.store.sentence_vectors("e5", list(rows.values()))
    enc = ix.model
    for text, pid in rows.items():
        sents = passage_sentences(text)
        assert mats[pid].shape == (len(sents), enc.dim)
        # float16 on disk: cosines move by less than 1e-3
        assert np.allclose(mats[pid], enc.embed_passages(sents), atol=1e-3)
    assert len(mats[rows[two]]) == 2 and len(mats[rows[EXTRA]]) == 1
    assert ix.store.check([]) == []
    ix.store.delete_articles(ix.store.article_ids())
    assert ix.store.sentence_vectors("e5", list(rows.values())) == {}


def test_check_reports_passages_missing_sentence_vectors(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    ix.add_articles([_article("Strikes", BODY, url="https://x.test/a")])
    pid = next(ix.store.iter_passages())["id"]
    ix.store._conn().execute("DELETE FROM sentence_vectors WHERE passage_id = ?", (pid,))
    assert any("no e5 sentence vectors" in f for f in ix.store.check([]))


def test_sentence_vectors_can_be_turned_off(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path, sentence_vectors=False), encoders=[HashEncoder()])
    ix.add_articles([_article("Strikes", BODY, url="https://x.test/a")])
    assert ix.store.count_sentence_vectors() == {}
    assert ix.store.check([]) == []  # none at all is a choice, not a fault


def test_articles_of_a_period_with_their_passages(tmp_path: Path) -> None:
    ix = _index(tmp_path)
    day = lambda d: datetime(2024, 3, d, 12, tzinfo=UTC)  # noqa: E731
    ix.add_articles([_article("Early", BODY, url="https://x.test/1", published=day(1)),
                     _article("Later", [THIRD, EXTRA], url="https://x.test/2",
                              outlets=("AFP",), published=day(5)),
                     _article("Undated", [FOOTBALL], url="https://x.test/3")])
    found = ix.store.articles_in(since=day(2), until=day(10))
    assert [(a.title, a.outlets, a.when) for a in found] == [("Later", ["AFP"], day(5))]
    # Undated articles count by their ingest date: today, not March 2024.
    assert [a.title for a in ix.store.articles_in()] == ["Early", "Later", "Undated"]
    assert [a.title for a in ix.store.articles_in(outlets=["afp"])] == ["Later"]
    passages = ix.store.article_passages([found[0].id])
    assert [p.text for p in passages] == [THIRD, EXTRA] and passages[0].dup_of is None


def test_sentence_vectors_added_to_the_passages_that_lack_them(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path, sentence_vectors=False), encoders=[HashEncoder()])
    ix.add_articles([_article("Strikes", BODY, url="https://x.test/a")])
    missing = ix.store.passages_without_sentence_vectors("e5")
    assert [text for _, text in missing] == BODY
    ix.store.add_sentence_vectors("e5", [(missing[0][0], np.ones((2, 64), np.float32))])
    assert [pid for pid, _ in ix.store.passages_without_sentence_vectors("e5")] == [missing[1][0]]
    assert any("sentence vectors" in f for f in ix.store.check([]))  # half done is a fault
