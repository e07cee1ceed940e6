"""Headline vectors for the second clustering pass, embedded when a summary needs them.

A headline states its event in a few words, so two outlets' headlines of one event
meet even when their leads open on different angles (a toll, a rescue scene), while
the headlines of two events of one topic (a rally that spoke of Kavanaugh, the
hearing itself) stay apart (``bench/clustering.py``). The store keeps no headline
vector, so they are embedded here with the cheap encoders only (USE: ~2 ms of CPU a
headline) and kept in a bounded cache: a bot's digests of overlapping periods embed
each headline once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._embed_cache import EmbeddingCache
from ._summary_data import Doc
from ._types import Archive

_MIN_CHARS = 12  # shorter "headlines" ("News", "Update 3") name no event
_CACHE_SIZE = 20_000  # headline vectors kept per process (~1 KB each as float16)


_CACHE = EmbeddingCache(_CACHE_SIZE, np.float16)


def usable_headline(title: str) -> str | None:
    """The headline to compare, or None when it cannot name an event."""
    text = " ".join(title.split())
    return text if len(text) >= _MIN_CHARS and "://" not in text else None


def headline_vectors(index: Archive, docs: Sequence[Doc], spaces: Sequence[str]
                     ) -> dict[str, dict[int, np.ndarray]]:
    """Per space of ``spaces`` with a loaded encoder: each doc's (index in ``docs``)
    unit headline vector; docs without a usable headline are left out.

    A headline carried by several articles that are not copies of one another (a
    site's name, "Live updates") is boilerplate, not an event: left out too.
    """
    heads = [usable_headline(d.title) for d in docs]
    texts_of: dict[str, set[frozenset[int]]] = {}
    for d, h in zip(docs, heads, strict=True):
        if h is not None:
            texts_of.setdefault(h.casefold(), set()).add(frozenset(p.root for p in d.passages))
    keep = [i for i, h in enumerate(heads)
            if h is not None and not _boilerplate(texts_of[h.casefold()])]
    out: dict[str, dict[int, np.ndarray]] = {}
    for space in spaces:
        enc = index.encoder(space)
        if enc is None:
            continue
        out[space] = (dict(zip(keep, _CACHE.embed(enc, [heads[i] or "" for i in keep]),
                               strict=True)) if keep else {})
    return out


def _boilerplate(texts: set[frozenset[int]]) -> bool:
    """Three or more articles whose passages share nothing carry this headline."""
    distinct: list[frozenset[int]] = []
    for t in texts:
        if all(not (t & o) for o in distinct):
            distinct.append(t)
    return len(distinct) >= 3
