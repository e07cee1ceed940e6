"""A question's filters on Milvus: a boolean expression over the fields each passage row
carries of its article (language, dates, outlets, origin), not a list of ids.

:meth:`khabar.store.MilvusStore.passage_filter` hands retrieval the cheapest form that
is exact: the ids themselves while the filter matches at most :data:`SMALL` passages
(retrieval's in-process BM25 filters by them for free, and ``id in [...]`` of a few
thousand is a short expression), else a :class:`MilvusMatching`: Milvus's searches
filter by its expression, and BM25 asks it which of its best candidates match
(:meth:`MilvusMatching.among`: their filter fields read by primary key, then tested
here by :func:`passage_test`, the same filter in Python, as Milvus Lite scans the whole
collection for any condition beside ``id in [...]``). A scope alone is an
:class:`Excluding` of the few passages other chats keep private, or, when they are many,
the scope's expression.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ._origin import PRIVATE
from ._types import Matching

T = TypeVar("T")

SMALL = 4096
"""A filter matching at most this many passages is handed over as their ids."""
LITE_FACTOR = 16
"""On Milvus Lite, ids up to ``SMALL`` times this: Lite evaluates an outlet filter
(``array_contains_any``) row by row, so at 100k passages a search filtered to 5% of them
costs 6.5 s of CPU by expression and 0.1 s by their 5,001 ids (bench/milvus_reads.py)."""


def lit(value: str) -> str:
    """A Milvus string literal (Milvus Lite has no filter templates)."""
    return json.dumps(value, ensure_ascii=False)


def us(dt: datetime | None) -> int:
    """A date as microseconds since the epoch (UTC), as the rows store them; -1 for
    none (an undated article)."""
    if dt is None:
        return -1
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def id_list(ids: Iterable[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def scope_expr(scope: str) -> str:
    """What a chat may see: the shared archive and its own private articles."""
    return f'(origin == "" or not (origin like "{PRIVATE}%") or origin == {lit(scope)})'


def hidden_expr(scope: str) -> str:
    """What a chat may not see: other chats' private articles."""
    return f'origin like "{PRIVATE}%" and origin != {lit(scope)}'


def passage_expr(*, outlets: Sequence[str] = (), since: datetime | None = None,
                 until: datetime | None = None, langs: Sequence[str] = (),
                 origin: str | None = None, scope: str | None = None) -> str:
    """The filters as one expression over a passage row ("" for none). A period is of
    publication dates: an undated passage (``published_us`` -1) is before any ``since``
    and left out by any ``until``, as SQLite's NULL is."""
    where: list[str] = []
    if outlets:
        lows = json.dumps([o.lower() for o in outlets], ensure_ascii=False)
        where.append(f"array_contains_any(outlets_lc, {lows})")
    if since:
        where.append(f"published_us >= {us(since)}")
    if until:
        where.append(f"published_us >= 0 and published_us < {us(until)}")
    if langs:
        where.append(f"lang in {json.dumps(list(langs), ensure_ascii=False)}")
    if origin:
        where.append(f"origin == {lit(origin)}")
    if scope:
        where.append(scope_expr(scope))
    return " and ".join(where)


FIELDS = ("id", "outlets_lc", "published_us", "lang", "origin")
"""The fields :func:`passage_test` reads."""

Row = Mapping[str, Any]


def passage_test(*, outlets: Sequence[str] = (), since: datetime | None = None,
                 until: datetime | None = None, langs: Sequence[str] = (),
                 origin: str | None = None, scope: str | None = None
                 ) -> Callable[[Row], bool]:
    """:func:`passage_expr` as a test of a row's :data:`FIELDS` (tests/store checks
    that both select the same passages)."""
    lows = {o.lower() for o in outlets}
    after = us(since) if since else None
    before = us(until) if until else None
    langs = set(langs)

    def test(r: Row) -> bool:
        when = int(r["published_us"])
        own = str(r["origin"] or "")
        return ((not lows or bool(lows & set(r["outlets_lc"] or ())))
                and (after is None or when >= after)
                and (before is None or 0 <= when < before)
                and (not langs or r["lang"] in langs)
                and (not origin or own == origin)
                and (not scope or not own.startswith(PRIVATE) or own == scope))

    return test


class MilvusMatching(Matching):
    """The passages an expression selects. ``select(expr)``: the committed, live ids of
    the passages matching ``expr`` (the store's query, which knows what is committed);
    ``rows(ids)``: the committed, live rows of these ids (their :data:`FIELDS`), which
    ``test`` tells apart as ``expr`` would."""

    def __init__(self, expr: str, select: Callable[[str], set[int]],
                 rows: Callable[[Sequence[int]], list[dict[str, Any]]],
                 test: Callable[[Row], bool]) -> None:
        self.expr = expr
        self._select = select
        self._rows = rows
        self._test = test

    def among(self, ids: Sequence[int]) -> set[int]:
        return {int(r["id"]) for r in self._rows(ids) if self._test(r)}

    def ids(self) -> set[int]:
        return self._select(self.expr)

    def __repr__(self) -> str:
        return f"MilvusMatching({self.expr!r})"


def pieces(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in runs of ``size``: an ``in`` list (ids, URLs) a query at a time."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
