"""``khabar migrate``: an archive copied between backends without embedding again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from khabar.index import Article, Index

from khabar import Settings
from khabar.store import Excluding, MilvusStore, Store
from khabar.store._migrate import migrate
from tests.fakes import HashEncoder
from tests.store._data import BODY, EXTRA, FOOTBALL, THIRD


def _texts(store) -> dict[str, tuple[str, list[str], str | None]]:  # type: ignore[no-untyped-def]
    ids = [a.id for a in store.articles_in()]
    out = {}
    for a in store.articles_in():
        rows = {r["id"]: r for r in store.article_rows(ids)}
        out[a.url] = ([p.text for p in store.article_passages([a.id])], a.outlets,
                      rows[a.id]["origin"])
    return out


def test_sqlite_to_milvus_and_back_keeps_everything_and_resumes(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path / "a"), encoders=[HashEncoder()])
    ix.add_articles([
        Article(title="Strikes", paragraphs=[*BODY, THIRD], url="https://a.test/1",
                outlets=["Reuters", "AFP"], lang="en"),
        Article(title="Football", paragraphs=[FOOTBALL], url="https://a.test/2",
                outlets=["BBC"], lang="en"),
        Article(title="غزة", paragraphs=["أعلنت الحكومة وقف إطلاق النار في غزة مساء الأحد."],
                url="https://a.test/3", outlets=["الجزيرة"], lang="ar")])
    ix.add_articles([Article(title="Ours", paragraphs=[EXTRA], url="https://a.test/4",
                             outlets=["Desk"], lang="en")], origin="chat:-100")
    source = ix.store
    milvus = MilvusStore(str(tmp_path / "m" / "khabar.db"), cache=tmp_path / "cache")

    report = migrate(source, milvus)
    assert report.counts == {"added": 4} and report.ok, report
    assert _texts(milvus) == _texts(source)
    # Ids and ingest dates kept: citations by id hold, undated articles keep their day.
    assert _ids_and_dates(milvus) == _ids_and_dates(source)
    assert milvus.count_passages() == source.count_passages()
    assert milvus.count_sentence_vectors() == source.count_sentence_vectors()
    # The vectors went as stored (float16 in SQLite): the same passage finds itself.
    for sp in source.article_passages([a.id for a in source.articles_in()]):
        [mp] = [p for p in milvus.passages(
            [pid for pid, _ in milvus.search("e5", sp.lang, source.vectors("e5", [sp.id])
                                             [sp.id], 1)]).values()]
        assert mp.text == sp.text
        assert np.allclose(milvus.vectors("e5", [mp.id])[mp.id],
                           source.vectors("e5", [sp.id])[sp.id])
    hidden = milvus.passage_filter(scope="chat:-200")  # the other chat's passages
    assert isinstance(hidden, Excluding)
    assert hidden.ids == {
        p.id for p in milvus.article_passages([a.id for a in milvus.articles_in()])
        if p.url == "https://a.test/4"}

    # Again (as after a stop): nothing written twice.
    again = migrate(source, milvus)
    assert again.counts == {"unchanged": 4} and again.ok
    assert milvus.count_articles() == 4

    back = Store(tmp_path / "b")
    report = migrate(milvus, back)
    assert report.counts == {"added": 4} and report.ok, report
    assert _texts(back) == _texts(source)
    assert _ids_and_dates(back) == _ids_and_dates(source)
    assert back.check(list(source.spaces().values())) == []


def _ids_and_dates(store) -> list[tuple]:  # type: ignore[no-untyped-def]
    arts = store.articles_in()
    return [(a.id, a.ingested, a.when, [p.id for p in store.article_passages([a.id])])
            for a in arts]


def test_a_copy_into_a_store_with_articles_of_its_own_takes_its_ids(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path / "a"), encoders=[HashEncoder()])
    ix.add_articles([Article(title="Old", paragraphs=[FOOTBALL], url="https://a.test/1",
                             lang="en")])
    mine = Index.open(Settings(home=tmp_path / "c", store=f"milvus-lite://{tmp_path}/m2.db"),
                      encoders=[HashEncoder()])
    mine.add_articles([Article(title="Mine", paragraphs=[*BODY, THIRD], url="https://b.test/1",
                               lang="en")])
    report = migrate(ix.store, mine.store)
    assert report.counts == {"added": 1} and report.ok
    ids = sorted(a.id for a in mine.store.articles_in())
    assert ids == [1, 2]  # its own id after its own article, not the source's 1
    [old] = [a for a in mine.store.articles_in() if a.title == "Old"]
    assert old.ingested == ix.store.articles_in()[0].ingested  # the date is kept all the same
    assert [p.id for p in mine.store.article_passages([old.id])] == [4]
    mine.close()
    ix.close()
