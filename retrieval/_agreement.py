"""Lexical agreement for the second clustering pass: does the other article say my headline?

Two reports of one event repeat each other's headline words in their text (the
place, the toll, the names: "Indonesia", "tsunami", "832"); two articles that only
share a template ("X is an Arab country in…", "X bin Abdulaziz Al Saud (born …)")
have headlines that USE finds alike while the other article never names X. So a
join through leads or headlines is discounted by how little of each headline's
idf weight (over the period's articles) the other article contains
(``bench/clustering.py``: NTREX events and ARCD's Wikipedia articles).

Words are the BM25 tokens stored with each passage at ingest (folded, stemmed), so
only titles are analysed again. Only same-language articles are compared (a word
does not cross languages here); pairs of groups that share no language get an
assumed share.

A bot's digests cover overlapping periods, so ``period_words`` keeps each
article's words (a bounded cache per store, keyed by the article, its title and its
passages' ids: a changed article is a new key) and the last periods' document frequencies,
updated by the articles that came and went rather than recounted.
"""

from __future__ import annotations

import math
import sys
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from khabar.store import ArchiveStore
from khabar.text import lexical_tokens

from ._headlines import usable_headline
from ._summary_data import Doc, Passage

_ARTICLES_KEPT = 5_000  # articles' words kept per store (~10 KB each, tokens interned)
_PERIODS_KEPT = 4  # periods' document frequencies kept (a few chats' digests)

Key = tuple[int, str, tuple[int, ...]]


@dataclass(frozen=True)
class DocWords:
    """An article's headline words and all its words (headline included)."""

    head: frozenset[str]
    full: frozenset[str]


@dataclass(frozen=True)
class PeriodWords:
    """The period's articles' words, in ``docs`` order, and their document frequencies."""

    words: Sequence[DocWords]
    df: Mapping[str, int]


def _words(p: Passage) -> frozenset[str]:
    if p.words is None:  # not attached from the store: analysed here
        p.words = frozenset(lexical_tokens(p.text))
    return p.words


def _lang(d: Doc) -> str:
    return d.lang or d.passages[0].lang


def _key(d: Doc) -> Key:
    return d.id, d.title, tuple(p.id for p in d.passages)


def doc_words(d: Doc, passage_words: Mapping[int, frozenset[str]] | None = None) -> DocWords:
    """``d``'s words: each passage's from ``passage_words`` (by id), else ``_words``."""
    def of(p: Passage) -> frozenset[str]:
        got = passage_words.get(p.id) if passage_words is not None else None
        return got if got is not None else _words(p)
    words = frozenset().union(*map(of, d.passages))
    title = usable_headline(d.title)
    head = frozenset(lexical_tokens(title)) if title else frozenset()
    # No usable headline: the lead states the event instead.
    head = head or of(min(d.passages, key=lambda p: p.position))
    return DocWords(head, words | head)


def count_df(words: Sequence[DocWords]) -> Counter[str]:
    df: Counter[str] = Counter()
    for w in words:
        df.update(w.full)
    return df


class _Cache:
    """Articles' words and recent periods' document frequencies (see the module doc)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.articles: OrderedDict[Key, DocWords] = OrderedDict()
        self.periods: list[tuple[Counter[Key], Counter[str]]] = []

    def words(self, store: ArchiveStore, docs: Sequence[Doc]) -> list[DocWords]:
        keys = [_key(d) for d in docs]
        with self.lock:
            got = {k: self.articles[k] for k in keys if k in self.articles}
            for k in got:
                self.articles.move_to_end(k)
        missing = [d for d, k in zip(docs, keys, strict=True) if k not in got]
        if missing:
            stored = store.passage_tokens([p.id for d in missing for p in d.passages])
            # Interned: the period's articles share most words, kept once.
            passage_words = {i: frozenset(map(sys.intern, t.split())) for i, t in stored.items()}
            new = {_key(d): doc_words(d, passage_words) for d in missing}
            got.update(new)
            with self.lock:
                self.articles.update(new)
                while len(self.articles) > _ARTICLES_KEPT:
                    self.articles.popitem(last=False)
        return [got[k] for k in keys]

    def df(self, docs: Sequence[Doc], words: Sequence[DocWords]) -> Counter[str]:
        keys = Counter(_key(d) for d in docs)

        def apart(period: tuple[Counter[Key], Counter[str]]) -> int:  # articles changed
            return sum(((period[0] - keys) + (keys - period[0])).values())

        with self.lock:
            near = min(self.periods, default=None, key=apart)
        if near is None or apart(near) >= len(docs):
            df = count_df(words)
        else:  # the nearest period, with the articles that came and went
            df = near[1].copy()
            by_key = dict(zip((_key(d) for d in docs), words, strict=True))
            for k, n in (keys - near[0]).items():
                for _ in range(n):
                    df.update(by_key[k].full)
            for k, n in (near[0] - keys).items():
                gone = self._gone(k)
                if gone is None:  # fell out of the articles' cache: recount
                    df = count_df(words)
                    break
                for _ in range(n):
                    df.subtract(gone.full)
            df = +df  # drop the words counted to zero
        with self.lock:
            self.periods = [p for p in self.periods if p[0] != keys][-(_PERIODS_KEPT - 1):]
            self.periods.append((keys, df))
        return df

    def _gone(self, k: Key) -> DocWords | None:
        with self.lock:
            return self.articles.get(k)


# One cache per open store: article and passage ids are the store's own.
_CACHES: weakref.WeakKeyDictionary[ArchiveStore, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def period_words(store: ArchiveStore, docs: Sequence[Doc]) -> PeriodWords:
    """The docs' words (the stored tokens, analysed once per article) and their
    document frequencies over the docs."""
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = _Cache()
    words = cache.words(store, docs)
    return PeriodWords(words, cache.df(docs, words))


class Agreement:
    """Headline words and all words of a period's docs, with their idf."""

    def __init__(self, docs: Sequence[Doc], period: PeriodWords | None = None) -> None:
        self.docs = docs
        if period is None:
            words = [doc_words(d) for d in docs]
            period = PeriodWords(words, count_df(words))
        self.heads = [w.head for w in period.words]
        self.full = [w.full for w in period.words]
        self.df = period.df
        self.n = len(docs)
        self._idf: dict[str, float] = {}
        self._mass: dict[int, float] = {}

    def idf(self, w: str) -> float:
        """Only headline words are ever weighed: computed when first asked."""
        v = self._idf.get(w)
        if v is None:
            v = self._idf[w] = math.log(self.n / self.df[w])
        return v

    def mass(self, a: int) -> float:
        m = self._mass.get(a)
        if m is None:
            m = self._mass[a] = sum(map(self.idf, self.heads[a]))
        return m

    def share(self, a: int, b: int) -> float:
        """The share of doc ``a``'s headline idf weight found anywhere in doc ``b``."""
        mass = self.mass(a)
        if mass <= 0:
            return 0.0
        return sum(map(self.idf, self.heads[a] & self.full[b])) / mass

    def of_groups(self, g: Sequence[int], h: Sequence[int]) -> float | None:
        """The best, over same-language article pairs of two groups, of the smaller of
        the pair's two shares; None when the groups share no language."""
        best: float | None = None
        for a in g[:GROUP_SIDE]:
            for b in h[:GROUP_SIDE]:
                if _lang(self.docs[a]) == _lang(self.docs[b]):
                    s = min(self.share(a, b), self.share(b, a))
                    best = s if best is None else max(best, s)
                    if best >= 1.0:
                        return best
        return best


GROUP_SIDE = 32
"""Articles of each group compared at most: a story copied by hundreds of outlets would
otherwise cost a pair loop of its size squared (two groups of 1,000: 1.4 s of CPU);
versions of one story agree alike, so the first 32 tell."""


def discount(gsim: np.ndarray, groups: Sequence[Sequence[int]], docs: Sequence[Doc],
             threshold: float, weight: float, unseen: float,
             period: PeriodWords | None = None) -> np.ndarray:
    """Group similarities less ``weight`` × (1 − agreement).

    Only pairs at or above ``threshold`` can join, so only they are compared (a set
    intersection per same-language article pair of theirs); the others, already
    below it, lose the whole ``weight``. ``unseen``: the agreement assumed for groups
    that share no language. ``period``: the docs' words (``period_words``), else
    taken from the passages.
    """
    out = gsim - weight
    rows, cols = np.nonzero(np.triu(gsim >= threshold, 1))
    if not len(rows):
        return out
    agree = Agreement(docs, period)
    for g, h in zip(rows.tolist(), cols.tolist(), strict=True):
        a = agree.of_groups(groups[g], groups[h])
        out[g, h] = out[h, g] = gsim[g, h] - weight * (1.0 - (unseen if a is None else a))
    return out
