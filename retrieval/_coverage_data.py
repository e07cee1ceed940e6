"""Reading a period's articles, passages and vectors out of the store.

The Store has no query for "articles of a period with their passages", so these
are read-only SQL queries on its connection, kept in this one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from index import Store

_SEP = "\x1f"
_OUTLETS = ("(SELECT group_concat(o.name, char(31)) FROM article_outlets ao"
            " JOIN outlets o ON o.id = ao.outlet_id WHERE ao.article_id = a.id) AS outlets")


@dataclass
class Passage:
    id: int
    position: int
    text: str
    lang: str
    root: int  # its near-duplicate group: the passage it copies, or itself
    vecs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Doc:
    """An article of the period, with the passages that passed the filters."""

    id: int
    title: str
    url: str | None
    published: datetime | None
    ingested: datetime
    lang: str | None
    n_passages: int
    outlets: list[str]
    passages: list[Passage] = field(default_factory=list)
    vecs: dict[str, np.ndarray] = field(default_factory=dict)  # mean of its passages

    @property
    def when(self) -> datetime:
        """Publication date; the ingest date for articles that state none."""
        return self.published or self.ingested


def aware(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so every comparison is well defined."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _parse(value: str | None) -> datetime | None:
    return aware(datetime.fromisoformat(value)) if value else None


def load_docs(store: Store, *, since: datetime | None = None, until: datetime | None = None,
              outlets: Sequence[str] = (),
              langs: Sequence[str] = (), origin: str | None = None,
              article_ids: Sequence[int] | None = None) -> list[Doc]:
    """Articles published (or, undated, ingested) in ``[since, until)``, oldest first.

    Without a period, every article (of ``article_ids`` when given) that passes the
    other filters.
    """
    db = store._conn()  # read-only
    where: list[str] = []
    args: list[object] = []
    if article_ids is not None:
        where.append(f"a.id IN ({','.join('?' * len(article_ids))})")
        args += list(article_ids)
    if since is not None and until is not None:
        # Stored dates carry their source's offset, so text comparison is only a coarse
        # prefilter (a day either side); the exact test is on parsed datetimes below.
        where += ["COALESCE(a.published, a.ingested) >= ?",
                  "COALESCE(a.published, a.ingested) < ?"]
        args += [(since - timedelta(days=1)).date().isoformat(),
                 (until + timedelta(days=1)).date().isoformat()]
    if origin:
        where.append("a.origin = ?")
        args.append(origin)
    if outlets:
        marks = ",".join("?" * len(outlets))
        where.append("a.id IN (SELECT ao.article_id FROM article_outlets ao JOIN outlets o"
                     f" ON o.id = ao.outlet_id WHERE lower(o.name) IN ({marks}))")
        args += [o.lower() for o in outlets]
    rows = db.execute(
        "SELECT a.id, a.title, a.url, a.published, a.ingested, a.lang, a.n_passages, "
        f"{_OUTLETS} FROM articles a WHERE {' AND '.join(where) or '1'}", args).fetchall()
    docs: dict[int, Doc] = {}
    for r in rows:
        doc = Doc(id=r["id"], title=r["title"], url=r["url"], published=_parse(r["published"]),
                  ingested=_parse(r["ingested"]) or datetime.now(UTC), lang=r["lang"],
                  n_passages=r["n_passages"],
                  outlets=sorted(r["outlets"].split(_SEP)) if r["outlets"] else [])
        if since is None or until is None or since <= doc.when < until:
            docs[doc.id] = doc
    if not docs:
        return []
    ids = list(docs)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        sql = ("SELECT id, article_id, position, text, lang, COALESCE(dup_of, id) AS root"
               f" FROM passages WHERE article_id IN ({','.join('?' * len(chunk))})")
        params: list[object] = list(chunk)
        if langs:
            sql += f" AND lang IN ({','.join('?' * len(langs))})"
            params += list(langs)
        for r in db.execute(sql + " ORDER BY article_id, position", params):
            docs[r["article_id"]].passages.append(
                Passage(r["id"], r["position"], r["text"], r["lang"], r["root"]))
    return sorted((d for d in docs.values() if d.passages), key=lambda d: (d.when, d.id))


def attach_vectors(store: Store, docs: Sequence[Doc], spaces: Sequence[str]) -> list[str]:
    """Fill every passage's vectors; returns the spaces every passage has."""
    pids = [p.id for d in docs for p in d.passages]
    have: list[str] = []
    for space in spaces:
        vecs = store.vectors(space, pids)
        if len(vecs) < len(pids):
            continue  # a space not (fully) stored: leave it out rather than guess
        for d in docs:
            for p in d.passages:
                p.vecs[space] = vecs[p.id]
        have.append(space)
    return have


def store_mean(store: Store, space: str, lang: str, sample: int
               ) -> tuple[np.ndarray, int] | None:
    """Mean ``space`` vector of the store's ``sample`` most recent ``lang`` passages."""
    rows = store._conn().execute(
        "SELECT v.vec FROM passages p JOIN vectors v ON v.passage_id = p.id AND v.space = ?"
        " WHERE p.lang = ? ORDER BY p.id DESC LIMIT ?", (space, lang, sample)).fetchall()
    if not rows:
        return None
    vecs = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32)
    return vecs.reshape(len(rows), -1).mean(axis=0), len(rows)
