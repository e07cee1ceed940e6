"""e5 quantised to int8, for a store's sentence vectors only (``sentence_method="int8"``).

A passage's sentences were embedded again on their own at fp32: 40 % of ingest's CPU
(docs/benchmarks.md, "Ingest rate"). Stored sentence vectors only rescore the
sentences of passages already retrieved (the best sentence beside the whole), so
they can take small moves that passage and question vectors could not: this graph
is the exported one with its weight matrix products quantised dynamically
(onnxruntime's ``quantize_dynamic``: int8 weights per output channel, uint8
activations per run; VNNI where the CPU has it), about half the CPU a sentence.
Passage and question vectors stay fp32, and a passage of one sentence keeps its
passage vector as its sentence's, as before.

The vectors differ from fp32 ones (cosine ~0.997), so a store records the way
(:data:`INT8`, ``+int8-sentences`` in the space's fingerprint) and never mixes them.
The activations' scale is one per batch tensor, so a sentence's vector also moves a
little with the sentences batched beside it (cosine ≥ 0.995): one reason this is not
the default (docs/benchmarks.md, "int8 sentence vectors").
The graph is derived in memory from the export on first use (~1–2 s of CPU, once per
ingesting process); the quantiser is deterministic, so a process makes the same
graph as the last one with the same onnxruntime (``khabar check`` re-embeds a
sample of sentences and would report a drift).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection
from pathlib import Path

INT8 = "int8"  # every sentence embedded on its own by the int8 graph (:func:`int8_graph`)

# Weight matrix products left at fp32, by part of a layer (:func:`part`): none.
# docs/benchmarks.md measures leaving the FFN down-projections ("down") at fp32:
# their inputs, after GELU, have the outliers a per-run activation scale handles worst.
KEEP_FP32: frozenset[str] = frozenset()
PARTS = ("query", "key", "value", "attention", "up", "down")


def part(name: str) -> str:
    """Which part of a BERT layer a weight MatMul of the export is (``PARTS``)."""
    for key, label in (("/query/", "query"), ("/key/", "key"), ("/value/", "value"),
                       ("/attention/output/", "attention"), ("/intermediate/", "up"),
                       ("/output/dense/", "down")):
        if key in name:
            return label
    return "other"


def int8_graph(graph: Path, keep: Collection[str] | None = None) -> bytes:
    """The exported graph with its weight matrix products (those with a constant
    operand) quantised to int8 per channel, but the parts in ``keep`` (:func:`part`;
    default :data:`KEEP_FP32`, read at the call)."""
    keep = KEEP_FP32 if keep is None else keep
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(graph))
    weights = {init.name for init in model.graph.initializer}
    nodes = [n.name for n in model.graph.node if n.op_type == "MatMul"
             and any(i in weights for i in n.input) and part(n.name) not in keep]
    with tempfile.TemporaryDirectory(prefix="khabar-int8-") as tmp:
        out = Path(tmp) / "int8.onnx"
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process: not needed
        try:
            quantize_dynamic(str(graph), str(out), op_types_to_quantize=["MatMul"],
                             nodes_to_quantize=nodes, per_channel=True, reduce_range=False,
                             weight_type=QuantType.QInt8,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.getLogger().setLevel(quiet)
        return out.read_bytes()
