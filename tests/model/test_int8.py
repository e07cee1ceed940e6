"""int8 sentence vectors (khabar/model/_int8.py): e5 quantised for a store's sentence
vectors only, the passage vectors unchanged; the store keeping the way it was made."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from khabar.index import Article, Index

from khabar import ModelError, ModelMismatchError, Settings
from khabar.model import OnnxEncoder, _int8, embed_for_store, sentence_methods, space_info
from khabar.model._batch import sentence_texts
from khabar.model._int8 import GRAPH_INT8, int8_file, int8_graph, part
from khabar.store import INT8_SENTENCES, LATE_SENTENCES, SpaceInfo
from tests.fakes import HashEncoder
from tests.model.test_batch import PASSAGES


@pytest.mark.model
def test_int8_sentences_are_near_the_fp32_ones_and_passages_unchanged(e5: OnnxEncoder) -> None:
    plain = embed_for_store([e5], PASSAGES, workers=2)
    got = embed_for_store([e5], PASSAGES, workers=2, methods={"e5": "int8"})
    # The passage vectors are the model's own: questions and passages stay fp32.
    assert np.abs(got.passages["e5"] - plain.passages["e5"]).max() < 1e-5
    for text, mat, each in zip(PASSAGES, got.sentences["e5"], plain.sentences["e5"],
                               strict=True):
        assert mat.shape == each.shape
        assert np.allclose(np.linalg.norm(mat, axis=1), 1, atol=1e-5)
        if sentence_texts(text) == [text]:  # one sentence: the passage's vector, as before
            assert np.abs(mat - each).max() < 1e-5
            continue
        cos = (mat * each).sum(1)
        # Near each sentence's fp32 vector, but another vector (so another way).
        assert cos.min() > 0.995 and cos.max() < 0.99999, (text[:40], cos)


@pytest.mark.model
def test_an_int8_sentence_vector_does_not_depend_on_its_batch(e5: OnnxEncoder) -> None:
    sentences = [s for t in PASSAGES for s in sentence_texts(t)]
    together = e5.embed_int8(sentences)  # batched, padded to their longest
    for i, s in enumerate(sentences):  # each alone: one scale a token, not a batch
        assert np.abs(e5.embed_int8([s])[0] - together[i]).max() < 1e-5, s
    # The same vector whatever runs beside it: what lets `khabar check` compare.
    shuffled = [*sentences[::-1], "A much longer sentence " * 20]
    again = e5.embed_int8(shuffled)[: len(sentences)][::-1]
    assert np.abs(again - together).max() < 1e-5


@pytest.mark.model
def test_the_int8_graph_is_written_once_into_the_export_folder(
        e5: OnnxEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "khabar_onnx"
    shutil.copytree(e5.export, export, ignore=shutil.ignore_patterns(GRAPH_INT8))
    assert not (export / GRAPH_INT8).exists()
    path = int8_file(export)  # a folder from before it: the first process writes it
    assert path == export / GRAPH_INT8 and path.read_bytes() == int8_graph(export / "model.onnx")
    stamp = path.stat().st_mtime_ns
    assert int8_file(export) == path and path.stat().st_mtime_ns == stamp  # then reads it
    assert {p.name for p in export.iterdir()} == {  # no temporary file left
        p.name for p in e5.export.iterdir()} | {GRAPH_INT8}
    # A folder it cannot write (root writes into read-only ones, so the write is made
    # to fail): the graph in memory, the same one.
    path.unlink()

    def refused(*_: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(_int8, "write_int8", refused)
    got = int8_file(export)
    assert isinstance(got, bytes) and got == int8_graph(export / "model.onnx")
    assert not (export / GRAPH_INT8).exists()


@pytest.mark.model
def test_the_int8_graph_is_the_same_each_time_and_quantises_what_it_is_told(
        e5: OnnxEncoder) -> None:
    import onnx

    graph = e5.export / "model.onnx"
    a = int8_graph(graph)
    assert a == int8_graph(graph)  # a process makes the graph the last one made
    ops = {n.op_type for n in onnx.load_from_string(a).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    weights = {i.name for i in onnx.load(str(graph)).graph.initializer}
    shipped = onnx.load_from_string(a)
    assert {part(n.name) for n in shipped.graph.node if n.op_type == "MatMul"
            and any(i in weights for i in n.input)} == {"value"}  # kept at fp32
    made = onnx.load_from_string(int8_graph(graph, keep={"down"}))
    plain = [n.name for n in made.graph.node if n.op_type == "MatMul"
             and any(i in weights for i in n.input)]
    assert plain and {part(n) for n in plain} == {"down"}  # 12 layers' FFN outputs kept


@pytest.mark.model
def test_the_int8_graphs_weights_are_within_7_bits(e5: OnnxEncoder) -> None:
    """8-bit weights saturated onnxruntime's uint8 x int8 kernel on CPUs without VNNI
    (pairs of products summed in int16: 2 * 255 * 127 > 32,767), so the sentence
    vectors depended on the CPU; within ±63 a pair is at most 32,130."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(int8_graph(e5.export / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    products = [n for n in graph.graph.node if n.op_type == "MatMulInteger"]
    assert len(products) == 12 * 5  # every weight product of 12 layers but the values
    for node in products:
        w = inits[node.input[1]]
        assert w.dtype == np.int8 and np.abs(w.astype(np.int16)).max() <= 63, node.name
        assert (np.abs(w).max(axis=0) == 63).all(), node.name  # each channel's full range


def _u8s8_product(w: np.ndarray) -> bytes:
    """A graph of one product built as int8_graph builds its own: uint8 codes about 128
    (zero point 128, a scalar initializer; input "x") times int8 weights (an initializer)."""
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w", "zero"], ["y"])], "u8s8",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.array(128, np.uint8), "zero")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_7_bit_weights_give_the_exact_integer_product() -> None:
    """Codes at 255 and weights at ±63, the worst case for a kernel that adds pairs of
    products in int16: onnxruntime's product is numpy's exact int64 one. This proves it
    on the CPU the test runs on only: where it has VNNI (this project's machine) the
    product is exact at 8 bits too; it is on a CPU without (AVX2) that 8-bit weights
    saturated (1,032,256 came out 8,160 under qemu -cpu Haswell) and 7-bit ones cannot."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    k = 384  # e5-small's hidden size
    w = np.stack([np.full(k, 63), np.full(k, -63), np.resize([63, -63], k),
                  rng.integers(-63, 64, k)], axis=1).astype(np.int8)
    x = np.stack([np.full(k, 255), np.zeros(k), np.resize([255, 0], k),
                  rng.integers(0, 256, k), np.full(k, 128)]).astype(np.uint8)
    graph = _u8s8_product(w)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    exact = (x.astype(np.int64) - 128) @ w.astype(np.int64)
    assert exact[0, 0] == 127 * 63 * k  # the largest there is
    assert np.array_equal(got, exact)


def test_the_7_bit_graph_has_a_new_file_but_stores_keep_their_way() -> None:
    # A model home holds the 8-bit "-2" file: a new name, so it is not read for "-3".
    assert GRAPH_INT8 == "model-int8-tokens-3.onnx"
    # The stores' suffix is kept (no reindex): the 7-bit vectors are within the spread
    # the 8-bit ones had between CPU classes (khabar/store/_vectors.py).
    assert INT8_SENTENCES == "+int8t2-sentences"


class Int8Hash(HashEncoder):
    """A HashEncoder with an int8 way (a wrapper's ``embed_int8``): its int8 vectors
    are its vectors of the text with a mark, so a test can tell them apart."""

    def __init__(self) -> None:
        super().__init__(space="e5")
        self.int8_seen: list[str] = []

    def embed_int8(self, texts: Sequence[str]) -> np.ndarray:
        self.int8_seen += texts
        return self.embed_passages([f"int8: {t}" for t in texts])


def test_int8_spaces_embed_only_the_sentences_of_longer_passages_at_int8() -> None:
    q8, use = Int8Hash(), HashEncoder(space="use")
    got = embed_for_store([q8, use], PASSAGES, methods={"e5": "int8"})
    several = [s for t in PASSAGES for s in sentence_texts(t) if sentence_texts(t) != [t]]
    assert sorted(q8.int8_seen) == sorted(set(several))  # each distinct sentence once
    assert np.allclose(got.passages["e5"], q8.embed_passages(PASSAGES))
    first = sentence_texts(PASSAGES[0])
    assert np.allclose(got.sentences["e5"][0], q8.embed_passages([f"int8: {s}" for s in first]))
    assert np.allclose(got.sentences["e5"][1], q8.embed_passages([PASSAGES[1]]))
    assert np.allclose(got.sentences["use"][0], use.embed_passages(first))  # USE: its own way


def test_the_fingerprint_says_how_the_sentence_vectors_were_made() -> None:
    info = space_info(Int8Hash(), "int8")
    assert info.fingerprint == "hash:64" + INT8_SENTENCES
    assert info.sentences == "int8" and info.model == "hash:64"
    assert space_info(Int8Hash(), "late").sentences == "late"
    assert space_info(Int8Hash()).fingerprint == "hash:64"


def test_methods_for_int8() -> None:
    encs = [Int8Hash(), HashEncoder(space="use")]
    assert sentence_methods(encs, {}, "int8") == {"e5": "int8", "use": "each"}
    mine = {"e5": SpaceInfo("e5", "hash:64" + INT8_SENTENCES, 64)}
    assert sentence_methods(encs, mine, "each")["e5"] == "int8"  # the store's way
    assert sentence_methods(encs, mine, "late")["e5"] == "int8"
    other = {"e5": SpaceInfo("e5", "another:64" + INT8_SENTENCES, 64)}
    assert sentence_methods(encs, other, "each")["e5"] == "each"
    # An encoder without an int8 graph (the torch runtime): refused for an int8 store,
    # its own way for a new one.
    with pytest.raises(ModelError, match=r"int8.*reindex"):
        sentence_methods([HashEncoder()], mine, "each")
    assert sentence_methods([HashEncoder()], {}, "int8") == {"e5": "each"}


ART = Article(title="t", paragraphs=[PASSAGES[0], PASSAGES[2]], url="https://example.com/a")
BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "milvus-lite"])


def _archive(home: Path, backend: str) -> str | None:
    return f"milvus-lite://{home}/milvus/khabar.db" if backend == "milvus-lite" else None


@BACKENDS
def test_an_int8_store_stays_int8_and_refuses_the_other_ways(tmp_path: Path,
                                                             backend: str) -> None:
    store = _archive(tmp_path, backend)
    q8 = Int8Hash()
    ix = Index.open(Settings(home=tmp_path, sentence_method="int8", store=store),
                    encoders=[q8, HashEncoder(space="use")])
    ix.add_articles([ART])
    spaces = ix.store.spaces()
    assert spaces["e5"].fingerprint.endswith(INT8_SENTENCES) and spaces["use"].sentences == "each"
    assert q8.int8_seen  # the sentences went through the int8 way
    ix.close()
    # Configured "each" (or "late") now: the store stays int8 until `khabar reindex`.
    for other in ("each", "late"):
        q8 = Int8Hash()
        ix = Index.open(Settings(home=tmp_path, sentence_method=other, store=store),
                        encoders=[q8, HashEncoder(space="use")])
        assert ix.sentence_methods["e5"] == "int8"
        text = f"{PASSAGES[3]} The {other} report came later."  # new text each time
        ix.add_articles([Article(title="u", paragraphs=[text],
                                 url=f"https://example.com/{other}")])
        assert q8.int8_seen
        # Binding another way by hand is refused: a store never mixes them.
        for way in ("each", "late"):
            with pytest.raises(ModelMismatchError, match=r"int8.*reindex"):
                ix.store.bind_spaces([space_info(q8, way)])
        ix.close()


@BACKENDS
def test_an_older_store_is_not_turned_int8(tmp_path: Path, backend: str) -> None:
    store = _archive(tmp_path, backend)
    ix = Index.open(Settings(home=tmp_path, sentence_method="each", store=store),
                    encoders=[Int8Hash(), HashEncoder(space="use")])
    ix.add_articles([ART])
    ix.close()
    q8 = Int8Hash()
    ix = Index.open(Settings(home=tmp_path, sentence_method="int8", store=store),
                    encoders=[q8, HashEncoder(space="use")])
    assert ix.sentence_methods["e5"] == "each"
    ix.add_articles([Article(title="u", paragraphs=[PASSAGES[3]], url="https://example.com/b")])
    assert q8.int8_seen == []
    with pytest.raises(ModelMismatchError, match="reindex"):
        ix.store.bind_spaces([space_info(q8, "int8")])
    ix.close()


def test_a_late_suffix_is_not_taken_for_int8() -> None:
    late = SpaceInfo("e5", "hash:64" + LATE_SENTENCES, 64)
    assert late.sentences == "late" and late.model == "hash:64"


class OldInt8Hash(HashEncoder):
    """What a store made by the earlier int8 way (one activation scale a batch,
    ``+int8-sentences``) recorded as its e5 fingerprint."""

    def __init__(self) -> None:
        super().__init__(space="e5")

    @property
    def fingerprint(self) -> str:
        return super().fingerprint + "+int8-sentences"


def test_a_store_of_the_earlier_int8_way_asks_for_a_reindex(tmp_path: Path) -> None:
    ix = Index.open(Settings(home=tmp_path, sentence_method="each"),
                    encoders=[OldInt8Hash(), HashEncoder(space="use")])
    ix.add_articles([ART])
    ix.close()
    # Its vectors are not this khabar's int8 ones: never mixed, `khabar reindex` says.
    with pytest.raises(ModelMismatchError, match=r"\+int8-sentences.*reindex"):
        Index.open(Settings(home=tmp_path, sentence_method="int8"),
                   encoders=[Int8Hash(), HashEncoder(space="use")])
