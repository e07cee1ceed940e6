"""The writer's one cached analysis pass gives byte for byte what the two uncached ones
gave (``tests/text/_old_analysis.py``): on the seed, on real Arabic and English texts
of ../shared/data, on junk, cold and warm, and from another thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khabar.store._schema import passage_fields, tokens_text, words_text
from khabar.text import _analysis, content_words, lexical_tokens
from tests.text import _old_analysis as old
from tests.text.test_analysis import mixed_text

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO.parent / "shared" / "data" / "benchmarks"


def seed_texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    assert texts
    return texts + [q for t in texts for q in t.split("\n\n") if q.strip()]


def shared_texts() -> list[str]:
    """Every corpus text of the ready benchmarks (distinct), or skip without the data."""
    if not BENCHMARKS.is_dir():
        pytest.skip("needs ../shared/data")
    seen: dict[str, str] = {}
    for path in sorted(BENCHMARKS.glob("*/corpus.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            seen.setdefault(row["text"], row["lang"])
    return list(seen)


def clear() -> None:
    _analysis._token_form.cache_clear()
    _analysis._carries_meaning.cache_clear()


def expected(text: str) -> tuple[str, str]:
    return old.tokens_text(text), old.words_text(text)


def test_seed_and_shared_texts_analyse_as_before() -> None:
    texts = seed_texts() + shared_texts()[::3]  # ~1,800 texts, Arabic and English
    assert sum(_analysis.detect_lang(t) == "ar" for t in texts) > 500
    assert sum(_analysis.detect_lang(t) == "en" for t in texts) > 500
    want = [expected(t) for t in texts]
    clear()
    cold = [passage_fields(t) for t in texts]
    warm = [passage_fields(t) for t in reversed(texts)][::-1]
    assert cold == want
    assert warm == want
    assert [(tokens_text(t), words_text(t)) for t in texts] == want
    assert sum(bool(w) for w, _ in want) > 0.95 * len(want)  # something was compared


@settings(max_examples=400)
@given(st.one_of(mixed_text, st.text(max_size=80)))
def test_junk_analyses_as_before(text: str) -> None:
    assert lexical_tokens(text) == old.lexical_tokens(text)
    assert content_words(text) == old.content_words(text)
    assert passage_fields(text) == expected(text)


def test_a_full_cache_evicts_and_still_agrees() -> None:
    texts = seed_texts() + shared_texts()[:300]
    # Shrink the cache so this run evicts (the real one holds 65k words).
    small = _analysis._token_form.__wrapped__
    words = _analysis._carries_meaning.__wrapped__
    saved = (_analysis._token_form, _analysis._carries_meaning)
    try:
        _analysis._token_form = _analysis.lru_cache(maxsize=64)(small)
        _analysis._carries_meaning = _analysis.lru_cache(maxsize=64)(words)
        got = [passage_fields(t) for t in texts]
        assert _analysis._token_form.cache_info().currsize == 64
    finally:
        _analysis._token_form, _analysis._carries_meaning = saved
    assert got == [expected(t) for t in texts]


def test_another_thread_analyses_as_before() -> None:
    # The cache is shared between threads, the stemmers are each thread's own.
    texts = seed_texts() + shared_texts()[1::40]
    clear()
    got: list[tuple[str, str]] = []
    worker = threading.Thread(target=lambda: got.extend(passage_fields(t) for t in texts))
    worker.start()
    mine = [passage_fields(t) for t in texts]
    worker.join()
    assert got == mine == [expected(t) for t in texts]
