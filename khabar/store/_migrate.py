"""Copy an archive to another store (SQLite <-> Milvus) without embedding anything again.

Article by article, oldest first: its row, its passages and every stored vector (passage
and sentence vectors) read from the source and put into the target, a batch at a time
(``put_many``), so each lands whole or not at all (``put``'s own guarantee). Resumable:
an article the target already holds (same URL and text, or the same text) is
``unchanged`` or a ``duplicate`` there and writes nothing, so running it again after a
stop goes on where it stopped. Article and passage ids and ingest dates are kept (an
undated article stays on the day it was ingested, and citations by id still hold)
wherever they are above every id the target has given, as they are into a new store;
into one that has articles of its own, ids are the target's. Near-duplicate links are
made again by the target's ``put``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from khabar._errors import StoreError

from ._base import ArchiveStore
from ._schema import parse_iso
from ._types import Article, Chunk
from ._write import Kept, NewArticle


@dataclass
class MigrateReport:
    counts: dict[str, int] = field(default_factory=dict)  # put status -> articles
    source_faults: list[str] = field(default_factory=list)
    target_faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.source_faults or self.target_faults)


def migrate(source: ArchiveStore, target: ArchiveStore, *, batch: int = 64,
            progress: Callable[[int, int], None] | None = None) -> MigrateReport:
    """Copy every article of ``source`` into ``target``; then ``check`` both."""
    spaces = list(source.spaces().values())
    if not spaces:
        return MigrateReport(target_faults=target.check())
    target.bind_spaces(spaces)  # refuses another model's vectors (ModelMismatchError)
    report = MigrateReport()
    articles = sorted(source.articles_in(), key=lambda a: a.id)
    for start in range(0, len(articles), batch):
        ids = [a.id for a in articles[start:start + batch]]
        rows = {int(r["id"]): r for r in source.article_rows(ids)}
        passages = source.article_passages(ids)
        pids = [p.id for p in passages]
        vectors = {s.name: source.vectors(s.name, pids) for s in spaces}
        sentences = {s.name: source.sentence_vectors(s.name, pids) for s in spaces}
        by_article: dict[int, list[int]] = {}
        for i, p in enumerate(passages):
            by_article.setdefault(p.article_id, []).append(i)
        news = []
        for aid in ids:
            row, idx = rows.get(aid), by_article.get(aid, [])
            if row is None or not idx:
                continue  # deleted meanwhile
            news.append(_copy(row, [passages[i] for i in idx], vectors, sentences))
        for result in target.put_many(news):  # on Milvus one writer's turn, one commit
            if isinstance(result, StoreError):
                raise result
            report.counts[result.status] = report.counts.get(result.status, 0) + 1
        target.flush()
        if progress:
            progress(min(start + batch, len(articles)), len(articles))
    report.source_faults = source.check()
    report.target_faults = target.check(spaces)
    return report


def _copy(row: dict, passages: list, vectors: dict[str, dict], sentences: dict[str, dict]
          ) -> NewArticle:
    first = passages[0]
    art = Article(title=row["title"], paragraphs=[p.text for p in passages],
                  outlets=list(first.outlets), url=row.get("url") or None,
                  published=parse_iso(row.get("published") or None),
                  author=row.get("author") or None, lang=row.get("lang") or None,
                  section=row.get("section") or None,
                  tags=json.loads(row.get("tags") or "[]"),
                  source=row.get("source") or None, site_name=row.get("site_name") or None)
    chunks = [Chunk(p.position, p.text, p.lang) for p in passages]
    vecs: dict[str, np.ndarray] = {}
    for space, got in vectors.items():
        missing = [p.id for p in passages if p.id not in got]
        if missing:
            raise StoreError(f"passage {missing[0]} has no {space} vector: run "
                             "`khabar check` on the source")
        vecs[space] = np.stack([got[p.id] for p in passages])
    sents = {space: [got[p.id] for p in passages] for space, got in sentences.items()
             if all(p.id in got for p in passages)}
    ingested = parse_iso(row.get("ingested") or None)
    kept = Kept(int(row["id"]), tuple(p.id for p in passages), ingested) if ingested else None
    return NewArticle(art, chunks, vecs, str(row["content_hash"]),
                      origin=row.get("origin") or None, sentence_vectors=sents, kept=kept)
