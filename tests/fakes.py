"""A tiny deterministic encoder for fast unit tests of logic (beside real-model tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from khabar.text import lexical_tokens


class HashEncoder:
    """Bag of hashed stemmed words: texts sharing words get similar vectors."""

    def __init__(self, space: str = "e5", dim: int = 64, name: str = "hash") -> None:
        self.space = space
        self.dim = dim
        self.name = name

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{self.dim}"

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in lexical_tokens(text) or [text]:
            h = int(hashlib.md5(tok.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0
        v += 0.01  # never all zero
        return v / np.linalg.norm(v)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim),
                                                                              np.float32)

    embed_queries = embed_passages
