"""e5 quantised to int8, for a store's sentence vectors (``sentence_method="int8"``,
the default).

A passage's sentences are embedded again on their own: at fp32 that was 40 % of
ingest's CPU (docs/benchmarks.md, "Ingest rate"). Stored sentence vectors only
rescore the sentences of passages already retrieved (the best sentence beside the
whole), so they can take small moves that passage and question vectors could not.
Passage and question vectors stay fp32, and a passage of one sentence keeps its
passage vector as its sentence's.

The int8 graph is the exported one with each weight matrix product replaced by an
integer one: weights int8 per output channel (7-bit codes), and each *token's*
activations int8 with a scale of their own (symmetric, computed in the graph as the
run goes). So a sentence's vector depends on the sentence alone, not on the sentences
batched beside it (onnxruntime's ``quantize_dynamic`` takes one scale for the whole
batch tensor: its vectors moved with their batch-mates, cosine ≥ 0.995, and were
further from fp32: 0.9966 against 0.9991 here; docs/benchmarks.md, "int8 sentence
vectors, one scale a token"). About half the CPU of fp32 a sentence.

The graph is written once into the export folder (:data:`GRAPH_INT8`, by ``khabar
model build``, or by the first process that needs it when the folder predates it);
deriving it is deterministic (numpy rounding), so every process runs the same graph.
Its weights are kept within 7 bits (:data:`W_MAX`) so that the graph also gives the
same vectors on every x86 CPU, within rounding: with 8-bit weights onnxruntime's
kernel for CPUs without VNNI (AVX2) saturated, and their vectors moved. A store
records the way (``+int8t2-sentences`` in the space's fingerprint) and never mixes it
with another.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

INT8 = "int8"  # every sentence embedded on its own by the int8 graph (:func:`int8_graph`)
# In the export folder, beside model.onnx. Named by the way it is derived: a change to
# int8_graph takes a new name here, so that no stale file is read. A change that gives
# other vectors also takes a new INT8_SENTENCES suffix in khabar.store (no store mixes
# the two); "-3" (7-bit weights) did not: its vectors are within the spread "-2"'s
# already had between CPUs (khabar/store/_vectors.py).
GRAPH_INT8 = "model-int8-tokens-3.onnx"

# The largest |weight code|. onnxruntime's uint8 x int8 kernel on x86 CPUs without VNNI
# (AVX2: Haswell and the like) adds each pair of products into int16 and saturates there:
# 2 * 255 * 127 = 64,770 > 32,767, so the same graph gave other vectors on such a CPU
# (cosine 0.9993 to this VNNI CPU's, emulated Haswell; it flipped an answer of
# tests/retrieval/test_answers.py). At 7 bits a pair is at most 2 * 255 * 63 = 32,130:
# no CPU saturates, and vectors agree across CPUs within rounding (cosine 0.99988 mean,
# emulated Haswell against this CPU), for a little precision (cosine to fp32 0.99931
# against 0.99959 at 8 bits; docs/benchmarks.md, "Session 11").
W_MAX = 63

# Weight matrix products left at fp32, by part of a layer (:func:`part`): the value
# projections. Their error is half the graph's: with them at fp32 a sentence's vector
# is at cosine 0.99959 to fp32 (0.99914 all int8) for 10 % more CPU; keeping query and
# key, the FFN or the attention output instead gained less for more (docs/benchmarks.md).
SHIPPED_KEEP: frozenset[str] = frozenset({"value"})  # what GRAPH_INT8 is made with
KEEP_FP32: frozenset[str] = SHIPPED_KEEP  # benches may set another: then made in memory
PARTS = ("query", "key", "value", "attention", "up", "down")


def part(name: str) -> str:
    """Which part of a BERT layer a weight MatMul of the export is (``PARTS``)."""
    for key, label in (("/query/", "query"), ("/key/", "key"), ("/value/", "value"),
                       ("/attention/output/", "attention"), ("/intermediate/", "up"),
                       ("/output/dense/", "down")):
        if key in name:
            return label
    return "other"


def int8_graph(graph: Path, keep: Collection[str] | None = None, w_max: int = W_MAX
               ) -> bytes:
    """The exported graph with its weight matrix products (those with a constant
    operand) made integer products, one activation scale a token, but the parts in
    ``keep`` (:func:`part`; default :data:`KEEP_FP32`, read at the call); weight codes
    within ±``w_max`` (a bench's other bound)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    keep = KEEP_FP32 if keep is None else keep
    model = onnx.load(str(graph))
    g = model.graph
    weights = {init.name: init for init in g.initializer}
    consts = [numpy_helper.from_array(np.array(v, dtype=t), name) for name, v, t in (
        ("q8_tiny", 1e-12, np.float32), ("q8_127", 127.0, np.float32),
        ("q8_128", 128.5, np.float32), ("q8_zero", 128, np.uint8))]
    nodes = []
    codes: dict[str, tuple[str, str]] = {}  # activations -> (their scales, their codes)
    for node in g.node:
        if node.op_type != "MatMul" or node.input[1] not in weights or part(node.name) in keep:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        # 7-bit codes (W_MAX): no pair sum can saturate on a CPU without VNNI.
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / w_max).astype(np.float32)
        w_int = np.clip(np.rint(w / w_scale), -w_max, w_max).astype(np.int8)
        p = node.name + "/q8_"
        consts += [numpy_helper.from_array(w_int, p + "w"),
                   numpy_helper.from_array(w_scale, p + "w_scale")]
        x = node.input[0]
        if x not in codes:
            # Each token's scale: its largest |activation| / 127 (symmetric), so that
            # token's codes do not depend on any other row of the batch. Made once for
            # the products that share their input (query, key and value).
            steps: list[tuple[str, list[str], str, dict[str, object]]] = [
                ("Abs", [x], "abs", {}),
                ("ReduceMax", [p + "abs"], "max", {"axes": [-1], "keepdims": 1}),
                ("Max", [p + "max", "q8_tiny"], "max1", {}),
                ("Div", [p + "max1", "q8_127"], "scale", {}),
                ("Div", ["q8_127", p + "max1"], "inverse", {}),
                ("Mul", [x, p + "inverse"], "scaled", {}),
                # uint8 about 128 (onnxruntime's u8s8 kernels); + 0.5 as Cast truncates,
                # and every value is positive here: rounded to the nearest.
                ("Add", [p + "scaled", "q8_128"], "shifted", {}),
                ("Cast", [p + "shifted"], "codes", {"to": TensorProto.UINT8}),
            ]
            nodes += [helper.make_node(kind, inputs, [p + out], name=p + out, **attrs)
                      for kind, inputs, out, attrs in steps]
            codes[x] = (p + "scale", p + "codes")
        scale, x_int = codes[x]
        # The weight's scale is applied before the token's: the other way round,
        # onnxruntime's MatMulIntegerToFloat fusion takes the token scales for one a
        # column and gives wrong vectors (measured: cosine 0.84 to fp32).
        nodes += [helper.make_node("MatMulInteger", [x_int, p + "w", "q8_zero"], [p + "int"],
                                   name=p + "int"),
                  helper.make_node("Cast", [p + "int"], [p + "float"], name=p + "float",
                                   to=TensorProto.FLOAT),
                  helper.make_node("Mul", [p + "float", p + "w_scale"], [p + "wscaled"],
                                   name=p + "wscaled"),
                  helper.make_node("Mul", [p + "wscaled", scale], list(node.output),
                                   name=p + "out")]
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend([*kept, *(c for c in consts if c.name in used)])
    return model.SerializeToString()


def int8_file(export: Path) -> Path | bytes:
    """The int8 graph of the export folder ``export``: its file, written now if the
    folder has none (atomically: a process that reads it meanwhile sees all or
    nothing), or the graph itself where the folder cannot be written."""
    from ._onnx import GRAPH

    if KEEP_FP32 != SHIPPED_KEEP:  # a bench's variant: never the file's graph
        return int8_graph(Path(export) / GRAPH)
    path = Path(export) / GRAPH_INT8
    if path.is_file():
        return path
    data = int8_graph(Path(export) / GRAPH)
    try:
        write_int8(export, data)
    except OSError:  # a read-only models folder: the graph lives in this process only
        return data
    return path


def write_int8(export: Path, data: bytes | None = None) -> Path:
    """Write the int8 graph into the export folder (what ``khabar model build`` does)."""
    from khabar._files import write_atomic

    from ._onnx import GRAPH

    path = Path(export) / GRAPH_INT8
    write_atomic(path, int8_graph(Path(export) / GRAPH, SHIPPED_KEEP) if data is None else data)
    return path
