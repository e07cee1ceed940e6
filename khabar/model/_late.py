"""Late chunking: a passage's sentence vectors pooled from the passage's own e5 run.

e5 makes a text's vector by mean pooling its last hidden states and normalising. A
sentence of a passage, embedded on its own, costs a second run over its tokens (40 %
of ingest's CPU, docs/benchmarks.md "Ingest rate"); pooling the hidden states of the
sentence's tokens inside the passage's run costs nothing more, and each sentence
then also sees its neighbours (the "late chunking" of Günther et al., 2024). The
vectors differ from per-sentence ones, so a store records which way its sentence
vectors were made (:data:`EACH`, :data:`LATE`) and never mixes them.

The run needs the hidden states, which the exported graph pools inside: a second
graph with them as an extra output is derived in memory from the export (``onnx``,
~0.3 s, once per ingesting process); its pooled output is the export's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EACH = "each"  # every sentence embedded on its own (with the passage prompt)
LATE = "late"  # pooled from the passage's run (:func:`pool`)
METHODS = (EACH, LATE)
HIDDEN = "token_states"  # the derived graph's extra output: batch x tokens x dim


@dataclass(frozen=True)
class Pooling:
    """How a sentence's vector is pooled from its passage's hidden states.

    ``context``: tokens on each side of the sentence pooled with it; ``frame``: the
    passage's ``<s>``, prompt and ``</s>`` states pooled too (a sentence embedded on
    its own pools its own); ``mix``: weight of the passage vector added to it.
    """

    context: int = 0
    frame: bool = False
    mix: float = 0.0
    # The last ``tail`` layers run again on each sentence alone (its states from the
    # passage's run below them, with the passage's <s>, prompt and </s>): a part of a
    # second pass, closer to each sentence embedded alone. 0: pooled only.
    tail: int = 0


POOLING = Pooling()


def token_graph(graph: Path) -> tuple[bytes, str]:
    """The exported graph with the last hidden states as a second output, and
    that output's name."""
    import onnx

    model = onnx.load(str(graph))
    nodes = model.graph.node
    made_by = {out: n for n in nodes for out in n.output}
    # The pooling's ReduceSum over (hidden * mask): its Mul's first input is the states.
    hidden = next(made_by[n.input[0]].input[0] for n in nodes
                  if n.op_type == "ReduceSum" and n.input[0] in made_by
                  and made_by[n.input[0]].op_type == "Mul")
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        hidden, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), hidden


def tail_graphs(graph: Path, layers: int) -> tuple[bytes, bytes, str]:
    """The exported graph with the states before its last ``layers`` layers as a second
    output, the graph of those layers alone (states and mask in, vector out), and the
    states' name."""
    import onnx
    import onnx.utils

    model = onnx.load(str(graph))
    names = [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"
             and n.output[0].endswith("/output/LayerNorm/LayerNormalization_output_0")]
    cut = names[len(names) - 1 - layers] if layers < len(names) else \
        "/bert/embeddings/LayerNorm/LayerNormalization_output_0"
    model.graph.value_info.append(onnx.helper.make_tensor_value_info(
        cut, onnx.TensorProto.FLOAT, None))
    tail = onnx.utils.Extractor(model).extract_model([cut, "attention_mask"],
                                                     ["sentence_embedding"])
    for node in tail.graph.node:  # shapes taken from the input: the states' are the same
        for i, name in enumerate(node.input):
            if name == "inputs_embeds":
                node.input[i] = cut
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        cut, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), tail.SerializeToString(), cut


def pool(states: np.ndarray, length: int, prompt_end: int,
         spans: list[tuple[int, int] | None], passage: np.ndarray,
         pooling: Pooling = POOLING) -> list[np.ndarray | None]:
    """Each span's vector from one row's hidden ``states`` (``length`` real tokens,
    the prompt's pieces before ``prompt_end``), normalised as e5 normalises."""
    out: list[np.ndarray | None] = []
    for span in spans:
        if span is None:
            out.append(None)
            continue
        a = max(prompt_end, span[0] - pooling.context)
        b = min(length - 1, span[1] + pooling.context)
        vec = states[a:b].sum(0)
        n = b - a
        if pooling.frame:
            vec = vec + states[:prompt_end].sum(0) + states[length - 1]
            n += prompt_end + 1
        vec = vec / n
        vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        if pooling.mix:
            vec = vec + pooling.mix * passage
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        out.append(vec.astype(np.float32))
    return out
