"""Calibrate when khabar abstains: answerable vs not-covered questions.

For each benchmark, the articles are split in two halves by a stable hash of their
group (XQuAD/ARCD: the Wikipedia article; NTREX: the news document). Only half A
is indexed. Questions about half A are *answerable*; questions about half B are
*not covered* — same domain, same style, but the news at hand does not answer
them, the hard case for abstention. Each question's best evidence (encoder
cosines of the top passages) is a feature vector; a logistic model is fitted on
some sets and tested on the others, and its coefficients are what
``retrieval.AnswerConfig`` uses.

    python bench/abstention.py --max-queries 300
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from khabar.index import Article, Index  # noqa: E402
from khabar.retrieval import Khabar  # noqa: E402
from khabar.retrieval._answer import evidence_features  # noqa: E402
from quality import CACHE, DEFAULT_DATA, CachedEncoder, load_set  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import load_encoders  # noqa: E402

SETS = ["xquad_en2ar", "xquad_ar2en", "xquad_ar2ar", "xquad_en2en", "arcd_test_ar2ar",
        "ntrex_sent2passage_en2ar", "ntrex_sent2passage_ar2en"]


def group_of(doc: dict) -> str:
    if doc["id"].startswith("ntrex"):
        return doc["id"].rsplit("-", 1)[0].split("-", 2)[-1]
    return doc.get("title") or doc["id"]


def features_for(path: Path, encoders, max_queries: int, sentences: str = "each"
                 ) -> tuple[np.ndarray, np.ndarray]:
    corpus, queries, qrels = load_set(path)
    half = {d["id"]: int(hashlib.md5(group_of(d).encode()).hexdigest(), 16) % 2 for d in corpus}
    kept = [d for d in corpus if half[d["id"]] == 0]
    rng = np.random.default_rng(0)
    queries = [q for q in queries if q["id"] in qrels]
    if max_queries and len(queries) > max_queries:
        queries = [queries[i] for i in rng.choice(len(queries), max_queries, replace=False)]
    xs, ys = [], []
    with tempfile.TemporaryDirectory() as home:
        index = Index.open(Settings(home=Path(home), sentence_method=sentences),
                           encoders=encoders)
        for d in kept:
            art = Article(title=d.get("title") or "", paragraphs=[d["text"]],
                          url=f"bench://{d['id']}", lang=d.get("lang"))
            index.store.put(index.prepare(art), dup_threshold=None)
        index.store.flush()
        khabar = Khabar(index)
        for q in queries:
            rel = qrels[q["id"]]
            answerable = any(half.get(r) == 0 for r in rel)
            query = khabar.understand(q["text"])
            hits = khabar.search(query, k=5).hits
            xs.append(evidence_features(query, hits))
            ys.append(1 if answerable else 0)
        index.close()
    return np.asarray(xs), np.asarray(ys)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--sets", nargs="*", default=SETS)
    p.add_argument("--sentences", choices=["each", "late"], default="each",
                   help="how e5's sentence vectors are made (khabar/model/_late.py)")
    p.add_argument("--cache", type=Path, default=CACHE / "embeddings.sqlite3")
    args = p.parse_args()
    db = sqlite3.connect(args.cache)
    encoders = [CachedEncoder(e, db) for e in load_encoders(Settings(home=CACHE / "home"))]
    data = {s: features_for(DEFAULT_DATA / s, encoders, args.max_queries, args.sentences)
            for s in args.sets}

    print(f"{'held-out set':28} {'AUC':>6} {'answer acc':>10} {'abstain acc':>11} {'n':>5}")
    for held in data:
        train = [s for s in data if s != held]
        x = np.concatenate([data[s][0] for s in train])
        y = np.concatenate([data[s][1] for s in train])
        model = LogisticRegression(max_iter=1000).fit(x, y)
        xt, yt = data[held]
        prob = model.predict_proba(xt)[:, 1]
        pred = prob >= 0.5
        print(f"{held:28} {roc_auc_score(yt, prob):6.3f} {np.mean(pred[yt == 1]):10.3f} "
              f"{np.mean(~pred[yt == 0]):11.3f} {len(yt):5d}")
    x = np.concatenate([d[0] for d in data.values()])
    y = np.concatenate([d[1] for d in data.values()])
    model = LogisticRegression(max_iter=1000).fit(x, y)
    print("all sets: coef", np.round(model.coef_[0], 3).tolist(),
          "intercept", round(float(model.intercept_[0]), 3))
    print(f"\n{'fitted on all, per set':28} {'answer acc':>10} {'abstain acc':>11}")
    for name, (xt, yt) in data.items():
        pred = model.predict_proba(xt)[:, 1] >= 0.5
        print(f"{name:28} {np.mean(pred[yt == 1]):10.3f} {np.mean(~pred[yt == 0]):11.3f}")


if __name__ == "__main__":
    main()
