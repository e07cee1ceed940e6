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
(padding is masked; ~1e-7): the store's fingerprints do not change. A space whose
store pools its sentence vectors from the passage's run (``late``, :mod:`._late`)
runs each distinct passage once instead, its sentences pooled from that run; one
whose store takes int8 sentence vectors (``int8``, :mod:`._int8`) runs its
passages as above and its sentences by the int8 graph.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from khabar._errors import ModelError
from khabar.store import SpaceInfo
from khabar.text._analysis import passage_sentences

from . import _late
from ._encoders import Encoder, USEEncoder
from ._int8 import INT8
from ._late import EACH, LATE, POOLING, Pooling
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
                    sentences: bool = True, workers: int | None = None,
                    late: Collection[str] = (), methods: Mapping[str, str] | None = None,
                    pooling: Pooling | None = None) -> Embedded:
    """The passage vectors of ``texts`` and, with ``sentences``, their sentence
    vectors, in every encoder's space (see the module's docstring). ``methods``: how
    each space's sentence vectors are made (:func:`sentence_methods`; "each" where
    not given); the spaces in ``late`` pool theirs from the passage's run
    (:mod:`._late`; :func:`can_late` encoders only), those whose method is "int8"
    embed theirs by the int8 graph (:mod:`._int8`; :func:`can_int8` encoders only)."""
    how = {e.space: (methods or {}).get(e.space) or (LATE if e.space in late else EACH)
           for e in encoders} if sentences else {}
    split = [sentence_texts(t) for t in texts] if sentences else []
    lates = [e for e in encoders if how.get(e.space) == LATE]
    int8s = [e for e in encoders if how.get(e.space) == INT8]
    plain = [e for e in encoders if e not in lates and e not in int8s]
    unique = list(dict.fromkeys([*texts, *(s for ss in split for s in ss)])) if plain else []
    where = {t: i for i, t in enumerate(unique)}
    work = _Work(workers or default_workers())
    vectors = {e.space: work.plain(e, unique) for e in plain}
    # int8 spaces: passages at fp32; the sentences of passages of several, int8 (a
    # passage of one sentence is its own sentence: its fp32 vector, as before).
    alone = list(dict.fromkeys(texts)) if int8s else []
    several = list(dict.fromkeys(s for t, ss in zip(texts, split, strict=True) if ss != [t]
                                 for s in ss)) if int8s else []
    quantised = {e.space: (work.plain(e, alone), work.plain(e, several, int8=True))
                 for e in int8s}
    pooled = {e.space: _LatePlan(e, texts, split, work, pooling or _late.POOLING)
              for e in lates}
    work.run()
    out = Embedded({}, {})
    for space, vecs in vectors.items():
        out.passages[space] = vecs[[where[t] for t in texts]]
        if sentences:
            out.sentences[space] = [vecs[[where[s] for s in ss]] for ss in split]
    at_p = {t: i for i, t in enumerate(alone)}
    at_s = {s: i for i, s in enumerate(several)}
    for space, (pvecs, svecs) in quantised.items():
        out.passages[space] = pvecs[[at_p[t] for t in texts]]
        out.sentences[space] = [pvecs[[at_p[t]]] if ss == [t] else svecs[[at_s[s] for s in ss]]
                                for t, ss in zip(texts, split, strict=True)]
    for space, plan in pooled.items():
        out.passages[space], out.sentences[space] = plan.result(texts, split)
    return out


def can_late(encoder: Encoder) -> bool:
    """Whether ``encoder`` can pool sentence vectors from a passage's run."""
    return isinstance(encoder, OnnxEncoder) or callable(getattr(encoder, "embed_late", None))


def can_int8(encoder: Encoder) -> bool:
    """Whether ``encoder`` can embed sentences by an int8 graph (:mod:`._int8`)."""
    return callable(getattr(encoder, "embed_int8", None))


_CAN = {LATE: can_late, INT8: can_int8}
_WAY = {LATE: "pooled from each passage's run (late chunking)",
        INT8: "embedded by e5 quantised to int8"}


def sentence_methods(encoders: Sequence[Encoder], stored: Mapping[str, SpaceInfo],
                     configured: str) -> dict[str, str]:
    """How each encoder's sentence vectors are made for a store whose spaces are
    ``stored``: the store's own way for the same model (until ``khabar reindex``),
    else ``configured`` where the encoder can (:func:`can_late`, :func:`can_int8`).
    Raises ModelError for a late or int8 store whose encoder cannot make its
    sentence vectors (the torch runtime)."""
    out = {}
    for enc in encoders:
        old = stored.get(enc.space)
        keep = old is not None and old.model == enc.fingerprint
        method = old.sentences if keep and old is not None else configured
        if method in _CAN and not _CAN[method](enc):
            if keep:
                raise ModelError(
                    f"this store's {enc.space} sentence vectors are {_WAY[method]}, which "
                    f"{enc.name} on the {getattr(enc, 'runtime', 'configured')} runtime "
                    "cannot make: use KHABAR_RUNTIME=onnx, or `khabar reindex` to make "
                    "them all anew")
            method = EACH
        out[enc.space] = method
    return out


def late_vectors(encoder: OnnxEncoder, texts: Sequence[str], pooling: Pooling = POOLING
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passage vectors and late-chunked sentence vectors of ``texts``, on the calling
    thread (what an encoder wrapper's ``embed_late`` may call)."""
    split = [sentence_texts(t) for t in texts]
    work = _Work(1)
    plan = _LatePlan(encoder, texts, split, work, pooling)
    work.run()
    return plan.result(texts, split)


def sentence_texts(text: str) -> list[str]:
    """The texts embedded as a passage's sentences: its :func:`passage_sentences`, or
    the passage itself when it is one sentence (what ``embed_sentences`` reuses)."""
    ss = passage_sentences(text)
    return [text] if len(ss) == 1 and ss[0] == text.strip() else ss


class _Work:
    """Embedding tasks, run on ``workers`` threads: one task per onnxruntime batch
    (sharing the encoder's session), one for USE (serial inside,
    and a fraction of e5's cost; it goes first, then the longest batches). Any other
    encoder is run by the calling thread: it may not be safe to call from another (a
    wrapper holding a SQLite connection)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pooled: list[Callable[[], None]] = []
        self.batched: list[tuple[int, Callable[[], None]]] = []  # (tokens, task)
        self.inline: list[Callable[[], None]] = []

    def plain(self, enc: Encoder, texts: Sequence[str], *, int8: bool = False) -> np.ndarray:
        """Each of ``texts`` embedded as a passage (by the int8 graph when ``int8``,
        :func:`can_int8` encoders only), into the array returned (filled by
        :meth:`run`)."""
        dest = np.empty((len(texts), enc.dim), dtype=np.float32)
        if not texts:
            return dest
        if isinstance(enc, OnnxEncoder):
            self.batched += [(len(rows) * len(rows[0]), _batch_task(enc, dest, at, rows, int8))
                             for at, rows in enc.batches(texts, enc.passage_prompt)]
        elif int8:
            self.inline.append(_whole_task(enc, dest, texts, "embed_int8"))
        elif isinstance(enc, USEEncoder):
            self.pooled.append(_whole_task(enc, dest, texts))
        else:
            self.inline.append(_whole_task(enc, dest, texts))
        return dest

    def run(self) -> None:
        # The largest batches first (rows are longest first within a batch), whatever
        # call they came from: the last tasks are the smallest, so the threads
        # finish close together.
        batched = [task for _, task in sorted(self.batched, key=lambda b: -b[0])]
        pooled = [*self.pooled, *batched]
        if self.workers <= 1 or len(pooled) + len(self.inline) <= 1:
            for task in [*pooled, *self.inline]:
                task()
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, max(len(pooled), 1)),
                                thread_name_prefix="khabar-embed") as pool:
            futures = [pool.submit(task) for task in pooled]
            try:
                for task in self.inline:
                    task()
            finally:
                for future in futures:
                    future.result()  # re-raises a task's error here


class _LatePlan:
    """One late-chunking encoder's share of a call: each distinct passage run once,
    its sentences pooled from that run; a sentence not found among the passage's
    tokens (cut off by the 512-token limit, or split inside a word) is embedded on
    its own, and a passage of one sentence is its own sentence, as before."""

    def __init__(self, enc: Encoder, texts: Sequence[str], split: Sequence[list[str]],
                 work: _Work, pooling: Pooling) -> None:
        passages = list(dict.fromkeys(texts))
        self.dim = enc.dim
        self.vecs: dict[str, np.ndarray] = {}
        self.sents: dict[str, list[np.ndarray | None]] = {}
        # What the onnxruntime batches fill: the texts run, their vectors, their pools.
        self._fill: tuple[list[str], np.ndarray, list[list[np.ndarray | None]]] | None = None
        if isinstance(enc, OnnxEncoder):
            self._onnx(enc, passages, work, pooling)
        else:
            work.inline.append(lambda: self._wrapped(enc, passages))

    def _wrapped(self, enc: Encoder, passages: list[str]) -> None:
        vecs, mats = enc.embed_late(passages)  # type: ignore[attr-defined]
        self.vecs.update(zip(passages, vecs, strict=True))
        self.sents.update((p, list(m)) for p, m in zip(passages, mats, strict=True))

    def _onnx(self, enc: OnnxEncoder, passages: list[str], work: _Work,
              pooling: Pooling) -> None:
        spans: dict[str, list[tuple[int, int] | None]] = {}
        alone: list[str] = []
        for p in passages:
            ss = sentence_texts(p)
            if ss == [p]:
                spans[p] = []
                continue
            spans[p] = enc.sentence_spans(p, ss)
            alone += [s for s, span in zip(ss, spans[p], strict=True) if span is None]
        run = list(dict.fromkeys([*passages, *alone]))
        n = len(run)
        dest = np.empty((n, enc.dim), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in range(n)]

        def task(at: list[int], rows: list[list[int]]) -> Callable[[], None]:
            def go() -> None:
                vecs, got = enc.run_late(rows, [spans.get(run[i], []) for i in at], pooling)
                dest[at] = vecs
                for i, g in zip(at, got, strict=True):
                    pooled[i] = g
            return go

        work.batched += [(len(rows) * len(rows[0]), task(at, rows))
                         for at, rows in enc.batches(run, enc.passage_prompt)]
        self._fill = (run, dest, pooled)

    def result(self, texts: Sequence[str], split: Sequence[list[str]]
               ) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._fill is not None:
            run, dest, pooled = self._fill
            self.vecs = dict(zip(run, dest, strict=True))
            self.sents = dict(zip(run, pooled, strict=True))
        passages = np.stack([self.vecs[t] for t in texts]) if texts \
            else np.zeros((0, self.dim), np.float32)
        mats = []
        for t, ss in zip(texts, split, strict=True):
            got = self.sents.get(t) or []
            if ss == [t]:
                mats.append(self.vecs[t][None, :])
                continue
            mats.append(np.stack([g if g is not None else self.vecs[s]
                                  for g, s in zip(got, ss, strict=True)]))
        return passages, mats


def _batch_task(enc: OnnxEncoder, dest: np.ndarray, at: list[int], rows: list[list[int]],
                int8: bool) -> Callable[[], None]:
    def run() -> None:
        dest[at] = enc.run_ids(rows, int8=int8)
    return run


def _whole_task(enc: Encoder, dest: np.ndarray, texts: Sequence[str],
                method: str = "embed_passages") -> Callable[[], None]:
    def run() -> None:
        dest[:] = np.asarray(getattr(enc, method)(list(texts)), dtype=np.float32)
    return run


_QUESTIONS: ThreadPoolExecutor | None = None  # made on first use, kept: a question each time


def embed_question(encoders: Sequence[Encoder], text: str) -> dict[str, np.ndarray]:
    """``text`` embedded as a query by every encoder, side by side: onnxruntime's e5 (one
    thread a run, :func:`~._onnx.default_threads`) beside USE's numpy, each releasing
    the GIL, so a question's embedding takes the longer of the two, not their sum. An
    encoder other than these two runs on the calling thread (see :class:`_Work`)."""
    global _QUESTIONS
    safe = [e for e in encoders if isinstance(e, OnnxEncoder | USEEncoder)]
    if len(safe) < 2:
        return {e.space: e.embed_queries([text])[0] for e in encoders}
    if _QUESTIONS is None:
        _QUESTIONS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="khabar-question")
    # In the question's context (a pool thread keeps none of its own between tasks).
    futures = {e.space: _QUESTIONS.submit(contextvars.copy_context().run, e.embed_queries,
                                          [text]) for e in safe[1:]}
    out = {safe[0].space: safe[0].embed_queries([text])[0]}
    out |= {e.space: e.embed_queries([text])[0] for e in encoders if e not in safe}
    out |= {space: f.result()[0] for space, f in futures.items()}
    return {e.space: out[e.space] for e in encoders}
