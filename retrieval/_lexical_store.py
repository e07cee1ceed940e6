"""Lexical search answered by the store itself, when it can (Milvus's BM25 over the
stored tokens: :class:`khabar.store.LexicalSearch`), else retrieval's own BM25
(:class:`LexicalIndex`, arrays of every passage kept in this process from the change
log). :func:`lexical_index` picks by what the store offers, not by which store it is.

With the store's own, a reader process holds nothing per passage for BM25 and reads
nothing at open: no arrays built from the whole archive on a machine's first open,
none kept in memory, none saved beside the store (docs/benchmarks.md, *Milvus's BM25
in retrieval*).
"""

from __future__ import annotations

from khabar.store import Allowed, ArchiveStore, LexicalSearch, lexical_search_of
from khabar.text import lexical_tokens

from ._lexical import LexicalIndex


class StoreLexical:
    """:class:`LexicalIndex`'s reading half, asked of the store (nothing to keep up to
    date, load or save)."""

    rebuilds = 0

    def __init__(self, store: ArchiveStore, search: LexicalSearch) -> None:
        self.store = store
        self._search = search

    def refresh(self) -> None:
        """Nothing held: the store is the index."""

    def save(self, *, force: bool) -> bool:
        return False

    def wait_saved(self) -> None:
        """Nothing is saved in the background."""

    def counts(self) -> dict[str, int]:
        """Passages per language, most first (ties by name), as the store counts them."""
        held = [(lang, n) for lang, n in self.store.language_counts().items() if n]
        return dict(sorted(held, key=lambda kv: (-kv[1], kv[0])))

    def search(self, lang: str, text: str, k: int, allowed: Allowed | None = None
               ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, BM25 score) in one language; zero scores dropped."""
        tokens = list(dict.fromkeys(lexical_tokens(text)))
        return self._search.lexical_search(lang, tokens, k, allowed) if tokens else []

    def search_groups(self, lang: str, groups: list[tuple[float, list[str]]], k: int,
                      allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """As :meth:`LexicalIndex.search_groups`: each group counts once, by its best
        token."""
        return self._search.lexical_search_groups(lang, groups, k, allowed)


def lexical_index(store: ArchiveStore, *, own: bool = True) -> LexicalIndex | StoreLexical:
    """The store's own lexical search where it has one (unless ``own`` is False: the
    benchmarks' A/B), else retrieval's in-process BM25."""
    found = lexical_search_of(store) if own else None
    return StoreLexical(store, found) if found is not None else LexicalIndex(store)
