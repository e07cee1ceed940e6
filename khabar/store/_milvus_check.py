"""``check()`` of the Milvus store (:meth:`khabar.store.MilvusStore.check`), while other
writers go on.

The check reads every committed row (ids up to its state's), in batches, into counts by
article id, and compares them with the state. A commit landing during those scans can
make one state's counts meet the next state's rows: the summary rows the first state
names are swept by the next commit, the new passages look uncommitted. So the state is
read again after the scans:

* unchanged, and no writer midway: every fault found is one;
* moved by puts alone (the same epoch and removal log, no relabel, one generation a
  commit): rows at or below the first state's ids are as they were, so its counts
  stand; the summary is compared with the newest state's, the articles committed since
  counted in (a query of those alone), and only rows above the newest commit are
  uncommitted; repeated while puts go on, until a state stays through the comparison;
* moved otherwise (a delete, an origin moved, a compaction, a reindex), or another
  writer midway (rows above the commit, a delete committed whose rows are still
  there: a write under way or a crashed one, which only the lease tells apart): the
  whole check again; the last of ``TRIES`` runs holds the writer lease, so no commit
  lands in it (writers wait for that one run: it renews its ticket on the way, as a
  long delete does). Every fault reported is one of a single state; a real fault is in every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _milvus_summary
from ._milvus_ts import order
from ._vectors import SpaceInfo, fingerprint_faults

if TYPE_CHECKING:
    from ._milvus import MilvusStore

TRIES = 3


@dataclass
class _Scanned:
    """What the scans of both collections found at the state ``st``."""

    st: dict[str, Any]
    n: int  # committed passages read
    faults: list[str]  # the counts' faults against ``st``
    found: _milvus_summary.Summary  # the summary of the articles read


def check(store: MilvusStore, expected: Sequence[SpaceInfo]) -> list[str]:
    for _ in range(TRIES - 1):
        faults = _unheld(store, expected)
        if faults is not None:
            return faults
    with store._writing():  # no other commit now: the state cannot move
        st = store._state()
        faults = _against(store, _scan(store, st), st, expected, held=True)
        assert faults is not None
        return faults


def _unheld(store: MilvusStore, expected: Sequence[SpaceInfo]) -> list[str] | None:
    """One run without the lease: its faults, or None if a commit other than puts
    landed during it (its faults may be of two states), or another writer may be
    midway (a delete committed and not carried out, rows above the commit): only the
    run under the lease tells a write under way from a crashed one."""
    st = store._state()
    if st["removed_done"] != st["removed"]:  # before the scans: they would be for nothing
        return None
    scanned = _scan(store, st)
    now = store._state()
    for _ in range(TRIES):
        if not _puts_only(scanned.st, now):
            return None
        faults = _against(store, scanned, now, expected, held=False)
        if faults is None:
            return None
        later = store._state()
        if order(later) == order(now):
            return faults
        now = later
    return None


def _puts_only(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether every commit from ``before`` to ``after`` (the same state included) only
    added articles above ``before``'s ids: a put commits once and raises the
    generation once; a relabel commits twice for one, a compaction or a removal's end
    raises none, a delete or a replacement moves the removal log."""
    same = ("store", "epoch", "passages", "removed", "removed_done", "compacted")
    return (all(after.get(k) == before.get(k) for k in same)
            and not before.get("relabel") and not after.get("relabel")
            and int(after.get("seq", 0)) - int(before.get("seq", 0))
            == int(after["generation"]) - int(before["generation"])
            and int(after["passage"]) >= int(before["passage"])
            and int(after["article"]) >= int(before["article"]))


def _scan(store: MilvusStore, st: dict[str, Any]) -> _Scanned:
    """Both collections read once, in batches, into counts by article id (a few bytes
    an article, whatever the number of rows), and compared with ``st``."""
    faults: list[str] = []
    top = int(st["article"])
    per_article = np.zeros(top + 1, dtype=np.int64)  # passages of each article id
    says = np.zeros(top + 1, dtype=np.int64)  # n_passages of each article there is
    there = np.zeros(top + 1, dtype=bool)
    langs: dict[str, int] = {}
    n = beyond = 0
    for rows in _milvus_summary.scan(store, "passages", store._live(st),
                                     ["id", "article_id", "lang"]):
        arts = np.fromiter((int(r["article_id"]) for r in rows), np.int64, len(rows))
        inside = (arts >= 0) & (arts <= top)
        beyond += int((~inside).sum())  # of an article id never committed
        np.add.at(per_article, arts[inside], 1)
        for r in rows:
            langs[r["lang"]] = langs.get(r["lang"], 0) + 1
        n += len(rows)
    found = _milvus_summary.Summary()
    for rows in _milvus_summary.scan(store, "articles", store._live(st, "article"),
                                     ["n_passages", *_milvus_summary.FIELDS]):
        ids = np.fromiter((int(r["id"]) for r in rows), np.int64, len(rows))
        there[ids] = True
        says[ids] = np.fromiter((int(r["n_passages"]) for r in rows), np.int64, len(rows))
        found.count(rows, 1)
    orphans = beyond + int(per_article[~there].sum())
    if orphans:
        faults.append(f"{orphans} passage(s) belong to no article")
    empty = int((there & (per_article == 0)).sum())
    if empty:
        faults.append(f"{empty} article(s) have no passages")
    short = int((there & (per_article > 0) & (per_article != says)).sum())
    if short:
        faults.append(f"{short} article(s) have another number of passages than they say")
    if langs != st["langs"]:
        faults.append(f"passages per language are {langs}, the state says {st['langs']}")
    if int(there.sum()) != int(st["articles"]):
        faults.append(f"{int(there.sum())} articles, the state says {st['articles']}")
    return _Scanned(st, n, faults, found)


def _against(store: MilvusStore, scanned: _Scanned, now: Mapping[str, Any],
             expected: Sequence[SpaceInfo], *, held: bool) -> list[str] | None:
    """The scans' faults, and the checks read at ``now`` (``scanned.st``, or a later
    state reached by puts alone): the summary, rows above the commit, sentence vectors,
    the spaces. None: rows above the commit while not ``held`` (the writer lease),
    which may be a put under way."""
    st = scanned.st
    faults = list(scanned.faults)
    found = scanned.found
    if int(now["article"]) > int(st["article"]):  # the articles committed since
        found = _milvus_summary.Summary.from_json(found.as_json())
        for rows in _milvus_summary.scan(
                store, "articles", f"id > {int(st['article'])} and "
                f"{store._live(now, 'article')}", _milvus_summary.FIELDS):
            found.count(rows, 1)
    faults += _milvus_summary.faults(store, now, found)
    above = store._count("passages", f"id > {int(now['passage'])}")
    if above and not held:
        return None
    if above:
        faults.append(f"{above} uncommitted passage(s) (a write under way or crashed)")
    spaces = store.spaces()
    for name in spaces:
        have = scanned.n - store._without_sentences(name, st)
        if 0 < have < scanned.n:
            faults.append(f"{scanned.n - have} passage(s) have no {name} sentence vectors")
    faults += fingerprint_faults(spaces, expected, scanned.n)
    return faults
