import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from khabar.index._chunk import MAX_PARAGRAPH_CHARS, chunk_paragraphs, estimate_tokens
from khabar.index._parse import parse_json, parse_text

from khabar.text._analysis import split_sentences

FIXTURES = Path(__file__).parent / "fixtures"
SEED = Path(__file__).parents[2] / "seeds" / "000_de49ba5b2d1ace7e.txt"


def _words(texts: list[str]) -> list[str]:
    return " ".join(texts).split()


def _check(paragraphs: list[str], max_tokens: int, count=estimate_tokens, **kw) -> list:
    chunks = chunk_paragraphs(paragraphs, max_tokens=max_tokens, count_tokens=count, **kw)
    assert _words([c.text for c in chunks]) == _words(paragraphs)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text and chunk.text
        assert count(chunk.text) <= max_tokens or len(split_sentences(chunk.text)) == 1
    return chunks


def test_one_chunk_per_paragraph() -> None:
    paragraphs = [
        "Schools across the north were closed on Thursday as a winter storm brought heavy snow.",
        "Rail operators cancelled dozens of services and urged passengers not to travel at all.",
    ]
    chunks = _check(paragraphs, 200)
    assert [c.text for c in chunks] == paragraphs
    assert [c.lang for c in chunks] == ["en", "en"]


def test_short_paragraphs_merge_forward_and_at_the_end_backward() -> None:
    long_a = "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية اليوم الأربعاء ضد أهداف في حلب."
    long_b = "وأضاف أن الجيش الأمريكي سيواصل تسيير طلعات جوية على الرغم من بدء العمليات الروسية."
    chunks = _check(["عاجل", long_a, long_b, "انتهى"], 200)
    assert [c.text for c in chunks] == [f"عاجل\n\n{long_a}", f"{long_b}\n\nانتهى"]
    assert all(c.lang == "ar" for c in chunks)


def test_short_paragraph_not_merged_past_max_tokens() -> None:
    big = " ".join(["word"] * 30)  # 39 estimated tokens
    chunks = _check(["Tiny.", big], 40)
    assert [c.text for c in chunks] == ["Tiny.", big]


def test_long_paragraph_splits_at_sentences() -> None:
    sentence = "The storm brought heavy snow and strong winds to the north on Thursday."
    paragraph = " ".join([sentence] * 12)
    chunks = _check([paragraph], 60)
    assert len(chunks) > 1
    assert all(c.text.endswith(".") for c in chunks)
    assert all(estimate_tokens(c.text) <= 60 for c in chunks)


def test_run_on_text_without_punctuation_is_split_between_words() -> None:
    paragraph = " ".join(["ضربات", "جوية", "روسية", "في", "حمص"] * 40)
    chunks = _check([paragraph], 50)
    assert len(chunks) >= 4
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)


def test_custom_token_counter() -> None:
    chunks = _check(["a b c d e f g h", "i j"], 4, count=lambda t: len(t.split()), min_chars=0)
    assert [c.text for c in chunks] == ["a b c d", "e f g h", "i j"]


def test_empty() -> None:
    assert chunk_paragraphs([]) == []
    assert chunk_paragraphs(["", "  "]) == []


def test_estimate_tokens_weights_arabic_more() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 4  # 3 x 1.3
    assert estimate_tokens("واحد اثنان ثلاثة") == 5  # 3 x 1.6


def test_seed_and_ntrex_chunks() -> None:
    article = parse_text(SEED.read_text(encoding="utf-8"))
    chunks = _check(article.paragraphs, 200)
    # Every seed paragraph is over min_chars and under max_tokens: one chunk each.
    assert [c.text for c in chunks] == article.paragraphs
    assert all(c.lang == "ar" for c in chunks)
    articles, errors = parse_json((FIXTURES / "ntrex_sample.jsonl").read_text(encoding="utf-8"))
    assert not errors
    for art in articles:
        for max_tokens in (40, 200):
            chunks = _check(art.paragraphs, max_tokens)
            assert {c.lang for c in chunks} == {art.lang}


def test_ntrex_record_titles_are_not_chunked() -> None:
    records = [json.loads(line) for line in (FIXTURES / "ntrex_sample.jsonl").open()]
    articles, _ = parse_json((FIXTURES / "ntrex_sample.jsonl").read_text(encoding="utf-8"))
    for record, article in zip(records, articles, strict=True):
        text = " ".join(c.text for c in chunk_paragraphs(article.paragraphs))
        assert text.split() == record["text"].split()


_AR = ["قال", "مسؤول", "أمريكي", "الولايات", "المتحدة", "ضربة", "جوية", "حلب", "٢٠١٥", "“الدولة”"]
_EN = ["The", "officials", "said", "strikes", "U.S.", "Mr.", "3.5", "Russia's", "(Reuters)"]
_END = ["", "", "", ".", "!", "?", "؟", "،", ",", ".”", "…"]
_WORD = st.tuples(st.sampled_from(_AR + _EN), st.sampled_from(_END)).map("".join)
_PARAGRAPH = st.lists(_WORD, min_size=0, max_size=120).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_PARAGRAPH, max_size=8),
    st.integers(min_value=8, max_value=120),
    st.integers(min_value=0, max_value=200),
)
def test_chunk_properties(paragraphs: list[str], max_tokens: int, min_chars: int) -> None:
    _check(paragraphs, max_tokens, min_chars=min_chars)


@settings(max_examples=50, deadline=None)
@given(st.lists(_PARAGRAPH, max_size=5), st.integers(min_value=3, max_value=40))
def test_chunk_properties_with_word_counter(paragraphs: list[str], max_tokens: int) -> None:
    _check(paragraphs, max_tokens, count=lambda t: len(t.split()))


def test_a_huge_paragraph_is_cut_before_it_is_counted_or_split() -> None:
    # The tokenizer and the splitter are only ever handed pieces up to the cap, so a
    # megabyte "paragraph" costs what a megabyte of ordinary ones does; no word is lost.
    seen: list[int] = []

    def counted(text: str) -> int:
        seen.append(len(text))
        return estimate_tokens(text)

    huge = "The minister said the talks would resume. " * 25_000
    chunks = _check([huge, "A short closing paragraph."], 300, count=counted)
    assert max(seen) <= MAX_PARAGRAPH_CHARS
    assert len(chunks) > len(huge) // MAX_PARAGRAPH_CHARS


def test_a_huge_word_is_cut_at_the_cap() -> None:
    chunks = chunk_paragraphs(["x" * (3 * MAX_PARAGRAPH_CHARS)], max_tokens=300)
    assert [len(c.text) for c in chunks] == [MAX_PARAGRAPH_CHARS] * 3
