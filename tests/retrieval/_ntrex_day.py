"""NTREX documents as one day's news: each document's English text and its human
Arabic translation, an hour apart document by document, the Arabic half an hour after
the English (shared by the event tests of summaries)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from khabar.index import Article, Index
from khabar.retrieval import Summary, timeline

from khabar import Settings
from khabar.model import Encoder
from tests.conftest import share_models


def ntrex_day(fixture: Path, now: datetime,
              outlet: Callable[[str], str] = lambda name: name) -> list[Article]:
    """The fixture's documents as articles; ``outlet`` names an outlet from the
    document id's prefix (``bbc`` of ``bbc.381647``)."""
    out = []
    for k, doc in enumerate(json.loads(fixture.read_text(encoding="utf-8"))["documents"]):
        name = outlet(doc["id"].rsplit(".", 1)[0])
        when = now - timedelta(hours=10 - k)
        for lang, label, delay in (("en", name, 0), ("ar", f"{name} عربي", 30)):
            lines = doc[lang]
            out.append(Article(title=lines[0], paragraphs=lines[1:], outlets=[label],
                               url=f"https://news.example/{doc['id']}/{lang}",
                               published=when + timedelta(minutes=delay), lang=lang))
    return out


def ntrex_index(home: Path, models: Path, encoders: list[Encoder], articles: list[Article],
                added: int) -> Index:
    """``articles`` indexed in a fresh store at ``home`` (``models`` shared), all
    ``added``."""
    ix = Index.open(Settings(home=share_models(home, models)), encoders=encoders)
    report = ix.add_articles(articles)
    assert report.count("added") == added, report.summary()
    return ix


def story_docs(index: Index, summary: Summary) -> list[set[str]]:
    """Each story of ``summary`` as the NTREX document ids of its versions."""
    return [{(e.url or "").split("/")[3] for e in timeline(index, s)} for s in summary.stories]
