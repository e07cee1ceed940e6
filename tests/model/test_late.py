"""Late chunking (khabar/model/_late.py): sentence vectors pooled from the passage's own
e5 run, found by their tokens, the passage vectors unchanged; and the store keeping the
way its sentence vectors were made."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from khabar.index import Article, Index

from khabar import ModelError, ModelMismatchError, Settings
from khabar.model import OnnxEncoder, embed_for_store, sentence_methods, space_info
from khabar.model._batch import late_vectors, sentence_texts
from khabar.store import LATE_SENTENCES, SpaceInfo
from tests.fakes import HashEncoder
from tests.model.test_batch import PASSAGES

LONG = "Rescue workers searched the rubble of the market for survivors all night. " * 60


@pytest.mark.model
def test_a_sentences_span_holds_its_own_tokens(e5: OnnxEncoder) -> None:
    text = ("Russian warplanes struck targets near Homs on Wednesday,  a monitor said.\n"
            "«الضربات أصابت سوقاً ومدرسة» قال المرصد السوري لحقوق الإنسان. "
            "Rescue workers searched the rubble for hours.")
    sents = sentence_texts(text)
    assert len(sents) == 3
    row = e5.token_ids([text], e5.passage_prompt)[0]
    spans = e5.sentence_spans(text, sents)
    for sent, span in zip(sents, spans, strict=True):
        assert span is not None
        alone = e5.tokenizer.encode(e5.passage_prompt + sent)
        prompt = len(e5.tokenizer.encode(e5.passage_prompt.rstrip())) - 1
        assert row[span[0]:span[1]] == alone[prompt:-1], sent
    # Cut off by the 512-token limit: not found, so embedded on its own.
    tail = "The strikes hit a market and a school near the river."
    assert e5.sentence_spans(LONG + tail, [LONG.split(". ")[0] + ".", tail])[1] is None


@pytest.mark.model
def test_late_vectors_come_from_the_passages_run(e5: OnnxEncoder) -> None:
    texts = [*PASSAGES, LONG + "The strikes hit a market and a school near the river."]
    plain = embed_for_store([e5], texts, workers=2)
    late = embed_for_store([e5], texts, workers=2, late={"e5"})
    # The passage vectors are the model's own: the store's fingerprint holds.
    assert np.abs(late.passages["e5"] - plain.passages["e5"]).max() < 1e-5
    assert np.abs(late.passages["e5"] - e5.embed_passages(texts)).max() < 1e-5
    serial, mats = late_vectors(e5, texts)
    assert np.abs(serial - late.passages["e5"]).max() < 1e-5
    for text, got, each, same in zip(texts, late.sentences["e5"], plain.sentences["e5"], mats,
                                     strict=True):
        assert got.shape == each.shape and np.abs(got - same).max() < 1e-5
        norms = np.linalg.norm(got, axis=1)
        assert np.allclose(norms, 1, atol=1e-5)
        if len(sentence_texts(text)) == 1:  # one sentence: the passage's vector, as before
            assert np.abs(got - each).max() < 1e-5
            continue
        # Other vectors than each sentence alone: they see the passage around them.
        assert (got * each).sum(1).min() < 0.999, text[:40]
        passage = late.passages["e5"][texts.index(text)]
        assert (got @ passage).mean() > (each @ passage).mean(), text[:40]
    # The sentence past the 512-token limit is embedded alone, exactly as before.
    assert np.abs(late.sentences["e5"][-1][-1] - plain.sentences["e5"][-1][-1]).max() < 1e-5


@pytest.mark.model
def test_a_sentence_vector_is_the_mean_of_its_tokens_last_states(e5: OnnxEncoder) -> None:
    text = PASSAGES[0]
    sents = sentence_texts(text)
    row = e5.token_ids([text], e5.passage_prompt)[0]
    session, hidden = e5._token_session()
    embeds, mask = e5._inputs([row])
    vec, states = session.run(["sentence_embedding", hidden],
                              {"inputs_embeds": embeds, "attention_mask": mask})
    whole = states[0].mean(0)  # e5's own pooling of the same run: the passage vector
    assert np.abs(whole / np.linalg.norm(whole) - vec[0]).max() < 1e-5
    _, mats = late_vectors(e5, [text])
    for (a, b), got in zip(e5.sentence_spans(text, sents), mats[0], strict=True):
        want = states[0][a:b].mean(0)
        assert np.abs(want / np.linalg.norm(want) - got).max() < 1e-5


class LateHash(HashEncoder):
    """A HashEncoder that can pool its sentences "late" (a wrapper's ``embed_late``):
    its late sentence vectors are its vectors of the sentence with a mark, so a test
    can tell them from sentence vectors embedded alone."""

    def __init__(self) -> None:
        super().__init__(space="e5")
        self.passages_seen: list[str] = []

    def embed_late(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        self.passages_seen += texts
        return (self.embed_passages(texts),
                [self.embed_passages([f"late: {s}" for s in sentence_texts(t)])
                 if sentence_texts(t) != [t] else self.embed_passages([t]) for t in texts])


def test_late_spaces_only_run_passages() -> None:
    late, use = LateHash(), HashEncoder(space="use")
    got = embed_for_store([late, use], PASSAGES, late={"e5"})
    assert sorted(late.passages_seen) == sorted(set(PASSAGES))
    first = sentence_texts(PASSAGES[0])
    assert np.allclose(got.sentences["e5"][0], late.embed_passages([f"late: {s}" for s in first]))
    assert np.allclose(got.sentences["use"][0], use.embed_passages(first))


ART = Article(title="t", paragraphs=[PASSAGES[0], PASSAGES[2]], url="https://example.com/a")


def _archive(home: Path, backend: str) -> str | None:
    """``KHABAR_STORE`` of a store on ``backend`` (Milvus Lite: in the test's folder)."""
    return f"milvus-lite://{home}/milvus/khabar.db" if backend == "milvus-lite" else None


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "milvus-lite"])


@BACKENDS
def test_a_store_keeps_the_way_its_sentence_vectors_were_made(tmp_path: Path,
                                                              backend: str) -> None:
    store = _archive(tmp_path, backend)
    late_settings = Settings(home=tmp_path, sentence_method="late", store=store)
    each_settings = Settings(home=tmp_path, sentence_method="each", store=store)
    ix = Index.open(late_settings, encoders=[LateHash(), HashEncoder(space="use")])
    assert ix.late_spaces == {"e5"}  # a new store takes the configured way
    ix.add_articles([ART])
    spaces = ix.store.spaces()
    assert spaces["e5"].fingerprint.endswith(LATE_SENTENCES) and spaces["e5"].sentences == "late"
    assert spaces["use"].sentences == "each"  # USE cannot pool: its own way always
    ix.close()
    # Configured "each" now: the store still pools, until `khabar reindex`.
    ix = Index.open(each_settings, encoders=[LateHash(), HashEncoder(space="use")])
    assert ix.late_spaces == {"e5"}
    ix.add_articles([Article(title="u", paragraphs=[PASSAGES[3]], url="https://example.com/b")])
    ix.close()
    # An encoder that cannot pool (the torch runtime) is refused, with what to do.
    with pytest.raises(ModelError, match="reindex"):
        Index.open(each_settings, encoders=[HashEncoder(), HashEncoder(space="use")])


@BACKENDS
def test_an_older_store_keeps_embedding_each_sentence(tmp_path: Path, backend: str) -> None:
    store = _archive(tmp_path, backend)
    ix = Index.open(Settings(home=tmp_path, sentence_method="each", store=store),
                    encoders=[LateHash(), HashEncoder(space="use")])
    ix.add_articles([ART])
    assert ix.store.spaces()["e5"].sentences == "each" and not ix.late_spaces
    ix.close()
    late = LateHash()
    ix = Index.open(Settings(home=tmp_path, sentence_method="late", store=store),
                    encoders=[late, HashEncoder(space="use")])
    assert not ix.late_spaces
    ix.add_articles([Article(title="u", paragraphs=[PASSAGES[3]], url="https://example.com/b")])
    assert late.passages_seen == []  # embedded each sentence, as the store's others
    # Binding the other way by hand is refused: a store never mixes the two.
    with pytest.raises(ModelMismatchError, match="reindex"):
        ix.store.bind_spaces([space_info(late, "late")])
    ix.close()


def test_methods_for_an_empty_store_follow_the_settings() -> None:
    encs = [LateHash(), HashEncoder(space="use")]
    assert sentence_methods(encs, {}, "late") == {"e5": "late", "use": "each"}
    assert sentence_methods(encs, {}, "each") == {"e5": "each", "use": "each"}
    other = {"e5": SpaceInfo("e5", "another-model:64" + LATE_SENTENCES, 64)}
    # Another model's store: not a way to keep (bind_spaces refuses it when it holds
    # passages, and an empty one takes the configured way).
    assert sentence_methods(encs, other, "each")["e5"] == "each"
    mine = {"e5": SpaceInfo("e5", "hash:64" + LATE_SENTENCES, 64)}
    assert sentence_methods(encs, mine, "each")["e5"] == "late"


@pytest.mark.model
@pytest.mark.parametrize("layers", [3, 6])
def test_the_tail_layers_of_a_whole_row_give_its_own_vector(e5: OnnxEncoder,
                                                            layers: int) -> None:
    # Pooling.tail cuts the graph before its last layers: the cut's states of a
    # whole row run through those layers again must give the row's vector.
    from khabar.model._late import Pooling

    texts = [PASSAGES[0], PASSAGES[2]]
    rows = e5.token_ids(texts, e5.passage_prompt)
    prompt_end = len(e5.tokenizer.encode(e5.passage_prompt.rstrip())) - 1
    spans = [[(prompt_end, len(row) - 1)] for row in rows]
    vecs, got = e5.run_late(rows, spans, Pooling(tail=layers))
    assert np.abs(vecs - e5.embed_passages(texts)).max() < 1e-5
    for vec, (one,) in zip(vecs, got, strict=True):
        assert one is not None and np.abs(one - vec).max() < 1e-4
