"""Does a cited passage support a generated sentence? The threshold behind khabar's
check of LLM answers (``retrieval/_grounding.py``), measured on real news.

    python bench/grounding.py                 # figures, and the rule's rates
    python bench/grounding.py --limit 300     # a quick look

A generated sentence ("claim") is embedded as a question and compared with the
cited passage's sentences (as stored at ingest): its support in a space is the best
cosine. Pairs from NTREX-128 (real news, human Arabic translation, 4-sentence
passages): a sentence and the passage that holds it or its translation (supported),
the same sentence and another passage of the same article (the same story, but not
what the sentence says: the hard case, a wrong citation), and a passage of another
article (off topic, or text an injection made up). Four directions: en→ar, ar→en
(the LLM answering in the asker's language from passages in the other), en→en, ar→ar.
The sentence itself is a fair stand-in for a faithful claim only up to paraphrase:
the rule is a guard against unsupported citations, not an entailment model.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from quality import CACHE, cached_encoders  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "benchmarks"


def _jsonl(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return {row["id"]: row["text"] for row in rows}


def load(direction: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(claim id -> text, passage id -> text, claim id -> its passage id)."""
    q_lang, p_lang = direction.split("2")
    folder = {"en": "ntrex_sent2passage_en2ar", "ar": "ntrex_sent2passage_ar2en"}
    claims = _jsonl(DATA / folder[q_lang] / "queries.jsonl")
    qrels = {}
    with open(DATA / folder[q_lang] / "qrels.tsv", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        qid, did, _ = line.split("\t")
        # the passage in p_lang: the same id with the language swapped
        qrels[qid] = "ntrex-" + p_lang + did[len("ntrex-xx"):]
    # passages in p_lang are the corpus of the set whose questions are in the other
    passages = _jsonl(DATA / folder["ar" if p_lang == "en" else "en"] / "corpus.jsonl")
    qrels = {q: d for q, d in qrels.items() if d in passages and q in claims}
    return claims, passages, qrels


def doc_of(passage_id: str) -> str:
    return passage_id.rsplit("-", 1)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=600, help="claims per direction")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    p.add_argument("--sentences", choices=["each", "late"], default="each",
                   help="the passages' e5 sentence vectors each embedded alone (what the "
                        "check uses) or pooled from the passage's run (khabar/model/_late.py)")
    p.add_argument("--cache", type=Path, default=None, help="the embeddings cache")
    args = p.parse_args()

    from khabar import Settings
    from khabar.text import passage_sentences

    CACHE.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(args.cache or CACHE / "embeddings.sqlite3")
    settings = Settings(home=CACHE / "home")
    encoders = cached_encoders(settings, db, print)
    rng = random.Random(args.seed)
    scores: dict[str, dict[str, list[dict[str, float]]]] = {}
    for direction in ["en2ar", "ar2en", "en2en", "ar2ar"]:
        claims, passages, qrels = load(direction)
        by_doc = defaultdict(list)
        for pid in passages:
            by_doc[doc_of(pid)].append(pid)
        qids = sorted(qrels)
        rng.shuffle(qids)
        qids = qids[:args.limit]
        pairs: list[tuple[str, str, str]] = []  # (kind, claim id, passage id)
        for q in qids:
            pos = qrels[q]
            pairs.append(("supported", q, pos))
            same = [x for x in by_doc[doc_of(pos)] if x != pos]
            if same:
                pairs.append(("same article", q, rng.choice(same)))
            other = rng.choice([x for x in passages if doc_of(x) != doc_of(pos)])
            pairs.append(("other article", q, other))
        need_p = sorted({pid for _, _, pid in pairs})
        sents = {pid: passage_sentences(passages[pid]) for pid in need_p}
        flat = [s for pid in need_p for s in sents[pid]]
        per_space: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
        for enc in encoders:
            cv = dict(zip(qids, enc.embed_queries([claims[q] for q in qids]), strict=True))
            mats, at = {}, 0
            if args.sentences == "late" and hasattr(enc, "embed_late"):
                late = enc.embed_late([passages[pid] for pid in need_p])[1]
                mats = {pid: m for pid, m in zip(need_p, late, strict=True)}
            else:
                sv = enc.embed_passages(flat)
                for pid in need_p:
                    mats[pid] = sv[at:at + len(sents[pid])]
                    at += len(sents[pid])
            per_space[enc.space] = (cv, mats)
        rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        for kind, q, pid in pairs:
            rows[kind].append({space: float(np.max(mats[pid] @ cv[q]))
                               for space, (cv, mats) in per_space.items()})
        scores[direction] = rows

    try:
        from khabar.retrieval._grounding import RULE, supported
    except ImportError:  # measuring before there is a rule
        RULE, supported = "none yet", lambda r, within: True
    out: dict[str, object] = {"rule": RULE, "directions": {}}
    print(f"rule: {RULE}")
    print(f"{'direction':10} {'pairs':>6} {'supported kept':>15} {'same article refused':>21} "
          f"{'other article refused':>22}   e5 mean (+ / same / other)   use mean")
    for direction, rows in scores.items():
        within = direction[:2] == direction[3:]
        kept = np.mean([supported(r, within) for r in rows["supported"]])
        same = 1 - np.mean([supported(r, within) for r in rows["same article"]])
        other = 1 - np.mean([supported(r, within) for r in rows["other article"]])
        means = {space: [float(np.mean([r[space] for r in rows[k]])) for k in
                         ("supported", "same article", "other article")]
                 for space in rows["supported"][0]}
        alone = [1 - np.mean([supported({"e5": r["e5"]}, within) for r in rows[k]])
                 for k in ("supported", "same article", "other article")]
        alone[0] = 1 - alone[0]
        n = sum(len(v) for v in rows.values())
        print(f"{direction:10} {n:6d} {kept:15.3f} {same:21.3f} {other:22.3f}   "
              + "   ".join("/".join(f"{m:.2f}" for m in ms) for ms in means.values())
              + f"   e5 alone: {alone[0]:.3f} / {alone[1]:.3f} / {alone[2]:.3f}")
        out["directions"][direction] = {  # type: ignore[index]
            "pairs": n, "supported_kept": kept, "same_article_refused": same,
            "other_article_refused": other, "e5_alone": alone, "means": means,
            "scores": {k: v for k, v in rows.items()}}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
