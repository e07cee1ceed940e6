"""Milvus's own BM25 over khabar's stored tokens: the Milvus store's
:class:`khabar.store.LexicalSearch`, which retrieval asks instead of keeping BM25 arrays
of every passage in each reader process.

The ``sparse`` field is Milvus's BM25 function over the ``tokens`` field (khabar's
analysis, stemmed and normalised: docs/benchmarks.md, *Milvus's BM25*), so a question's
tokens, analysed as the passages were, are the query. Two differences from retrieval's
in-process BM25, both measured (docs/benchmarks.md, *Milvus's BM25 in retrieval*):

* IDF and the mean length are Milvus's: over the whole collection on a server (every
  language), per sealed segment on Milvus Lite; khabar's are per language.
* A group of alternative tokens (the lexical bridge's matches of one question word)
  counts once, by its best token: Milvus sums a query's tokens, so each distinct token
  is its own query of one search call (nq > 1) and the groups are combined here, from
  each token's top :func:`per_token_limit` passages (a passage beyond a token's head
  gets nothing for it: a token that common weighs little).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._milvus_compat import has_bm25
from ._types import Allowed

if TYPE_CHECKING:
    from ._milvus import MilvusStore

LIMIT = 16_384  # Milvus's largest top k
PER_TOKEN_MIN = 400


def per_token_limit(k: int) -> int:
    """How many passages each token of a grouped query brings back."""
    return min(max(8 * k, PER_TOKEN_MIN), LIMIT)


def available(store: MilvusStore) -> bool:
    """Whether the store's passages can be searched by Milvus's BM25: a server with
    the function (2.5 on, or Milvus Lite), and a passages collection made with the
    ``sparse`` field (or none yet: it will be). Asked once per collection."""
    name = store._name("passages")
    known: dict[str, bool] = store.__dict__.setdefault("_lexical_ok", {})
    if name not in known:
        with store._lock:
            ok = has_bm25(str(store._client.get_server_version()))
            if ok and store._has_passages():
                fields = store._client.describe_collection(name).get("fields", [])
                ok = any(f.get("name") == "sparse" for f in fields)
        if not store._has_passages():
            return ok  # asked again once the collection is made
        known[name] = ok
    return known[name]


def search(store: MilvusStore, lang: str, texts: Sequence[str], limit: int,
           allowed: Allowed | None) -> list[list[tuple[int, float]]]:
    """One BM25 search call, a query per text (space-separated tokens): each query's
    top ``limit`` (passage id, score), committed passages only, best first (ties by
    id)."""
    if not texts or not store._has_passages() or (allowed is not None and not allowed):
        return [[] for _ in texts]
    st = store._state(fresh=False)
    expr = f"lang == {_lit(lang)} and {store._live(st)}" + store._allowed_expr(allowed)
    pending = store._pending_removed(st)
    with store._lock:
        found = store._client.search(
            store._name("passages"), data=list(texts), anns_field="sparse",
            limit=max(1, min(limit + len(pending), LIMIT)), filter=expr,
            output_fields=["id"], search_params={"metric_type": "BM25"}, **store._at())
    out = []
    for hits in found:
        # Milvus Lite reports BM25 negated (a distance): higher is better either way.
        ranked = [(int(h["id"]), abs(float(h["distance"]))) for h in hits
                  if int(h["id"]) not in pending]
        ranked.sort(key=lambda h: (-h[1], h[0]))
        out.append([h for h in ranked if h[1] > 0][:limit])
    return out


def search_groups(store: MilvusStore, lang: str,
                  groups: Sequence[tuple[float, Sequence[str]]], k: int,
                  allowed: Allowed | None) -> list[tuple[int, float]]:
    """``weight × max(token scores)`` per group, summed; top ``k``. Groups of one token
    each, equally weighted (a question's own words), are one query: Milvus's sum is
    then the answer, exactly."""
    groups = [(w, list(dict.fromkeys(toks))) for w, toks in groups if toks]
    if not groups:
        return []
    if all(len(toks) == 1 for _, toks in groups) and len({w for w, _ in groups}) == 1:
        weight = groups[0][0]
        tokens = list(dict.fromkeys(toks[0] for _, toks in groups))
        [ranked] = search(store, lang, [" ".join(tokens)], k, allowed)
        return [(pid, weight * s) for pid, s in ranked]
    tokens = list(dict.fromkeys(t for _, toks in groups for t in toks))
    per_token = dict(zip(tokens, search(store, lang, tokens, per_token_limit(k), allowed),
                         strict=True))
    scores: dict[int, float] = {}
    for w, toks in groups:
        best: dict[int, float] = {}
        for t in toks:
            for pid, s in per_token[t]:
                if s > best.get(pid, 0.0):
                    best[pid] = s
        for pid, s in best.items():
            scores[pid] = scores.get(pid, 0.0) + w * s
    return sorted(scores.items(), key=lambda h: (-h[1], h[0]))[:k]


def _lit(value: str) -> str:
    from ._milvus_filter import lit

    return lit(value)
