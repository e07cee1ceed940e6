"""Which int8 graph makes sentence vectors: one activation scale a token (khabar's) or
one a batch (onnxruntime's ``quantize_dynamic``), against the fp32 export.

    KHABAR_HOME=<home with the built model> python bench/int8_graph.py [--sentences 400]

Sentences of NTREX's multi-sentence passages (both languages), embedded as passages in
≤ 512-token batches on one thread, three interleaved rounds. Reports each graph's CPU a
sentence (the best round), cosine to the fp32 vector of the same sentence (mean / min),
"same neighbour" (the nearest other sentence among them is the fp32 vector's), and how
far a vector moves with its batch (max |difference| between the sentence embedded in
its batch and alone).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import OnnxEncoder, load_encoders  # noqa: E402
from khabar.model._int8 import int8_graph  # noqa: E402
from khabar.model._onnx import GRAPH  # noqa: E402


def per_batch_graph(graph: Path) -> bytes:
    """The earlier way: onnxruntime's dynamic quantisation (one activation scale a
    batch tensor), weight MatMuls, int8 weights per output channel."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(graph))
    weights = {i.name for i in model.graph.initializer}
    nodes = [n.name for n in model.graph.node if n.op_type == "MatMul"
             and any(i in weights for i in n.input)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(str(graph), str(out), op_types_to_quantize=["MatMul"],
                         nodes_to_quantize=nodes, per_channel=True, reduce_range=False,
                         weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
        return out.read_bytes()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    e5 = next(e for e in load_encoders(Settings.load()) if isinstance(e, OnnxEncoder))
    sents = C.sample_sentences(C.ntrex_articles(), args.sentences)
    graph = e5.export / GRAPH
    sessions = {"fp32 (the export)": e5._new_session(1),
                "int8, one scale a batch (quantize_dynamic)": e5._new_session(
                    1, per_batch_graph(graph)),
                "int8, one scale a token, every product": e5._new_session(
                    1, int8_graph(graph, keep=set())),
                "int8, one scale a token, values at fp32 (khabar)": e5._new_session(
                    1, int8_graph(graph))}
    batches = e5.batches(sents, e5.passage_prompt)

    def run(session: object, rows: list[list[int]]) -> np.ndarray:
        embeds, mask = e5._inputs(rows)
        return session.run(["sentence_embedding"],  # type: ignore[attr-defined]
                           {"inputs_embeds": embeds, "attention_mask": mask})[0]

    vecs: dict[str, np.ndarray] = {}
    cpu: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            out = np.empty((len(sents), e5.dim), np.float32)
            t = time.process_time()
            for at, rows in batches:
                out[at] = run(session, rows)
            cpu[name].append((time.process_time() - t) / len(sents) * 1000)
            vecs[name] = out
    ref = vecs["fp32 (the export)"]
    sims = ref @ ref.T
    np.fill_diagonal(sims, -1)
    near = sims.argmax(1)
    print(f"{len(sents)} sentences, {len(batches)} batches; load {C.load_avg()}")
    print("| graph | CPU ms a sentence | cosine to fp32 mean / min | same neighbour "
          "| moves with its batch (max abs) |")
    print("| --- | --- | --- | --- | --- |")
    for name, session in sessions.items():
        v = vecs[name]
        cos = (v * ref).sum(1)
        s = v @ v.T
        np.fill_diagonal(s, -1)
        same = float((s.argmax(1) == near).mean())
        alone = np.stack([run(session, [row])[0] for _, rows in batches[:8] for row in rows])
        batched = np.concatenate([vecs[name][at] for at, _ in batches[:8]])
        print(f"| {name} | {min(cpu[name]):.2f} | {cos.mean():.4f} / {cos.min():.4f} | "
              f"{same:.2f} | {np.abs(alone - batched).max():.1e} |")


if __name__ == "__main__":
    main()
