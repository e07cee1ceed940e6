"""When khabar answers, says "probably", or says the news does not cover a question.

For each set the articles are split in two halves by a stable hash of their group
(XQuAD/ARCD: the Wikipedia article; NTREX: the news event, every outlet's report of
it) and each half in turn is the whole index: questions about the indexed half are
*answerable*, questions about the other are *not covered* (nothing indexed answers
them: same domain and style, the hard case). Off-topic questions (Tatoeba's everyday
questions, English and Arabic) are asked too; the even ones may train, the odd ones
only score. ``--mixed`` repeats it with another family's passages in both languages
beside each index (news beside Wikipedia and the reverse), as in a mixed archive.
The searches are done once and cached (``_abstention_data``).

The rule: a logistic model over one top passage's evidence (``passage_features``);
a question's confidence is its best top-3 passage's. Trained on answerable
questions' relevant passage (positive) and every top passage of not-covered and
off-topic questions (negative). Every figure is for a model never fitted on the set
it scores: leave-one-set-out and, stricter, leave-one-family-out (XQuAD's four
directions share questions and articles; ARCD; NTREX). ``--write`` fits on every set
and writes ``retrieval/abstention_model.json``.

    python bench/abstention.py                 # score the shipped features and rule
    python bench/abstention.py --ideas         # every idea measured, held out
    python bench/abstention.py --write         # refit and write the shipped model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _abstention_data import (  # noqa: E402
    SETS,
    background_tokens,
    background_vectors,
    group_of,
    load,
    read_set,
)
from khabar.retrieval import AnswerConfig  # noqa: E402
from khabar.retrieval._abstain import (  # noqa: E402
    BACKGROUND_FILE,
    AbstentionModel,
    Background,
    _background,
    all_features,
    passage_features,
)

MODEL_PATH = REPO / "retrieval" / "abstention_model.json"
THRESHOLD, SURE = AnswerConfig.min_confidence, AnswerConfig.sure  # the shipped operating point

BASE = ["e5", "use", "cross", "e5_cross", "use_cross", "e5_sent", "use_sent",
        "e5_sent_cross", "use_sent_cross", "coverage", "coverage_cross"]
LEXICAL = ["lexical", "lexical_cross", "lexical_word", "lexical_word_cross", "short",
           "short_cross"]
FUSED = ["fused", "fused_cross"]
WINDOW = ["e5_win", "use_win", "e5_win_cross", "use_win_cross"]
PAIRS = ["pair_en_ar", "pair_ar_en", "pair_ar_ar"]
AGREE = ["agree", "agree_cross"]
# The cosines as z-scores against a fixed background sample (``Background``).
BZ = ["e5_bz", "use_bz", "e5_sent_bz", "use_sent_bz", "e5_bz_cross", "use_bz_cross",
      "e5_sent_bz_cross", "use_sent_bz_cross"]
BZ_WIN = ["e5_win_bz", "use_win_bz", "e5_win_bz_cross", "use_win_bz_cross"]
# Against each domain's background alone (news, Wikipedia), the lower z.
DZ = [n.replace("_bz", "_dz") for n in BZ]


def cross(names: list[str]) -> list[str]:
    return [x for n in names for x in (n, n + "_cross")]


# The question's particulars in the evidence (``_abstain.cue_features``, ``_cues``).
CUE_WIN = cross(["coverage_win"])
CUE_TYPE = cross(["type_ok", "type_miss"])
CUE_NUM = cross(["num_found", "num_miss"])
CUE_NAMES = ["names_found_cross", "names_miss_cross"]
CUES = CUE_WIN + CUE_TYPE + CUE_NUM + CUE_NAMES
CUE_IDF = cross(["coverage_idf", "rare_found"])
CUE_FOCUS = cross(["e5_focus", "use_focus", "agree_sent"])
# Shipped: features that do not move with the archive's size. The fused z-score (and
# raw BM25) score well here, but a z-score over the candidates grows with their number:
# over the one-article seed, "who struck Aleppo?" fell to 0.18 (docs/benchmarks.md).
# The background z (against a fixed sample, not the candidates) does not, nor do the
# cues (text only) and the rarity of words (a fixed sample's table).
PREVIOUS = BASE + WINDOW + ["short", "short_cross"]  # shipped until the background z
SESSION6 = PREVIOUS + BZ  # shipped until the cues and the per-domain z (session 7)
BOTH_Z = SESSION6 + DZ + CUES + CUE_IDF
NEAR_Z = PREVIOUS + DZ + CUES + CUE_IDF
# Shipped (session 7): z against the nearer domain in place of the pooled one, names
# across scripts and numbers. The window's words, the answer type and the rarity of
# words lowered the seed's short questions over news ("who struck Aleppo?" 0.94 ->
# 0.70 with the window's words; "من قصف حلب؟" under 0.5 with the rarity).
SESSION7 = PREVIOUS + DZ + CUE_NUM + CUE_NAMES
# The question's specificity (session 8): its rarest words' rarity in a fixed sample
# of its language (``Background.idf``), and the rarest times the passage's coverage.
RARITY = ["rarity", "rarity3", "rarity_coverage"]
SHIPPED = SESSION7 + RARITY
BEST_HERE = BASE + LEXICAL + FUSED + WINDOW
IDEAS = {
    "per passage, cosines + coverage": BASE,
    "+ sentence window": BASE + WINDOW,
    "+ fused z-score": BASE + FUSED,
    "+ fused + window": BASE + FUSED + WINDOW,
    "+ BM25/bridge score, length": BASE + LEXICAL,
    "+ fused + window + BM25/length": BEST_HERE,
    "  the same + pair one-hots": BEST_HERE + PAIRS,
    "  the same + e5/USE/BM25 agreement": BEST_HERE + AGREE,
    "previous: window + length": PREVIOUS,
    "previous + background z: session 6": SESSION6,
    "previous + background z (+ window)": SESSION6 + BZ_WIN,
    "previous + background z + pair one-hots": SESSION6 + PAIRS,
    "previous + background z + agreement": SESSION6 + AGREE,
    "previous + background z + BM25/length": SESSION6 + LEXICAL[:4],
    "background z + coverage + length only": BZ + BZ_WIN + ["cross", "coverage",
                                                           "coverage_cross", "short",
                                                           "short_cross"],
    "s6 + words near the best sentence": SESSION6 + CUE_WIN,
    "s6 + answer type": SESSION6 + CUE_TYPE,
    "s6 + numbers": SESSION6 + CUE_NUM,
    "s6 + names across scripts": SESSION6 + CUE_NAMES,
    "s6 + rarity-weighted coverage": SESSION6 + CUE_IDF,
    "s6 + every cue": SESSION6 + CUES,
    "s6, z against the nearer domain instead": PREVIOUS + DZ,
    "s6 + z against the nearer domain": SESSION6 + DZ,
    "s6 + nearer-domain z + every cue": SESSION6 + DZ + CUES,
    "s6 + nearer-domain z + every cue + rarity": BOTH_Z,
    "nearer-domain z instead + every cue + rarity": NEAR_Z,
    "s6 + every cue + rarity": SESSION6 + CUES + CUE_IDF,
    "s6 + nearer-domain z + cues but the window + rarity": SESSION6 + DZ + CUE_TYPE
    + CUE_NUM + CUE_NAMES + CUE_IDF,
    "nearer-domain z instead + cues but the window + rarity": PREVIOUS + DZ + CUE_TYPE + CUE_NUM
    + CUE_NAMES + CUE_IDF,
    "s6 + nearer-domain z + names + numbers": SESSION6 + DZ + CUE_NUM + CUE_NAMES,
    "s6 + names + numbers": SESSION6 + CUE_NUM + CUE_NAMES,
    "nearer-domain z instead + names + numbers: session 7": SESSION7,
    "s6 + names + numbers + rarity": SESSION6 + CUE_NUM + CUE_NAMES + CUE_IDF,
    "  s7 + best sentence's focus and e5/USE agreement": SESSION7 + CUE_FOCUS,
    "s7 + the question's rarest word": [*SESSION7, "rarity"],
    "s7 + the question's three rarest words": [*SESSION7, "rarity3"],
    "s7 + rarest word x coverage": [*SESSION7, "rarity_coverage"],
    "s7 + question rarity: shipped": SHIPPED,
    "  shipped + rarity across languages": SHIPPED + cross(RARITY)[1::2],
    "  shipped + pair interactions": SHIPPED + [f"{k}_{p}" for p in ("en_ar", "ar_en")
                                                 for k in ("e5_sent_dz", "use_sent_dz",
                                                           "coverage")],
    "  shipped + question-language terms": [*SHIPPED, "ar_question", "en_question_cross"],
    "  shipped + rarity-weighted coverage": SHIPPED + CUE_IDF,
    "  shipped + z x coverage": SHIPPED + cross(["e5_dz_coverage", "use_dz_coverage"]),
    "  shipped + article concentration": SHIPPED + cross(["same_article"]),
}
# The rule before this bench (question-level logistic, threshold 0.5).
TODAY_NAMES = ["e5", "use", "cross", "e5_cross", "use_cross", "coverage_same",
               "e5_sent", "use_sent", "e5_sent_cross", "use_sent_cross"]
TODAY_COEF = (2.404, 2.36, 1.318, 0.12, 0.173, 5.286, 1.889, 4.308, -0.282, 2.121)
TODAY_INTERCEPT = -7.914


def family(name: str) -> str:
    return name.split("_")[0]


def measured_only(f: dict[str, float], q_lang: str, p_lang: str) -> dict[str, float]:
    """Features measured here and not shipped (products of shipped ones): per language
    pair, per question language, rarity across languages, z times coverage."""
    g = {k + "_cross": f[k] * f["cross"] for k in RARITY}
    for pair in ("en_ar", "ar_en"):
        on = float(f"{q_lang}_{p_lang}" == pair)
        for k in ("e5_sent_dz", "use_sent_dz", "coverage"):
            g[f"{k}_{pair}"] = f[k] * on
    g["ar_question"] = float(q_lang == "ar")
    g["en_question_cross"] = float(q_lang == "en") * f["cross"]
    for space in ("e5", "use"):
        g[space + "_dz_coverage"] = f[space + "_sent_dz"] * f["coverage"]
        g[space + "_dz_coverage_cross"] = g[space + "_dz_coverage"] * f["cross"]
    return g


def concentration(texts: list[str], group: dict[str, str]) -> list[float]:
    """Per top passage, the share of the other top passages from its article (its news
    event for NTREX): measured in session 13, not shipped."""
    gs = [group.get(t) for t in texts]
    return [sum(g is not None and g == o for j, o in enumerate(gs) if j != i)
            / max(len(gs) - 1, 1) for i, g in enumerate(gs)]


def prepare(rows: list[dict], group: dict[str, str] | None = None) -> list[dict]:
    """Each row's per-passage features (top 3) and question-level ones, once
    (``group``: passage text -> its article, for the measured concentration)."""
    out, off = [], 0
    for r in rows:
        ev = r["evidence"]
        split = ""
        if r["kind"] == "off_topic":
            off += 1
            split = "train" if off % 2 == 0 else "score"
        passages = []
        same = concentration([p.text for p in ev.hits[:3]], group or {})
        for p, c in zip(ev.hits[:3], same, strict=True):
            f = passage_features(ev, p)
            passages.append(f | measured_only(f, ev.lang, p.lang)
                            | {"same_article": c, "same_article_cross": c * f["cross"]})
        out.append({"kind": r["kind"], "relevant": r["relevant"][:3], "split": split,
                    "passages": passages, "question": all_features(ev)})
    return out


def matrices(rows: list[dict], names: list[str]) -> list[np.ndarray]:
    return [np.array([[p.get(n, 0.0) for n in names] for p in r["passages"]])
            .reshape(-1, len(names)) for r in rows]


def training(rows: list[dict], mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Positives: the first relevant top-3 passage of an answerable question; negatives:
    every top passage of a not-covered or (training half) off-topic question."""
    x, y = [], []
    for r, m in zip(rows, mats, strict=True):
        if r["kind"] == "answerable":
            rel = [i for i, v in enumerate(r["relevant"]) if v and i < len(m)]
            if rel:
                x.append(m[rel[0]])
                y.append(1)
        elif r["kind"] == "not_covered" or r["split"] == "train":
            x.extend(m)
            y.extend([0] * len(m))
    return np.asarray(x), np.asarray(y)


class Model:
    """Standardised logistic regression; deterministic (lbfgs, no sampling).
    ``boosted``: gradient-boosted trees instead (measured, not shipped)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, boosted: bool = False) -> None:
        from sklearn.linear_model import LogisticRegression

        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.gb = None
        if boosted:
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.gb = HistGradientBoostingClassifier(
                max_depth=3, learning_rate=0.1, max_iter=200, class_weight="balanced",
                random_state=0).fit(x, y)
            return
        self.lr = LogisticRegression(max_iter=5000, class_weight="balanced").fit(
            (x - self.mean) / self.scale, y)

    def confidence(self, mats: list[np.ndarray]) -> np.ndarray:
        if self.gb is not None:
            return np.array([float(self.gb.predict_proba(m)[:, 1].max()) if len(m) else 0.0
                             for m in mats])
        coef, b = self.lr.coef_[0], self.lr.intercept_[0]
        return np.array([float((1 / (1 + np.exp(-(((m - self.mean) / self.scale) @ coef + b))))
                               .max()) if len(m) else 0.0 for m in mats])


def outcomes(prob: np.ndarray, rows: list[dict]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    kind = np.array([r["kind"] for r in rows])
    off = np.array([r["kind"] == "off_topic" and r["split"] == "score" for r in rows])
    q = kind != "off_topic"
    ans, nc = prob[kind == "answerable"], prob[kind == "not_covered"]
    return {"auc": roc_auc_score(kind[q] == "answerable", prob[q]),
            "answered": float(np.mean(ans >= THRESHOLD)),
            "abstained": float(np.mean(nc < THRESHOLD)),
            "off_topic": float(np.mean(prob[off] < THRESHOLD)),
            "sure": float(np.mean(ans >= SURE)), "probably": float(np.mean(
                (ans >= THRESHOLD) & (ans < SURE))),
            "nc_sure": float(np.mean(nc >= SURE)), **oracle(ans, nc)}


def oracle(ans: np.ndarray, nc: np.ndarray) -> dict[str, float]:
    """The best min(answered, abstained) any threshold of this set's own reaches, and
    that threshold: an upper bound for one rule (the issue allows no per-set threshold),
    and where each set would want it."""
    cut = np.unique(np.concatenate([ans, nc]))
    if not len(ans) or not len(nc):
        return {"oracle": float("nan"), "oracle_at": float("nan")}
    answered = 1 - np.searchsorted(np.sort(ans), cut, side="left") / len(ans)
    abstained = np.searchsorted(np.sort(nc), cut, side="left") / len(nc)
    best = int(np.argmax(np.minimum(answered, abstained)))
    return {"oracle": float(min(answered[best], abstained[best])),
            "oracle_at": float(cut[best])}


def held_out(data: dict[str, list[dict]], names: list[str], by: str,
             score_on: dict[str, list[dict]] | None = None, boosted: bool = False
             ) -> dict[str, dict[str, float]]:
    """Each set scored by a model fitted without it (``by``: "set" or "family")."""
    mats = {s: matrices(rows, names) for s, rows in data.items()}
    score_on = score_on or data
    out = {}
    for held, rows in score_on.items():
        train = [s for s in data if (s != held if by == "set" else family(s) != family(held))]
        xy = [training(data[s], mats[s]) for s in train]
        model = Model(np.concatenate([a for a, _ in xy]), np.concatenate([b for _, b in xy]),
                      boosted)
        out[held] = outcomes(model.confidence(matrices(rows, names)), rows)
    return out


def today(data: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    out = {}
    for s, rows in data.items():
        x = np.array([[r["question"].get(n, 0.0) for n in TODAY_NAMES] for r in rows])
        prob = 1 / (1 + np.exp(-(x @ np.array(TODAY_COEF) + TODAY_INTERCEPT)))
        out[s] = outcomes(prob, rows)
    return out


def as_shipped(raw: dict[str, list[dict]], data: dict[str, list[dict]]
               ) -> dict[str, dict[str, float]]:
    """The shipped model's confidence, as khabar computes it, on each set's evidence."""
    model = AbstentionModel.shipped()
    return {s: outcomes(np.array([model.confidence(r["evidence"]) for r in rows]), data[s])
            for s, rows in raw.items()}


def short(name: str) -> str:
    return name.replace("_sent2passage", "").replace("_test", "")


def table(title: str, res: dict[str, dict[str, float]], full: bool = False) -> None:
    print(f"\n{title}")
    head = f"{'set':18} {'AUC':>6} {'answered':>9} {'abstained':>10} {'off-topic':>10}"
    if full:
        head += f" {'sure':>6} {'probably':>9} {'n-c sure':>9} {'oracle':>7} {'at':>6}"
    print(head)
    for s, r in res.items():
        line = (f"{short(s):18} {r['auc']:6.3f} {r['answered']:9.3f} {r['abstained']:10.3f} "
                f"{r['off_topic']:10.3f}")
        if full:
            line += (f" {r['sure']:6.3f} {r['probably']:9.3f} {r['nc_sure']:9.3f}"
                     f" {r['oracle']:7.3f} {r['oracle_at']:6.3f}")
        print(line, flush=True)


def write(data: dict[str, list[dict]], names: list[str]) -> None:
    xy = [training(rows, matrices(rows, names)) for rows in data.values()]
    x, y = np.concatenate([a for a, _ in xy]), np.concatenate([b for _, b in xy])
    model = Model(x, y)
    MODEL_PATH.write_text(json.dumps({
        "about": "khabar's abstention model: logistic regression over one top passage's "
                 "evidence (retrieval/_abstain.py passage_features; cosines also as "
                 "z-scores against abstention_background.npz). Written by "
                 "bench/abstention.py --write; figures in docs/benchmarks.md.",
        "trained_on": {"sets": list(data), "passages": len(y),
                       "positives": int(y.sum())},
        "model": {"features": names,
                  "mean": [round(float(v), 6) for v in model.mean],
                  "scale": [round(float(v), 6) for v in model.scale],
                  "coef": [round(float(v), 6) for v in model.lr.coef_[0]],
                  "intercept": round(float(model.lr.intercept_[0]), 6)},
    }, indent=1) + "\n")
    print(f"wrote {MODEL_PATH} ({len(y)} passages, {int(y.sum())} positive)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--off-topic", type=int, default=40, help="per language")
    p.add_argument("--sets", nargs="*", default=SETS)
    p.add_argument("--refresh", action="store_true", help="search again (cache ignored)")
    p.add_argument("--mixed", action="store_true",
                   help="also score over indexes with another family's passages beside")
    p.add_argument("--ideas", action="store_true", help="score every idea held out")
    p.add_argument("--write", action="store_true", help="write the shipped model")
    p.add_argument("--write-background", action="store_true",
                   help="sample passages and write retrieval/abstention_background.npz first")
    p.add_argument("--only", nargs="*", help="with --ideas: only the ideas starting so")
    p.add_argument("--sentences", choices=["each", "int8"], default="each",
                   help="the stores' sentence vectors (KHABAR_SENTENCE_METHOD): int8 asks "
                        "whether the shipped model holds on stores with int8 sentences")
    p.add_argument("--boosted", action="store_true",
                   help="with --ideas: also gradient-boosted trees over each idea's features")
    args = p.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    if args.write_background:
        path = REPO / "retrieval" / BACKGROUND_FILE
        path.write_bytes(Background.fit(background_vectors(),
                                        texts=background_tokens()).to_bytes())
        _background.cache_clear()
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    raw = load(args.sets, args.max_queries, args.off_topic, args.refresh,
               sentences=args.sentences)
    data = {s: prepare(rows, {d["text"]: group_of(d) for d in read_set(s)[0]})
            for s, rows in raw.items()}
    table(f"the shipped model as it is (retrieval/{MODEL_PATH.name}; fitted on every set, "
          f"so in-sample), stores' sentences: {args.sentences}", as_shipped(raw, data))
    table("today's rule (question-level logistic, before this bench)", today(data))
    if args.ideas:
        for idea, names in IDEAS.items():
            if args.only and not any(idea.strip().startswith(o) for o in args.only):
                continue
            for by in ("set", "family"):
                table(f"{idea}: held out by {by}", held_out(data, names, by))
                if args.boosted:
                    table(f"{idea}, boosted trees: held out by {by}",
                          held_out(data, names, by, boosted=True))
    for by in ("set", "family"):
        table(f"shipped features, held out by {by} (threshold {THRESHOLD}, sure {SURE})",
              held_out(data, SHIPPED, by), full=True)
    if args.mixed:
        mixed = {s: prepare(rows) for s, rows in load(
            args.sets, args.max_queries, args.off_topic, args.refresh, mixed=True).items()}
        table("mixed archive, today's rule", today(mixed))
        table("mixed archive, shipped features held out by set (trained on the plain "
              "indexes)", held_out(data, SHIPPED, "set", mixed), full=True)
    if args.write:
        write(data, SHIPPED)
    print(f"\n# {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, "
          f"load {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")


if __name__ == "__main__":
    main()
