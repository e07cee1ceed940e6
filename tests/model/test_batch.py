"""Ingest's embedding (``embed_for_store``): the same vectors as each encoder gives each
text on its own, whatever the batching, the threads or the repeats; every distinct
text embedded once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from khabar.model import Encoder, embed_for_store, embed_sentences
from khabar.model._batch import sentence_texts
from khabar.text import passage_sentences
from tests.fakes import HashEncoder

ONE_SENTENCE = ("قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم ضد أهداف تابعة "
                "لتنظيم الدولة الإسلامية في محيط مدينة حلب السورية.")
PASSAGES = [
    "Russian warplanes struck targets near Homs on Wednesday, a monitoring group said. "
    "The strikes hit a market and a school. Rescue workers searched the rubble for hours.",
    ONE_SENTENCE,
    "وقال المصدر الدبلوماسي الفرنسي إن الضربات يبدو أنها نفذت بالقرب من حمص. "
    "ولم تعلق موسكو على الفور. " + ONE_SENTENCE,  # shares a sentence with a passage
    "The central bank held rates steady. Inflation slowed for a third month in a row, "
    "official figures showed on Tuesday. " * 6,  # a long passage, repeated sentences
    ONE_SENTENCE,  # wire copy: the same passage again
]


@pytest.mark.model
@pytest.mark.parametrize("workers", [1, 2])
def test_vectors_are_each_text_embedded_alone(encoders: list[Encoder], workers: int) -> None:
    got = embed_for_store(encoders, PASSAGES, workers=workers)
    for enc in encoders:
        alone = np.vstack([enc.embed_passages([t]) for t in PASSAGES])
        assert got.passages[enc.space].dtype == np.float32
        assert np.abs(got.passages[enc.space] - alone).max() < 1e-5, enc.space
        for text, mat in zip(PASSAGES, got.sentences[enc.space], strict=True):
            want = enc.embed_passages(sentence_texts(text))
            assert mat.shape == want.shape == (len(passage_sentences(text)), enc.dim)
            assert np.abs(mat - want).max() < 1e-5, (enc.space, text[:40])


@pytest.mark.model
def test_as_before_and_a_one_sentence_passage_is_its_own_sentence(
        encoders: list[Encoder]) -> None:
    got = embed_for_store(encoders, PASSAGES, workers=2)
    for enc in encoders:
        passages = enc.embed_passages(PASSAGES)
        before = embed_sentences([enc], PASSAGES, {enc.space: passages})[enc.space]
        for i, (new, old) in enumerate(zip(got.sentences[enc.space], before, strict=True)):
            assert new.shape == old.shape and np.abs(new - old).max() < 1e-5, (enc.space, i)
        one = PASSAGES.index(ONE_SENTENCE)
        assert np.array_equal(got.sentences[enc.space][one], got.passages[enc.space][one:one + 1])
        # The repeated passage and the shared sentence are the same vector, not near.
        assert np.array_equal(got.passages[enc.space][one], got.passages[enc.space][4])
        assert np.array_equal(got.sentences[enc.space][2][-1], got.passages[enc.space][one])


class Counting(HashEncoder):
    """HashEncoder that remembers every text it is asked to embed."""

    def __init__(self, space: str) -> None:
        super().__init__(space=space)
        self.seen: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += texts
        return super().embed_passages(texts)


def test_every_distinct_text_is_embedded_once_per_encoder() -> None:
    encs = [Counting("e5"), Counting("use")]
    got = embed_for_store(encs, PASSAGES, workers=2)
    distinct = set(PASSAGES) | {s for t in PASSAGES for s in passage_sentences(t)}
    for enc in encs:
        assert sorted(enc.seen) == sorted(distinct)
        assert len(got.sentences[enc.space]) == len(PASSAGES)
    without = embed_for_store([Counting("e5")], PASSAGES, sentences=False)
    assert without.sentences == {} and without.passages["e5"].shape == (len(PASSAGES), 64)
    empty = embed_for_store(encs, [])
    assert empty.passages["e5"].shape == (0, 64) and empty.sentences["use"] == []


class Failing(HashEncoder):
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("encoder exploded")


def test_an_encoder_error_reaches_the_caller() -> None:
    with pytest.raises(RuntimeError, match="exploded"):
        embed_for_store([HashEncoder(), Failing(space="use")], PASSAGES, workers=2)


@pytest.mark.model
def test_batches_are_small_sorted_and_cover_every_text(encoders: list[Encoder]) -> None:
    from khabar.model import OnnxEncoder
    from khabar.model._onnx import BATCH_TOKENS

    e5 = next(e for e in encoders if isinstance(e, OnnxEncoder))
    texts = [*PASSAGES, "Russian warplanes struck near Homs. " * 100, "short", "حلب"]
    batches = e5.batches(texts, e5.passage_prompt)
    seen = [i for at, _ in batches for i in at]
    assert sorted(seen) == list(range(len(texts)))
    widths = []
    for at, rows in batches:
        assert rows == e5.token_ids([texts[i] for i in at], e5.passage_prompt)
        width = max(map(len, rows))
        assert len(at) == 1 or len(at) * width <= BATCH_TOKENS
        assert len(at) <= e5.batch_size
        widths.append(width)
    assert widths == sorted(widths, reverse=True) and len(batches) > 2
