"""The archive on Milvus (Lite, a local file, or a server): :class:`MilvusStore`.

Five collections (``khabar_`` + name; and the writers' tickets, :mod:`._milvus_commit`):

* ``passages``: one row per passage with its text, lexical tokens (BM25 by Milvus's own
  function over them: ``sparse``), a dense vector per space (``v_e5``, ``v_use``), its
  sentence vectors (``s_<space>``: the SQLite store's int8 blob, base64; "" when the
  passage vector stands in, "-" when none are stored), and its article's filter fields
  copied (language, dates, outlets, origin) so a filtered search needs no join;
* ``articles``: one row per article (citation data, URL, text hash, origin);
* ``removed``: the removal log (a passage id per row, by sequence number), which
  ``changes_since`` reads;
* ``meta``: one row ``state`` (a JSON document: the last committed passage, article and
  removal numbers, the generation, the epoch, counts per language) and one ``spaces``;
* ``commits``: the newest commits' states, inserted only (:mod:`._milvus_log`).

**No transactions, so one commit point.** Milvus writes row batches, not transactions.
An article becomes visible by one commit of the state, which raises the committed
passage and article ids (every read and search filters ``id <= committed``): a row
inserted into the commit log, then the same state upserted into the ``state`` row that
readers read (:mod:`._milvus_log`). A put (of a batch of articles: :mod:`._milvus_put`)
writes its passages, then its articles (above the committed ids: nobody sees them),
then the state. A crash before that leaves rows no reader sees, and the next
writer deletes them before its first write (:meth:`MilvusStore._recover`). A delete logs the
removals and commits the state first, then deletes the article row (``passages`` and
``article_passages`` drop passages whose article is gone), then the passages; a crash
between leaves the removal pending (readers already leave those passages out), and the
next writer finishes it.

**Many writers take turns.** Ids and the state are read, raised and written back by
one writer at a time: every write holds the writer lease of
:mod:`khabar.store._milvus_commit` (tickets in ``khabar_writers``, mutual exclusion by
write-then-read under Strong consistency), and recovery runs at each turn. Readers take
no lease: they read the state row.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import copy
import functools
import json
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from khabar._errors import StoreError

from . import (
    _milvus_check,
    _milvus_layout,
    _milvus_lexical,
    _milvus_log,
    _milvus_put,
    _milvus_reindex,
    _milvus_summary,
)
from ._base import SavedIndex
from ._changes import ChangeMark, Changes, Content
from ._milvus_commit import DUMMY_DIM, LeasedClient, WriterLease
from ._milvus_compat import has_bm25, vector_fields
from ._milvus_filter import (
    FIELDS,
    LITE_FACTOR,
    SMALL,
    MilvusMatching,
    hidden_expr,
    id_list,
    lit,
    passage_expr,
    passage_test,
    pieces,
    scope_expr,
    us,
)
from ._milvus_index import dense_index, kind_of, search_params
from ._milvus_rows import VectorRows
from ._milvus_ts import last_write, newest, order, read_at
from ._origin import PRIVATE, is_private
from ._schema import from_q8, parse_iso, sentence_blob
from ._types import Allowed, Excluding, Matching, StoredArticle, StoredPassage
from ._vectors import SpaceInfo, refuse_other_spaces
from ._write import NewArticle, PutResult

log = logging.getLogger(__name__)

PREFIX = "khabar_"
TEXT_MAX = 65_535  # VARCHAR's limit, in bytes
NO_SENTENCES = "-"
BATCH = 2000  # ids per query or delete expression
STATE_TTL = 0.25  # seconds a read may reuse this process's last read of the state
QUESTION_TTL = 30.0
"""Seconds after ``generation()`` (a question's start) that the question's reads take
the state it read: one state query a question, and one state throughout (a question on
Lite under load takes seconds). The bound is for a context that started a question and
read on long after without starting another (a script's thread)."""

_QUESTION: contextvars.ContextVar[tuple[object, dict[str, Any], float] | None] = \
    contextvars.ContextVar("khabar_milvus_question", default=None)
"""The question under way in this context: (its store's token, the state its
``generation()`` read, when). Per question, not per process: an asyncio task, and a
pool's task submitted through ``contextvars.copy_context().run`` (the bot's searches,
the question's embedding), each has its own, so two questions in one process read each
their own state, and a commit midway is not seen by a question begun before it."""
ITER_BATCH = 4000
SEAL_ROWS = 1000
"""Milvus Lite searches rows not yet sealed into a segment by brute force, slowly (1.5 s
a question at 20k such passages, 25 ms once sealed: docs/milvus.md): ``flush`` seals
once this many passages were added since (a server seals by itself)."""


def _clip(text: str | None, limit: int) -> str:
    """``text`` cut to fit a VARCHAR of ``limit`` bytes."""
    raw = (text or "").encode("utf-8")
    return text or "" if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _chunks(items: Sequence[int], size: int = BATCH) -> Iterator[Sequence[int]]:
    return pieces(items, size)


def count_langs(st: dict[str, Any], *, added: Iterable[str], removed: Iterable[str]) -> None:
    """The state's passages per language, with these passages' languages added and
    removed (a language left with none is dropped)."""
    langs: dict[str, int] = st["langs"]
    for lang in added:
        langs[lang] = langs.get(lang, 0) + 1
    for lang in removed:
        langs[lang] = langs.get(lang, 0) - 1
    st["langs"] = {k: v for k, v in langs.items() if v > 0}


def _client_class() -> Any:
    """pymilvus's MilvusClient. Importing pymilvus loads a ``.env`` file into the
    environment (its settings module calls ``load_dotenv()``): khabar reads ``.env``
    itself, by its own rules (secrets stay out of the environment, khabar.toml's order
    holds), so whatever that import added is taken out again."""
    before = set(os.environ)
    from pymilvus import MilvusClient

    for key in set(os.environ) - before:
        del os.environ[key]
    return MilvusClient


def cache_name(uri: str) -> str:
    """A folder name for this archive's derived files on this machine."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", uri).strip("_")[-120:] or "milvus"


class MilvusStore:
    """The archive in Milvus: the :class:`khabar.store.ArchiveStore` that many processes
    (and, with a server, many machines) share. ``uri``: a Milvus Lite file path or a
    server's ``http://host:port``; ``cache``: where readers' derived files go;
    ``index_type`` and ``lang_partitions``: the dense index and the language partition
    key of the passages collections this store makes (:mod:`._milvus_index`)."""

    def __init__(self, uri: str, *, cache: Path, index_type: str = "auto",
                 lang_partitions: bool = True) -> None:
        MilvusClient = _client_class()

        self.uri = uri
        self._index_type = index_type
        self._lang_partitions = lang_partitions
        self._dense_kinds: dict[tuple[str, str], str] = {}  # (collection, field) -> index
        self._lite = not uri.startswith(("http://", "https://"))
        self.path = Path(cache) / cache_name(uri)
        self._lock = threading.RLock()  # one client, one call at a time
        self._saved: weakref.WeakSet[SavedIndex] = weakref.WeakSet()
        self._recovered = False
        self._turn_state = False  # the cached state is this lease turn's own
        self._state_cache: dict[str, Any] | None = None
        self._state_at = 0.0
        self._token = object()  # this store's questions in _QUESTION
        self._passages_made = False
        self._passages_name = "passages"  # the state names it (a reindex switches it)
        self._sealed_upto = 0  # the last passage id sealed into a segment (Lite)
        self._spaces_cache: dict[str, SpaceInfo] | None = None
        self._spaces_epoch: object = None
        self._vector_rows = VectorRows()  # a question's candidates' rows, read once
        self._article_rows = VectorRows()  # and their articles' citation data
        self._copies_known: tuple[object, bool] | None = None
        self._summary_cache: tuple[str, _milvus_summary.Summary] | None = None
        self._summary_swept: str | None = None  # the summary whose old rows are gone
        try:
            if self._lite:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir(parents=True, exist_ok=True)
            bare = MilvusClient(uri)
            # Writers take turns through a lease (_milvus_commit: no compare-and-set in
            # Milvus); every write of this client checks it holds it.
            self._lease = WriterLease(bare, self._name("writers"), self._lock)
            self._write_turn = threading.RLock()  # this process's threads, one writer
            self._client = LeasedClient(bare, self._lease)
            self._ensure_meta()
            self._sealed_upto = int(self._state()["passage"])  # which collection, too
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the Milvus store at {uri}: {exc}") from exc
        logging.getLogger("pymilvus").setLevel(logging.ERROR)  # the iterator's ts note
        # Milvus Lite says at exit (atexit) that it stopped its server, at INFO: after
        # the handlers' streams are closed, that is a "Logging error" traceback.
        logging.getLogger("milvus_lite").setLevel(logging.WARNING)

    # -- collections -------------------------------------------------------------------
    def _name(self, what: str) -> str:
        return PREFIX + (self._passages_name if what == "passages" else what)

    def _use_passages(self, name: str) -> None:
        """Read and write the passages collection ``name`` (what the state names)."""
        if name != self._passages_name:
            self._passages_name = name
            self._passages_made = False
            self._spaces_cache = None
            with self._lock:
                if self._client.has_collection(PREFIX + name):
                    self._client.load_collection(PREFIX + name)

    @staticmethod
    def _spaces_key(passages: str) -> str:
        """The meta row of the spaces of a passages collection."""
        return "spaces" if passages == "passages" else f"spaces@{passages}"

    def _create(self, name: str, schema: Any, vectors: dict[str, str]) -> None:
        index = self._client.prepare_index_params()
        for field, metric in vectors.items():
            kind, params = ("SPARSE_INVERTED_INDEX", {}) if metric == "BM25" else \
                dense_index(self._lite, self._index_type) if field.startswith("v_") else \
                ("FLAT", {})  # the dummy vectors of meta, logs and work collections
            index.add_index(field, index_type=kind, metric_type=metric, params=params)
        # pymilvus waits for the index with AllocTimestamp, which Milvus Lite does not
        # serve: its in-process gRPC server logs a traceback for each (and the client
        # goes on). Quiet for the call.
        grpc_log = logging.getLogger("grpc._server")
        level = grpc_log.level
        grpc_log.setLevel(logging.CRITICAL)
        try:
            # Strong: a read sees every write acknowledged before it (a server's default,
            # Bounded, may miss another writer's commit, or this process's own).
            self._client.create_collection(self._name(name), schema=schema,
                                           index_params=index, consistency_level="Strong")
        finally:
            grpc_log.setLevel(level)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the writer lease (and this client) for a write; recovery runs again
        at each new turn, since another writer may have died in between."""
        self._end_question()
        with self._write_turn, self._lease.hold() as first, self._lock:
            if first:
                self._recovered = self._turn_state = False
            yield

    def _ensure_meta(self) -> None:
        c = self._client
        if not c.has_collection(self._name("writers")):
            try:
                self._create("writers", self._lease.schema(), {"v": "IP"})
            except Exception:  # another process made it meanwhile
                if not c.has_collection(self._name("writers")):
                    raise
        self._load("writers")
        if all(c.has_collection(self._name(w))
               for w in ("meta", "removed", "articles", "commits")):
            for what in ("meta", "removed", "articles", "commits", "passages"):
                if c.has_collection(self._name(what)):
                    self._load(what)
            if self._meta("state") is not None:
                return
        with self._writing():  # another process may be making them at the same time
            self._make_meta()

    def _load(self, what: str) -> None:
        """Load a collection unless loaded (a reopened Lite file's are released; a
        server's load call waits a second or more even when there is nothing to do)."""
        from pymilvus.client.types import LoadState

        name = self._name(what)
        if self._client.get_load_state(name).get("state") != LoadState.Loaded:
            self._client.load_collection(name)

    def _make_meta(self) -> None:
        from pymilvus import DataType

        c = self._client
        if not c.has_collection(self._name("meta")):
            s = c.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
            s.add_field("value", DataType.VARCHAR, max_length=TEXT_MAX)
            s.add_field("v", DataType.FLOAT_VECTOR, dim=DUMMY_DIM)
            self._create("meta", s, {"v": "IP"})
        if not c.has_collection(self._name("removed")):
            s = c.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("seq", DataType.INT64, is_primary=True)
            s.add_field("passage_id", DataType.INT64)
            s.add_field("v", DataType.FLOAT_VECTOR, dim=DUMMY_DIM)
            self._create("removed", s, {"v": "IP"})
        if not c.has_collection(self._name("articles")):
            s = c.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("id", DataType.INT64, is_primary=True)
            for name, size in (("url", 4096), ("content_hash", 64), ("title", 4096),
                               ("author", 1024), ("published", 40), ("ingested", 40),
                               ("lang", 16), ("section", 1024), ("tags", 8192),
                               ("source", 4096), ("site_name", 1024), ("origin", 256)):
                s.add_field(name, DataType.VARCHAR, max_length=size)
            s.add_field("when_us", DataType.INT64)
            s.add_field("n_passages", DataType.INT64)
            s.add_field("outlets", DataType.ARRAY, element_type=DataType.VARCHAR,
                        max_capacity=64, max_length=256)
            s.add_field("outlets_lc", DataType.ARRAY, element_type=DataType.VARCHAR,
                        max_capacity=64, max_length=256)
            s.add_field("v", DataType.FLOAT_VECTOR, dim=DUMMY_DIM)
            self._create("articles", s, {"v": "IP"})
        if not c.has_collection(self._name("commits")):  # stores made before it: now
            self._create("commits", _milvus_log.schema(c), {"v": "IP"})
        for what in ("meta", "removed", "articles", "commits", "passages"):
            if c.has_collection(self._name(what)):
                self._load(what)
        if self._meta("state") is None:
            self._write_state({"store": uuid.uuid4().hex, "epoch": 1, "passage": 0,
                               "article": 0, "removed": 0, "removed_done": 0,
                               "compacted": 0, "generation": 0, "langs": {},
                               "articles": 0})

    def _create_passages(self, spaces: Mapping[str, SpaceInfo], what: str = "passages"
                         ) -> None:
        from pymilvus import DataType, Function, FunctionType

        c = self._client
        version = str(c.get_server_version())
        most = vector_fields(version)
        if most is not None and len(spaces) > most:
            raise StoreError(f"Milvus {version} allows {most} vector field(s) in a "
                             f"collection; khabar's spaces {sorted(spaces)} need Milvus 2.4 "
                             "or later")
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("article_id", DataType.INT64)
        s.add_field("position", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
        # A search of one language reads that language's partitions (_milvus_index).
        s.add_field("lang", DataType.VARCHAR, max_length=16,
                    is_partition_key=self._lang_partitions)
        # khabar's own analysis (stemmed, normalised tokens): Milvus's BM25 reads them
        # split into words again (Lite has the standard tokenizer only), so both
        # lexical searches see the same terms.
        bm25 = self._bm25()
        s.add_field("tokens", DataType.VARCHAR, max_length=TEXT_MAX,
                    **({"enable_analyzer": True, "analyzer_params": {"tokenizer": "standard"}}
                       if bm25 else {}))
        s.add_field("words", DataType.VARCHAR, max_length=TEXT_MAX)
        if bm25:
            s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("dup_of", DataType.INT64)  # -1: none
        s.add_field("when_us", DataType.INT64)
        s.add_field("published_us", DataType.INT64)  # -1: undated
        s.add_field("origin", DataType.VARCHAR, max_length=256)
        s.add_field("outlets_lc", DataType.ARRAY, element_type=DataType.VARCHAR,
                    max_capacity=64, max_length=256)
        vectors = {"sparse": "BM25"} if bm25 else {}
        for name, info in sorted(spaces.items()):
            s.add_field(f"v_{name}", DataType.FLOAT_VECTOR, dim=info.dim)
            s.add_field(f"s_{name}", DataType.VARCHAR, max_length=TEXT_MAX)
            vectors[f"v_{name}"] = "IP"
        if bm25:
            s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                    input_field_names=["tokens"],
                                    output_field_names=["sparse"]))
        self._create(what, s, vectors)

    def _bm25(self) -> bool:
        """Whether this Milvus has the BM25 function (a 2.3 server has not)."""
        with self._lock:
            return has_bm25(str(self._client.get_server_version()))

    # -- meta and state ------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        rows = self._meta_rows(key)
        return rows[0] if rows else None

    def _meta_rows(self, key: str) -> list[str]:
        """The values of the meta row ``key``: one, or several versions of it just
        after an upsert (:func:`._milvus_ts.newest`)."""
        with self._lock:
            rows = self._client.query(self._name("meta"), filter=f"key == {lit(key)}",
                                      output_fields=["value"])
        if len(rows) > 1:
            self.versions_read += 1
        return [str(r["value"]) for r in rows]

    versions_read = 0
    """Reads of a meta row that returned several versions of it (for the benchmarks)."""
    older_states_read = 0
    """Reads of the state that came back older than one this process had seen."""

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._client.upsert(self._name("meta"),
                                [{"key": key, "value": value, "v": [0.0] * DUMMY_DIM}])

    def _state(self, *, fresh: bool = True) -> dict[str, Any]:
        """The committed state. ``fresh=False`` (reads only): in a question, the one its
        ``generation()`` read (:data:`_QUESTION`), so the dozen reads of one question
        cost one query and see one commit; else the one read by this process within
        ``STATE_TTL`` (a write of this process updates it)."""
        if not fresh:
            asked = self._asked()
            if asked is not None:
                return asked
            if self._state_cache is not None \
                    and time.monotonic() - self._state_at < STATE_TTL:
                return self._state_cache
        if self._turn_state and self._lease.held and self._state_cache is not None:
            # Under the lease only this client commits: its last read or write of the
            # state is the state (a copy: a put edits what it gets before committing).
            return copy.deepcopy(self._state_cache)
        rows = self._meta_rows("state")
        found = newest(rows, self._state_cache)
        if found is not None and found != newest(rows, None):
            self.older_states_read += 1
        if found is None:
            raise StoreError(f"the Milvus store at {self.uri} has no state row")
        if self._lease.held_here:  # a writer's turn: no older state than the log's
            found = self._logged(found)
        state: dict[str, Any] = found
        if state.get("epoch") != self._spaces_epoch:  # the spaces may have changed
            self._spaces_cache = None
            self._spaces_epoch = state.get("epoch")
            self._use_passages(str(state.get("passages", "passages")))
        self._state_cache, self._state_at = state, time.monotonic()
        self._turn_state = self._lease.held
        return copy.deepcopy(state)

    def _write_state(self, state: dict[str, Any]) -> None:
        """The commit point: one row, written whole, with the timestamp readers read
        the rows it commits at (:mod:`._milvus_ts`)."""
        if not self._lite:
            state["ts"] = max(int(state.get("ts", 0)), last_write(self._client, PREFIX))
        state["seq"] = int(state.get("seq", 0)) + 1  # which version is newest
        value = json.dumps(state, sort_keys=True)
        with self._lock:  # the commit point (_milvus_log), then the row readers read
            _milvus_log.append(self._client, self._name("commits"), state["seq"], value)
        self._set_meta("state", value)
        self._state_cache, self._state_at = copy.deepcopy(state), time.monotonic()
        self._turn_state = self._lease.held
        _milvus_summary.committed(self, state)  # the summary rows it replaced go

    def _logged(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` (read from the ``state`` row), or the newest commit of the log when
        that is newer: the row read was an older version, or its writer died before
        writing it (written again here). :mod:`._milvus_log` says why."""
        with self._lock:
            later = _milvus_log.newer(self._client, self._name("commits"),
                                      int(state.get("seq", 0)))
        best = max((s for s in later if s.get("store") == state.get("store")),
                   key=order, default=None)
        if best is None or order(best) <= order(state):
            return state
        self.older_states_read += 1
        self._set_meta("state", json.dumps(best, sort_keys=True))
        return best

    def meta(self, key: str) -> str | None:
        return self._meta(key)

    read_at_commit = True
    """Reads (but the state's) at the last commit's timestamp rather than Strong
    (:mod:`._milvus_ts`); False: Strong everywhere (the benchmarks' A/B)."""

    def _at(self) -> dict[str, Any]:
        """A read's consistency: at the timestamp of the state this process read last;
        Strong for the lease's holder (its own rows above the commit), an old state
        without one, or Milvus Lite (no time ticks)."""
        st = self._asked() or self._state_cache
        if self._lite or not self.read_at_commit or st is None or self._lease.held_here:
            return {}
        return read_at(st.get("ts"))

    def generation(self) -> int:
        """The committed generation, read fresh: a question starts here, and its other
        reads of the state (in this context, within ``QUESTION_TTL``) take this one."""
        st = self._state()
        _QUESTION.set((self._token, st, time.monotonic()))
        return int(st["generation"])

    def _asked(self) -> dict[str, Any] | None:
        """The state of this context's question on this store, if one is under way
        (not for the lease's holder: a write goes by the newest commit)."""
        q = _QUESTION.get()
        if q is None or q[0] is not self._token or self._lease.held_here \
                or time.monotonic() - q[2] >= QUESTION_TTL:
            return None
        return q[1]

    def _end_question(self) -> None:
        """A write in this context: what it reads next is the newest commit."""
        q = _QUESTION.get()
        if q is not None and q[0] is self._token:
            _QUESTION.set(None)

    def _question_state(self) -> dict[str, Any]:
        """The state ``generation()`` read at this question's start, else a fresh read:
        a caller outside a question (another process's ``changes_since`` after a
        write) sees the latest commit."""
        return self._state(fresh=self._asked() is None)

    def change_mark(self) -> ChangeMark:
        st = self._state()
        return ChangeMark(st["store"], int(st["epoch"]), int(st["passage"]),
                          int(st["removed"]))

    def _has_passages(self) -> bool:
        # Once made, the collection stays (bind_spaces replaces it in an empty store).
        if not self._passages_made:
            with self._lock:
                self._passages_made = bool(
                    self._client.has_collection(self._name("passages")))
        return self._passages_made

    # -- queries -------------------------------------------------------------------------
    def _query(self, what: str, expr: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of ``what`` matching ``expr`` (batched: a server caps one query)."""
        if what == "passages" and not self._has_passages():
            return []
        out: list[dict[str, Any]] = []
        with self._lock:
            if self._lite:  # all rows at once (and Lite has no iterator timestamps)
                return list(self._client.query(self._name(what), filter=expr,
                                               output_fields=list(fields), **self._at()))
            # One query first: most reads are a few rows, and an iterator costs a
            # server several round trips (a timestamp, then batches until empty).
            first = self._client.query(self._name(what), filter=expr,
                                       output_fields=list(fields), limit=ITER_BATCH,
                                       **self._at())
            if len(first) < ITER_BATCH:
                return list(first)
            it = self._client.query_iterator(self._name(what), filter=expr,
                                             output_fields=list(fields),
                                             batch_size=ITER_BATCH)
            try:
                while batch := it.next():
                    out += batch
            finally:
                it.close()
        return out

    def _count(self, what: str, expr: str) -> int:
        if what == "passages" and not self._has_passages():
            return 0
        with self._lock:
            rows = self._client.query(self._name(what), filter=expr,
                                      output_fields=["count(*)"], **self._at())
        return int(rows[0]["count(*)"]) if rows else 0

    @staticmethod
    def _live(st: Mapping[str, Any], key: str = "passage") -> str:
        return f"id <= {int(st[key])}"

    def _pending_removed(self, st: Mapping[str, Any]) -> set[int]:
        """Passages whose removal is committed but whose rows may still be there."""
        if st["removed_done"] >= st["removed"]:
            return set()
        return {int(r["passage_id"]) for r in self._query(
            "removed", f"seq > {int(st['removed_done'])} and seq <= {int(st['removed'])}",
            ["passage_id"])}

    # -- recovery ------------------------------------------------------------------------
    def _recover(self) -> None:
        """Drop what a crashed put left above the committed ids; finish deletions that
        were committed but not carried out. The lease's holder does it at the start of
        its turn (a reader must not: the rows above the commit may be a write under way)."""
        if self._recovered:
            return
        self._recovered = True
        st = self._state()
        with self._lock:  # counted first: deleting nothing costs as much, and is a write
            for what, expr in (("passages", f"id > {st['passage']}"),
                               ("articles", f"id > {st['article']}"),
                               ("removed", f"seq > {st['removed']}")):
                if self._count(what, expr):
                    self._client.delete(self._name(what), filter=expr)
        self._finish_removals(st)
        self._finish_relabel()

    def _finish_removals(self, st: dict[str, Any]) -> None:
        pending = sorted(self._pending_removed(st))
        if pending:
            arts = {int(r["article_id"]) for chunk in _chunks(pending) for r in self._query(
                "passages", f"id in {id_list(chunk)}", ["article_id"])}
            with self._lock:
                for chunk in _chunks(sorted(arts)):
                    self._client.delete(self._name("articles"), filter=f"id in {id_list(chunk)}")
                self._unlink_copies(pending)
                for chunk in _chunks(pending):
                    self._client.delete(self._name("passages"), filter=f"id in {id_list(chunk)}")
        if st["removed_done"] != st["removed"]:
            st = self._state()
            st["removed_done"] = st["removed"]
            self._write_state(st)

    def _unlink_copies(self, gone: Sequence[int]) -> None:
        """Copies of passages being deleted lose their link (SQLite's ON DELETE SET
        NULL): their rows rewritten with ``dup_of = -1``."""
        drop = set(gone)
        rows = [r for chunk in _chunks(list(gone)) for r in self._query(
            "passages", f"dup_of in {id_list(chunk)}", ["*"]) if int(r["id"]) not in drop]
        for r in rows:
            r.pop("sparse", None)
            r["dup_of"] = -1
        if rows:
            self._client.upsert(self._name("passages"), rows)

    # -- spaces --------------------------------------------------------------------------
    def spaces(self) -> dict[str, SpaceInfo]:
        """The vector spaces; read once per epoch (every change of them bumps it)."""
        if self._spaces_cache is None:
            raw = self._meta(self._spaces_key(self._passages_name))
            self._spaces_cache = ({k: SpaceInfo(**v) for k, v in json.loads(raw).items()}
                                  if raw else {})
        return dict(self._spaces_cache)

    def bind_spaces(self, spaces: Sequence[SpaceInfo], *, replace: bool = False) -> None:
        if self._bind_plan(spaces, replace) is None:
            return
        with self._writing():  # again under the lease: another writer may have bound them
            plan = self._bind_plan(spaces, replace)
            if plan is None:
                return
            n, merged = plan
            if self._has_passages():
                if n > 0 or replace:
                    raise StoreError("changing the vector spaces of a Milvus store with "
                                     "passages: `khabar reindex` does it")
                self._client.drop_collection(self._name("passages"))
                self._passages_made = False
            self._create_passages(merged)
            self._passages_made = True
            self._spaces_cache = None
            self._set_meta(self._spaces_key(self._passages_name), json.dumps(
                {k: vars(v) for k, v in merged.items()}, sort_keys=True))
            st = self._state()
            st["epoch"] = int(st["epoch"]) + 1
            st["generation"] = int(st["generation"]) + 1
            self._write_state(st)

    def _bind_plan(self, spaces: Sequence[SpaceInfo], replace: bool
                   ) -> tuple[int, dict[str, SpaceInfo]] | None:
        """The passages and the spaces to bind, or None when they are bound already."""
        n = self.count_passages()  # reads the state first: the spaces of its epoch
        current = self.spaces()
        if not replace and n > 0:
            refuse_other_spaces(current, spaces, self.uri)
        merged = {} if replace else dict(current)
        merged.update({s.name: s for s in spaces})
        if merged == current and self._has_passages():
            return None
        return n, merged

    # -- writing -------------------------------------------------------------------------
    def _article_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """An article row as the SQLite store's ``find_article`` gives it."""
        out = {k: row.get(k) for k in ("id", "url", "content_hash", "title", "author",
                                       "published", "ingested", "lang", "section",
                                       "tags", "source", "site_name", "origin",
                                       "n_passages")}
        for k in ("url", "author", "published", "lang", "section", "source", "site_name",
                  "origin"):
            out[k] = out[k] or None
        return out

    def find_article(self, *, url: str | None = None, content_hash: str | None = None
                     ) -> dict[str, Any] | None:
        st = self._state()
        if url:
            found = _milvus_put.lookup(self, st, [url], [])[0].get(url)
            if found is not None:
                return found
        if content_hash:
            return _milvus_put.lookup(self, st, [], [content_hash])[1].get(content_hash)
        return None

    def find_articles(self, *, urls: Sequence[str] = (), content_hashes: Sequence[str] = ()
                      ) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
        """``find_article`` of each URL and text hash: one query each (a batch's)."""
        by_url, by_hash = _milvus_put.lookup(self, self._state(), urls, content_hashes)
        return dict(by_url), dict(by_hash)

    def _gone_articles(self, st: Mapping[str, Any], rows: list[dict[str, Any]]) -> set[int]:
        """Of these articles, those whose deletion is committed but not yet carried out."""
        pending = self._pending_removed(st)
        if not pending or not rows:
            return set()
        got = self._query("passages", f"id in {id_list(sorted(pending))}", ["article_id"])
        return {int(r["article_id"]) for r in got}

    def article_rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        st = self._state()
        rows = self._by_ids("articles", ids, ["*"], int(st["article"]))
        return [self._article_row(r) for r in sorted(rows, key=lambda r: int(r["id"]))]

    def put(self, new: NewArticle, *, dup_threshold: float | None = 0.96) -> PutResult:
        """Store one article so that readers see all of it or nothing (the module's
        docstring says how); dedupe as :meth:`khabar.store.Store.put`."""
        got = self.put_many([new], dup_threshold=dup_threshold)[0]
        if isinstance(got, StoreError):
            raise got
        return got

    def put_many(self, news: Sequence[NewArticle], *, dup_threshold: float | None = 0.96
                 ) -> list[PutResult | StoreError]:
        """:meth:`put` of each article, in one lease turn and one commit
        (:mod:`._milvus_put`); an article refused is its StoreError in the list."""
        self._end_question()  # its search before the turn reads the newest commit
        return _milvus_put.put_many(self, news, dup_threshold)

    def _passages_of(self, article_ids: Sequence[int]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for chunk in _chunks(list(article_ids)):
            out += [(int(r["id"]), str(r["lang"])) for r in self._query(
                "passages", f"article_id in {id_list(chunk)}", ["id", "lang"])]
        return out

    def _log_removals(self, st: dict[str, Any], passages: list[tuple[int, str]]) -> None:
        if not passages:
            return
        seq = int(st["removed"])
        rows = [{"seq": seq + 1 + i, "passage_id": pid, "v": [0.0] * DUMMY_DIM}
                for i, (pid, _) in enumerate(sorted(passages))]
        self._client.insert(self._name("removed"), rows)
        st["removed"] = seq + len(rows)

    def delete_articles(self, ids: Iterable[int]) -> int:
        """Delete these articles: their removals logged and committed at once, then the
        rows (see the module's docstring)."""
        ids = sorted(set(ids))
        if not ids:
            return 0
        with self._writing():
            self._recover()
            st = self._state()
            live = [int(r["id"]) for chunk in _chunks(ids) for r in self._query(
                "articles", f"id in {id_list(chunk)} and {self._live(st, 'article')}", ["id"])]
            if not live:
                return 0
            passages = self._passages_of(live)
            self._log_removals(st, passages)
            st["generation"] = int(st["generation"]) + 1
            st["articles"] = int(st["articles"]) - len(live)
            count_langs(st, added=(), removed=(lang for _, lang in passages))
            _milvus_summary.update(self, st, removed=live)
            self._write_state(st)
            for chunk in _chunks(live):
                self._client.delete(self._name("articles"), filter=f"id in {id_list(chunk)}")
            self._finish_removals(st)
        return len(live)

    def article_ids(self, *, outlet: str | None = None, before: datetime | None = None,
                    url: str | None = None, origin: str | None = None) -> list[int]:
        st = self._state()
        where = [self._live(st, "article")]
        if outlet:
            where.append(f"array_contains(outlets_lc, {lit(outlet.lower())})")
        if before:
            where.append(f"when_us < {us(before)}")
        if url:
            where.append(f"url == {lit(url)}")
        if origin:
            where.append(f"origin == {lit(origin)}")
        rows = self._query("articles", " and ".join(where), ["id"])
        gone = self._gone_articles(st, rows)
        return sorted(int(r["id"]) for r in rows if r["id"] not in gone)

    def _relabel(self, where: str, new: str | None) -> int:
        """Set the origin of the articles matching ``where`` (and of their passages):
        rows rewritten whole (Milvus updates by upsert), in place, so the intent is
        committed first and a writer that dies midway leaves it to the next turn
        (:meth:`_finish_relabel`)."""
        with self._writing():
            self._recover()
            st = self._state()
            arts = self._query("articles", f"({where}) and {self._live(st, 'article')}",
                               ["*"])
            if not arts:
                return 0
            st["relabel"] = {"where": where, "new": new or ""}
            self._write_state(st)
            was = {int(a["id"]): str(a["origin"]) for a in arts}
            self._relabel_rows(arts, new)
            st = self._state()
            del st["relabel"]
            st["generation"] = int(st["generation"]) + 1
            _milvus_summary.update(self, st, relabelled=arts, was=was)
            self._write_state(st)
            return len(arts)

    def _relabel_rows(self, arts: list[dict[str, Any]], new: str | None) -> None:
        """The passages of ``arts``, then the articles, rewritten with origin ``new``."""
        for a in arts:
            a["origin"] = new or ""
        ids = [int(a["id"]) for a in arts]
        rows = [r for chunk in _chunks(ids) for r in self._query(
            "passages", f"article_id in {id_list(chunk)}", ["*"])]
        for r in rows:
            r.pop("sparse", None)  # the BM25 function makes it again
            r["origin"] = new or ""
        if rows:
            self._client.upsert(self._name("passages"), rows)
        self._client.upsert(self._name("articles"), arts)

    def _finish_relabel(self) -> None:
        """A relabel whose writer died midway (its intent committed, not its end): the
        articles still matching are rewritten (the passages before the articles: those
        done are whole) and the summary counted again from the articles (one scan)."""
        st = self._state()
        intent = st.get("relabel")
        if not intent:
            return
        arts = self._query("articles", f"({intent['where']}) and "
                           f"{self._live(st, 'article')}", ["*"])
        if arts:
            self._relabel_rows(arts, intent["new"] or None)
        st = self._state()
        del st["relabel"]
        st["generation"] = int(st["generation"]) + 1
        _milvus_summary.write_counted(self, st)
        self._write_state(st)

    def share(self, article_id: int, current: str | None, new: str | None) -> None:
        if is_private(current) and not is_private(new):
            self._relabel(f"id == {int(article_id)}", new)

    def move_origin(self, old: str, new: str) -> int:
        return self._relabel(f"origin == {lit(old)}", new)

    def clear(self) -> int:
        return self.delete_articles(self.article_ids())

    # -- vectors written later -----------------------------------------------------------
    def reindex_begin(self, spaces: Sequence[SpaceInfo]) -> dict[str, set[int]]:
        return _milvus_reindex.begin(self, spaces)

    def reindex_write(self, space: str, ids: Sequence[int], vectors: np.ndarray,
                      sentences: Sequence[np.ndarray] | None) -> None:
        _milvus_reindex.write(self, space, ids, vectors, sentences)

    def reindex_missing(self, space: str) -> list[tuple[int, str]]:
        return _milvus_reindex.missing(self, space)

    def reindex_commit(self, spaces: Sequence[SpaceInfo], *, sentences: bool) -> None:
        _milvus_reindex.commit(self, spaces, sentences)

    def reindex_pending(self) -> bool:
        return _milvus_reindex.pending(self)

    def relayout(self) -> int | None:
        """Move the passages to the layout this store makes now (HNSW on a server, the
        language as partition key), vectors copied: ``khabar reindex --layout``
        (:mod:`._milvus_layout`). The passages copied, or None: nothing to do."""
        return _milvus_layout.relayout(self)

    def replace_vectors(self, space: str, rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Overwrite these passages' ``space`` vectors (rows rewritten whole): a new
        epoch, so every reader starts again."""
        vecs = {int(pid): np.asarray(v, dtype=np.float32) for pid, v in rows}
        with self._writing():
            self._recover()
            full = [r for chunk in _chunks(sorted(vecs)) for r in self._query(
                "passages", f"id in {id_list(chunk)}", ["*"])]
            for r in full:
                r.pop("sparse", None)
                r[f"v_{space}"] = vecs[int(r["id"])].tolist()
            if full:
                self._client.upsert(self._name("passages"), full)
            st = self._state()
            st["epoch"] = int(st["epoch"]) + 1
            st["generation"] = int(st["generation"]) + 1
            self._write_state(st)

    def passages_without_sentence_vectors(self, space: str) -> list[tuple[int, str]]:
        st = self._state()
        rows = self._query("passages", f"{self._live(st)} and s_{space} == "
                           f"{lit(NO_SENTENCES)}", ["id", "text"])
        return sorted((int(r["id"]), str(r["text"])) for r in rows)

    def add_sentence_vectors(self, space: str, rows: Iterable[tuple[int, np.ndarray]]
                             ) -> None:
        mats = dict(rows)
        with self._writing():
            full = [r for chunk in _chunks(sorted(mats)) for r in self._query(
                "passages", f"id in {id_list(chunk)}", ["*"])]
            for r in full:
                r.pop("sparse", None)
                blob = base64.b64encode(sentence_blob(
                    mats[int(r["id"])], np.asarray(r[f"v_{space}"], dtype=np.float32))
                    ).decode("ascii")
                r[f"s_{space}"] = blob if len(blob) <= TEXT_MAX else NO_SENTENCES
            if full:
                self._client.upsert(self._name("passages"), full)

    def replace_sentence_vectors(self, space: str,
                                 rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Every passage's ``space`` sentence vectors replaced by ``rows`` (none for the
        passages not in them): the rows that change are rewritten."""
        mats = {int(pid): m for pid, m in rows}
        with self._writing():
            self._recover()
            had = {int(r["id"]) for r in self._query(
                "passages", f"s_{space} != {lit(NO_SENTENCES)}", ["id"])}
            todo = sorted(had | set(mats))
            full = [r for chunk in _chunks(todo) for r in self._query(
                "passages", f"id in {id_list(chunk)}", ["*"])]
            for r in full:
                r.pop("sparse", None)
                mat = mats.get(int(r["id"]))
                blob = NO_SENTENCES if mat is None else base64.b64encode(sentence_blob(
                    mat, np.asarray(r[f"v_{space}"], dtype=np.float32))).decode("ascii")
                r[f"s_{space}"] = blob if len(blob) <= TEXT_MAX else NO_SENTENCES
            if full:
                self._client.upsert(self._name("passages"), full)

    # -- reading -------------------------------------------------------------------------
    def count_passages(self) -> int:
        return sum(int(n) for n in self._state()["langs"].values())

    def count_articles(self) -> int:
        return int(self._state()["articles"])

    def language_counts(self) -> dict[str, int]:
        langs: dict[str, int] = self._question_state()["langs"]
        return dict(sorted(langs.items(), key=lambda kv: -kv[1]))

    def languages(self) -> list[str]:
        return list(self.language_counts())

    def _articles_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Citation data of these articles: kept for the question as its passages'
        rows are (:meth:`_rows_of`), the rest read by primary key."""
        fields = ["id", "title", "url", "published", "n_passages", "outlets"]

        st = self._state(fresh=False)
        keep = self.row_cache and not self._lease.held_here
        key = (st["epoch"], st["generation"], "articles")
        with self._lock:
            rows = self._article_rows.get(ids, key, int(st["article"]) if keep else -1,
                                          fields, functools.partial(self._read_ids, "articles"))
        return {aid: {"id": aid, **r} for aid, r in rows.items()}

    def _stored(self, rows: list[dict[str, Any]], st: Mapping[str, Any]
                ) -> list[StoredPassage]:
        """Passages with their article's citation data; a passage whose article is gone
        (a deletion under way) is left out."""
        arts = self._articles_by_id(int(r["article_id"]) for r in rows)
        pending = self._pending_removed(st)
        out = []
        for r in rows:
            a = arts.get(int(r["article_id"]))
            if a is None or int(r["id"]) in pending:
                continue
            out.append(StoredPassage(
                id=int(r["id"]), article_id=int(r["article_id"]),
                position=int(r["position"]), text=r["text"], lang=r["lang"],
                title=a["title"], outlets=sorted(a["outlets"] or []), url=a["url"] or None,
                published=parse_iso(a["published"] or None),
                n_passages=int(a["n_passages"]),
                dup_of=int(r["dup_of"]) if int(r["dup_of"]) >= 0 else None))
        return sorted(out, key=lambda p: (p.article_id, p.position))

    _PASSAGE_FIELDS = ("id", "article_id", "position", "text", "lang", "dup_of")
    _ROW_FIELDS = ("article_id", "position", "text", "lang", "dup_of", "tokens")
    """What a question reads of a passage beside its vectors (:meth:`_rows_of`)."""

    def _by_ids(self, what: str, ids: Iterable[int], fields: Sequence[str], upto: int
                ) -> list[dict[str, Any]]:
        """The rows of these ids, committed ones only (``id <= upto``, tested here):
        ``id in [...]`` alone is a primary-key lookup, while any other condition beside
        it makes Milvus Lite scan the whole collection (100k passages: 1.7 ms against
        120 ms of CPU a query, docs/milvus.md)."""
        return [r for r in self._read_ids(what, sorted(set(ids)), fields)
                if int(r["id"]) <= upto]

    def _read_ids(self, what: str, ids: Sequence[int], fields: Sequence[str]
                  ) -> list[dict[str, Any]]:
        """The rows of these ids by primary key, a query per ``BATCH`` of them."""
        return [r for chunk in _chunks(ids)
                for r in self._query(what, f"id in {id_list(chunk)}", fields)]

    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        st = self._state(fresh=False)
        return {p.id: p for p in self._stored(self._passage_rows(ids, st), st)}

    def _passage_rows(self, ids: Iterable[int], st: Mapping[str, Any]
                      ) -> list[dict[str, Any]]:
        """The committed rows of these passages, each with its id: the question's
        kept rows (:meth:`_rows_of`: a candidate's text came with its vectors), the
        rest read by primary key."""
        upto = int(st["passage"])
        return [{"id": pid, **r} for pid, r in sorted(self._rows_of(ids).items())
                if pid <= upto]

    def neighbours(self, ids: Sequence[int], span: int = 1) -> dict[int, list[StoredPassage]]:
        """Each passage's neighbours in its article (within ``span`` positions, itself
        excluded), in reading order. By primary key: an article's passages are stored
        under consecutive ids in reading order, so its neighbours are the ids around it;
        an article where that finds fewer than it has (ids given otherwise) is read by
        its article id (a scan of the collection on Milvus Lite)."""
        st = self._state(fresh=False)
        places = {int(r["id"]): (int(r["article_id"]), int(r["position"]))
                  for r in self._passage_rows(ids, st)}
        sizes = {a: int(r["n_passages"]) for a, r in
                 self._articles_by_id(art for art, _ in places.values()).items()}
        # The ids around each within its article's (an article of one passage: none).
        window = {q for pid, (art, pos) in places.items()
                  for q in range(max(pid - span, pid - pos, 1),
                                 min(pid + span, pid - pos + sizes.get(art, 0) - 1) + 1)}
        near = self._stored(self._passage_rows(window, st), st)

        def around(pid: int, art: int, pos: int) -> list[StoredPassage]:
            return [q for q in near if q.article_id == art and q.id != pid
                    and abs(q.position - pos) <= span]

        short = {art for pid, (art, pos) in places.items()
                 if len(around(pid, art, pos)) < min(pos + span, sizes.get(art, 0) - 1)
                 - max(pos - span, 0)}
        if short:
            known = {q.id for q in near}
            near += [q for q in self.article_passages(sorted(short)) if q.id not in known]
        out: dict[int, list[StoredPassage]] = {pid: [] for pid in ids}
        for pid, (art, pos) in places.items():
            out[pid] = sorted(around(pid, art, pos), key=lambda q: q.position)
        return out

    def article_passages(self, article_ids: Sequence[int], langs: Sequence[str] = ()
                         ) -> list[StoredPassage]:
        st = self._state(fresh=False)
        extra = f" and lang in {json.dumps(list(langs), ensure_ascii=False)}" if langs else ""
        rows = [r for chunk in _chunks(sorted(set(article_ids))) for r in self._query(
            "passages", f"article_id in {id_list(chunk)} and {self._live(st)}{extra}",
            self._PASSAGE_FIELDS)]
        return self._stored(rows, st)

    def iter_passages(self, lang: str | None = None) -> Iterator[dict[str, Any]]:
        st = self._state(fresh=False)
        expr = self._live(st) + (f" and lang == {lit(lang)}" if lang else "")
        pending = self._pending_removed(st)
        rows = sorted(self._query("passages", expr, self._PASSAGE_FIELDS),
                      key=lambda r: int(r["id"]))
        for r in rows:
            if int(r["id"]) not in pending:
                yield {**r, "dup_of": int(r["dup_of"]) if int(r["dup_of"]) >= 0 else None}

    def duplicate_groups(self, ids: Sequence[int]) -> dict[int, list[int]]:
        st = self._state(fresh=False)
        uniq = sorted(set(ids))
        root_of = {int(r["id"]): (int(r["dup_of"]) if int(r["dup_of"]) >= 0 else int(r["id"]))
                   for r in self._passage_rows(uniq, st)}
        roots = sorted(set(root_of.values()))
        members: dict[int, list[int]] = {}
        copies = self._has_copies(st)
        for chunk in _chunks(roots, 1000):
            # The roots by primary key (mostly kept already); their copies by
            # ``dup_of`` (a scan on Lite), where the archive has any.
            rows = [{"id": r["id"], "dup_of": r["dup_of"]}
                    for r in self._passage_rows(chunk, st)]
            if copies:
                rows += self._query("passages", f"dup_of in {id_list(chunk)} and "
                                    f"{self._live(st)}", ["id", "dup_of"])
            for r in sorted(rows, key=lambda r: int(r["id"])):
                for root in {int(r["id"]), int(r["dup_of"])} & set(chunk):
                    members.setdefault(root, []).append(int(r["id"]))
        return {pid: [pid, *[m for m in members.get(root_of[pid], []) if m != pid]]
                for pid in ids if pid in root_of}

    def _has_copies(self, st: Mapping[str, Any]) -> bool:
        """Whether any committed passage is linked to another as its copy: asked once
        a committed state (each write raises the generation), so that a question of an
        archive without copies skips their query (a scan on Milvus Lite)."""
        key = (st["store"], st["epoch"], st["generation"], self._passages_name)
        if self._copies_known is None or self._copies_known[0] != key:
            found = bool(self._first_ids(f"dup_of >= 0 and {self._live(st)}", 1))
            self._copies_known = (key, found)
        return self._copies_known[1]

    def passage_tokens(self, ids: Sequence[int]) -> dict[int, str]:
        st = self._state(fresh=False)
        return {int(r["id"]): str(r["tokens"]) for r in self._passage_rows(ids, st)}

    def _others_private(self, scope: str, st: Mapping[str, Any]) -> bool:
        with self._lock:
            rows = self._client.query(
                self._name("articles"), filter=f'origin like "{PRIVATE}%" and origin != '
                f"{lit(scope)} and {self._live(st, 'article')}", output_fields=["id"],
                limit=1, **self._at())
        return bool(rows)

    @staticmethod
    def _scope_expr(scope: str) -> str:
        return f'(origin == "" or not (origin like "{PRIVATE}%") or origin == {lit(scope)})'

    def passage_filter(self, *, outlets: Sequence[str] = (), since: datetime | None = None,
                       until: datetime | None = None, langs: Sequence[str] = (),
                       origin: str | None = None, scope: str | None = None
                       ) -> set[int] | Excluding | MilvusMatching | None:
        """The filters' cheapest exact form (:mod:`._milvus_filter`): the matching ids
        while they are few, else the expression itself; a scope alone excludes the
        passages other chats keep private."""
        st = self._state(fresh=False)
        if scope is not None and not self._others_private(scope, st):
            scope = None
        if not (outlets or since or until or langs or origin or scope):
            return None
        live = self._live(st)
        small = SMALL * (LITE_FACTOR if self._lite else 1)

        def select(expr: str) -> set[int]:
            return {int(r["id"]) for r in self._query(
                "passages", f"{live} and ({expr})", ["id"])} - self._pending_removed(st)

        def rows(ids: Sequence[int]) -> list[dict[str, Any]]:
            pending = self._pending_removed(st)
            return [r for r in self._by_ids("passages", ids, FIELDS, int(st["passage"]))
                    if int(r["id"]) not in pending]

        if scope and not (outlets or since or until or langs or origin):
            # A scope alone: the few passages it hides (other chats' own), read through
            # the passages' copy of their article's origin, never a set of all it shows.
            hidden = self._first_ids(f"{hidden_expr(scope)} and {live}", small + 1)
            if len(hidden) <= small:
                return Excluding(hidden)
            return MilvusMatching(scope_expr(scope), select, rows,
                                  passage_test(scope=scope))
        expr = passage_expr(outlets=outlets, since=since, until=until, langs=langs,
                            origin=origin, scope=scope)
        first = self._first_ids(f"{live} and ({expr})", small + 1)
        if len(first) <= small:
            return first - self._pending_removed(st)
        return MilvusMatching(expr, select, rows, passage_test(
            outlets=outlets, since=since, until=until, langs=langs, origin=origin,
            scope=scope))

    def _first_ids(self, expr: str, limit: int) -> set[int]:
        """Ids of at most ``limit`` passages matching ``expr`` (one query)."""
        if not self._has_passages():
            return set()
        with self._lock:
            rows = self._client.query(self._name("passages"), filter=expr,
                                      output_fields=["id"], limit=limit, **self._at())
        return {int(r["id"]) for r in rows}

    def articles_in(self, *, since: datetime | None = None, until: datetime | None = None,
                    origin: str | None = None, outlets: Sequence[str] = (),
                    ids: Sequence[int] | None = None, scope: str | None = None
                    ) -> list[StoredArticle]:
        st = self._state(fresh=False)
        where = [self._live(st, "article")]
        if ids is not None:
            if not ids:
                return []
            where.append(f"id in {id_list(ids)}")
        if since is not None and until is not None:
            where.append(f"when_us >= {us(since)} and when_us < {us(until)}")
        if origin:
            where.append(f"origin == {lit(origin)}")
        if scope:
            where.append(self._scope_expr(scope))
        if outlets:
            lows = json.dumps([o.lower() for o in outlets], ensure_ascii=False)
            where.append(f"array_contains_any(outlets_lc, {lows})")
        rows = self._query("articles", " and ".join(where),
                           ["id", "title", "url", "published", "ingested", "lang",
                            "n_passages", "outlets"])
        gone = self._gone_articles(st, rows)
        out = [StoredArticle(
            id=int(r["id"]), title=r["title"], url=r["url"] or None,
            published=parse_iso(r["published"] or None),
            ingested=parse_iso(r["ingested"] or None) or datetime.now(UTC),
            lang=r["lang"] or None, n_passages=int(r["n_passages"]),
            outlets=sorted(r["outlets"] or [])) for r in rows if r["id"] not in gone]
        return sorted(out, key=lambda a: (a.when, a.id))

    def outlets(self, scope: str | None = None) -> list[tuple[str, int]]:
        """From the writer's summary rows (:mod:`._milvus_summary`); a scope that others'
        private articles are hidden from: the public counts and its own private
        articles' outlets (one query of that chat's articles)."""
        summary = _milvus_summary.current(self)
        counts = summary.outlets
        st = self._state(fresh=False)
        if scope is not None and self._others_private(scope, st):
            counts = dict(summary.public)
            if is_private(scope):
                rows = self._query("articles", f"origin == {lit(scope)} and "
                                   f"{self._live(st, 'article')}", ["id", "outlets"])
                gone = self._gone_articles(st, rows)
                for r in rows:
                    if r["id"] not in gone:
                        for name in dict.fromkeys(r["outlets"] or []):
                            counts[name] = counts.get(name, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if space not in self.spaces():
            return {}
        if (kept := self._kept_rows(ids)) is not None:
            return {pid: r[f"v_{space}"] for pid, r in kept.items()}
        return {int(r["id"]): np.asarray(r[f"v_{space}"], dtype=np.float32)
                for r in self._read_ids("passages", sorted(set(ids)), ["id", f"v_{space}"])}

    def sentence_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        info = self.spaces().get(space)
        if info is None:
            return {}
        fields = ["id", f"v_{space}", f"s_{space}"]
        out = {}
        if (kept := self._kept_rows(ids)) is not None:  # a question's hits, read already
            for pid, r in kept.items():
                if (mat := self._sentence_matrix(r, space, info.dim)) is not None:
                    out[pid] = mat
            return out
        for r in self._read_ids("passages", sorted(set(ids)), fields):
            mat = self._sentence_matrix(r, space, info.dim)
            if mat is not None:
                out[int(r["id"])] = mat
        return out

    row_cache = True
    """A question's candidates' vectors read once, every space's (:mod:`._milvus_rows`);
    False: each call reads its own (the benchmarks' A/B)."""

    def _rows_of(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Every space's passage and sentence vector fields of these passages, and
        their text, tokens and place (``_ROW_FIELDS``): kept ones, the rest in one
        query per batch (kept while the committed state holds; never under the writer
        lease). A question's candidates are read here once; its hits, their
        duplicates' roots, passages, neighbours and tokens come from what was kept."""
        fields, key, st = self._rows_key()

        keep = self.row_cache and not self._lease.held_here
        with self._lock:  # one client, and the rows kept: one thread at a time
            return self._vector_rows.get(ids, key, int(st["passage"]) if keep else -1,
                                         fields, functools.partial(self._read_ids, "passages"))

    def _rows_key(self) -> tuple[list[str], tuple[object, ...], dict[str, Any]]:
        """The fields :meth:`_rows_of` reads, the key its rows are kept under, and the
        state that key is of."""
        fields = ["id", *self._ROW_FIELDS,
                  *(f"{k}_{s}" for s in sorted(self.spaces()) for k in ("v", "s"))]
        st = self._state(fresh=False)
        return fields, (st["epoch"], st["generation"], self._passages_name,
                        tuple(fields)), st

    def _kept_rows(self, ids: Sequence[int]) -> dict[int, dict[str, Any]] | None:
        """The rows of ``ids`` when this question has read them all already (else None)."""
        if not self.row_cache or not ids:
            return None
        _, key, _ = self._rows_key()
        with self._lock:
            return self._vector_rows.kept(ids, key)

    def search_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """:meth:`vectors` as a question reads them: with every space's vectors of the
        same passages, kept for its next reads (:meth:`_rows_of`)."""
        if space not in self.spaces() or not ids:
            return {}
        return {pid: r[f"v_{space}"] for pid, r in self._rows_of(ids).items()}

    def search_sentence_vectors(self, spaces: Sequence[str], ids: Sequence[int]
                                ) -> dict[str, dict[int, np.ndarray]]:
        """:meth:`sentence_vectors` of several spaces, read as :meth:`search_vectors`."""
        infos = self.spaces()
        known = [s for s in spaces if s in infos]
        out: dict[str, dict[int, np.ndarray]] = {s: {} for s in spaces}
        if not known or not ids:
            return out
        for pid, r in self._rows_of(ids).items():
            for space in known:
                mat = self._sentence_matrix(r, space, infos[space].dim)
                if mat is not None:
                    out[space][pid] = mat
        return out

    @staticmethod
    def _sentence_matrix(row: Mapping[str, Any], space: str, dim: int) -> np.ndarray | None:
        """A row's sentence vectors: none, the stored matrix, or (one sentence) the
        passage's own vector."""
        blob = row[f"s_{space}"]
        if blob == NO_SENTENCES:
            return None
        return (from_q8(base64.b64decode(blob), dim) if blob else
                np.asarray(row[f"v_{space}"], dtype=np.float32).reshape(1, -1))

    def count_sentence_vectors(self) -> dict[str, int]:
        n = self.count_passages()
        out = {}
        for space in self.spaces():
            have = n - self._without_sentences(space)
            if have > 0:
                out[space] = have
        return out

    def _without_sentences(self, space: str, st: Mapping[str, Any] | None = None) -> int:
        """Committed passages (of ``st``, else the state read last) with no ``space``
        sentence vectors. Counted, not those with: Milvus Lite's count(*) reads every
        row it counts whole, vectors and all (100k passages: 9 s of CPU and 3.5 GB for
        all of them, 0.14 s for none)."""
        st = self._state(fresh=False) if st is None else st
        return self._count("passages", f"{self._live(st)} and "
                           f"s_{space} == {lit(NO_SENTENCES)}")

    def recent_mean_vector(self, space: str, lang: str, sample: int
                           ) -> tuple[np.ndarray, int] | None:
        """Mean vector of the ``sample`` newest ``lang`` passages: windows of ids below
        the newest, widened until enough are found (no sort in a Milvus query)."""
        st = self._state(fresh=False)
        top = int(st["passage"])
        window = max(sample * 4, 1000)
        rows: list[dict[str, Any]] = []
        while True:
            low = max(top - window, 0)
            rows = self._query("passages", f"id > {low} and id <= {top} and lang == "
                               f"{lit(lang)}", ["id", f"v_{space}"])
            if len(rows) >= sample or low == 0:
                break
            window *= 4
        if not rows:
            return None
        rows = sorted(rows, key=lambda r: -int(r["id"]))[:sample]
        vecs = np.asarray([r[f"v_{space}"] for r in rows], dtype=np.float32)
        return vecs.mean(axis=0), len(rows)

    # -- search --------------------------------------------------------------------------
    @staticmethod
    def _allowed_expr(allowed: Allowed | None) -> str:
        """The filter of a search's ``allowed``: ids in a set, or not in an Excluding's,
        or a :class:`MilvusMatching`'s expression."""
        if allowed is None:
            return ""
        if isinstance(allowed, MilvusMatching):
            return f" and ({allowed.expr})"
        if isinstance(allowed, Matching):  # another backend's: by ids
            allowed = allowed.ids()
        if isinstance(allowed, Excluding):
            return f" and not (id in {id_list(sorted(allowed.ids))})" if allowed.ids else ""
        return f" and id in {id_list(sorted(allowed))}"

    def _search_many(self, space: str, lang: str, queries: np.ndarray, k: int,
                     allowed: Allowed | None, where: str = ""
                     ) -> list[list[tuple[int, float]]]:
        """``where``: an expression of the store's own (a put's ``id > mark``)."""
        if not self._has_passages() or space not in self.spaces():
            return [[] for _ in range(len(queries))]
        if allowed is not None and not allowed:
            return [[] for _ in range(len(queries))]
        st = self._state(fresh=False)
        expr = f"lang == {lit(lang)} and {self._live(st)}" + self._allowed_expr(allowed)
        if where:
            expr += f" and ({where})"
        with self._lock:
            found = self._client.search(
                self._name("passages"), data=np.asarray(queries, dtype=np.float32).tolist(),
                anns_field=f"v_{space}", limit=max(1, min(k, 16_384)), filter=expr,
                output_fields=["id"], search_params=self._dense_params(space, k),
                **self._at())
        pending = self._pending_removed(st)
        return [[(int(h["id"]), float(h["distance"])) for h in hits
                 if int(h["id"]) not in pending] for hits in found]

    def search_many(self, space: str, lang: str, queries: np.ndarray, k: int,
                    allowed: Allowed | None = None) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``queries``: one search call (nq > 1)."""
        return self._search_many(space, lang, np.atleast_2d(queries), k, allowed)

    def _dense_params(self, space: str, k: int) -> dict[str, Any]:
        """The search parameters of ``space``'s index in the current collection (an
        older collection may have another index than this store would make now)."""
        key = (self._name("passages"), f"v_{space}")
        if key not in self._dense_kinds:
            with self._lock:
                self._dense_kinds[key] = kind_of(self._client.describe_index(*key))
        return search_params(self._dense_kinds[key], k)

    def dense_index_kinds(self) -> dict[str, str]:
        """The index type of each space's dense vectors ("FLAT", "HNSW")."""
        if not self._has_passages():
            return {}
        for space in self.spaces():
            self._dense_params(space, 1)
        name = self._name("passages")
        return {f[2:]: kind for (c, f), kind in self._dense_kinds.items() if c == name}

    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """Top ``k`` passages of one language by inner product in ``space``."""
        return self._search_many(space, lang, np.asarray(query).reshape(1, -1), k,
                                 allowed)[0]

    def has_lexical_search(self) -> bool:
        """Whether Milvus's BM25 can rank this store's passages (a 2.3 or 2.4 server
        cannot: khabar's own BM25 serves retrieval there)."""
        return _milvus_lexical.available(self)

    def lexical_search(self, lang: str, tokens: Sequence[str], k: int,
                       allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """Milvus's own BM25 over khabar's stored tokens (the same analysis as the
        in-process BM25 of :mod:`khabar.retrieval`): top ``k`` of one language."""
        return self.lexical_search_groups(lang, [(1.0, [t]) for t in tokens], k, allowed)

    def lexical_search_groups(self, lang: str, groups: Sequence[tuple[float, Sequence[str]]],
                              k: int, allowed: Allowed | None = None
                              ) -> list[tuple[int, float]]:
        """BM25 where each group of alternative tokens counts once, by its best
        (:mod:`._milvus_lexical`)."""
        if not self._has_passages() or not any(toks for _, toks in groups):
            return []
        if not self.has_lexical_search():
            raise StoreError(f"the Milvus at {self.uri} has no BM25 function (Milvus 2.5 "
                             "on has it); khabar's own lexical search serves instead")
        return _milvus_lexical.search_groups(self, lang, groups, k, allowed)

    def refresh(self, *, force_rebuild: bool = False) -> None:
        """Nothing to bring up to date: Milvus is the index (every read sees the
        committed state)."""

    # -- what changed --------------------------------------------------------------------
    def changes_since(self, mark: ChangeMark | None, *, content: Content = "text"
                      ) -> Changes:
        """As :meth:`khabar.store.Store.changes_since`, read from the committed ids
        and the removal log (not one snapshot: a write committed meanwhile shows in
        the next call, as its mark is not passed). Within a question, the state its
        ``generation()`` read."""
        st = self._question_state()
        if mark is not None and self._asked() is not None and mark.store == st["store"] \
                and mark.epoch == int(st["epoch"]) \
                and (mark.passage > int(st["passage"]) or mark.removed > int(st["removed"])):
            # The caller (one lexical index a process) is past this question's commit,
            # brought there by a later question: the changes up to the newest commit,
            # read at its timestamp, not a reset (a rebuild from every passage, back
            # to the older commit).
            outside = _QUESTION.set(None)
            try:
                return self.changes_since(mark, content=content)
            finally:
                _QUESTION.reset(outside)
        now = ChangeMark(st["store"], int(st["epoch"]), int(st["passage"]),
                         int(st["removed"]))
        field = {"text": "text", "tokens": "tokens", "words": "words"}[content]
        pending = self._pending_removed(st)
        reset = (mark is None or mark.store != now.store or mark.epoch != now.epoch
                 or mark.passage > now.passage or mark.removed > now.removed
                 or mark.removed < int(st["compacted"]))
        after = 0 if reset or mark is None else mark.passage
        rows = self._query("passages", f"id > {after} and id <= {now.passage}",
                           ["id", "lang", field]) if after < now.passage else []
        removed_now: set[int] = set()
        removed: list[int] = []
        if not reset and mark is not None and mark.removed < now.removed:
            logged = self._query("removed", f"seq > {mark.removed} and seq <= "
                                 f"{now.removed}", ["passage_id"])
            removed_now = {int(r["passage_id"]) for r in logged}
            removed = sorted(p for p in removed_now if p <= mark.passage)
        drop = removed_now | pending
        added = sorted((int(r["id"]), str(r["lang"]), str(r[field])) for r in rows
                       if int(r["id"]) not in drop)
        return Changes(added, removed, now, reset)

    def compact_changes(self, upto: ChangeMark) -> int:
        with self._writing():
            st = self._state()
            limit = min(int(upto.removed), int(st["removed_done"]))
            n = self._count("removed", f"seq <= {limit}")
            self._client.delete(self._name("removed"), filter=f"seq <= {limit}")
            st["compacted"] = max(int(st["compacted"]), limit)
            self._write_state(st)
        return n

    # -- the whole store -----------------------------------------------------------------
    def keep_saved(self, index: SavedIndex) -> None:
        self._saved.add(index)

    def _save_kept(self, *, force: bool) -> None:
        for index in list(self._saved):
            with contextlib.suppress(OSError):
                index.save(force=force)

    def flush(self) -> None:
        self._save_kept(force=False)
        self._seal(SEAL_ROWS)

    def _seal(self, rows: int) -> None:
        """Milvus Lite: seal the passages added since the last seal (at least ``rows``
        of them) into a segment, which searches read by index, not row by row."""
        if not self._lite or not self._has_passages():
            return
        top = int(self._state(fresh=False)["passage"])
        if top - self._sealed_upto >= max(rows, 1):
            with self._lock:
                self._client.flush(self._name("passages"))
            self._sealed_upto = top

    def close(self) -> None:
        self._save_kept(force=True)
        with contextlib.suppress(Exception):
            self._seal(1)
        with self._lock, contextlib.suppress(Exception):
            self._client.close()

    def stats(self) -> dict[str, object]:
        st = self._state()
        summary = _milvus_summary.current(self)
        size: int | None = None
        if self._lite:
            p = Path(self.uri)
            size = (sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                    if p.is_dir() else p.stat().st_size if p.exists() else 0)
        return {
            "articles": self.count_articles(),
            "passages": self.count_passages(),
            "outlets": len(summary.outlets),
            "languages": dict(st["langs"]),
            "published_from": summary.first,
            "published_to": summary.last,
            "index_type": "/".join(sorted({k.lower() for k in self.dense_index_kinds()
                                           .values()})) or "flat",
            "spaces": {k: vars(v) for k, v in self.spaces().items()},
            "sentence_vectors": self.count_sentence_vectors(),
            "linked_duplicates": self._count("passages", f"{self._live(st)} and dup_of >= 0"),
            "size_bytes": size,
            "path": self.uri,
        }

    def scope_stats(self, scope: str) -> dict[str, object]:
        """:meth:`stats`' figures over what the chat of ``scope`` sees: the committed
        counts less other chats' private ones (``count(*)`` queries: one of their
        articles, one per language of their passages), the outlets as :meth:`outlets`
        counts them, and the publication range from the summary's days less those of
        the hidden articles, read while they are at most ``SMALL`` (else the dates are
        None): an end a hidden article held is then the earliest (latest) date of the
        first (last) day left, one query of that day's articles."""
        st = self._state()
        summary = _milvus_summary.current(self)
        langs = {k: int(n) for k, n in st["langs"].items()}
        out: dict[str, object] = {
            "articles": self.count_articles(), "outlets": len(self.outlets(scope)),
            "published_from": summary.first, "published_to": summary.last}
        if not self._others_private(scope, st):
            return {**out, "passages": sum(langs.values()), "languages": langs}
        hidden, live = hidden_expr(scope), self._live(st, "article")
        # A committed deletion's rows may still be there: not counted twice.
        pending = sorted(self._pending_removed(st))
        gone_rows = [r for chunk in pieces(pending, 2000) for r in self._query(
            "passages", f"id in {id_list(chunk)} and {hidden}", ["lang", "article_id"])]
        gone = {int(r["article_id"]) for r in gone_rows}
        for lang in langs:
            langs[lang] -= self._count(
                "passages", f"{self._live(st)} and {hidden} and lang == {lit(lang)}"
            ) - sum(1 for r in gone_rows if r["lang"] == lang)
        out.update(articles=int(st["articles"]) - self._count("articles", f"{live} and {hidden}")
                   + len(gone), passages=sum(max(0, n) for n in langs.values()),
                   languages={k: n for k, n in langs.items() if n > 0})
        with self._lock:
            rows = self._client.query(
                self._name("articles"), filter=f'{live} and {hidden} and published != ""',
                output_fields=["id", "published"], limit=SMALL + 1, **self._at())
        if len(rows) > SMALL:
            return {**out, "published_from": None, "published_to": None}
        dates = [str(r["published"]) for r in rows if int(r["id"]) not in gone]
        days = dict(summary.days)
        for date in dates:  # each hidden article once, however many share a date
            days[date[:10]] = days.get(date[:10], 0) - 1
        left = sorted(day for day, n in days.items() if n > 0)
        for key, end, pick, day in (("published_from", summary.first, min, left[:1]),
                                    ("published_to", summary.last, max, left[-1:])):
            if end in dates:  # held by a hidden article (or many): the next one seen
                got = self._query("articles", f"published like {lit(day[0] + '%')} and "
                                  f"{live} and {scope_expr(scope)}", ["id", "published"]
                                  ) if day else []
                out[key] = pick((str(r["published"]) for r in got
                                 if int(r["id"]) not in gone), default=None)
        return out

    def check(self, expected: Sequence[SpaceInfo] = ()) -> list[str]:
        """Every fault found: counts against the state, orphans, sentence vectors, the
        articles' summary rows. Both collections are read once, in batches of an
        iterator, into counts by article id: memory grows with the number of articles
        (a few bytes each), not with the rows read. A commit of another writer during
        the scans is told from a fault (:mod:`._milvus_check`)."""
        return _milvus_check.check(self, expected)
