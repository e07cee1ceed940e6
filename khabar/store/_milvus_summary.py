"""The articles' summary the Milvus writer keeps, so ``outlets()`` and ``stats()``'s
date range read a few small rows instead of every article (Milvus Lite ignores a
query's ``group_by`` and ``order_by``; a server's scan is a whole read too).

What it holds, of the committed articles: the article count of each outlet, the same of
the articles no chat keeps private (what a chat's scope sees, with its own private
ones read apart), articles per published day (UTC, ``YYYY-MM-DD``) and the first and
last ``published`` (ISO strings, compared as the SQLite store's ``min``/``max``).

**Committed with the state.** Each write under the lease that changes articles
(:meth:`MilvusStore._insert`, ``delete_articles``, ``_relabel``) calls :func:`update`
just before its commit: the new summary goes into fresh meta rows
(``summary@<uuid>#<i>``, JSON in pieces under VARCHAR's limit), and the state it then
commits names them. Rows are inserted once and never rewritten, so a read cannot get
two versions of one (as an upserted row can on Milvus 2.3); a crash before the commit
leaves rows no state names, and the summaries older than the committed one go at the
next update. A store from before keeps none until its first write, which makes it
from one scan of the articles (:func:`ensure`); readers of such a store scan.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._milvus_filter import id_list, lit, pieces
from ._origin import is_private

if TYPE_CHECKING:
    from ._milvus import MilvusStore

log = logging.getLogger(__name__)

KEY = "summary@"
PIECE = 60_000  # characters of ASCII JSON a meta row holds (VARCHAR: 65,535 bytes)
FIELDS = ["id", "outlets", "origin", "published"]
SCAN_BATCH = 16_384
"""Rows a batch of :func:`scan` (a server's most; on Milvus Lite each batch costs a scan
of the collection: 100k passages in batches of 4,000 took 7.4 s of CPU, of 16,384 5.2 s)."""


@dataclass
class Summary:
    outlets: dict[str, int] = field(default_factory=dict)
    public: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None

    def count(self, rows: Iterable[Mapping[str, Any]], sign: int) -> list[str]:
        """Add (``sign`` 1) or take away (-1) these article rows; the ``published``
        of those taken away."""
        gone: list[str] = []
        for r in rows:
            names = list(dict.fromkeys(r["outlets"] or []))
            for name in names:
                _bump(self.outlets, name, sign)
                if not is_private(r["origin"] or None):
                    _bump(self.public, name, sign)
            pub = r["published"] or ""
            if pub:
                _bump(self.days, pub[:10], sign)
                if sign > 0:
                    self.first = min(self.first or pub, pub)
                    self.last = max(self.last or pub, pub)
                else:
                    gone.append(pub)
        return gone

    def as_json(self) -> str:
        return json.dumps({"outlets": self.outlets, "public": self.public,
                           "days": self.days, "first": self.first, "last": self.last},
                          sort_keys=True, ensure_ascii=True)

    @classmethod
    def from_json(cls, raw: str) -> Summary:
        d = json.loads(raw)
        return cls(d["outlets"], d["public"], d["days"], d["first"], d["last"])


def _bump(counts: dict[str, int], key: str, by: int) -> None:
    n = counts.get(key, 0) + by
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


def _keys(name: str) -> list[str]:
    """The meta keys of the summary the state names ``uuid:pieces``."""
    ref, pieces = name.rsplit(":", 1)
    return [f"{KEY}{ref}#{i}" for i in range(int(pieces))]


def scan(store: MilvusStore, what: str, expr: str, fields: Sequence[str]
         ) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``what`` matching ``expr`` in batches (an iterator: memory bounded
    by a batch, not the collection)."""
    if what == "passages" and not store._has_passages():
        return
    with store._lock:
        it = store._client.query_iterator(store._name(what), filter=expr,
                                          output_fields=list(fields), batch_size=SCAN_BATCH)
    try:
        while True:
            with store._lock:
                if store._lease.held_here:  # a writer's scan (an old store's first
                    store._lease.keep()  # summary): its ticket renewed on the way
                batch = it.next()
            if not batch:
                break
            yield list(batch)
    finally:
        with store._lock:
            it.close()


def counted(store: MilvusStore, st: Mapping[str, Any]) -> Summary:
    """The summary counted from the committed articles themselves (one scan)."""
    s = Summary()
    pending = store._pending_removed(st)
    for rows in scan(store, "articles", store._live(st, "article"), FIELDS):
        gone = store._gone_articles(st, rows) if pending else set()
        s.count((r for r in rows if r["id"] not in gone), 1)
    return s


def read(store: MilvusStore, st: Mapping[str, Any]) -> Summary | None:
    """The summary the state ``st`` names (None: it names none, or its rows are gone:
    a writer has committed twice since ``st`` was read)."""
    name = st.get("summary")
    if not name:
        return None
    cached = store._summary_cache
    if cached is not None and cached[0] == name:
        return cached[1]
    keys = _keys(str(name))
    with store._lock:
        rows = store._client.query(store._name("meta"), filter=f"key in {json.dumps(keys)}",
                                   output_fields=["key", "value"], **store._at())
    parts = {str(r["key"]): str(r["value"]) for r in rows}
    if set(parts) != set(keys):
        return None
    s = Summary.from_json("".join(parts[k] for k in keys))
    store._summary_cache = (str(name), s)
    return s


def current(store: MilvusStore) -> Summary:
    """The committed articles' summary: the state's rows, else (an old store, or rows
    gone under this read) a scan of the articles."""
    for fresh in (False, True):
        st = store._state(fresh=fresh)
        got = read(store, st)
        if got is not None:
            return got
        if not st.get("summary"):
            break
    return counted(store, st)


def update(store: MilvusStore, st: dict[str, Any], *, added: Sequence[Mapping[str, Any]] = (),
           removed: Sequence[int] = (), relabelled: Sequence[Mapping[str, Any]] = (),
           was: Mapping[int, str] | None = None) -> None:
    """Under the lease, before committing ``st``: the summary with ``added`` article rows
    (written, not yet committed), without the articles ``removed`` (ids: their rows are
    still there), and the ``relabelled`` rows counted again under their new origin
    (``was``: article id -> the origin they had), written to new rows that ``st``
    names from here on."""
    committed = st.get("summary")
    s = read(store, st) if committed else None
    if s is None:  # an old store's first write: counted once (the committed articles)
        s = counted(store, store._state())
    s = Summary.from_json(s.as_json())  # the cached one stays the committed one's
    # Added first: a batch may add an article and replace it (the same URL twice), and
    # counts never go below 0, so a removal before its addition would be lost.
    s.count(added, 1)
    if removed:
        with store._lock:
            rows = [r for chunk in pieces(sorted(set(removed)), 2000)
                    for r in store._client.query(store._name("articles"),
                                                 filter=f"id in {id_list(chunk)}",
                                                 output_fields=FIELDS)]
        gone = set(removed)
        kept = {str(a["published"]) for a in added  # the ends they hold stay
                if a["published"] and int(a["id"]) not in gone}
        _fix_ends(store, st, s, s.count(rows, -1), gone, kept)
    if relabelled and was is not None:
        s.count([{**r, "origin": was[int(r["id"])]} for r in relabelled], -1)
        s.count(relabelled, 1)
    _write(store, st, s)


def _fix_ends(store: MilvusStore, st: Mapping[str, Any], s: Summary, gone: list[str],
              removed: set[int], kept: set[str]) -> None:
    """After taking articles away: the first and last date again where one of them
    went, from the articles of the first (last) day left (a query of that day: the
    summary counts days, not each date). Not where an article added with them has that
    very date (``kept``): a new version of the newest article, dated as it was, keeps
    the last date without the query (a scan on Milvus Lite)."""
    if not s.days:
        s.first = s.last = None
        return
    for end, pick in (("first", min), ("last", max)):
        value = getattr(s, end)
        if value not in gone or value in kept:
            continue
        day = pick(s.days)
        with store._lock:
            rows = store._client.query(
                store._name("articles"), filter=f"published like {lit(day + '%')} and "
                f"{store._live(st, 'article')}", output_fields=["id", "published"])
        left = [str(r["published"]) for r in rows if int(r["id"]) not in removed]
        setattr(s, end, pick(left) if left else None)


def _write(store: MilvusStore, st: dict[str, Any], s: Summary) -> None:
    """``s`` into new meta rows, which ``st`` names (committed by its upsert)."""
    with store._lock:
        raw = s.as_json()
        ref = uuid.uuid4().hex
        parts = [raw[i:i + PIECE] for i in range(0, len(raw), PIECE)] or [""]
        store._client.insert(store._name("meta"), [
            {"key": f"{KEY}{ref}#{i}", "value": part, "v": [0.0, 0.0]}
            for i, part in enumerate(parts)])
    st["summary"] = f"{ref}:{len(parts)}"
    store._summary_cache = (st["summary"], s)


def committed(store: MilvusStore, st: Mapping[str, Any]) -> None:
    """After the state ``st`` is written: the summary rows it does not name go (the
    last one, and any a crashed writer left). A reader still holding the state before
    finds them gone and reads the state again (:func:`current`); on a server it reads
    at that state's timestamp, where they still are. A failure here leaves them to
    the next commit."""
    name = st.get("summary")
    if not name or name == store._summary_swept:
        return
    ref = str(name).rsplit(":", 1)[0]
    try:
        with store._lock:
            store._client.delete(store._name("meta"), filter=f'key like "{KEY}%" and not '
                                 f"(key like {lit(KEY + ref + '#%')})")
        store._summary_swept = str(name)
    except Exception as exc:  # stale rows are harmless, and swept by a later commit
        log.debug("old summary rows not deleted: %s", exc)


def ensure(store: MilvusStore) -> bool:
    """Make the summary of a store that has none (from before it was kept): one scan,
    committed as a write. False: it had one."""
    with store._writing():
        store._recover()
        st = store._state()
        if st.get("summary") and read(store, st) is not None:
            return False
        write_counted(store, st)
        store._write_state(st)
        return True


def write_counted(store: MilvusStore, st: dict[str, Any]) -> None:
    """Under the lease, before committing ``st``: the summary counted again from the
    committed articles (one scan), into new rows ``st`` names."""
    _write(store, st, counted(store, st))


def faults(store: MilvusStore, st: Mapping[str, Any], found: Summary) -> list[str]:
    """How the summary the state names differs from ``found`` (counted by ``check``)."""
    got = read(store, st) if st.get("summary") else None
    if got is None:
        return ["the articles' summary rows the state names are missing"] \
            if st.get("summary") else []
    out = []
    for what in ("outlets", "public", "days", "first", "last"):
        if getattr(got, what) != getattr(found, what):
            out.append(f"the articles' summary is wrong: its {what} differ from the "
                       "articles'")
    return out
