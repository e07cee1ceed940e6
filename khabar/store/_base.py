"""The store's interface: what :mod:`khabar.index` writes and :mod:`khabar.retrieval` reads.

Two implementations: :class:`khabar.store.Store` (SQLite + FAISS, the default: nothing
to install or start) and :class:`khabar.store.MilvusStore` (Milvus Lite, a local file,
or a Milvus server). :func:`khabar.store.open_store` picks one from ``KHABAR_STORE``.
index, retrieval and the bot name only :class:`ArchiveStore`, never a backend.

The contract every backend keeps (tests/store runs against both):

* ``put`` stores an article with its passages and vectors so that no reader ever sees
  part of it: either all its passages or none (each backend says how, without
  transactions where it has none). Dedupe: same URL and text: unchanged; same text
  under another URL: a duplicate; near-identical passages of other articles linked
  (``dup_of``).
* Passage ids only grow and are never reused; a passage never changes in place.
* ``changes_since`` tells a reader of another process what it lacks
  (see :meth:`khabar.store.Store.changes_since`); ``generation`` moves when (and only
  when) a write changed something.
* ``path`` is a local folder for what readers derive from the archive and keep in
  files beside it (the BM25 index, the lexical bridge's vocabulary): for SQLite the
  store itself, for Milvus a folder of this machine named after the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from khabar._errors import StoreError

from ._changes import ChangeMark, Changes, Content
from ._types import Allowed, Excluding, Matching, StoredArticle, StoredPassage
from ._vectors import SpaceInfo
from ._write import NewArticle, PutResult


class SavedIndex(Protocol):
    """Something kept in memory beside the store and saved to files (BM25, the lexical
    bridge's vocabulary): see :meth:`ArchiveStore.keep_saved`."""

    def save(self, *, force: bool) -> bool: ...


@runtime_checkable
class ArchiveStore(Protocol):
    """Articles and passages, searchable by vector, shared by every process."""

    path: Path

    # -- the store as a whole ------------------------------------------------------------
    def close(self) -> None: ...
    def keep_saved(self, index: SavedIndex) -> None: ...
    def generation(self) -> int: ...
    def change_mark(self) -> ChangeMark: ...
    def changes_since(self, mark: ChangeMark | None, *, content: Content = "text"
                      ) -> Changes: ...
    def compact_changes(self, upto: ChangeMark) -> int: ...
    def spaces(self) -> dict[str, SpaceInfo]: ...
    def bind_spaces(self, spaces: Sequence[SpaceInfo], *, replace: bool = False) -> None: ...
    def stats(self) -> dict[str, object]: ...
    def scope_stats(self, scope: str) -> dict[str, object]:
        """``stats()``' articles, passages, outlets, languages, published_from and
        published_to over what the chat of ``scope`` sees, never what other chats keep
        private: a few indexed queries whatever the store's size, never a scan of it.
        A figure the backend cannot tell cheaply is None."""
        ...
    def check(self, expected: Sequence[SpaceInfo] = ()) -> list[str]: ...
    def refresh(self, *, force_rebuild: bool = False) -> None: ...
    def flush(self) -> None: ...

    # -- writing -------------------------------------------------------------------------
    def find_article(self, *, url: str | None = None, content_hash: str | None = None
                     ) -> Mapping[str, Any] | None: ...
    def find_articles(self, *, urls: Sequence[str] = (), content_hashes: Sequence[str] = ()
                      ) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
        """``find_article`` of many at once: the stored article of each URL, and of each
        text hash, that has one (a batch's dedupe: one query each on Milvus)."""
        ...
    def article_rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """These articles' stored fields (those of ``find_article``), to copy them."""
        ...
    def put(self, new: NewArticle, *, dup_threshold: float | None = 0.96) -> PutResult: ...
    def put_many(self, news: Sequence[NewArticle], *, dup_threshold: float | None = 0.96
                 ) -> list[PutResult | StoreError]:
        """:meth:`put` of each article in order (a later one's dedupe sees the earlier
        ones); an article refused is its StoreError in the list, the others go in. A
        backend may write them together (Milvus: one turn of the writer lease, one
        commit); any other exception leaves the batch unreported."""
        ...
    def delete_articles(self, ids: Iterable[int]) -> int: ...
    def article_ids(self, *, outlet: str | None = None, before: datetime | None = None,
                    url: str | None = None, origin: str | None = None) -> list[int]: ...
    def share(self, article_id: int, current: str | None, new: str | None) -> None: ...
    def move_origin(self, old: str, new: str) -> int: ...
    def clear(self) -> int: ...

    # -- vectors written after the passages (reindexing, sentence vectors) --------------
    def reindex_begin(self, spaces: Sequence[SpaceInfo]) -> dict[str, set[int]]: ...
    def reindex_write(self, space: str, ids: Sequence[int], vectors: np.ndarray,
                      sentences: Sequence[np.ndarray] | None) -> None: ...
    def reindex_missing(self, space: str) -> list[tuple[int, str]]: ...
    def reindex_commit(self, spaces: Sequence[SpaceInfo], *, sentences: bool) -> None: ...
    def reindex_pending(self) -> bool: ...
    def add_sentence_vectors(self, space: str,
                             rows: Iterable[tuple[int, np.ndarray]]) -> None: ...
    def passages_without_sentence_vectors(self, space: str) -> list[tuple[int, str]]: ...

    # -- reading -------------------------------------------------------------------------
    def count_passages(self) -> int: ...
    def count_articles(self) -> int: ...
    def passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]: ...
    def neighbours(self, ids: Sequence[int], span: int = 1) -> dict[int, list[StoredPassage]]:
        """Each passage's neighbours in its article (within ``span`` positions, itself
        excluded), in reading order."""
        ...
    def articles_in(self, *, since: datetime | None = None, until: datetime | None = None,
                    origin: str | None = None, outlets: Sequence[str] = (),
                    ids: Sequence[int] | None = None, scope: str | None = None
                    ) -> list[StoredArticle]: ...
    def article_passages(self, article_ids: Sequence[int], langs: Sequence[str] = ()
                         ) -> list[StoredPassage]: ...
    def recent_mean_vector(self, space: str, lang: str, sample: int
                           ) -> tuple[np.ndarray, int] | None: ...
    def passage_tokens(self, ids: Sequence[int]) -> dict[int, str]: ...
    def duplicate_groups(self, ids: Sequence[int]) -> dict[int, list[int]]: ...
    def iter_passages(self, lang: str | None = None) -> Iterator[Mapping[str, Any]]: ...
    def passage_filter(self, *, outlets: Sequence[str] = (), since: datetime | None = None,
                       until: datetime | None = None, langs: Sequence[str] = (),
                       origin: str | None = None, scope: str | None = None
                       ) -> set[int] | Excluding | Matching | None:
        """The passages matching the filters in the backend's own form (a set of ids;
        a :class:`Matching` expression where they are too many to list), or None when
        there are no filters; a scope alone is :class:`Excluding` (other chats'
        private passages) while those are few."""
        ...
    def outlets(self, scope: str | None = None) -> list[tuple[str, int]]: ...
    def vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]: ...
    def sentence_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]: ...
    def search_vectors(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """:meth:`vectors` as a search reads them (the backend's cheapest way)."""
        ...
    def search_sentence_vectors(self, spaces: Sequence[str], ids: Sequence[int]
                                ) -> dict[str, dict[int, np.ndarray]]:
        """:meth:`sentence_vectors` of several spaces at once (a one-sentence passage's
        matrix is its passage vector), every space a key."""
        ...
    def count_sentence_vectors(self) -> dict[str, int]: ...
    def languages(self) -> list[str]: ...
    def language_counts(self) -> dict[str, int]: ...
    def search(self, space: str, lang: str, query: np.ndarray, k: int,
               allowed: Allowed | None = None) -> list[tuple[int, float]]: ...
    def search_many(self, space: str, lang: str, queries: np.ndarray, k: int,
                    allowed: Allowed | None = None) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``queries`` (same space, language and
        filter), in one call to the backend."""
        ...


@runtime_checkable
class LexicalSearch(Protocol):
    """A store that ranks passages by BM25 itself, over khabar's stored tokens (Milvus's
    BM25 function): retrieval then asks it instead of keeping BM25 arrays of every
    passage in each process. An optional capability, not part of :class:`ArchiveStore`
    (SQLite + FAISS has none: retrieval's in-process BM25 serves it)."""

    def has_lexical_search(self) -> bool:
        """Whether this store can answer now (a Milvus 2.3 or 2.4 server cannot)."""
        ...

    def lexical_search(self, lang: str, tokens: Sequence[str], k: int,
                       allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) of one language for these tokens
        (analysed as the stored ones: :func:`khabar.text.lexical_tokens`)."""
        ...

    def lexical_search_groups(self, lang: str, groups: Sequence[tuple[float, Sequence[str]]],
                              k: int, allowed: Allowed | None = None
                              ) -> list[tuple[int, float]]:
        """BM25 where each group of alternative tokens counts once: a passage scores
        ``weight × max(score of the group's tokens)`` per group, summed."""
        ...


def lexical_search_of(store: ArchiveStore) -> LexicalSearch | None:
    """The store's own lexical search, when it has one that can answer."""
    if isinstance(store, LexicalSearch) and store.has_lexical_search():
        return store
    return None
