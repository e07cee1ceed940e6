"""The reads retrieval and coverage summaries make, each a query on one connection.

Passages with their citation data, articles of a period, stored vectors,
near-duplicate groups, filters turned into passage ids, and the counts the
other store modules and the bot need. Nothing here writes or touches FAISS.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from ._origin import others_private, others_private_passages, scope_clause
from ._schema import batches, from_f16, from_q8, iso, parse_iso
from ._types import Excluding, StoredArticle, StoredPassage

_OUTLETS_OF_A = ("(SELECT group_concat(o.name, char(31)) FROM article_outlets ao"
                 " JOIN outlets o ON o.id = ao.outlet_id WHERE ao.article_id = a.id) AS outlets")


def _outlet_list(value: str | None) -> list[str]:
    return sorted(value.split("\x1f")) if value else []


# -- counts -----------------------------------------------------------------------------
def count_passages(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM passages").fetchone()[0])


def count_articles(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])


def language_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Passages per language, most first."""
    return dict(db.execute(
        "SELECT lang, count(*) FROM passages GROUP BY lang ORDER BY count(*) DESC"))


def count_sentence_vectors(db: sqlite3.Connection) -> dict[str, int]:
    """Passages with sentence vectors, per space."""
    return dict(db.execute("SELECT space, count(*) FROM sentence_vectors GROUP BY space"))


def outlets(db: sqlite3.Connection, scope: str | None = None) -> list[tuple[str, int]]:
    """Outlets with their article counts, most first (those ``scope`` sees: see
    ``_origin``)."""
    if scope is not None and others_private(db, scope):
        where, args = scope_clause(scope)
        return [(r[0], r[1]) for r in db.execute(
            "SELECT o.name, count(*) FROM outlets o JOIN article_outlets ao"
            " ON ao.outlet_id = o.id JOIN articles a ON a.id = ao.article_id"
            f" WHERE {where} GROUP BY o.id ORDER BY count(*) DESC, o.name", args)]
    return [(r[0], r[1]) for r in db.execute(
        "SELECT o.name, count(*) FROM outlets o JOIN article_outlets ao"
        " ON ao.outlet_id = o.id GROUP BY o.id ORDER BY count(*) DESC, o.name")]


# -- passages ---------------------------------------------------------------------------
def passages(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, StoredPassage]:
    """Passages with their article's citation data, by id."""
    out: dict[int, StoredPassage] = {}
    for chunk in batches(list(ids), 500):
        marks = ",".join("?" * len(chunk))
        for p in _passage_rows(db, f"p.id IN ({marks})", chunk):
            out[p.id] = p
    return out


def article_passages(db: sqlite3.Connection, article_ids: Sequence[int],
                     langs: Sequence[str] = ()) -> list[StoredPassage]:
    """The passages of these articles (in these languages), in reading order."""
    out: list[StoredPassage] = []
    for chunk in batches(list(article_ids), 500):
        where = f"p.article_id IN ({','.join('?' * len(chunk))})"
        args: list[object] = list(chunk)
        if langs:
            where += f" AND p.lang IN ({','.join('?' * len(langs))})"
            args += list(langs)
        out += _passage_rows(db, where, args)
    return out


# (passage, neighbour) pairs: each passage by its key, its article's others through the
# article index (tests/store check the plan never scans).
NEIGHBOURS_SQL = (
    "SELECT p.id, n.id FROM passages p JOIN passages n ON n.article_id = p.article_id"
    " AND n.position BETWEEN p.position - ? AND p.position + ? AND n.id != p.id"
    " WHERE p.id IN ({marks})")


def neighbours(db: sqlite3.Connection, ids: Sequence[int], span: int = 1
               ) -> dict[int, list[StoredPassage]]:
    """For each id, the passages of its article within ``span`` positions of it (itself
    excluded), in reading order: the paragraphs that may complete it.

    One join for all of them, through the article index: a handful of rows read per
    passage, whatever the archive's size.
    """
    pairs: list[tuple[int, int]] = []
    for chunk in batches(list(dict.fromkeys(ids)), 500):
        marks = ",".join("?" * len(chunk))
        pairs += db.execute(NEIGHBOURS_SQL.format(marks=marks), [span, span, *chunk]).fetchall()
    found = passages(db, [n for _, n in pairs])
    out: dict[int, list[StoredPassage]] = {pid: [] for pid in ids}
    for pid, n in pairs:
        if n in found:
            out[pid].append(found[n])
    for near in out.values():
        near.sort(key=lambda q: q.position)
    return out


def _passage_rows(db: sqlite3.Connection, where: str, args: Sequence[object]
                  ) -> list[StoredPassage]:
    rows = db.execute(
        "SELECT p.id, p.article_id, p.position, p.text, p.lang, p.dup_of,"
        f" a.title, a.url, a.published, a.n_passages, {_OUTLETS_OF_A}"
        f" FROM passages p JOIN articles a ON a.id = p.article_id WHERE {where}"
        " ORDER BY p.article_id, p.position", list(args)).fetchall()
    return [StoredPassage(
        id=r["id"], article_id=r["article_id"], position=r["position"], text=r["text"],
        lang=r["lang"], title=r["title"], outlets=_outlet_list(r["outlets"]), url=r["url"],
        published=parse_iso(r["published"]), n_passages=r["n_passages"],
        dup_of=r["dup_of"]) for r in rows]


def iter_passages(db: sqlite3.Connection, lang: str | None = None) -> Iterator[sqlite3.Row]:
    """Every passage row (id, article_id, position, text, lang, dup_of) by id."""
    sql = "SELECT id, article_id, position, text, lang, dup_of FROM passages"
    args: tuple[object, ...] = ()
    if lang:
        sql += " WHERE lang = ?"
        args = (lang,)
    yield from db.execute(sql + " ORDER BY id", args)


def duplicate_groups(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, list[int]]:
    """For each id, every passage of its near-duplicate group (itself first)."""
    # Two queries for all of them (a question asks for ~30), not two per id.
    root_of: dict[int, int] = {}
    for chunk in batches(list(dict.fromkeys(ids)), 500):
        marks = ",".join("?" * len(chunk))
        root_of.update((r[0], r[1]) for r in db.execute(
            f"SELECT id, COALESCE(dup_of, id) FROM passages WHERE id IN ({marks})", chunk))
    members: dict[int, list[int]] = {}
    for chunk in batches(sorted(set(root_of.values())), 250):
        marks = ",".join("?" * len(chunk))
        roots = set(chunk)
        for pid, dup_of in db.execute(
                f"SELECT id, dup_of FROM passages WHERE id IN ({marks})"
                f" OR dup_of IN ({marks}) ORDER BY id", [*chunk, *chunk]):
            for root in {pid, dup_of} & roots:  # the root itself, or one of its copies
                members.setdefault(root, []).append(pid)
    return {pid: [pid, *[m for m in members.get(root_of[pid], []) if m != pid]]
            for pid in ids if pid in root_of}


def passage_tokens(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    """Each passage's BM25 tokens as stored (space-separated), where stored."""
    out: dict[int, str] = {}
    for chunk in batches(list(ids), 500):
        marks = ",".join("?" * len(chunk))
        out.update((r[0], r[1]) for r in db.execute(
            f"SELECT passage_id, tokens FROM passage_tokens WHERE passage_id IN ({marks})",
            chunk))
    return out


def passage_filter(db: sqlite3.Connection, *, outlets: Sequence[str] = (),
                   since: datetime | None = None, until: datetime | None = None,
                   langs: Sequence[str] = (), origin: str | None = None,
                   scope: str | None = None) -> set[int] | Excluding | None:
    """Ids of passages matching the filters, or None when there are none. ``scope``: a
    chat's view (``_origin``), no restriction while no other chat has private articles;
    alone, it excludes those chats' passages (:class:`Excluding`), whatever the store's
    size; with other filters, it narrows their set."""
    if scope is not None and not others_private(db, scope):
        scope = None
    if not (outlets or since or until or langs or origin or scope):
        return None
    if scope and not (outlets or since or until or langs or origin):
        return Excluding(others_private_passages(db, scope))
    sql = "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id"
    where: list[str] = []
    args: list[object] = []
    if outlets:
        marks = ",".join("?" * len(outlets))
        where.append("a.id IN (SELECT ao.article_id FROM article_outlets ao JOIN outlets o"
                     f" ON o.id = ao.outlet_id WHERE lower(o.name) IN ({marks}))")
        args += [o.lower() for o in outlets]
    if since:
        where.append("a.published >= ?")
        args.append(iso(since))
    if until:
        where.append("a.published < ?")
        args.append(iso(until))
    if langs:
        where.append(f"p.lang IN ({','.join('?' * len(langs))})")
        args += list(langs)
    if origin:
        where.append("a.origin = ?")
        args.append(origin)
    if scope:
        clause, more = scope_clause(scope)
        where.append(clause)
        args += more
    return {r[0] for r in db.execute(sql + " WHERE " + " AND ".join(where), args)}


# -- articles of a period (coverage summaries) ------------------------------------------
def articles_in(db: sqlite3.Connection, *, since: datetime | None = None,
                until: datetime | None = None, origin: str | None = None,
                outlets: Sequence[str] = (), ids: Sequence[int] | None = None,
                scope: str | None = None) -> list[StoredArticle]:
    """Articles published (or, undated, ingested) in ``[since, until)``, oldest first.

    Without a period, every article (of ``ids`` when given) that passes the other
    filters.
    """
    where: list[str] = []
    args: list[object] = []
    if ids is not None:
        where.append(f"a.id IN ({','.join('?' * len(ids))})")
        args += list(ids)
    if since is not None and until is not None:
        # Dates from old versions may carry their source's offset, so the text
        # comparison is a coarse prefilter (a day either side); exact test below.
        where += ["COALESCE(a.published, a.ingested) >= ?",
                  "COALESCE(a.published, a.ingested) < ?"]
        args += [(since - timedelta(days=1)).date().isoformat(),
                 (until + timedelta(days=1)).date().isoformat()]
    if origin:
        where.append("a.origin = ?")
        args.append(origin)
    if scope:
        clause, more = scope_clause(scope)
        where.append(clause)
        args += more
    if outlets:
        marks = ",".join("?" * len(outlets))
        where.append("a.id IN (SELECT ao.article_id FROM article_outlets ao JOIN outlets o"
                     f" ON o.id = ao.outlet_id WHERE lower(o.name) IN ({marks}))")
        args += [o.lower() for o in outlets]
    rows = db.execute(
        "SELECT a.id, a.title, a.url, a.published, a.ingested, a.lang, a.n_passages, "
        f"{_OUTLETS_OF_A} FROM articles a WHERE {' AND '.join(where) or '1'}", args)
    out = [StoredArticle(
        id=r["id"], title=r["title"], url=r["url"], published=parse_iso(r["published"]),
        ingested=parse_iso(r["ingested"]) or datetime.now(UTC), lang=r["lang"],
        n_passages=r["n_passages"], outlets=_outlet_list(r["outlets"])) for r in rows]
    if since is not None and until is not None:
        out = [a for a in out if since <= a.when < until]
    return sorted(out, key=lambda a: (a.when, a.id))


# -- stored vectors ---------------------------------------------------------------------
def vectors(db: sqlite3.Connection, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Each passage's ``space`` vector, float32, where stored."""
    return {pid: from_f16(blob) for pid, blob in _blobs(db, "vectors", "vec", space, ids)}


def sentence_vectors(db: sqlite3.Connection, space: str, dim: int, ids: Sequence[int]
                     ) -> dict[int, np.ndarray]:
    """Each passage's sentence vectors, (n_sentences, dim) float32, where stored; a
    passage of one sentence stored as "its passage vector" (an empty matrix) gets
    that, as a (1, dim) matrix."""
    out, same = stored_sentence_vectors(db, {space: dim}, ids)[space]
    out.update((pid, vec.reshape(1, -1)) for pid, vec in vectors(db, space, same).items())
    return out


def stored_sentence_vectors(db: sqlite3.Connection, dims: dict[str, int], ids: Sequence[int]
                            ) -> dict[str, tuple[dict[int, np.ndarray], list[int]]]:
    """Per space of ``dims`` (its width): the passages' stored sentence matrices, and
    the ids of those stored as "their passage vector" (left to the caller). Every
    space in one query: a row's key is (passage, space), so the spaces of a passage
    are read in one descent of the index (1.6 against 2.4 ms of CPU for 250 passages'
    e5 and USE rows at 100k)."""
    out: dict[str, tuple[dict[int, np.ndarray], list[int]]] = {s: ({}, []) for s in dims}
    spaces = list(dims)
    for chunk in batches(list(ids), 500):
        rows = db.execute(
            f"SELECT passage_id, space, vecs FROM sentence_vectors WHERE space IN"
            f" ({','.join('?' * len(spaces))}) AND passage_id IN ({','.join('?' * len(chunk))})",
            [*spaces, *chunk])
        for pid, space, blob in rows:
            mats, same = out[space]
            if blob:
                mats[pid] = from_q8(blob, dims[space])
            else:
                same.append(pid)
    return out


def _blobs(db: sqlite3.Connection, table: str, column: str, space: str, ids: Sequence[int]
           ) -> Iterator[tuple[int, bytes]]:
    for chunk in batches(list(ids), 500):
        marks = ",".join("?" * len(chunk))
        yield from db.execute(f"SELECT passage_id, {column} FROM {table} WHERE space = ?"
                              f" AND passage_id IN ({marks})", [space, *chunk])


def recent_mean_vector(db: sqlite3.Connection, space: str, lang: str, sample: int
                       ) -> tuple[np.ndarray, int] | None:
    """Mean ``space`` vector of the ``sample`` most recent ``lang`` passages, and
    how many there were."""
    rows = db.execute(
        "SELECT v.vec FROM passages p JOIN vectors v ON v.passage_id = p.id AND v.space = ?"
        " WHERE p.lang = ? ORDER BY p.id DESC LIMIT ?", (space, lang, sample)).fetchall()
    if not rows:
        return None
    vecs = from_f16(b"".join(r[0] for r in rows))
    return vecs.reshape(len(rows), -1).mean(axis=0), len(rows)
