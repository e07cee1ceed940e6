"""Tune the near-duplicate threshold: syndicated copies linked, distinct passages not.

Positives are wire copies as outlets run them, made from real NTREX news passages
(English and Arabic): a dateline added ("BEIRUT (Reuters) -" / "بيروت (رويترز) -"),
the last sentence cut, or a sentence of the passage's own document dropped.
Negatives are every passage's nearest *other* passage of the corpus in the same
language: same-document neighbours and same-event articles included, the hardest
non-duplicates there are. Prints, per threshold, the share of copies linked and of
distinct passages wrongly linked.

    python bench/dedup.py
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from quality import CACHE, DEFAULT_DATA, CachedEncoder  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import load_encoders  # noqa: E402
from khabar.text import split_sentences  # noqa: E402

SETS = {"en": "ntrex_sent2passage_ar2en", "ar": "ntrex_sent2passage_en2ar"}
DATELINE = {"en": "BEIRUT (Reuters) - ", "ar": "بيروت (رويترز) - "}


def variants(text: str, lang: str) -> list[str]:
    sents = split_sentences(text)
    out = [DATELINE[lang] + text]
    if len(sents) > 1:
        out.append(" ".join(sents[:-1]))
    if len(sents) > 2:
        out.append(" ".join(sents[:1] + sents[2:]))
    return out


def main() -> None:
    db = sqlite3.connect(CACHE / "embeddings.sqlite3")
    e5 = CachedEncoder(load_encoders(Settings(home=CACHE / "home",
                                              second_encoder="none"))[0], db)
    pos_all, neg_all = [], []
    for lang, name in SETS.items():
        corpus = [json.loads(x) for x in (DEFAULT_DATA / name / "corpus.jsonl").read_text()
                  .splitlines() if x]
        texts = [d["text"] for d in corpus]
        base = e5.embed_passages(texts)
        sims = base @ base.T
        np.fill_diagonal(sims, -1)
        neg = sims.max(axis=1)
        var_texts, owner = [], []
        for i, t in enumerate(texts):
            for v in variants(t, lang):
                var_texts.append(v)
                owner.append(i)
        var = e5.embed_passages(var_texts)
        pos = np.einsum("ij,ij->i", var, base[owner])
        pos_all.append(pos)
        neg_all.append(neg)
        print(f"{lang}: {len(texts)} passages, {len(pos)} copies; copy cosine min "
              f"{pos.min():.3f} p5 {np.percentile(pos, 5):.3f}; nearest distinct max "
              f"{neg.max():.3f} p99 {np.percentile(neg, 99):.3f}")
    pos, neg = np.concatenate(pos_all), np.concatenate(neg_all)
    print(f"{'threshold':>9} {'copies linked':>14} {'distinct linked':>16}")
    for th in (0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98):
        print(f"{th:9.2f} {np.mean(pos >= th):14.3f} {np.mean(neg >= th):16.4f}")


if __name__ == "__main__":
    main()
