"""A bounded, thread-safe cache of texts' vectors, least recently used dropped first:
what answers (sentences of shown passages) and summaries (headlines) embed again and
again for many questions and overlapping digests."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from khabar.model import Encoder


class EmbeddingCache:
    """(encoder fingerprint, text) -> vector, at most ``size`` of them, kept as
    ``dtype`` (float16 halves the memory where the vectors only compare)."""

    def __init__(self, size: int, dtype: type[np.floating] = np.float32) -> None:
        self.size = size
        self.dtype = dtype
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, encoder: Encoder, texts: list[str]) -> np.ndarray:
        """The texts' passage vectors (float32), embedding only those not cached."""
        key = encoder.fingerprint
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if (key, t) not in self._data]
        fresh = dict(zip(missing, encoder.embed_passages(missing), strict=True)) \
            if missing else {}
        with self._lock:
            self._data.update({(key, t): np.asarray(v, self.dtype) for t, v in fresh.items()})
            out = []
            for t in texts:
                v = fresh.get(t)
                if v is None:
                    v = self._data.get((key, t))
                if v is None:  # evicted by another thread meanwhile
                    v = encoder.embed_passages([t])[0]
                self._data[(key, t)] = np.asarray(v, self.dtype)
                self._data.move_to_end((key, t))
                out.append(np.asarray(v, np.float32))
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return np.stack(out)
