"""Puts on Milvus by the batch: :meth:`khabar.store.MilvusStore.put_many`.

A put of one article made about 15 Milvus calls (the lease's three, recovery's counts,
two dedupe lookups, the near-duplicate search and its two lookups, two inserts, the
state), each of a server's Strong reads waiting for a time tick, and writers took
turns for each: 1 to 2 articles a second (docs/milvus.md). A batch takes one lease turn
and about as many calls as one article did: the URLs and text hashes of the whole batch
are looked up in one query each, the near-duplicate search is one call per language
(nq = every passage of the batch in it, made before the turn: the others need not wait
for it; in the turn, only the passages committed since are searched, and only if there
are any), the passages and the article rows are one insert each, and one commit (the log
row and the ``state`` row) makes the whole batch visible at once.

Every guarantee of a put holds for each article of the batch, as if they had been put
one after another in their order: the dedupe of a later article sees the earlier ones
(the same URL twice, the same text under two URLs: ``unchanged``, ``duplicate``,
``replaced`` as one at a time would say), a near-duplicate passage of an earlier article
of the batch is linked as a stored one would be (compared here, in memory: the batch's
rows are not yet committed, so Milvus's search does not see them), ids are given in
order, and an article refused (another source's URL, no passages) is that article's
error while the others go in. Readers see all of the batch or none of it; a crash
before the commit leaves rows above the committed ids that nobody sees and the next
writer's turn drops (:meth:`MilvusStore._recover`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from khabar._errors import StoreError

from . import _milvus_summary
from ._milvus_filter import id_list, lit, pieces, us
from ._origin import is_private
from ._schema import iso, passage_fields, sentence_blob
from ._write import NewArticle, PutResult, shape_error

if TYPE_CHECKING:
    from ._milvus import MilvusStore

INSERT_ROWS = 1000  # passages per insert call (a server caps a message at 64 MB)
SEARCH_NQ = 1000  # queries per near-duplicate search call


def refusal(store: MilvusStore, new: NewArticle, spaces: Mapping[str, Any]
            ) -> StoreError | None:
    """Why this article cannot be put at all (before any lookup), or None."""
    if (wrong := shape_error(new)) is not None:
        return wrong
    if set(new.vectors) != set(spaces) or not store._has_passages():
        return StoreError(f"vectors for {sorted(new.vectors)}, but the store holds "
                          f"{sorted(spaces)} (bind_spaces first)")
    return None


@dataclass
class _Planned:
    """An article of the batch to insert: its ids, and what it replaces."""

    index: int  # in the batch
    new: NewArticle
    article_id: int
    pids: list[int]
    old: Mapping[str, Any] | None
    origin: str | None
    links: dict[int, int] = field(default_factory=dict)  # chunk -> root passage


def put_many(store: MilvusStore, news: Sequence[NewArticle], dup_threshold: float | None
             ) -> list[PutResult | StoreError]:
    spaces = store.spaces()
    out: list[PutResult | StoreError | None] = [refusal(store, n, spaces) for n in news]
    todo = [i for i, o in enumerate(out) if o is None]
    if not todo:
        return [o for o in out if o is not None]
    # One article's search is short: in the turn, without the lookups before it.
    before = _search_before(store, news, todo) if dup_threshold and len(todo) > 1 else None
    with store._writing():
        store._recover()
        st = store._state()
        by_url, by_hash = lookup(store, st, [news[i].article.url for i in todo],
                                 [news[i].content_hash for i in todo])
        shares: list[tuple[int, str | None, str | None]] = []
        planned: list[_Planned] = []
        last_article, last_passage = int(st["article"]), int(st["passage"])
        for i in todo:
            new = news[i]
            url = new.article.url
            old = by_url.get(url) if url else None
            if old and old["content_hash"] == new.content_hash:
                out[i] = PutResult("unchanged", int(old["id"]))
                _share(old, new.origin, shares)
                continue
            if old and old["origin"] != new.origin:
                out[i] = StoreError(f"{url} is already indexed from another source; not "
                                    "replaced (only the chat or folder that added it can "
                                    "update it)")
                continue
            same = by_hash.get(new.content_hash)
            if same:
                out[i] = PutResult("duplicate", int(same["id"]))
                _share(same, new.origin, shares)
                continue
            # A copy (khabar migrate) keeps its ids where they are above ours.
            kept = new.kept
            aid, pids = last_article + 1, list(range(last_passage + 1,
                                                     last_passage + 1 + len(new.chunks)))
            if kept and kept.usable(last_article, last_passage):
                aid, pids = kept.article_id, list(kept.passage_ids)
            last_article, last_passage = aid, max(pids)
            plan = _Planned(i, new, aid, pids, old, new.origin)
            planned.append(plan)
            row = {"id": aid, "url": url, "content_hash": new.content_hash,
                   "origin": new.origin, "plan": plan}
            # The old version goes: its text is no one's now.
            if old is not None and by_hash.get(old["content_hash"]) is old:
                del by_hash[old["content_hash"]]
            if url:
                by_url[url] = row
            by_hash[new.content_hash] = row
        for article_id, current, new_origin in shares:  # stored articles shared again
            store.share(article_id, current, new_origin)
        if planned:
            if dup_threshold:
                searched = _caught_up(store, st, news, before)
                _near_duplicates(store, planned, dup_threshold, searched)
            for plan, result in zip(planned, _insert(store, planned), strict=True):
                out[plan.index] = result
    done = [o for o in out if o is not None]
    if len(done) != len(news):  # every article has its outcome, in order
        raise StoreError("put_many left an article without an outcome (a bug)")
    return done


def _share(row: dict[str, Any], origin: str | None,
           shares: list[tuple[int, str | None, str | None]]) -> None:
    """The same text again from the shared archive while one chat alone had it: it
    becomes the shared archive's (``Store.share``); an article of this batch takes the
    new origin before it is written."""
    if not (is_private(row["origin"]) and not is_private(origin)):
        return
    if "plan" in row:
        row["plan"].origin = origin
    else:
        shares.append((int(row["id"]), row["origin"], origin))
    row["origin"] = origin


def lookup(store: MilvusStore, st: Mapping[str, Any], urls: Sequence[str | None],
           hashes: Sequence[str]
           ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The newest committed article of each URL and of each text hash (what
    ``find_article`` would give for each): one query each; an article found both ways
    is one dict (a share seen by both)."""
    found: list[dict[str, dict[str, Any]]] = []
    one: dict[int, dict[str, Any]] = {}  # an article met by URL and by hash: one row
    for key, values in (("url", urls), ("content_hash", hashes)):
        rows: list[dict[str, Any]] = []
        for part in pieces(sorted(set(v for v in values if v)), 500):
            rows += store._query("articles", f"{key} in [{', '.join(map(lit, part))}] and "
                                 f"{store._live(st, 'article')}", ["*"])
        gone = store._gone_articles(st, rows)
        best: dict[str, dict[str, Any]] = {}
        for r in sorted(rows, key=lambda r: int(r["id"])):
            if r["id"] not in gone:
                best[str(r[key])] = one.setdefault(int(r["id"]), store._article_row(r))
        found.append(best)
    return found[0], found[1]


Hit = tuple[int, float] | None  # the best stored passage of a chunk, and its score


@dataclass
class Searched:
    """The near-duplicate search made before the writer's turn, and the committed state
    it searched: (batch index, chunk) -> best stored passage."""

    hits: dict[tuple[int, int], Hit]
    epoch: object
    passage: int  # the last committed passage id it saw
    removed_done: int  # the removal log's end carried out then (rows gone) it saw


def _search_before(store: MilvusStore, news: Sequence[NewArticle], todo: list[int]
                   ) -> Searched | None:
    """The near-duplicate search of the batch's articles that will likely go in (those
    not stored yet), before the lease: the search is most of a batch's time in Milvus
    (a brute-force search on Milvus Lite), and the other writers need not wait for it.
    What other writers commit or delete before the turn is caught up in it
    (:func:`_caught_up`)."""
    st = store._state()
    by_url, by_hash = lookup(store, st, [news[i].article.url for i in todo],
                             [news[i].content_hash for i in todo])
    likely = [i for i in todo if news[i].content_hash not in by_hash
              and by_url.get(news[i].article.url or "", {}).get("content_hash")
              != news[i].content_hash]
    keys = [(i, c) for i in likely if "e5" in news[i].vectors
            for c in range(len(news[i].chunks))]
    if not keys:
        return None
    # The search reads a state at least as new as st (this process never reads an
    # older one): what it missed has ids above st's, which the turn searches.
    hits = _stored_best(store, _vectors(news, keys), [news[i].chunks[c].lang for i, c in keys])
    return Searched(dict(zip(keys, hits, strict=True)), st.get("epoch"), int(st["passage"]),
                    int(st["removed_done"]))


def _vectors(news: Sequence[NewArticle], keys: Sequence[tuple[int, int]]) -> np.ndarray:
    return np.stack([np.asarray(news[i].vectors["e5"][c], np.float32) for i, c in keys])


def _caught_up(store: MilvusStore, st: Mapping[str, Any], news: Sequence[NewArticle],
               before: Searched | None) -> dict[tuple[int, int], Hit]:
    """The search made before the turn, brought to the turn's state ``st``: a passage
    another writer committed in between is searched among those alone (``id > mark``,
    one call per language) and kept where it is the better hit; a hit deleted in
    between leaves its chunk to be searched again in the turn. Nothing moved: no call.
    A new epoch (a reindex: other vectors, another collection): all searched again."""
    if before is None or st.get("epoch") != before.epoch:
        return {}
    hits = dict(before.hits)
    if int(st["passage"]) > before.passage:
        keys = list(hits)
        newer = _stored_best(store, _vectors(news, keys),
                             [news[i].chunks[c].lang for i, c in keys],
                             f"id > {before.passage}")
        for key, hit in zip(keys, newer, strict=True):
            old = hits[key]
            if hit is not None and (old is None or hit[1] > old[1]):
                hits[key] = hit
    if int(st["removed"]) > before.removed_done:  # the rows of a deleted hit are gone
        # by now (the turn carried out every removal). A removal committed but not yet
        # carried out at the search was left out of its hits: a chunk whose best it was
        # has no hit (k = 1), so those are searched again too.
        ids = sorted({h[0] for h in hits.values() if h is not None})
        present = {int(r["id"]) for part in pieces(ids, 2000) for r in store._query(
            "passages", f"id in {id_list(part)}", ["id"])}
        hits = {k: h for k, h in hits.items() if h is not None and h[0] in present}
    return hits


def _near_duplicates(store: MilvusStore, planned: list[_Planned], threshold: float,
                     searched: Mapping[tuple[int, int], Hit]) -> None:
    """Each planned chunk's link to the root of a near-identical passage of another
    article (same language, "e5" cosine at least ``threshold``), as one put after the
    other would find: the best of the stored passages (``searched`` before the turn;
    now, for the chunks it lacks) and of the batch's earlier articles (compared here).
    An article an earlier one of the batch replaces is gone by then, and links to its
    passages with it."""
    chunks = [(p, c) for p, plan in enumerate(planned) if "e5" in plan.new.vectors
              for c in range(len(plan.new.chunks))]
    if not chunks:
        return
    vecs = np.stack([np.asarray(planned[p].new.vectors["e5"][c], np.float32)
                     for p, c in chunks])
    langs = [planned[p].new.chunks[c].lang for p, c in chunks]
    stored = [searched.get((planned[p].index, c)) for p, c in chunks]
    lacking = [j for j, (p, c) in enumerate(chunks) if (planned[p].index, c) not in searched]
    if lacking:
        for j, hit in zip(lacking, _stored_best(store, vecs[lacking],
                                                [langs[j] for j in lacking]), strict=True):
            stored[j] = hit
    hit_ids = sorted({h[0] for h in stored if h is not None and h[1] >= threshold})
    got = {int(r["id"]): r for r in store._query(
        "passages", f"id in {id_list(hit_ids)}", ["id", "dup_of", "article_id"])
        } if hit_ids else {}
    replaced_by = {int(p.old["id"]): k for k, p in enumerate(planned) if p.old is not None}
    article_of = {pid: int(r["article_id"]) for pid, r in got.items()}
    roots = sorted({int(r["dup_of"]) for r in got.values()} - {-1} - set(article_of))
    if roots and replaced_by:  # is a root's article one the batch replaces?
        article_of.update((int(r["id"]), int(r["article_id"])) for r in store._query(
            "passages", f"id in {id_list(roots)}", ["id", "article_id"]))
    arts = sorted(set(article_of.values()))
    urls = {int(r["id"]): r["url"] for r in store._query(
        "articles", f"id in {id_list(arts)}", ["id", "url"])} if arts else {}

    def alive(article: int, p: int) -> bool:  # at plan p's turn
        return replaced_by.get(article, p) >= p

    owner = np.array([p for p, _ in chunks])
    lang_of = np.array(langs)
    gone_at = np.array([replaced_by.get(planned[p].article_id, len(planned))
                        for p, _ in chunks])
    root_article: dict[tuple[int, int], int] = {}  # (plan, chunk) -> its root's article
    for j, (p, c) in enumerate(chunks):
        plan = planned[p]
        best: tuple[float, int, int, str | None] | None = None  # score, root, its article, URL
        hit = stored[j]
        if hit is not None and hit[1] >= threshold and hit[0] in got \
                and alive(article_of[hit[0]], p):
            art, root = article_of[hit[0]], int(got[hit[0]]["dup_of"])
            if root < 0 or not alive(article_of.get(root, -1), p):
                root = hit[0]  # a root gone with its article: the copies unlinked
            best = (hit[1], root, article_of.get(root, art), urls.get(art))
        earlier = np.flatnonzero((owner < p) & (gone_at >= p) & (lang_of == langs[j]))
        if len(earlier):
            scores = vecs[earlier] @ vecs[j]
            k = int(np.argmax(scores))
            if scores[k] >= threshold and (best is None or scores[k] > best[0]):
                q, qc = chunks[int(earlier[k])]
                other = planned[q]
                root, art = other.pids[qc], other.article_id
                if qc in other.links and alive(root_article[(q, qc)], p):
                    root, art = other.links[qc], root_article[(q, qc)]
                best = (float(scores[k]), root, art, other.new.article.url)
        if best is not None and (not best[3] or best[3] != plan.new.article.url):
            plan.links[c] = best[1]
            root_article[(p, c)] = best[2]


def _stored_best(store: MilvusStore, vecs: np.ndarray, langs: list[str], where: str = ""
                 ) -> list[Hit]:
    """The best committed passage of each vector's language (among those ``where``
    selects): one search per language (nq = its vectors)."""
    out: list[Hit] = [None] * len(vecs)
    for lang in dict.fromkeys(langs):
        rows = [j for j, lg in enumerate(langs) if lg == lang]
        for at in range(0, len(rows), SEARCH_NQ):
            part = rows[at:at + SEARCH_NQ]
            found = store._search_many("e5", lang, vecs[part], 1, None, where)
            for j, hits in zip(part, found, strict=True):
                out[j] = hits[0] if hits else None
    return out


def _insert(store: MilvusStore, planned: list[_Planned]) -> list[PutResult]:
    """The batch's rows above the committed ids (seen by nobody), the old versions'
    removals logged, then one commit."""
    from ._milvus import NO_SENTENCES, TEXT_MAX, _clip, count_langs
    from ._milvus_commit import DUMMY_DIM

    st = store._state()
    now = datetime.now(UTC)
    passages: list[dict[str, Any]] = []
    articles: list[dict[str, Any]] = []
    for plan in planned:
        new, art, aid = plan.new, plan.new.article, plan.article_id
        added = new.kept.ingested if new.kept else now
        when = art.published or added
        outlets = list(dict.fromkeys(o.strip() for o in art.outlets if o.strip()))[:64]
        outlets_lc = list(dict.fromkeys(o.lower() for o in outlets))
        origin = plan.origin or ""
        for i, chunk in enumerate(new.chunks):
            tokens, words = passage_fields(chunk.text)
            row: dict[str, Any] = {
                "id": plan.pids[i], "article_id": aid, "position": chunk.position,
                "text": _clip(chunk.text, TEXT_MAX), "lang": chunk.lang,
                "tokens": _clip(tokens, TEXT_MAX), "words": _clip(words, TEXT_MAX),
                "dup_of": plan.links.get(i, -1), "when_us": us(when),
                "published_us": us(art.published), "origin": origin,
                "outlets_lc": outlets_lc}
            for space, vecs in new.vectors.items():
                row[f"v_{space}"] = np.asarray(vecs[i], dtype=np.float32).tolist()
                mats = new.sentence_vectors.get(space)
                blob = NO_SENTENCES if mats is None else base64.b64encode(
                    sentence_blob(mats[i], vecs[i])).decode("ascii")
                row[f"s_{space}"] = blob if len(blob) <= TEXT_MAX else NO_SENTENCES
            passages.append(row)
        articles.append({
            "id": aid, "url": _clip(art.url, 4096), "content_hash": new.content_hash,
            "title": _clip(art.title, 4096), "author": _clip(art.author, 1024),
            "published": iso(art.published) or "",
            "ingested": added.isoformat(timespec="seconds"), "lang": art.lang or "",
            "section": _clip(art.section, 1024),
            "tags": _clip(json.dumps(art.tags, ensure_ascii=False), 8192),
            "source": _clip(art.source, 4096), "site_name": _clip(art.site_name, 1024),
            "origin": origin, "when_us": us(when), "n_passages": len(new.chunks),
            "outlets": outlets, "outlets_lc": outlets_lc, "v": [0.0] * DUMMY_DIM})
    # 1. passages, 2. the articles: above the committed ids, seen by nobody.
    client = store._client
    for at in range(0, len(passages), INSERT_ROWS):
        client.insert(store._name("passages"), passages[at:at + INSERT_ROWS])
    client.insert(store._name("articles"), articles)
    # 3. the old versions' removals logged, 4. the commit: one row.
    olds = [int(p.old["id"]) for p in planned if p.old is not None]
    old_passages = store._passages_of(olds) if olds else []
    store._log_removals(st, old_passages)
    st["passage"] = max(int(st["passage"]), max(max(p.pids) for p in planned))
    st["article"] = max(int(st["article"]), max(p.article_id for p in planned))
    st["generation"] = int(st["generation"]) + 1
    st["articles"] = int(st["articles"]) + len(planned) - len(olds)
    count_langs(st, added=(row["lang"] for row in passages),
                removed=(lang for _, lang in old_passages))
    _milvus_summary.update(store, st, added=[  # outlets and dates, committed with st
        {k: a[k] for k in ("id", "outlets", "origin", "published")} for a in articles],
        removed=olds)
    store._write_state(st)
    # 5. the old versions' rows go (a crash here: the next writer finishes it).
    store._finish_removals(st)
    return [PutResult("replaced" if p.old else "added", p.article_id, len(p.pids),
                      len(p.links), replaced=int(p.old["id"]) if p.old else None)
            for p in planned]
