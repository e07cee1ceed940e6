"""Answers that span paragraphs: does what khabar shows contain the answer?

A question often matches one paragraph while its answer is in the next (a source is
named, then what it said). This builds, from the shareable data, the questions where
that happens and measures what a reader sees.

Corpus: XQuAD's 48 Wikipedia articles in English and Arabic and ARCD's Arabic ones,
each a multi-paragraph article, ingested through khabar's own path (real encoders,
embeddings cached). For each question the *answer passage* is the stored passage
holding its answer span (located by the span's character offset), and the *matched
passage* the passage of that article closest to the question by e5 (stored passage
vectors). Questions split into:

* ``spanning``: the answer passage is the matched passage's neighbour (±1) — the case
  this benchmark is about;
* ``control``: the answer passage is the matched passage (a fixed sample) — must not
  get worse.

Directions: en→en, ar→ar, en→ar, ar→en (XQuAD; the search restricted to the target
language, the answer span taken from that language's version) and ARCD ar→ar.

For each question khabar searches once; every variant then composes its answer from
the same hits (search is not what varies). Two figures, both counting only text from
the answer's article:

* ``lead``: an answer sentence (what a reader reads first) contains the span;
* ``shown``: anything displayed (answer sentences, the cited passages and the
  neighbour sentences shown with them; the "related" passages when abstaining) does.

    python bench/multipara.py                 # today's answers
    python bench/multipara.py --variants      # the neighbour-aware variants too
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _corpus import (  # noqa: E402
    DATA,
    _squad,
    arcd_articles,
    default_models,
    load_avg,
    share_models,
    xquad_articles,
)
from khabar.index import Index  # noqa: E402
from khabar.retrieval import AnswerConfig, Filters, Khabar  # noqa: E402
from khabar.retrieval._answer import compose  # noqa: E402
from quality import CACHE, cached_encoders  # noqa: E402

from khabar import Settings  # noqa: E402

_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")  # Arabic diacritics and tatweel


def norm(text: str) -> str:
    """For span matching: NFKC, no Arabic diacritics, case-folded, single spaces."""
    return " ".join(_MARKS.sub("", unicodedata.normalize("NFKC", text)).casefold().split())


@dataclass
class Span:
    url: str  # the article
    position: int  # the stored passage holding the span
    text: str


@dataclass
class Question:
    id: str
    direction: str
    lang: str  # the question's
    target: str  # the passages'
    text: str
    span: Span
    kind: str = ""  # spanning / control / other


# -- where each answer span lies ---------------------------------------------------------
def _spans(docs: list[dict], urls: list[str | None], passages: dict[str, list[str]]
           ) -> dict[str, Span]:
    """Each question id's span, located in the stored passages of its article."""
    out: dict[str, Span] = {}
    for doc, url in zip(docs, urls, strict=True):
        if url is None or url not in passages:
            continue
        contexts = [" ".join(p["context"].split()) for p in doc["paragraphs"]]
        full = " ".join(contexts)
        starts, cursor = [], 0  # each stored passage's offset in ``full``
        for text in passages[url]:
            at = full.find(" ".join(text.split())[:60], cursor)
            starts.append(at)
            cursor = max(cursor, at)
        offset = 0
        for para, ctx in zip(doc["paragraphs"], contexts, strict=True):
            for qa in para["qas"]:
                ans = qa["answers"][0]
                prefix = para["context"][:ans["answer_start"]]
                at = len(" ".join(prefix.split())) + (1 if prefix[-1:].isspace()
                                                      and prefix.strip() else 0)
                answer = " ".join(ans["text"].split())
                if ctx[at:at + len(answer)] != answer:
                    at = ctx.find(answer)
                if at < 0 or not answer:
                    continue
                where = offset + at
                pos = max((i for i, s in enumerate(starts) if 0 <= s <= where), default=-1)
                if pos >= 0 and norm(answer) in norm(passages[url][pos]):
                    out[qa["id"]] = Span(url, pos, answer)
            offset += len(ctx) + 1
    return out


def questions(passages: dict[str, list[str]]) -> list[Question]:
    xq = {lg: _squad(DATA / "raw" / "xquad" / f"xquad.{lg}.json") for lg in ("en", "ar")}
    spans = {lg: _spans(xq[lg], [f"https://xquad.test/{lg}/{d['title']}" for d in xq["en"]],
                        passages) for lg in xq}
    text = {lg: {qa["id"]: qa["question"] for d in xq[lg] for p in d["paragraphs"]
                 for qa in p["qas"]} for lg in xq}
    out = []
    for q_lang, t_lang in (("en", "en"), ("ar", "ar"), ("en", "ar"), ("ar", "en")):
        for qid, span in spans[t_lang].items():
            out.append(Question(qid, f"xquad_{q_lang}2{t_lang}", q_lang, t_lang,
                                text[q_lang][qid], span))
    arcd = _squad(DATA / "raw" / "arcd" / "arcd.json")
    arcd_spans = _spans(arcd, [f"https://arcd.test/{i}" for i in range(len(arcd))], passages)
    for d in arcd:
        for p in d["paragraphs"]:
            for qa in p["qas"]:
                if qa["id"] in arcd_spans:
                    out.append(Question(qa["id"], "arcd_ar2ar", "ar", "ar",
                                        qa["question"].lstrip("- ").strip(),
                                        arcd_spans[qa["id"]]))
    return out


# -- what a reader sees -------------------------------------------------------------------
def seen(answer, url: str) -> tuple[list[str], list[str]]:
    """(answer sentences, everything displayed), the answer article's text only."""
    shown = answer.related if answer.abstained else answer.sources
    by_n = {s.n: s for s in answer.sources}
    lead = [s.text for s in answer.sentences if by_n[s.source].url == url]
    rest = [s.text for s in shown if s.url == url]
    rest += [c.text for s in shown if s.url == url for c in getattr(s, "context", [])]
    return lead, lead + rest


def variants(all_: bool) -> dict[str, dict]:
    """Name -> AnswerConfig changes. ``today`` is the shipped config before this work."""
    have = {f.name for f in fields(AnswerConfig)}
    out: dict[str, dict] = {"shipped": {}}
    if "neighbours" in have:
        # Each variant changes these (today's answers, before neighbour-aware evidence).
        today = {"neighbours": 0, "neighbour_sides": "both", "neighbour_penalty": 0.5,
                 "inherit": 0.0, "second_sentence_weight": 1.0}
        out["today"] = today
        if all_:
            variants = {
                # neighbour sentences as candidates, of the first n shown passages,
                # scored p lower (z units)
                "n1 p0.5": {"neighbours": 1, "neighbour_penalty": 0.5},
                "n3 p0.25": {"neighbours": 3, "neighbour_penalty": 0.25},
                # the second encoder's (USE) weight in sentence scores
                "use0 n0": {"neighbours": 0, "second_sentence_weight": 0.0},
                "use0.25 n0": {"neighbours": 0, "second_sentence_weight": 0.25},
                "use0.5 n0": {"neighbours": 0, "second_sentence_weight": 0.5},
                "use0.75 n0": {"neighbours": 0, "second_sentence_weight": 0.75},
                # a sentence inherits a share of its predecessor's lead
                "inherit0.5 n0": {"neighbours": 0, "inherit": 0.5},
                "inherit0.5 n3": {"neighbours": 3, "inherit": 0.5},
                "inherit0.8 n3": {"neighbours": 3, "inherit": 0.8},
                "inherit0.8 n3 p0": {"neighbours": 3, "inherit": 0.8, "neighbour_penalty": 0},
                "inherit1 n3 p0": {"neighbours": 3, "inherit": 1.0, "neighbour_penalty": 0},
                "use0.5 inherit0.5 n3": {"neighbours": 3, "inherit": 0.5,
                                         "second_sentence_weight": 0.5},
                "use0.5 inherit0.8 n3": {"neighbours": 3, "inherit": 0.8,
                                         "second_sentence_weight": 0.5},
                "use0.5 inherit0.8 n0": {"neighbours": 0, "inherit": 0.8,
                                         "second_sentence_weight": 0.5},
                "use0.5 inherit0.8 n3 p0": {"neighbours": 3, "inherit": 0.8,
                                            "second_sentence_weight": 0.5,
                                            "neighbour_penalty": 0},
                "use0.5 inherit1 n3 p0": {"neighbours": 3, "inherit": 1.0,
                                          "second_sentence_weight": 0.5,
                                          "neighbour_penalty": 0},
                "use0.25 inherit0.8 n3 p0": {"neighbours": 3, "inherit": 0.8,
                                             "second_sentence_weight": 0.25,
                                             "neighbour_penalty": 0},
                "use0.5 inherit0.8 n3 3sent": {"neighbours": 3, "inherit": 0.8,
                                               "second_sentence_weight": 0.5,
                                               "max_sentences": 3},
            }
            out.update({name: {**today, **change} for name, change in variants.items()})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--control", type=int, default=150,
                   help="control questions sampled per direction")
    p.add_argument("--variants", action="store_true", help="every variant, not just shipped")
    p.add_argument("--no-abstain", action="store_true",
                   help="also score each variant with abstention off")
    p.add_argument("--cache", type=Path, default=CACHE / "multipara.sqlite3")
    p.add_argument("--models", type=Path, help="a built models folder (default: KHABAR_HOME's)")
    p.add_argument("--articles", type=int, default=0,
                   help="only the first N articles of each source (a quick run)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument("--sentences", choices=["each", "late", "int8"], default="each",
                   help="how the store's e5 sentence vectors are made (KHABAR_SENTENCE_METHOD)")
    args = p.parse_args()
    c0, w0 = time.process_time(), time.perf_counter()
    print(load_avg())
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(args.cache)
    home = share_models(Path(tempfile.mkdtemp(prefix="multipara-")),
                        args.models or default_models())
    settings = Settings(home=home, second_encoder="use", sentence_method=args.sentences)
    encoders = cached_encoders(settings, db, print)
    index = Index.open(settings, encoders=encoders)
    xquad, arcd = xquad_articles(), arcd_articles()
    if args.articles:  # the same Wikipedia articles in both languages
        xquad = [a for a in xquad if a.url and a.url.rsplit("/", 1)[1] in
                 {b.url.rsplit("/", 1)[1] for b in xquad[:args.articles] if b.url}]
        arcd = arcd[:args.articles]
    articles = xquad + arcd
    for art in articles:
        index.store.put(index.prepare(art), dup_threshold=None)
    index.store.flush()
    print(f"ingested {index.store.count_passages()} passages of {len(articles)} articles "
          f"in {time.perf_counter() - w0:.0f} s", flush=True)
    rows = index.store.article_passages(
        [a.id for a in index.store.articles_in()])
    passages: dict[str, list[str]] = defaultdict(list)
    ids: dict[str, list[int]] = defaultdict(list)
    for r in rows:  # in reading order
        if r.url:
            passages[r.url].append(r.text)
            ids[r.url].append(r.id)

    qs = questions(passages)
    e5 = next(e for e in encoders if e.space == "e5")
    qvec = dict(zip([q.text for q in qs], e5.embed_queries([q.text for q in qs]), strict=True))
    pvec = index.store.vectors("e5", [i for v in ids.values() for i in v])
    for q in qs:
        sims = [float(pvec[i] @ qvec[q.text]) for i in ids[q.span.url]]
        gap = abs(int(np.argmax(sims)) - q.span.position)
        q.kind = "control" if gap == 0 else "spanning" if gap == 1 else "other"
    rng = random.Random(0)
    picked: list[Question] = []
    for direction in sorted({q.direction for q in qs}):
        mine = [q for q in qs if q.direction == direction]
        picked += [q for q in mine if q.kind == "spanning"]
        control = [q for q in mine if q.kind == "control"]
        picked += rng.sample(control, min(args.control, len(control)))
        print(f"{direction}: {len(mine)} questions located, "
              f"{sum(q.kind == 'spanning' for q in mine)} spanning, {len(control)} control, "
              f"{sum(q.kind == 'other' for q in mine)} other", flush=True)

    khabar = Khabar(index)
    configs = {name: AnswerConfig(**{**vars(khabar.answer_config), **change})
               for name, change in variants(args.variants).items()}
    if args.no_abstain:
        configs.update({f"{k} (no abstain)": AnswerConfig(**{**vars(c), "min_confidence": 0.0})
                        for k, c in list(configs.items())})
    score: dict[tuple[str, str, str], list[tuple[bool, bool, bool]]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    where: dict[tuple[str, str], int] = defaultdict(int)  # the answer passage's rank
    for q in picked:
        query = khabar.understand(q.text, filters=Filters(langs=[q.target]),
                                  read_filters=False)
        result = khabar.search(query, k=10)
        ranks = [i for i, h in enumerate(result.hits)
                 if (h.passage.url, h.passage.position) == (q.span.url, q.span.position)]
        where[(q.kind, "top 3" if ranks and ranks[0] < 3 else "4-10" if ranks else "absent")] += 1
        want = norm(q.span.text)
        for name, config in configs.items():
            t = time.process_time()
            answer = compose(index, query, result.hits, config, result.query_vectors)
            cpu[name] += time.process_time() - t
            lead, shown = seen(answer, q.span.url)
            score[(name, q.direction, q.kind)].append(
                (any(want in norm(x) for x in lead), any(want in norm(x) for x in shown),
                 answer.abstained))
    index.close()

    figures: dict[str, dict] = {}
    for kind in ("spanning", "control"):
        print(f"\n{kind}: lead / shown (abstained)")
        dirs = sorted({q.direction for q in picked})
        print(f"{'variant':28}" + "".join(f"{d:>24}" for d in dirs) + f"{'all':>20}")
        for name in configs:
            cells, tot = [], []
            for d in dirs:
                s = score[(name, d, kind)]
                tot += s
                cells.append(_cell(s))
            print(f"{name:28}" + "".join(f"{c:>24}" for c in cells) + f"{_cell(tot):>20}")
            a = np.asarray(tot or [(False, False, False)], dtype=float)
            figures.setdefault(name, {})[kind] = {
                "lead": float(a[:, 0].mean()), "shown": float(a[:, 1].mean()),
                "abstained": float(a[:, 2].mean()), "n": len(tot)}
    print("\nthe answer passage in the search results: " + ", ".join(
        f"{kind} {rank} {count}" for (kind, rank), count in sorted(where.items())))
    n = len(picked)
    print("\ncompose CPU ms/question: " + ", ".join(
        f"{k} {cpu[k] / n * 1000:.2f}" for k in configs))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "compose_cpu_ms": {
            k: cpu[k] / max(n, 1) * 1000 for k in configs}, "questions": n}, indent=2))
    print(f"{n} questions; {load_avg()}; wall {time.perf_counter() - w0:.0f} s, "
          f"CPU {time.process_time() - c0:.0f} s (pid {os.getpid()})")


def _cell(s: list[tuple[bool, bool, bool]]) -> str:
    if not s:
        return "-"
    a = np.asarray(s, dtype=float)
    return f"{a[:, 0].mean():.3f}/{a[:, 1].mean():.3f} ({a[:, 2].mean():.2f}) n{len(s)}"


if __name__ == "__main__":
    main()
