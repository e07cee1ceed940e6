"""The lexical bridge's vocabulary kept up to date by the store's change log: new
words appended, deleted passages' words dropped at a compaction, files saved and
mapped back with their mark; no rebuild for a write, in this process or another."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from khabar.retrieval import _bridge
from khabar.retrieval._bridge import LexicalBridge

from khabar.store import Store
from khabar.text import content_words, lexical_tokens
from tests.fakes import HashEncoder
from tests.store._data import new_article, open_store

REPO = Path(__file__).resolve().parents[2]

EN = ["The army struck Aleppo on Tuesday, officials said.",
      "Konashenkov said the strikes hit targets near the harbour.",
      "Lawmakers voted on the budget after a long debate."]
AR = ["قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة في حلب.",
      "وقال كوناشينكوف إن الطيران الروسي قام بأولى ضرباته.",
      "صوت المشرعون على الميزانية بعد نقاش طويل."]


# The hash encoder knows no language: these words are told to be the same, as USE's
# vectors say Aleppo ~ حلب.
SAME = {"Aleppo": "حلب", "Konashenkov": "كوناشينكوف", "strikes": "ضرباته"}


class CountingEncoder(HashEncoder):
    """The hash encoder as the second encoder (a word and its ``SAME`` one get one
    vector), counting the words it embeds."""

    def __init__(self) -> None:
        super().__init__(space="use", dim=256, name="hash-use")
        self.embedded: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += list(texts)
        return self.embed_queries(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return HashEncoder.embed_passages(self, [SAME.get(t, t) for t in texts])


def _bridge_on(store: Store, tmp: Path, encoder: CountingEncoder | None = None,
               folder: Path | None = None) -> LexicalBridge:
    return LexicalBridge(store, encoder or CountingEncoder(), tmp / "cache", folder=folder)


def _vocab(bridge: LexicalBridge) -> dict[str, dict[str, np.ndarray]]:
    bridge.refresh()
    out = {}
    for lang, v in bridge._vocab.items():
        matrix = np.concatenate(v.matrices()) if v.matrices() else np.zeros((0, 256))
        out[lang] = {w: matrix[i] for i, w in enumerate(v.words)}
    return out


def _same_vocab(a: LexicalBridge, b: LexicalBridge) -> None:
    va, vb = _vocab(a), _vocab(b)
    assert {lang: set(w) for lang, w in va.items() if w} == \
        {lang: set(w) for lang, w in vb.items() if w}
    for lang, words in va.items():
        for w, v in words.items():
            assert np.allclose(v, vb[lang][w])


def _put(store: Store, title: str, body: list[str], lang: str) -> int:
    return store.put(new_article(title, body, url=f"https://x.test/{title}", lang=lang),
                     dup_threshold=None).article_id


def test_new_words_are_appended_and_match_a_fresh_vocabulary(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    _put(store, "a", EN[:1], "en")
    _put(store, "b", AR[:1], "ar")
    encoder = CountingEncoder()
    bridge = _bridge_on(store, tmp_path, encoder)
    one = pytest.approx(1.0, abs=1e-3)
    assert ("Aleppo", "حلب", one) in bridge.expand("Who struck Aleppo?", "ar")
    assert bridge.rebuilds == 1
    embedded = len(encoder.embedded)
    _put(store, "c", EN[1:], "en")
    _put(store, "d", AR[1:], "ar")
    groups = bridge.query_groups("Did Konashenkov speak of the harbour?", "ar")
    # A name weighs double.
    assert groups[0] == (pytest.approx(2.0, abs=1e-3), lexical_tokens("كوناشينكوف"))
    assert bridge.rebuilds == 1
    new = {w for t in EN[1:] + AR[1:] for w in content_words(t)} - \
        {w for t in EN[:1] + AR[:1] for w in content_words(t)}
    assert set(encoder.embedded[embedded:]) == new  # only the new words embedded
    _same_vocab(bridge, _bridge_on(store, tmp_path, folder=tmp_path / "elsewhere"))


def test_deleted_passages_words_stay_until_a_compaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bridge, "STALE_LIMIT", 0.4)
    store = open_store(tmp_path / "store")
    ids = [_put(store, f"en{i}", [t], "en") for i, t in enumerate(EN)]
    ids += [_put(store, f"ar{i}", [t], "ar") for i, t in enumerate(AR)]
    encoder = CountingEncoder()
    bridge = _bridge_on(store, tmp_path, encoder)
    bridge.refresh()
    store.delete_articles(ids[:2])  # 2 of 6 passages: under the limit
    assert "Konashenkov" in _vocab(bridge)["en"] and bridge.compactions == 0
    embedded = len(encoder.embedded)
    store.delete_articles(ids[3:4])  # 3 of 6: a compaction, from SQLite's words
    assert "حلب" not in {w for _, w, _ in bridge.expand("Aleppo?", "ar")}  # gone with its passage
    assert bridge.compactions == 1 and bridge.rebuilds == 1
    assert len(encoder.embedded) == embedded  # every vector reused
    assert "Konashenkov" not in _vocab(bridge)["en"]
    _same_vocab(bridge, _bridge_on(store, tmp_path, folder=tmp_path / "elsewhere"))


_WRITER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from khabar.store import Store
from tests.store._data import new_article
store = Store(Path({path!r}))
store.put(new_article("Late", ["Konashenkov spoke about Damascus late at night."],
                      url="https://x.test/late"))
store.close()
"""


def test_another_process_s_write_and_the_files(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _put(store, "a", EN[:2], "en")
    _put(store, "b", AR, "ar")
    bridge = _bridge_on(store, tmp_path)
    bridge.refresh()
    bridge.wait_saved()  # a rebuild is saved at once, in the background
    assert bridge.saved == bridge.mark

    subprocess.run([sys.executable, "-c", _WRITER.format(repo=str(REPO), path=str(tmp_path))],
                   check=True, timeout=120)
    found = bridge.expand("Damascus?", "en")
    assert ("Damascus", "Damascus", pytest.approx(1.0, abs=1e-3)) in found
    assert bridge.rebuilds == 0 + 1  # the first build only

    # A new reader maps the saved vocabulary and applies what came since.
    encoder = CountingEncoder()
    reader = Store(tmp_path)
    again = _bridge_on(reader, tmp_path, encoder)
    again.refresh()
    assert again.rebuilds == 0 and isinstance(again._vocab["en"].base, np.memmap)
    assert set(encoder.embedded) <= set(content_words("Konashenkov spoke about Damascus "
                                                      "late at night."))
    _same_vocab(again, bridge)
    reader.close()  # saves what the files lack
    third = _bridge_on(Store(tmp_path), tmp_path, CountingEncoder())
    third.refresh()
    assert third.rebuilds == 0 and third.mark == store.change_mark()
    _same_vocab(third, bridge)


def test_a_large_vocabulary_is_matched_through_its_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ANN_MIN words the graph answers as the exact match does (a vocabulary this
    small is searched whole by HNSW), follows appends, and is saved and mapped back."""
    store = open_store(tmp_path / "store")
    _put(store, "a", EN[:2], "en")
    _put(store, "b", AR[:2], "ar")
    questions = ["Who struck Aleppo?", "Did Konashenkov speak of the strikes?",
                 "Lawmakers voted on the budget", "قصف حلب", "صوت المشرعون"]

    def matches(bridge: LexicalBridge) -> list[set[tuple[str, str, float]]]:
        # A set: words of equal cosine (the hash encoder has many) come in either order.
        return [{(t, w, round(c, 4)) for t, w, c in bridge.expand(q, lang)}
                for q in questions for lang in ("en", "ar")]

    exact = matches(_bridge_on(store, tmp_path, folder=tmp_path / "exact"))
    monkeypatch.setattr(_bridge, "ANN_MIN", 2)
    bridge = _bridge_on(store, tmp_path)
    assert matches(bridge) == exact and any(exact)  # exact while the graph is built
    bridge.wait_graphs()
    assert matches(bridge) == exact
    assert all(v.ann is not None and v.ann.ntotal == len(v.words)
               for v in bridge._vocab.values())

    _put(store, "c", EN[2:], "en")  # appended to the graph, not rebuilt
    _put(store, "d", AR[2:], "ar")
    graphs = {lang: v.ann for lang, v in bridge._vocab.items()}
    monkeypatch.setattr(_bridge, "ANN_MIN", 10**9)
    exact = matches(_bridge_on(store, tmp_path, folder=tmp_path / "exact2"))
    monkeypatch.setattr(_bridge, "ANN_MIN", 2)
    assert matches(bridge) == exact
    assert {lang: v.ann for lang, v in bridge._vocab.items()} == graphs
    assert all(v.ann.ntotal == len(v.words) for v in bridge._vocab.values())

    store.close()  # saves the vocabulary with its graphs
    again = _bridge_on(Store(tmp_path / "store"), tmp_path)
    again.refresh()
    assert again.rebuilds == 0
    assert all(v.ann is not None and v.ann_saved for v in again._vocab.values())
    assert matches(again) == exact
    # The graph holds the rows (float16): no .npy of the same numbers beside it.
    lexical = tmp_path / "store" / "lexical"
    assert sorted(lexical.glob("bridge-*.hnsw")) and not sorted(lexical.glob("bridge-*.npy"))
    assert all(isinstance(v.base, _bridge._GraphRows) for v in again._vocab.values())
    for lang, v in again._vocab.items():  # the very rows the writer held
        held = bridge._vocab[lang]
        assert v.words == held.words
        assert np.array_equal(np.stack([v.row_at(i) for i in range(len(v.words))]),
                              np.stack([held.row_at(i) for i in range(len(v.words))]))


def test_word_vectors_are_float16_and_match_as_float32_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path / "store")
    _put(store, "a", EN, "en")
    _put(store, "b", AR, "ar")
    questions = ["Who struck Aleppo?", "Lawmakers voted on the budget", "قصف حلب"]

    def matches(bridge: LexicalBridge) -> list[list[tuple[str, str, float]]]:
        return [bridge.expand(q, lang) for q in questions for lang in ("en", "ar")]

    monkeypatch.setattr(_bridge, "WORD_DTYPE", np.float32)  # as before: float32 files
    old = _bridge_on(store, tmp_path, folder=tmp_path / "old")
    before = matches(old)
    old.wait_saved()
    old.save(force=True)
    assert all(np.load(f, mmap_mode="r").dtype == np.float32
               for f in (tmp_path / "old").glob("*.npy"))
    monkeypatch.undo()
    half = _bridge_on(store, tmp_path)
    now = matches(half)
    assert any(before)
    for a, b in zip(before, now, strict=True):  # the same words, cosines within 1e-3
        assert [(t, w) for t, w, _ in a] == [(t, w) for t, w, _ in b]
        assert np.allclose([c for *_, c in a], [c for *_, c in b], atol=1e-3, rtol=0)
    half.wait_saved()
    half.save(force=True)
    files = sorted((tmp_path / "store" / "lexical").glob("*.npy"))
    assert files and all(np.load(f, mmap_mode="r").dtype == np.float16 for f in files)
    # Read back, float16 files or float32 ones from before: what a built one matches.
    for folder in (None, tmp_path / "old"):
        again = _bridge_on(Store(tmp_path / "store"), tmp_path, folder=folder)
        again.refresh()
        assert again.rebuilds == 0
        assert all(v.base.dtype == np.float16 for v in again._vocab.values())
        assert matches(again) == now
    # Float32 files are written again in float16 at the next save.
    assert sorted((tmp_path / "old").glob("*.npy"))
    again = _bridge_on(Store(tmp_path / "store"), tmp_path, folder=tmp_path / "old")
    again.refresh()
    again.save(force=True)
    assert all(np.load(f, mmap_mode="r").dtype == np.float16
               for f in (tmp_path / "old").glob("*.npy"))
