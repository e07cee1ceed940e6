"""The int8 sentence graph with 8-bit weights (graph "-2") against 7-bit ones ("-3",
khabar's): cosine of each to fp32, and of one to the other.

    KHABAR_HOME=<home with the built model> python bench/int8_bits.py [--sentences 300]

Sentences: the seed article's, and a sample of the real corpus's multi-sentence
paragraphs (NTREX news, XQuAD and ARCD Wikipedia; both languages), each embedded as a
passage, as a store's sentence vectors are. Says whether the 7-bit vectors are within
the spread the 8-bit ones already had between CPU classes (cosine 0.9993 between this
VNNI CPU and an emulated Haswell: khabar/model/_int8.py, W_MAX), which is what lets a
store of "+int8t2-sentences" take the new vectors without a reindex.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import OnnxEncoder, _int8, load_encoders  # noqa: E402
from khabar.model._batch import sentence_texts  # noqa: E402
from khabar.model._onnx import GRAPH  # noqa: E402


def sentences(n: int) -> tuple[list[str], list[str]]:
    """The seed's sentences, and about ``n`` of the corpus's (an even sample)."""
    seed = [s for path in sorted(C.SEEDS.glob("*.txt"))
            for para in path.read_text(encoding="utf-8").split("\n\n") if para.strip()
            for s in sentence_texts(para.strip())]
    return list(dict.fromkeys(seed)), C.sample_sentences(C.real_articles(), n)


def cos(a: np.ndarray, b: np.ndarray) -> str:
    """Row-wise cosines, as "mean / min"."""
    c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return f"{c.mean():.5f} / {c.min():.5f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=300)
    args = p.parse_args()
    e5 = next(e for e in load_encoders(Settings.load()) if isinstance(e, OnnxEncoder))
    old_file = e5.export / "model-int8-tokens-2.onnx"
    old = _int8.int8_graph(e5.export / GRAPH, w_max=127)
    if old_file.is_file():  # the shipped "-2" graph is int8_graph at 127
        print(f"8-bit graph equals {old_file.name}: {old == old_file.read_bytes()}")
    graphs = {"8-bit (-2)": old, "7-bit (-3)": _int8.int8_graph(e5.export / GRAPH, w_max=63)}
    seed, corpus = sentences(args.sentences)
    print(f"{len(seed)} seed sentences, {len(corpus)} corpus sentences; {C.load_avg()}")
    print("| sentences | 8-bit to fp32 | 7-bit to fp32 | 7-bit to 8-bit |")
    print("| --- | --- | --- | --- |")
    for label, texts in (("seed", seed), ("corpus", corpus), ("both", seed + corpus)):
        fp = e5.embed_passages(texts)
        vecs = {}
        for name, graph in graphs.items():
            e5._int8 = e5._new_session(1, graph, arena=False)
            vecs[name] = e5.embed_int8(texts)
        e5._int8 = None
        eight, seven = vecs["8-bit (-2)"], vecs["7-bit (-3)"]
        print(f"| {label} ({len(texts)}) | {cos(eight, fp)} | {cos(seven, fp)} | "
              f"{cos(seven, eight)} |")
    print(f"(cosine mean / min; {C.load_avg()})")


if __name__ == "__main__":
    main()
