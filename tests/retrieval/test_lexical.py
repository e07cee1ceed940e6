"""BM25 kept up to date by the store's change log: the same scores as bm25s, the
same results brought up to date as built afresh, other processes' writes applied as
a delta, files saved and loaded with their mark."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from pathlib import Path

import bm25s
import numpy as np
import pytest
from khabar.retrieval import _lexical
from khabar.retrieval._lexical import LexicalIndex

from khabar.store import Store
from khabar.text import lexical_tokens
from tests.store._data import new_article, open_store

REPO = Path(__file__).resolve().parents[2]

_WORDS = {
    "en": """army strike city officials minister said aleppo harbour election vote court
    ruling police protest market prices oil gas ship port storm flood rain school teacher
    hospital doctor vaccine trial judge border troops talks peace deal bank rates inflation
    budget tax reform river bridge train crash fire forest league match coach goal players
    konashenkov reuters moscow washington damascus 2015 2012 3.5""",
    "ar": """الجيش ضربة المدينة مسؤول الوزير قال حلب الميناء انتخابات المحكمة الشرطة احتجاج
    السوق الأسعار النفط الغاز السفينة عاصفة فيضان المدرسة المستشفى الطبيب لقاح القاضي
    الحدود القوات محادثات السلام البنك التضخم الميزانية الضرائب النهر الجسر القطار الحريق
    الغابة المباراة المدرب اللاعبين موسكو دمشق ٢٠١٥""",
}
_EN, _AR = _WORDS["en"].split(), _WORDS["ar"].split()


def _text(rng: random.Random, lang: str) -> str:
    words = _EN if lang == "en" else _AR
    return " ".join(rng.choices(words, k=rng.randint(4, 40))) + "."


def _put(store: Store, rng: random.Random, n: int, lang: str, start: int) -> list[int]:
    """``n`` articles of 1 to 4 passages; their article ids."""
    out = []
    for i in range(start, start + n):
        body = [_text(rng, lang) for _ in range(rng.randint(1, 4))]
        out.append(store.put(new_article(f"A{i}", body, url=f"https://x.test/{lang}/{i}",
                                         lang=lang), dup_threshold=None).article_id)
    return out


def _queries(rng: random.Random, lang: str, n: int = 25) -> list[str]:
    words = _EN if lang == "en" else _AR
    return [" ".join(rng.sample(words, rng.randint(1, 6))) for _ in range(n)] + [
        "nothing matches zzzqx", words[0]]


def _reference(store: Store, lang: str) -> tuple[bm25s.BM25 | None, np.ndarray]:
    """bm25s over the store's passages of ``lang`` as khabar indexed them before:
    in id order, a passage without tokens as [""]."""
    rows = [(pid, lexical_tokens(text)) for pid, lg, text in store.changes_since(None).added
            if lg == lang]
    if not any(toks for _, toks in rows):
        return None, np.zeros(0, np.int64)
    model = bm25s.BM25()
    model.index([toks or [""] for _, toks in rows], show_progress=False)
    return model, np.asarray([pid for pid, _ in rows], np.int64)


def _ref_groups(model: bm25s.BM25 | None, ids: np.ndarray,
                groups: list[tuple[float, list[str]]], k: int) -> list[tuple[int, float]]:
    """What the bm25s-based search_groups returned (ties by id)."""
    if model is None:
        return []
    scores = np.zeros(len(ids), np.float64)
    for w, toks in groups:
        per = [np.asarray(model.get_scores([t]), np.float64) for t in dict.fromkeys(toks)]
        scores += w * np.max(per, axis=0)
    order = np.lexsort((ids, -scores))
    return [(int(ids[i]), float(scores[i])) for i in order[:k] if scores[i] > 0]


def _same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [pid for pid, _ in got] == [pid for pid, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-4)


def _check_parity(store: Store, index: LexicalIndex, rng: random.Random) -> None:
    for lang in ("en", "ar"):
        model, ids = _reference(store, lang)
        for q in _queries(rng, lang):
            toks = list(dict.fromkeys(lexical_tokens(q)))
            want = _ref_groups(model, ids, [(1.0, [t]) for t in toks], 10)
            _same(index.search(lang, q, 10), want)
        words = [lexical_tokens(w) for w in (_EN if lang == "en" else _AR)]
        words = [w[0] for w in words if w]
        for _ in range(10):  # alternatives counted once, weighted
            groups = [(rng.uniform(0.5, 2.0), rng.sample(words, rng.randint(1, 3)))
                      for _ in range(rng.randint(1, 4))]
            _same(index.search_groups(lang, groups, 10),
                  _ref_groups(model, ids, groups, 10))


def test_scores_and_ranks_are_those_of_bm25s(tmp_path: Path) -> None:
    rng = random.Random(1)
    store = open_store(tmp_path / "store")
    _put(store, rng, 40, "en", 0)
    _put(store, rng, 30, "ar", 0)
    # A passage with no tokens at all (stopwords and one letter): length 1, as bm25s.
    store.put(new_article("Empty", ["The of and a, it is."], url="https://x.test/empty"))
    index = LexicalIndex(store)
    _check_parity(store, index, rng)
    assert index.search("en", "army", 1000)  # k beyond the matches: every match
    assert index.search("fr", "army", 10) == [] and index.search("en", "", 10) == []
    allowed = {pid for pid, _ in index.search("en", "army", 1000)[::2]}
    got = index.search("en", "army city", 10, allowed)
    assert got and {pid for pid, _ in got} <= allowed
    model, ids = _reference(store, "en")
    want = [(pid, s) for pid, s in _ref_groups(model, ids, [(1.0, ["armi"]), (1.0, ["citi"])],
                                               1000) if pid in allowed][:10]
    _same(got, want)


def test_brought_up_to_date_it_equals_one_built_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lexical, "TAIL_MIN", 40)  # merges and compactions happen here
    rng = random.Random(2)
    store = open_store(tmp_path / "store")
    index = LexicalIndex(store, folder=tmp_path / "files")
    en = _put(store, rng, 10, "en", 0)
    index.search("en", "army", 5)
    compactions = 0
    real_compact = _lexical._Bm25.compact

    def counting(self: _lexical._Bm25) -> None:
        nonlocal compactions
        compactions += 1
        real_compact(self)

    monkeypatch.setattr(_lexical._Bm25, "compact", counting)
    for step in range(12):
        en += _put(store, rng, rng.randint(1, 6), "en", 100 * (step + 1))
        _put(store, rng, rng.randint(0, 3), "ar", 100 * (step + 1))
        if step % 3 == 2:  # some deleted, some replaced by a new version
            gone = rng.sample(en, len(en) // 3)
            store.delete_articles(gone)
            en = [a for a in en if a not in gone]
            _put(store, rng, 1, "en", 100 * step)  # the same url: replaced
        index.search("en", "army", 5)  # brought up to date after each step
        # What search weighs languages by, from the index: the store's own counts.
        assert list(index.counts().items()) == list(store.language_counts().items())
    assert index.rebuilds == 1 and compactions >= 2
    fresh = LexicalIndex(store, folder=tmp_path / "elsewhere")
    for lang in ("en", "ar"):
        for q in _queries(rng, lang):
            _same(index.search(lang, q, 20), fresh.search(lang, q, 20))
    _check_parity(store, index, rng)


_WRITER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from khabar.store import Store
from tests.store._data import new_article
store = Store(Path({path!r}))
store.put(new_article("Late", ["A late article from the other process about the harbour "
                               "of Konashenkov."], url="https://x.test/late"))
store.delete_articles(store.article_ids(url="https://x.test/en/0"))
store.close()
"""


def test_another_process_s_write_is_applied_without_a_rebuild(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = open_store(tmp_path)
    _put(store, rng, 20, "en", 0)
    index = LexicalIndex(store)
    assert index.search("en", "army", 5) and index.rebuilds == 1
    first = {p.id for p in store.article_passages(store.article_ids(url="https://x.test/en/0"))}
    assert first & {pid for pid, _ in index.search("en", " ".join(_EN), 1000)}

    subprocess.run([sys.executable, "-c", _WRITER.format(repo=str(REPO), path=str(tmp_path))],
                   check=True, timeout=120)

    top = index.search("en", "konashenkov harbour", 5)
    late = store.article_passages(store.article_ids(url="https://x.test/late"))[0].id
    assert top[0][0] == late and index.rebuilds == 1
    assert not first & {pid for pid, _ in index.search("en", " ".join(_EN), 1000)}
    assert index.mark == store.change_mark()


def test_files_are_saved_with_their_mark_and_an_open_applies_the_rest(tmp_path: Path) -> None:
    rng = random.Random(4)
    store = open_store(tmp_path)
    _put(store, rng, 15, "en", 0)
    _put(store, rng, 10, "ar", 0)
    index = LexicalIndex(store)
    index.search("en", "army", 5)
    index.wait_saved()  # a rebuild is saved at once, in the background
    assert (tmp_path / "lexical" / "bm25.json").exists() and index.saved == index.mark

    # Written since the files: another open loads them and applies the delta only.
    _put(store, rng, 3, "en", 100)
    store.delete_articles(store.article_ids(url="https://x.test/ar/0"))
    again = LexicalIndex(Store(tmp_path))
    queries = _queries(rng, "en") + _queries(rng, "ar")
    for q in queries:
        lang = "ar" if any("\u0600" <= c <= "\u06ff" for c in q) else "en"
        _same(again.search(lang, q, 10), index.search(lang, q, 10))
    assert again.rebuilds == 0 and index.rebuilds == 1

    # Closing the store saves what is behind; files of another store are not used.
    reader = Store(tmp_path)
    kept = LexicalIndex(reader)
    kept.search("en", "army", 1)
    _put(store, rng, 2, "en", 200)
    kept.search("en", "army", 1)
    reader.close()
    assert kept.saved == store.change_mark()
    names = sorted(f.name for f in (tmp_path / "lexical").glob("bm25-*"))
    assert len(names) == 2  # one file per language, the older ones removed
    other = open_store(tmp_path / "other")
    _put(other, rng, 2, "en", 0)
    stranger = LexicalIndex(other, folder=tmp_path / "lexical")
    assert stranger.search("en", " ".join(_EN), 100)
    assert stranger.rebuilds == 1 and {pid for pid, _ in stranger.search(
        "en", " ".join(_EN), 100)} == {pid for pid, _, _ in other.changes_since(None).added}


def test_unreadable_files_mean_a_build_from_sqlite(tmp_path: Path) -> None:
    rng = random.Random(5)
    store = open_store(tmp_path)
    _put(store, rng, 5, "en", 0)
    index = LexicalIndex(store)
    index.search("en", "army", 5)
    index.wait_saved()
    for f in (tmp_path / "lexical").glob("bm25-*.npz"):
        f.write_bytes(b"not an npz")
    again = LexicalIndex(store)
    assert again.search("en", "army", 5) == index.search("en", "army", 5)
    assert again.rebuilds == 1


def test_searches_in_threads_while_articles_come_in(tmp_path: Path) -> None:
    rng = random.Random(6)
    store = open_store(tmp_path)
    _put(store, rng, 10, "en", 0)
    index = LexicalIndex(store)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                index.search("en", "army city harbour", 10)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    _put(store, random.Random(7), 30, "en", 100)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    fresh = LexicalIndex(store, folder=tmp_path / "elsewhere")
    _same(index.search("en", "army city harbour", 20), fresh.search("en", "army city harbour", 20))
