"""The one public class: :class:`Store`, a thin front over the store's operations.

SQLite is the source of truth, vectors included (as float16 blobs), and every
ingest is one SQLite transaction, so an article is either fully in or not at all.
Each passage's sentences have vectors too (kept in SQLite only, as int8: they
rescore the candidates that passage-level search found, and pick answer sentences;
a passage of one sentence stores none and its passage vector stands in).
The FAISS indexes are derived from it (:mod:`._vectors`), float16 as well.

``Store`` holds what lives as long as the process (the path, one connection per
thread, the FAISS indexes and their lock) and hands them to the modules that do
the work: :mod:`._schema` (tables, connections, transactions), :mod:`._write`,
:mod:`._read`, :mod:`._vectors` and :mod:`._check`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from khabar._errors import StoreError

from . import _changes, _check, _read, _schema, _vectors, _write
from ._base import SavedIndex
from ._changes import ChangeMark, Changes, Content
from ._types import Allowed, Excluding, StoredArticle, StoredPassage
from ._vectors import IndexType, SpaceInfo
from ._write import NewArticle, PutResult


class Store:
    """Articles and passages on disk, searchable by vector: the SQLite + FAISS
    implementation of :class:`khabar.store.ArchiveStore`.

    Open one per process; it is safe to share between threads. Several processes
    may open the same store: SQLite (WAL) serialises the writers, and readers pick
    up other processes' writes on their next search (only what changed: see
    :meth:`changes_since`).
    """

    def __init__(
        self,
        path: Path,
        *,
        index_type: IndexType = "auto",
        hnsw_threshold: int = 20_000,
    ) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._faiss = _vectors.VectorIndexes(self.path / "faiss", index_type, hnsw_threshold)
        self._saved: weakref.WeakSet[SavedIndex] = weakref.WeakSet()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "faiss").mkdir(exist_ok=True)
            _schema.open_schema(self._conn(), self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    @property
    def index_type(self) -> IndexType:
        return self._faiss.index_type

    @property
    def hnsw_threshold(self) -> int:
        return self._faiss.hnsw_threshold

    # -- connections -------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / _schema.DB_NAME

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _schema.connect(self.db_path)
            self._local.conn = conn
        return conn

    def keep_saved(self, index: SavedIndex) -> None:
        """Have ``index.save(force=False)`` called at the end of a batch (:meth:`flush`)
        and ``index.save(force=True)`` when the store is closed, as the FAISS files are.
        Held weakly: an index no longer used elsewhere is forgotten."""
        self._saved.add(index)

    def _save_kept(self, *, force: bool) -> None:
        for index in list(self._saved):
            with contextlib.suppress(OSError):
                index.save(force=force)

    def close(self) -> None:
        """Save the FAISS indexes (and those of :meth:`keep_saved`) if the files are
        behind them, and close this thread's connection."""
        with contextlib.suppress(sqlite3.Error, OSError):
            self._faiss.save(force=True)
        self._save_kept(force=True)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta and vector spaces ----------------------------------------------------------
    def meta(self, key: str) -> str | None:
        return _schema.meta(self._conn(), key)

    def generation(self) -> int:
        """A counter that moves when (and only when) a write changed something."""
        return _schema.generation(self._conn())

    # -- what changed --------------------------------------------------------------------
    def change_mark(self) -> ChangeMark:
        """Where the store stands now: equal marks, equal passages."""
        return _changes.current_mark(self._conn())

    def changes_since(self, mark: ChangeMark | None, *, content: Content = "text"
                      ) -> Changes:
        """What changed since ``mark``, for readers that keep something per passage
        (FAISS, BM25, a vocabulary) and want to apply only that.

        The contract, whoever wrote (this ``Store``, another one, another process):

        * everything is read in one snapshot, and ``changes.mark`` is that snapshot's
          mark: a reader that held the passages of ``mark`` and applies ``removed``
          then ``added`` holds exactly the passages of ``changes.mark``;
        * ``added``: (id, language, text) of the passages added since, by id. Passage
          ids only grow and are never reused, so these are the ids above the mark's.
          With ``content="tokens"`` the text is replaced by the passage's lexical tokens
          (:func:`khabar.text.lexical_tokens`), with ``content="words"`` by its content
          words (:func:`khabar.text.content_words`), each joined by spaces: what was
          stored with the passage, so that readers never analyse the archive again;
        * ``removed``: ids of passages held at ``mark`` and deleted since (a new
          version of an article deletes the old passages and adds new ones);
          passages added and deleted in between are in neither list;
        * ``reset``: the reader must drop everything it holds and take ``added``, which
          is then every passage. That happens for ``mark=None`` (a first read), a mark
          of another store or of an older epoch (vectors replaced by reindexing, or the
          vector spaces changed), a mark whose part of the removal log was compacted
          away (:meth:`compact_changes`), or one the store has not reached (restored
          from a backup).

        Passages are never changed in place (their text, language and vectors stay as
        written until a reindex, which is a reset); ``dup_of`` links and sentence
        vectors are not tracked here: read them when needed.
        """
        return _changes.changes_since(self._conn(), mark, content)

    def compact_changes(self, upto: ChangeMark) -> int:
        """Forget the removals ``upto`` has seen (the log keeps one small row per
        passage deleted): readers at an older mark get a ``reset``. Returns how many
        log rows were dropped."""
        with _schema.transaction(self._conn()) as db:
            return _changes.compact(db, upto)

    def spaces(self) -> dict[str, SpaceInfo]:
        return _vectors.read_spaces(self._conn())

    def bind_spaces(self, spaces: Sequence[SpaceInfo], *, replace: bool = False) -> None:
        """Record which encoders make this store's vectors, or refuse a different one.

        An empty store takes whatever it is given. A store with passages refuses an
        encoder with another fingerprint (``ModelMismatchError``): its vectors would
        be meaningless beside the old ones. ``replace`` is for reindexing.
        """
        _vectors.bind_spaces(self._conn(), spaces, replace=replace, where=self.path)

    # -- writing -------------------------------------------------------------------------
    def find_article(self, *, url: str | None = None, content_hash: str | None = None
                     ) -> dict[str, Any] | None:
        row = _write.find_article(self._conn(), url=url, content_hash=content_hash)
        return dict(row) if row is not None else None

    def find_articles(self, *, urls: Sequence[str] = (), content_hashes: Sequence[str] = ()
                      ) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
        """``find_article`` of each URL and each text hash (SQLite's lookups are cheap)."""
        found: tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]] = ({}, {})
        for out, key, values in ((found[0], "url", urls),
                                 (found[1], "content_hash", content_hashes)):
            for value in dict.fromkeys(v for v in values if v):
                row = self.find_article(**{key: value})
                if row is not None:
                    out[value] = row
        return found

    def article_rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """These articles' rows (as ``find_article`` gives them), by id."""
        out: list[dict[str, Any]] = []
        for chunk in _schema.batches(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            out += [dict(r) for r in self._conn().execute(
                f"SELECT * FROM articles WHERE id IN ({marks}) ORDER BY id", chunk)]
        return out

    def put(self, new: NewArticle, *, dup_threshold: float | None = 0.96) -> PutResult:
        """Store one article with its passages and vectors, atomically.

        Same URL and same text: unchanged. Same URL, changed text: the old version
        is replaced when it came from the same ``origin``, else StoreError (nothing
        written). Same text under another URL: a duplicate, not stored twice.
        Passages whose "e5" vector is within ``dup_threshold`` (cosine) of a
        passage of another article in the same language are linked to it
        (``dup_of``), so answers can show one passage with all its outlets.
        """
        return _write.put(self._conn(), self._faiss, new, dup_threshold=dup_threshold)

    def put_many(self, news: Sequence[NewArticle], *, dup_threshold: float | None = 0.96
                 ) -> list[PutResult | StoreError]:
        """:meth:`put` of each article, one transaction each (SQLite's are cheap);
        an article refused, or whose put failed in any other way (its transaction rolled
        back), is a StoreError in the list: the articles before it stay stored and are
        reported as such, never put again."""
        out: list[PutResult | StoreError] = []
        for new in news:
            try:
                out.append(self.put(new, dup_threshold=dup_threshold))
            except StoreError as exc:
                out.append(exc)
            except Exception as exc:  # this article's failure, reported as its own
                err = StoreError(f"not stored: {type(exc).__name__}: {exc}")
                err.__cause__ = exc
                out.append(err)
        return out

    def flush(self) -> None:
        """The end of a batch: save the FAISS indexes if the files are far behind them
        (an open applies what they lack from SQLite; :meth:`close` always saves), and
        keep the removal log to its newest rows (``_changes.KEEP_REMOVED``)."""
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the next batch
            _changes.trim(self._conn(), _changes.KEEP_REMOVED)
        self._faiss.flush()
        self._save_kept(force=False)

    def delete_articles(self, ids: Iterable[int]) -> int:
        return _write.delete_articles(self._conn(), self._faiss, ids)

    def article_ids(self, *, outlet: str | None = None, before: datetime | None = None,
                    url: str | None = None, origin: str | None = None) -> list[int]:
        return _write.article_ids(self._conn(), outlet=outlet, before=before, url=url,
                                  origin=origin)

    def share(self, article_id: int, current: str | None, new: str | None) -> None:
        """The article ``current`` (one chat's own) brought again by the shared archive
        (``new``): the shared archive's from now on. Anything else: left as it is."""
        from ._origin import is_private, shared_again

        if is_private(current) and not is_private(new):
            with _schema.transaction(self._conn()) as db:
                shared_again(db, article_id, current, new)

    def move_origin(self, old: str, new: str) -> int:
        """What origin ``old`` brought is ``new``'s from now on (a chat's new id)."""
        from ._origin import move_origin

        return move_origin(self._conn(), old, new)

    def clear(self) -> int:
        return self.delete_articles(self.article_ids())

    # -- reindexing: new vectors beside the old, then one switch (see ._reindex) -------
    def reindex_begin(self, spaces: Sequence[SpaceInfo]) -> dict[str, set[int]]:
        """Start or resume a reindex to ``spaces``: the passage ids done per space."""
        from . import _reindex

        return _reindex.begin(self._conn(), spaces)

    def reindex_write(self, space: str, ids: Sequence[int], vectors: np.ndarray,
                      sentences: Sequence[np.ndarray] | None) -> None:
        from . import _reindex

        _reindex.write(self._conn(), space, ids, vectors, sentences)

    def reindex_missing(self, space: str) -> list[tuple[int, str]]:
        from . import _reindex

        return _reindex.missing(self._conn(), space)

    def reindex_commit(self, spaces: Sequence[SpaceInfo], *, sentences: bool) -> None:
        """Every vector replaced by the new ones, with ``spaces`` recorded, at once."""
        from . import _reindex

        _reindex.commit(self._conn(), spaces, sentences)

    def reindex_pending(self) -> bool:
        from . import _reindex

        return _reindex.pending(self._conn())

    def add_sentence_vectors(self, space: str, rows: Iterable[tuple[int, np.ndarray]]) -> None:
        """Store sentence vectors for passages that have none yet, in one transaction."""
        _write.add_sentence_vectors(self._conn(), space, rows)

    def passages_without_sentence_vectors(self, space: str) -> list[tuple[int, str]]:
        return _write.passages_without_sentence_vectors(self._conn(), space)

    # -- reading -------------------------------------------------------------------------
    def count_passages(self) -> int:
        return _read.count_passages(self._conn())

    def count_articles(self) -> int:
        return _read.count_articles(self._conn())

    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        """Passages with their article's citation data, by id."""
        return _read.passages(self._conn(), ids)

    def neighbours(self, ids: Sequence[int], span: int = 1) -> dict[int, list[StoredPassage]]:
        """Each passage's neighbours in its article (within ``span`` positions, itself
        excluded), in reading order."""
        return _read.neighbours(self._conn(), ids, span)

    def articles_in(self, *, since: datetime | None = None, until: datetime | None = None,
                    origin: str | None = None, outlets: Sequence[str] = (),
                    ids: Sequence[int] | None = None, scope: str | None = None
                    ) -> list[StoredArticle]:
        """Articles published (or, undated, ingested) in ``[since, until)``, oldest first.

        Without a period, every article (of ``ids`` when given) that passes the other
        filters. ``scope``: what that chat sees (its own additions and the shared
        archive, never another chat's: see ``_origin``).
        """
        return _read.articles_in(self._conn(), since=since, until=until, origin=origin,
                                 outlets=outlets, ids=ids, scope=scope)

    def article_passages(self, article_ids: Sequence[int], langs: Sequence[str] = ()
                         ) -> list[StoredPassage]:
        """The passages of these articles (in these languages), in reading order."""
        return _read.article_passages(self._conn(), article_ids, langs)

    def recent_mean_vector(self, space: str, lang: str, sample: int
                           ) -> tuple[np.ndarray, int] | None:
        """Mean ``space`` vector of the ``sample`` most recent ``lang`` passages, and
        how many there were."""
        return _read.recent_mean_vector(self._conn(), space, lang, sample)

    def passage_tokens(self, ids: Sequence[int]) -> dict[int, str]:
        """Each passage's BM25 tokens as stored at ingest (space-separated)."""
        return _read.passage_tokens(self._conn(), ids)

    def duplicate_groups(self, ids: Sequence[int]) -> dict[int, list[int]]:
        """For each id, every passage of its near-duplicate group (itself first)."""
        return _read.duplicate_groups(self._conn(), ids)

    def iter_passages(self, lang: str | None = None) -> Iterator[dict[str, Any]]:
        for row in _read.iter_passages(self._conn(), lang):
            yield dict(row)

    def passage_filter(self, *, outlets: Sequence[str] = (), since: datetime | None = None,
                       until: datetime | None = None, langs: Sequence[str] = (),
                       origin: str | None = None, scope: str | None = None
                       ) -> set[int] | Excluding | None:
        """Ids of passages matching the filters, or None when there are none; a scope
        alone is :class:`Excluding` (other chats' private passages)."""
        return _read.passage_filter(self._conn(), outlets=outlets, since=since, until=until,
                                    langs=langs, origin=origin, scope=scope)

    def outlets(self, scope: str | None = None) -> list[tuple[str, int]]:
        """Outlets with their article counts, most first (those ``scope`` sees)."""
        return _read.outlets(self._conn(), scope)

    def vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return _read.vectors(self._conn(), space, ids)

    def sentence_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Each passage's sentence vectors, (n_sentences, dim) float32, where stored (a
        passage of one sentence stored as "its passage vector" gets that, (1, dim))."""
        info = self.spaces().get(space)
        if info is None:
            return {}
        return _read.sentence_vectors(self._conn(), space, info.dim, ids)

    def search_sentence_vectors(self, spaces: Sequence[str], ids: Sequence[int]
                                ) -> dict[str, dict[int, np.ndarray]]:
        """:meth:`sentence_vectors` of several spaces at once, as a search reads them: one
        SQLite query for every space, and a one-sentence passage's "its passage vector"
        from the FAISS indexes (:meth:`search_vectors`)."""
        infos = self.spaces()
        dims = {s: infos[s].dim for s in spaces if s in infos}
        out: dict[str, dict[int, np.ndarray]] = {s: {} for s in spaces}
        for space, (mats, same) in _read.stored_sentence_vectors(self._conn(), dims,
                                                                  ids).items():
            mats.update((pid, vec.reshape(1, -1))
                        for pid, vec in self.search_vectors(space, same).items())
            out[space] = mats
        return out

    def count_sentence_vectors(self) -> dict[str, int]:
        """Passages with sentence vectors, per space."""
        return _read.count_sentence_vectors(self._conn())

    def languages(self) -> list[str]:
        return list(self.language_counts())

    def language_counts(self) -> dict[str, int]:
        """Passages per language, most first."""
        return _read.language_counts(self._conn())

    # -- vector search -------------------------------------------------------------------
    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """Top ``k`` passages of one language by inner product in ``space``.

        On the calling thread: one question's search is over before OpenMP's threads
        would wake on busy cores (docs/benchmarks.md, *Warm answers at scale*)."""
        self.refresh()
        return self._faiss.search_many(space, lang, query, k, allowed, one_thread=True)[0]

    def search_many(self, space: str, lang: str, queries: np.ndarray, k: int,
                    allowed: Allowed | None = None) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``queries``, in one FAISS call."""
        self.refresh()
        return self._faiss.search_many(space, lang, np.atleast_2d(queries), k, allowed,
                                       one_thread=True)

    def search_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """:meth:`vectors` as a search sees them: from the FAISS indexes (brought up to
        the database first), which hold the same float16 vectors in memory; SQLite
        only for what they lack. A question's candidates' vectors cost 0.6 ms of CPU
        this way against 4-7 ms of SQLite reads (250 at 100k passages)."""
        self.refresh()
        held = self._faiss.vectors(space, ids)
        missing = [pid for pid in ids if pid not in held]
        if missing:
            held.update(_read.vectors(self._conn(), space, missing))
        return held

    def refresh(self, *, force_rebuild: bool = False) -> None:
        """Bring the in-memory FAISS indexes up to the database: what changed since
        they were last brought up to it (a whole rebuild only when asked, or after a
        reindex)."""
        self._faiss.refresh(self._conn(), force_rebuild=force_rebuild)

    # -- the whole store -----------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        return _check.stats(self._conn(), self._faiss, self.path)

    def scope_stats(self, scope: str) -> dict[str, object]:
        """:meth:`stats`' figures over what the chat of ``scope`` sees."""
        return _check.scope_stats(self._conn(), scope)

    def check(self, expected: Sequence[SpaceInfo] = ()) -> list[str]:
        """Every fault found: an empty list means the store is whole."""
        return _check.check(self._conn(), self._faiss, expected)
