"""Ingest's embedding: passages and their sentences, every encoder, both CPUs busy.

What a store needs of a group of passages: each passage's vector and each of its
sentences' vectors (:func:`~khabar.text.passage_sentences`), in every encoder's space,
all embedded as passages. Done as one piece of work rather than four encoder calls
one after another:

* every distinct text is embedded once per encoder: a passage that is one sentence
  is its own sentence (the same input, so the same vector), and a sentence or
  passage repeated in the group (wire copy) is embedded once;
* e5's batches (longest first, of similar length) and USE's whole share run on
  ``workers`` threads at once. onnxruntime and numpy release the GIL, and
  independent calls keep both CPUs busy where one call's threads wait for each
  other (and for a descheduled thread on a busy machine).

The vectors are the ones each encoder gives a text on its own, to float rounding
(padding is masked; ~1e-7): the store's fingerprints do not change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from khabar.text._analysis import passage_sentences

from ._encoders import Encoder, USEEncoder
from ._onnx import OnnxEncoder


@dataclass
class Embedded:
    """Vectors of a group of passages, per encoder space."""

    passages: dict[str, np.ndarray]  # space -> (n_passages, dim)
    sentences: dict[str, list[np.ndarray]]  # space -> one (n_sentences, dim) per passage


def default_workers() -> int:
    """One embedding thread per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def embed_for_store(encoders: Sequence[Encoder], texts: Sequence[str], *,
                    sentences: bool = True, workers: int | None = None) -> Embedded:
    """The passage vectors of ``texts`` and, with ``sentences``, their sentence
    vectors, in every encoder's space (see the module's docstring)."""
    split = [sentence_texts(t) for t in texts] if sentences else []
    unique = list(dict.fromkeys([*texts, *(s for ss in split for s in ss)]))
    where = {t: i for i, t in enumerate(unique)}
    vectors = embed_unique(encoders, unique, workers or default_workers())
    passage_rows = [where[t] for t in texts]
    out = Embedded({s: v[passage_rows] for s, v in vectors.items()}, {})
    for space, vecs in (vectors.items() if sentences else ()):
        out.sentences[space] = [vecs[[where[s] for s in ss]] for ss in split]
    return out


def sentence_texts(text: str) -> list[str]:
    """The texts embedded as a passage's sentences: its :func:`passage_sentences`, or
    the passage itself when it is one sentence (what ``embed_sentences`` reuses)."""
    ss = passage_sentences(text)
    return [text] if len(ss) == 1 and ss[0] == text.strip() else ss


def embed_unique(encoders: Sequence[Encoder], texts: Sequence[str], workers: int
                 ) -> dict[str, np.ndarray]:
    """Each text embedded as a passage by each encoder, the work spread on ``workers``
    threads: one task per onnxruntime batch (each on one thread when several run side
    by side), one for USE (serial inside, and a fraction of e5's cost; it goes first,
    then the longest batches). Any other encoder is run by the calling thread: it may
    not be safe to call from another (a wrapper holding a SQLite connection)."""
    out = {e.space: np.empty((len(texts), e.dim), dtype=np.float32) for e in encoders}
    if not texts:
        return out
    pooled: list[Callable[[], None]] = []
    batched: list[Callable[[], None]] = []
    inline: list[Callable[[], None]] = []
    for enc in encoders:
        dest = out[enc.space]
        if isinstance(enc, OnnxEncoder):
            batches = enc.batches(texts, enc.passage_prompt)
            # One batch (a post, a question) keeps the session with every thread.
            one_thread = workers > 1 and len(batches) > 1
            batched += [_batch_task(enc, dest, at, rows, one_thread) for at, rows in batches]
        elif isinstance(enc, USEEncoder):
            pooled.append(_whole_task(enc, dest, texts))
        else:
            inline.append(_whole_task(enc, dest, texts))
    pooled += batched
    if workers <= 1 or len(pooled) + len(inline) <= 1:
        for task in [*pooled, *inline]:
            task()
        return out
    with ThreadPoolExecutor(max_workers=min(workers, max(len(pooled), 1)),
                            thread_name_prefix="khabar-embed") as pool:
        futures = [pool.submit(task) for task in pooled]
        try:
            for task in inline:
                task()
        finally:
            for future in futures:
                future.result()  # re-raises a task's error here
    return out


def _batch_task(enc: OnnxEncoder, dest: np.ndarray, at: list[int], rows: list[list[int]],
                one_thread: bool) -> Callable[[], None]:
    def run() -> None:
        dest[at] = enc.run_ids(rows, one_thread=one_thread)
    return run


def _whole_task(enc: Encoder, dest: np.ndarray, texts: Sequence[str]) -> Callable[[], None]:
    def run() -> None:
        dest[:] = np.asarray(enc.embed_passages(list(texts)), dtype=np.float32)
    return run
