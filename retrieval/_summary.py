"""Summaries: a period's articles grouped into stories, ranked by coverage.

Articles (not passages) are clustered: an article's vector is the mean of its
passages' vectors, in each space. The similarity of two articles is a weighted
mean of their USE cosine and their e5 cosine after centring e5 per language
(see ``_cluster``), since e5-small alone ranks any two Arabic texts above an
Arabic article and its English original; clusters are average linkage above
one threshold, tuned on NTREX (``bench/clustering.py``). Wire
copies (articles whose passages the store linked as near-duplicates) always go
together. These groups are an article's versions (translations, copies); a second
pass joins groups whose *leads* (first passages) or *headlines* are alike: news
states its event (who, what, where) in the headline and the lead and shares its
background with other events of the same topic further down, so other outlets'
reports of one event meet there.
Each story is described extractively: the most central article's title, and
the one or two sentences most central to the story, each cited.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from khabar.store import ArchiveStore
from khabar.text import lexical_tokens, passage_sentences, split_sentences

from ._agreement import PeriodWords, discount, period_words
from ._cluster import average_linkage, combined_similarity, mean_vector
from ._headlines import headline_vectors
from ._summary_data import Doc, Passage, attach_vectors, aware, load_docs
from ._summary_types import Story, Summary, TimelineEntry, Version
from ._types import AnswerSentence, Archive, Source

if TYPE_CHECKING:  # LangChain is imported when a chat model is used (a one-shot
    from langchain_core.language_models import BaseChatModel  # command spares ~0.5 s)


@dataclass(frozen=True)
class SummaryConfig:
    # Average-linkage threshold on the combined similarity; tuned on NTREX
    # (bench/clustering.py, docs/benchmarks.md).
    threshold: float = 0.575
    # Second pass: version groups join (average linkage over groups) when the combined
    # similarity of their closest pair of leads, or of headlines, less the lexical
    # discount below, reaches this; None: no second pass. Tuned on NTREX
    # (bench/clustering.py --sweep --cv): best event F1 at precision >= 0.95.
    lead_threshold: float | None = 0.35
    # The discount: agreement_weight × (1 − the share of each headline's idf weight
    # the other article contains, best same-language pair; ``_agreement``), so that
    # headlines alike only by a template ("X is an Arab country…") stay apart (ARCD).
    # Groups sharing no language are assumed to agree by ``agreement_unseen``.
    agreement_weight: float = 0.15
    agreement_unseen: float = 0.5
    # Encoders the headlines are embedded with for the second pass (none: leads only);
    # headlines are not centred, so a space of ``centred`` (e5) does not belong here.
    headline_spaces: tuple[str, ...] = ("use",)
    # How the spaces combine: weighted mean of ``cos - offset``. USE carries most of
    # the cross-lingual signal at article level; e5 is centred per language first.
    weights: dict[str, float] = field(default_factory=lambda: {"e5": 0.3, "use": 0.7})
    offsets: dict[str, float] = field(default_factory=lambda: {"use": 0.2})
    centred: tuple[str, ...] = ("e5",)
    centre_sample: int = 5000  # recent passages per language the centre is the mean of
    centre_min: int = 10  # fewer passages in a language: its vectors stay uncentred
    # An article is on the topic when one of its passages reaches this confidence
    # (USE cosine, or rescaled e5 without USE: the scale answers abstain on).
    topic_min: float = 0.30
    topic_words: float = 0.75  # share of the topic's words an article must contain
    # Articles sharing at least this share of near-duplicate passages are wire copies.
    wire_share: float = 0.5
    max_sentences: int = 2
    candidate_passages: int = 4  # per story, most central first, split into sentences
    lead_bonus: float = 0.05  # for an article's first sentence (half for the second passage's)
    redundant: float = 0.55  # a second sentence this similar to the first is dropped
    sentence_spaces: tuple[str, ...] = ("use",)  # encoders run on candidate sentences
    min_sentence_chars: int = 25
    # Clustering holds an n×n matrix: beyond this many articles the oldest are left out.
    max_articles: int = 3000


_UNITS = {
    timedelta(minutes=1): ("m", "min", "mins", "minute", "minutes", "د", "دقيقة", "دقائق"),
    timedelta(hours=1): ("h", "hr", "hrs", "hour", "hours", "س", "ساعة", "ساعات"),
    timedelta(days=1): ("d", "day", "days", "ي", "يوم", "أيام", "ايام"),
    timedelta(weeks=1): ("w", "week", "weeks", "أسبوع", "اسبوع", "أسابيع", "اسابيع"),
}
_UNIT = {name: span for span, names in _UNITS.items() for name in names}
_DURATION = re.compile(r"^\s*(\d{1,4})\s*(\S+)\s*$")


def parse_duration(text: str) -> timedelta | None:
    """``"24h"``, ``"7d"``, ``"2w"``, ``"30m"`` (or ``"7 أيام"``) as a timedelta, else None."""
    m = _DURATION.match(text)
    unit = _UNIT.get(m.group(2).lower()) if m else None
    return int(m.group(1)) * unit if m and unit else None


def summarize(index: Archive, *, since: datetime, until: datetime | None = None,
              topic: str | None = None, outlets: Sequence[str] = (),
              langs: Sequence[str] = (), origin: str | None = None,
              scope: str | None = None,
              now: datetime | None = None, limit: int | None = 10, lang: str | None = None,
              llm: BaseChatModel | None = None,
              config: SummaryConfig | None = None) -> Summary:
    """The stories covered in ``[since, until)`` (``until`` defaults to ``now``).

    ``topic`` keeps only articles relevant to it; ``outlets``, ``langs`` and
    ``origin`` (e.g. ``"chat:-100123"``) and ``scope`` (a chat's view: ``Filters.scope``)
    restrict like search filters. Articles
    without a publication date are placed by their ingest date (counted in
    ``undated``). ``lang`` is the reader's: a story's headline and sentences are
    taken from its articles in that language when it has any. ``limit`` stories
    are described (None: all); ``llm`` phrases each one, citations checked.
    """
    cfg = config or SummaryConfig()
    now = aware(now or datetime.now(UTC))
    since, until = aware(since), aware(until or now)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    docs = load_docs(index.store, since=since, until=until, outlets=outlets, langs=langs,
                     origin=origin, scope=scope)
    spaces = attach_vectors(index.store, docs, [e.space for e in index.encoders])
    timings["load"] = time.perf_counter() - t0
    omitted = max(0, len(docs) - cfg.max_articles)
    docs = docs[omitted:]  # oldest first: keep the newest
    relevant: set[int] | None = None
    if topic and docs:
        t0 = time.perf_counter()
        relevant = _on_topic(index, docs, topic, spaces, cfg)  # before centring
        timings["topic"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    headlines = (headline_vectors(index, docs, [s for s in cfg.headline_spaces if s in spaces])
                 if cfg.lead_threshold is not None else {})
    timings["headlines"] = time.perf_counter() - t0
    period = None
    if cfg.lead_threshold is not None and cfg.agreement_weight:
        t0 = time.perf_counter()
        period = period_words(index.store, docs)  # for the second pass's discount
        timings["words"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    centres = centre_vectors(index.store, docs, spaces, cfg)
    clusters = cluster_docs(docs, spaces, cfg, headlines, period)
    if relevant is not None:
        # A story is on the topic when one of its articles is: its translations and
        # the articles that name the topic differently come along.
        clusters = [c for c in clusters if relevant.intersection(c)]
        kept = sorted(i for c in clusters for i in c)
        index_of = {old: new for new, old in enumerate(kept)}
        clusters = [[index_of[i] for i in c] for c in clusters]
        docs = [docs[i] for i in kept]
    timings["cluster"] = time.perf_counter() - t0
    ranked = sorted(clusters, key=lambda c: _rank_key([docs[i] for i in c]))
    shown = ranked if limit is None else ranked[:max(limit, 0)]
    t0 = time.perf_counter()
    stories: list[Story] = []
    numbering = _Numbering()
    for members in shown:
        stories.append(_describe(index, [docs[i] for i in members], spaces, cfg, lang,
                                 numbering, centres))
    timings["describe"] = time.perf_counter() - t0
    period_langs = {p.lang for d in docs for p in d.passages} - {"other"}
    if len(period_langs) > 1:  # a story told in one language only is a coverage gap
        for story in stories:
            told = set(story.langs) - {"other"}
            if len(told) == 1:
                story.only_lang = told.pop()
    period_outlets = {o for d in docs for o in d.outlets}
    if len(period_outlets) > 1:  # told by one outlet where others wrote: a gap too
        for story in stories:
            story.single_outlet = len(story.outlets) <= 1
    if llm is not None:
        t0 = time.perf_counter()
        for story in stories:
            from ._summary_llm import phrase_story

            story.generated = phrase_story(llm, story, lang or story.lang, index)
        timings["generate"] = time.perf_counter() - t0
    timings["total"] = sum(timings.values())
    return Summary(
        since=since, until=until, stories=stories, n_articles=len(docs),
        omitted=omitted,
        n_stories=len(clusters), n_outlets=len(period_outlets),
        undated=sum(d.published is None for d in docs), topic=topic, outlets=list(outlets),
        langs=list(langs), origin=origin, timings=timings)


def timeline(index: Archive, story: Story | Sequence[int]) -> list[TimelineEntry]:
    """The story's articles (or these article ids) in date order, one entry each."""
    ids = story.article_ids if isinstance(story, Story) else list(story)
    docs = load_docs(index.store, article_ids=ids)
    return [TimelineEntry(article_id=d.id, when=d.when, dated=d.published is not None,
                          outlets=d.outlets, title=d.title, url=d.url, lang=d.lang)
            for d in docs]


# -- clustering ---------------------------------------------------------------------
Centres = dict[tuple[str, str], np.ndarray]  # (space, language) -> mean passage vector


def centre_vectors(store: ArchiveStore, docs: Sequence[Doc], spaces: Sequence[str],
                   cfg: SummaryConfig) -> Centres:
    """Subtract each language's mean vector from the passages' (in ``cfg.centred`` spaces).

    e5-small puts any two Arabic texts closer than an Arabic text and its English
    translation; without the per-language mean that bias, and the direction all
    news shares, outweigh the content. The mean is taken over the store's recent
    passages, not the period's, so a small period does not subtract itself.
    """
    centres: Centres = {}
    langs = {p.lang for d in docs for p in d.passages}
    for space in (s for s in spaces if s in cfg.centred):
        for lang in langs:
            mean = store.recent_mean_vector(space, lang, cfg.centre_sample)
            if mean is not None and mean[1] >= cfg.centre_min:
                centres[space, lang] = mean[0]
    for d in docs:
        for p in d.passages:
            for space in spaces:
                p.vecs[space] = _centred(p.vecs[space], space, p.lang, centres)
    return centres


def _centred(vec: np.ndarray, space: str, lang: str, centres: Centres) -> np.ndarray:
    c = centres.get((space, lang))
    if c is None:
        return vec
    v = vec - c
    return v / max(float(np.linalg.norm(v)), 1e-12)


def cluster_docs(docs: Sequence[Doc], spaces: Sequence[str], cfg: SummaryConfig,
                 headlines: Mapping[str, Mapping[int, np.ndarray]] | None = None,
                 period: PeriodWords | None = None) -> list[list[int]]:
    """Indices of ``docs`` grouped into stories (passage vectors already centred);
    ``headlines``: per space, the docs' headline vectors (``headline_vectors``);
    ``period``: the docs' words (``period_words``; else from their passages)."""
    if not docs:
        return []
    if not spaces:  # no vectors at all: every article is its own story
        return [[i] for i in range(len(docs))]
    for d in docs:
        d.vecs = {s: mean_vector([p.vecs[s] for p in d.passages]) for s in spaces}
    sim = combined_similarity({s: np.stack([d.vecs[s] for d in docs]) for s in spaces},
                              cfg.weights, cfg.offsets)
    groups = average_linkage(sim, cfg.threshold, _wire_copies(docs, cfg.wire_share))
    if cfg.lead_threshold is None or len(groups) < 2:
        return groups
    return _join_by_lead(docs, groups, spaces, cfg.lead_threshold, cfg, headlines or {},
                        period)


def _join_by_lead(docs: Sequence[Doc], groups: list[list[int]], spaces: Sequence[str],
                  threshold: float, cfg: SummaryConfig,
                  headlines: Mapping[str, Mapping[int, np.ndarray]],
                  period: PeriodWords | None) -> list[list[int]]:
    """Version groups joined into events by their articles' leads and headlines.

    Two articles compare by the higher of their leads' (first passages of the period)
    and their headlines' combined similarity; two groups by their closest pair of
    articles, so one outlet's angle on an event meets another's through the lead or
    headline they share, less a discount when neither article contains the other's
    headline words (``_agreement``); the groups are then clustered by average
    linkage, as articles are. O(n²) in the period's articles, as the first pass.
    """
    leads = {s: np.stack([min(d.passages, key=lambda p: p.position).vecs[s] for d in docs])
             for s in spaces}
    sim = combined_similarity(leads, cfg.weights, cfg.offsets)
    if heads := {s: v for s, v in headlines.items() if v}:
        sim = np.maximum(sim, _headline_similarity(len(docs), heads, cfg))
    order = np.array([i for g in groups for i in g])
    cuts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    rows = np.maximum.reduceat(sim[order], cuts, axis=0)
    gsim = np.maximum.reduceat(rows[:, order], cuts, axis=1)
    if cfg.agreement_weight:
        gsim = discount(gsim, groups, docs, threshold, cfg.agreement_weight,
                        cfg.agreement_unseen, period)
    return [sorted(i for g in joined for i in groups[g])
            for joined in average_linkage(gsim, threshold)]


def _headline_similarity(n: int, heads: Mapping[str, Mapping[int, np.ndarray]],
                         cfg: SummaryConfig) -> np.ndarray:
    """The combined similarity of the docs' headlines; -inf where one has none."""
    has = np.zeros(n, dtype=bool)
    has[list(set.intersection(*(set(v) for v in heads.values())))] = True
    mats = {}
    for space, vecs in heads.items():
        mat = np.zeros((n, len(next(iter(vecs.values())))), dtype=np.float32)
        for i, v in vecs.items():
            mat[i] = v
        mats[space] = mat
    sim = combined_similarity(mats, cfg.weights, cfg.offsets)
    sim[~has, :] = -np.inf
    sim[:, ~has] = -np.inf
    return sim


def _wire_copies(docs: Sequence[Doc], share: float) -> list[list[int]]:
    """Pairs of articles most of whose passages the store linked as near-duplicates."""
    by_root: dict[int, set[int]] = {}
    for i, d in enumerate(docs):
        for p in d.passages:
            by_root.setdefault(p.root, set()).add(i)
    shared: Counter[tuple[int, int]] = Counter()
    for members in by_root.values():
        ordered = sorted(members)
        for a in range(len(ordered)):
            for b in range(a + 1, len(ordered)):
                shared[ordered[a], ordered[b]] += 1
    return [[a, b] for (a, b), n in shared.items()
            if n >= share * min(len(docs[a].passages), len(docs[b].passages))]


def _on_topic(index: Archive, docs: list[Doc], topic: str, spaces: Sequence[str],
              cfg: SummaryConfig) -> set[int]:
    """Indices of articles about ``topic``: a passage as close to it as an answer
    would need, or (in the topic's own language) every word of it in the article.

    The words matter for names: USE and e5-small barely place "Kavanaugh" near a
    passage about him, while a stemmed word match is exact.
    """
    q = {e.space: e.embed_queries([topic])[0] for e in index.encoders if e.space in spaces}
    words = set(lexical_tokens(topic))
    kept: set[int] = set()
    for i, d in enumerate(docs):
        best = 0.0
        for p in d.passages:
            if "use" in q:
                best = max(best, float(p.vecs["use"] @ q["use"]))
            elif "e5" in q:
                best = max(best, (float(p.vecs["e5"] @ q["e5"]) - 0.75) * 4)
        if best >= cfg.topic_min:
            kept.add(i)
        elif words:
            text = set(lexical_tokens(" ".join([d.title, *(p.text for p in d.passages)])))
            if len(words & text) >= cfg.topic_words * len(words):
                kept.add(i)
    return kept


def _rank_key(members: Sequence[Doc]) -> tuple[int, int, float]:
    outlets = {o for d in members for o in d.outlets}
    return (-len(outlets), -len(members), -max(d.when for d in members).timestamp())


# -- describing a story --------------------------------------------------------------
class _Numbering:
    """Citation numbers shared by the whole digest: one passage, one number."""

    def __init__(self) -> None:
        self.by_passage: dict[int, int] = {}

    def number(self, passage_id: int) -> tuple[int, bool]:
        if passage_id in self.by_passage:
            return self.by_passage[passage_id], False
        self.by_passage[passage_id] = len(self.by_passage) + 1
        return self.by_passage[passage_id], True


def _centroid(vectors: Sequence[dict[str, np.ndarray]], spaces: Sequence[str]
              ) -> dict[str, np.ndarray]:
    return {s: mean_vector([v[s] for v in vectors]) for s in spaces}


def _score(vecs: dict[str, np.ndarray], centre: dict[str, np.ndarray],
           cfg: SummaryConfig) -> float:
    """The combined similarity of ``cluster_docs`` between two sets of vectors."""
    total = norm = 0.0
    for s, c in centre.items():
        w = cfg.weights.get(s, 1.0)
        total += w * (float(vecs[s] @ c) - cfg.offsets.get(s, 0.0))
        norm += w
    return total / norm if norm else 0.0


def _describe(index: Archive, members: list[Doc], spaces: Sequence[str], cfg: SummaryConfig,
              lang: str | None, numbering: _Numbering, centres: Centres) -> Story:
    centre = _centroid([d.vecs for d in members], spaces) if spaces else {}
    # The reader's language first, when the story has articles in it.
    pool = [d for d in members if lang and d.lang == lang] or members
    head = max(pool, key=lambda d: (_score(d.vecs, centre, cfg) if centre else 0.0, -d.id))
    sentences, sources = _key_sentences(index, pool, centre, spaces, cfg, numbering, centres)
    counts = Counter(o for d in members for o in d.outlets)
    dated = [d.published for d in members if d.published]
    when = dated or [d.ingested for d in members]
    ids = [d.id for d in members]
    return Story(
        id=hashlib.sha1(",".join(map(str, sorted(ids))).encode()).hexdigest()[:12],
        headline=head.title, headline_article_id=head.id, url=head.url,
        lang=head.lang or (head.passages[0].lang if head.passages else "other"),
        sentences=sentences, sources=sources,
        outlets=[o for o, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        article_ids=ids, first=min(when), last=max(when),
        langs=sorted({p.lang for d in members for p in d.passages}),
        undated=sum(d.published is None for d in members),
        versions=_versions(members, cfg))


def _versions(members: list[Doc], cfg: SummaryConfig) -> list[Version]:
    """The story's distinct texts, oldest first: wire copies fold into the article
    they copy (the oldest of them), with their outlets."""
    parent = list(range(len(members)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in _wire_copies(members, cfg.wire_share):
        parent[root(b)] = root(a)
    groups: dict[int, list[Doc]] = {}
    for i, d in enumerate(members):
        groups.setdefault(root(i), []).append(d)
    out = []
    for docs in groups.values():
        docs.sort(key=lambda d: (d.when, d.id))
        first = docs[0]
        outlets = list(dict.fromkeys(o for d in docs for o in d.outlets))
        out.append(Version(
            article_id=first.id, title=first.title,
            lang=first.lang or (first.passages[0].lang if first.passages else "other"),
            outlets=outlets, url=first.url, when=first.when, copies=len(docs) - 1))
    return sorted(out, key=lambda v: (v.when, v.article_id))


_QUOTES = frozenset("\"“”«'‘")


def _key_sentences(index: Archive, pool: list[Doc], centre: dict[str, np.ndarray],
                   spaces: Sequence[str], cfg: SummaryConfig, numbering: _Numbering,
                   centres: Centres) -> tuple[list[AnswerSentence], list[Source]]:
    """The sentences most central to the story, without repeating one another.

    A sentence scores the mean of its passage's centrality and, when it is not the
    whole passage, its own: from the sentence vectors stored at ingest, else
    embedded now with the sentence encoders only (USE takes ~10 ms a sentence,
    e5-small ~100 ms, too slow for a digest's hundreds).
    """
    passages = [(d, p) for d in pool for p in d.passages]
    pscore = {p.id: _score(p.vecs, centre, cfg) if centre else 0.0 for _, p in passages}
    passages.sort(key=lambda dp: (-pscore[dp[1].id], dp[1].position))
    passages = passages[:cfg.candidate_passages]
    cands: list[tuple[Doc, Passage, str]] = []
    lead: list[float] = []
    for d, p in passages:
        for j, sent in enumerate(split_sentences(p.text) or [p.text]):
            if len(sent) >= cfg.min_sentence_chars:
                cands.append((d, p, sent))
                # News puts the gist first: a lede sentence gets a small head start;
                # a direct quote is someone's words, rarely the gist.
                lead.append((cfg.lead_bonus * max(0.0, 1 - p.position / 2) if j == 0 else 0.0)
                            - (cfg.lead_bonus if sent[:1] in _QUOTES else 0.0))
    if not cands:
        d, p = passages[0]
        cands, lead = [(d, p, p.text)], [0.0]
    vecs = _sentence_vectors(index, cands, spaces, cfg, centres)
    scores = []
    for k, ((_, p, _), v) in enumerate(zip(cands, vecs, strict=True)):
        own = {s: c for s, c in centre.items() if s in v}
        if v is p.vecs or not own:  # the whole passage, or no sentence vector
            scores.append(pscore[p.id] + lead[k] - 1e-3 * k)  # ties: the earlier sentence
        else:
            scores.append((pscore[p.id] + _score(v, own, cfg)) / 2 + lead[k])
    order = sorted(range(len(cands)), key=lambda i: -scores[i])
    picked = [order[0]]
    for i in order[1:]:
        if len(picked) >= cfg.max_sentences:
            break
        if all(_similar(vecs[i], vecs[j], cfg) < cfg.redundant for j in picked):
            picked.append(i)
    sentences: list[AnswerSentence] = []
    sources: list[Source] = []
    for i in picked:
        d, p, sent = cands[i]
        n, new = numbering.number(p.id)
        if new:
            sources.append(Source(n=n, outlets=d.outlets, title=d.title, published=d.published,
                                  url=d.url, position=p.position, n_passages=d.n_passages,
                                  article_id=d.id, passage_id=p.id, text=p.text, lang=p.lang,
                                  score=round(scores[i], 4)))
        sentences.append(AnswerSentence(sent, n))
    return sentences, sources


def _similar(a: dict[str, np.ndarray], b: dict[str, np.ndarray], cfg: SummaryConfig) -> float:
    """Combined similarity on the spaces both have."""
    common = {s: v for s, v in b.items() if s in a}
    return _score(a, common, cfg) if common else 0.0


def _sentence_vectors(index: Archive, cands: list[tuple[Doc, Passage, str]],
                      spaces: Sequence[str], cfg: SummaryConfig, centres: Centres
                      ) -> list[dict[str, np.ndarray]]:
    """Each candidate's vectors: its passage's when it is the whole passage, else its
    own, as stored at ingest in every space, or embedded now in ``cfg.sentence_spaces``
    (none when no such encoder is loaded)."""
    out: list[dict[str, np.ndarray]] = [
        p.vecs if sent == p.text.strip() else {} for _, p, sent in cands]
    split = {p.id: passage_sentences(p.text) for _, p, _ in cands}  # the stored rows' order
    for space in spaces:
        stored = index.store.sentence_vectors(space, list(split))
        rows = {pid: dict(zip(split[pid], mat, strict=True)) for pid, mat in stored.items()
                if len(mat) == len(split[pid])}
        for i, (_, p, sent) in enumerate(cands):
            vec = rows.get(p.id, {}).get(sent.strip())
            if vec is not None and out[i] is not p.vecs:
                out[i][space] = _centred(vec, space, p.lang, centres)
    todo = [i for i, v in enumerate(out) if v is not cands[i][1].vecs and not v]
    if todo:
        texts = [cands[i][2] for i in todo]
        for space in (s for s in cfg.sentence_spaces if s in spaces):
            enc = index.encoder(space)
            if enc is None:
                continue
            embedded = enc.embed_passages(texts)
            for k, i in enumerate(todo):
                out[i][space] = _centred(embedded[k], space, cands[i][1].lang, centres)
    # Without a sentence encoder a sentence stands for its passage.
    return [v or cands[i][1].vecs for i, v in enumerate(out)]
