"""Lexical agreement for the second clustering pass: does the other article say my headline?

Two reports of one event repeat each other's headline words in their text (the
place, the toll, the names: "Indonesia", "tsunami", "832"); two articles that only
share a template ("X is an Arab country in…", "X bin Abdulaziz Al Saud (born …)")
have headlines that USE finds alike while the other article never names X. So a
join through leads or headlines is discounted by how little of each headline's
idf weight (over the period's articles) the other article contains
(``bench/clustering.py``: NTREX events and ARCD's Wikipedia articles).

Words are the BM25 tokens stored with each passage at ingest (``attach_words``;
folded, stemmed), so only titles are analysed again. Only same-language articles
are compared (a word does not cross languages here); pairs of groups that share no
language get an assumed share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from khabar.text import lexical_tokens

from ._headlines import usable_headline
from ._summary_data import Doc, Passage


def _words(p: Passage) -> frozenset[str]:
    if p.words is None:  # not attached from the store: analysed here
        p.words = frozenset(lexical_tokens(p.text))
    return p.words


def _lang(d: Doc) -> str:
    return d.lang or d.passages[0].lang


class Agreement:
    """Headline words and all words of a period's docs, with their idf."""

    def __init__(self, docs: Sequence[Doc]) -> None:
        self.docs = docs
        self.heads: list[frozenset[str]] = []
        self.full: list[frozenset[str]] = []
        for d in docs:
            words = frozenset().union(*(_words(p) for p in d.passages))
            title = usable_headline(d.title)
            head = frozenset(lexical_tokens(title)) if title else frozenset()
            # No usable headline: the lead states the event instead.
            head = head or _words(min(d.passages, key=lambda p: p.position))
            self.heads.append(head)
            self.full.append(words | head)
        df: dict[str, int] = {}
        for words in self.full:
            for w in words:
                df[w] = df.get(w, 0) + 1
        n = len(docs)
        self.idf = {w: math.log(n / c) for w, c in df.items()}
        self.mass = [sum(self.idf[w] for w in h) for h in self.heads]

    def share(self, a: int, b: int) -> float:
        """The share of doc ``a``'s headline idf weight found anywhere in doc ``b``."""
        if self.mass[a] <= 0:
            return 0.0
        return sum(self.idf[w] for w in self.heads[a] & self.full[b]) / self.mass[a]

    def of_groups(self, g: Sequence[int], h: Sequence[int]) -> float | None:
        """The best, over same-language article pairs of two groups, of the smaller of
        the pair's two shares; None when the groups share no language."""
        best: float | None = None
        for a in g:
            for b in h:
                if _lang(self.docs[a]) == _lang(self.docs[b]):
                    s = min(self.share(a, b), self.share(b, a))
                    best = s if best is None else max(best, s)
        return best


def discount(gsim: np.ndarray, groups: Sequence[Sequence[int]], docs: Sequence[Doc],
             threshold: float, weight: float, unseen: float) -> np.ndarray:
    """Group similarities less ``weight`` × (1 − agreement).

    Only pairs at or above ``threshold`` can join, so only they are compared (the
    words are read once, a set intersection per same-language article pair of
    theirs); the others, already below it, lose the whole ``weight``. ``unseen``:
    the agreement assumed for groups that share no language.
    """
    out = gsim - weight
    rows, cols = np.nonzero(np.triu(gsim >= threshold, 1))
    if not len(rows):
        return out
    agree = Agreement(docs)
    for g, h in zip(rows.tolist(), cols.tolist(), strict=True):
        a = agree.of_groups(groups[g], groups[h])
        out[g, h] = out[h, g] = gsim[g, h] - weight * (1.0 - (unseen if a is None else a))
    return out
