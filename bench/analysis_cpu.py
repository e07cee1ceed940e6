"""The writer's text analysis, CPU a passage: the two passes it made before (``tokens``,
then ``words``, which folded and stemmed every word once more) against the one cached
pass it makes now (``passage_fields``), over real and synthetic passages, alternated.

``python bench/analysis_cpu.py [--passages 5000] [--rounds 5]``

"cold" clears the word cache before the pass (a writer's first passages); "warm" runs
with what earlier passes left in it (a long ingest). The outputs are compared too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._corpus import Synth, load_avg, real_articles
from khabar.store._schema import passage_fields
from khabar.text import _analysis
from tests.text._old_analysis import tokens_text, words_text


def passages(n: int) -> list[str]:
    """The real paragraphs, then synthetic articles' (what bench/scale.py ingests)."""
    real = real_articles()
    out = [p for a in real for p in a.paragraphs]
    synth, j = Synth(real), 0
    while len(out) < n:
        out.extend(synth.article(j).paragraphs)
        j += 1
    return out[:n]


def old(texts: list[str]) -> list[tuple[str, str]]:
    return [(tokens_text(t), words_text(t)) for t in texts]


def new(texts: list[str]) -> list[tuple[str, str]]:
    return [passage_fields(t) for t in texts]


def cpu(fn, texts: list[str]) -> tuple[float, list[tuple[str, str]]]:
    t0 = time.process_time()
    out = fn(texts)
    return time.process_time() - t0, out


def clear() -> None:
    _analysis._token_form.cache_clear()
    _analysis._carries_meaning.cache_clear()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--passages", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    texts = passages(a.passages)
    old(texts[:200])  # imports, stemmers, the stopword set: not what is measured
    times: dict[str, list[float]] = {"old": [], "cold": [], "warm": []}
    for r in range(a.rounds):
        order = ["old", "cold", "warm"] if r % 2 == 0 else ["cold", "warm", "old"]
        got = {}
        for kind in order:
            if kind == "cold":
                clear()
            took, got[kind] = cpu(old if kind == "old" else new, texts)
            times[kind].append(took)
        if not got["old"] == got["cold"] == got["warm"]:
            raise SystemExit("outputs differ")
    print(
        f"{len(texts)} passages ({sum(map(len, texts)) / len(texts):.0f} chars each), "
        f"{a.rounds} rounds, load {load_avg()}; outputs identical"
    )
    base = statistics.median(times["old"])
    for kind, label in (
        ("old", "two passes (before)"),
        ("cold", "one pass, cache cleared"),
        ("warm", "one pass, cache warm"),
    ):
        ms = [1000 * t / len(texts) for t in times[kind]]
        gain = base / statistics.median(times[kind])
        print(
            f"{label:26s} {statistics.median(ms):.3f} ms a passage "
            f"(min {min(ms):.3f}, max {max(ms):.3f}; x{gain:.2f})"
        )
    info = _analysis._token_form.cache_info()
    print(f"token cache: {info.currsize} entries, {info.hits} hits, {info.misses} misses")


if __name__ == "__main__":
    main()
