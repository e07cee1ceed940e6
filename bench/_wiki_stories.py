"""Articles that must not merge: Wikipedia paragraphs as one day's news (ARCD, XQuAD).

Each paragraph becomes an article: headline = its first sentence (cut at 200
characters), body = the rest, two sentences a passage. ARCD: 465 Arabic paragraphs
of 155 Wikipedia articles; XQuAD: 240 paragraphs of 48 articles in English and in
Arabic (480 articles, a paragraph and its translation one story). Paragraphs of one
Wikipedia article may join (one topic); a story holding paragraphs of two articles
is an error: related articles open on formulaic first sentences ("X is an Arab
country in…", "X bin Abdulaziz Al Saud (born …)") that leads and headlines alike
match, the failure the second pass must not make on templated news either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from khabar.index import Article, Index
from khabar.retrieval._headlines import headline_vectors
from khabar.retrieval._summary import SummaryConfig, centre_vectors, cluster_docs
from khabar.retrieval._summary_data import attach_vectors, attach_words, load_docs

from khabar.text import split_sentences

DAY = datetime(2018, 10, 2, tzinfo=UTC)
RAW = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "raw"


def wiki_articles(name: str) -> list[Article]:
    files = ({"ar": RAW / "arcd" / "arcd.json"} if name == "arcd" else
             {lang: RAW / "xquad" / f"xquad.{lang}.json" for lang in ("en", "ar")})
    out = []
    for lang, path in files.items():
        k = 0
        for a in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for j, p in enumerate(a["paragraphs"]):
                s = split_sentences(p["context"])
                body = [" ".join(s[i:i + 2]) for i in range(1, len(s), 2)] or [p["context"]]
                title = a["title"].replace("/", "_")
                out.append(Article(title=s[0][:200], paragraphs=body, outlets=[f"wiki-{lang}"],
                                   url=f"https://{name}.invalid/{title}/{j}/{lang}",
                                   published=DAY + timedelta(minutes=3 * k), lang=lang))
                k += 1
    return out


def wiki_index(index: Index, name: str) -> Index:
    """``index`` (an empty or cached store) holding the set's articles."""
    articles = wiki_articles(name)
    if index.store.count_articles() < len(articles) * 0.9:  # ARCD folds duplicate paragraphs
        index.store.clear()
        index.add_articles(articles)
    return index


@dataclass
class Mixes:
    rule: str
    stories: int
    mixed: int
    examples: list[list[str]]


def mixes(index: Index, rules: list[tuple[str, SummaryConfig]]) -> list[Mixes]:
    """Per rule: the stories, and those holding paragraphs of two Wikipedia articles."""
    docs = load_docs(index.store, since=DAY - timedelta(days=1), until=DAY + timedelta(days=2))
    spaces = attach_vectors(index.store, docs, [e.space for e in index.encoders])
    heads = headline_vectors(index, docs, SummaryConfig().headline_spaces)
    attach_words(index.store, docs)
    centre_vectors(index.store, docs, spaces, SummaryConfig())
    topic = [(d.url or "").split("/")[3] for d in docs]
    out = []
    for rule, cfg in rules:
        clusters = cluster_docs(docs, spaces, cfg, heads)
        mixed = [sorted({topic[i] for i in c}) for c in clusters if len({topic[i] for i in c}) > 1]
        out.append(Mixes(rule, len(clusters), len(mixed), mixed))
    return out


def rules(cfg: SummaryConfig) -> list[tuple[str, SummaryConfig]]:
    return [("first pass only", replace(cfg, lead_threshold=None)),
            ("leads + headlines at 0.42, no lexical discount (session 6-7)",
             replace(cfg, lead_threshold=0.42, agreement_weight=0.0)),
            (f"+ lexical discount {cfg.agreement_weight} at {cfg.lead_threshold} (shipped)", cfg)]
