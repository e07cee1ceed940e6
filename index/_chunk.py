"""Paragraphs to passages: one per paragraph, long ones split, short ones merged."""

from __future__ import annotations

import math
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from khabar.store._types import Chunk
from khabar.text._analysis import _ARABIC_SCRIPT_RE, detect_lang, split_sentences

# Run-on text without sentence punctuation is cut at clause marks, then at spaces;
# never inside a word.
_FALLBACK_SEPARATORS = ["\n", "؛ ", "; ", "، ", ", ", ": ", " – ", " - ", " "]
_PARAGRAPH_JOIN = "\n\n"
# Longer "paragraphs" (a page without line breaks, a wall of junk) are cut at a space
# first, so the tokenizer and the sentence splitter never see more than this at once.
# News paragraphs run to a few thousand characters.
MAX_PARAGRAPH_CHARS = 20_000


def estimate_tokens(text: str) -> int:
    """A fast token estimate for e5's XLM-R tokenizer, which splits Arabic more."""
    total = 0.0
    for word in text.split():
        total += 1.6 if _ARABIC_SCRIPT_RE.search(word) else 1.3
    return math.ceil(total)


def chunk_paragraphs(
    paragraphs: list[str],
    *,
    max_tokens: int = 200,
    min_chars: int = 80,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Chunks of at most ``max_tokens`` each (a single overlong word excepted).

    One chunk per paragraph; a longer paragraph is split at sentence boundaries;
    a paragraph or piece under ``min_chars`` joins the next one (the previous one
    at the end) when the result still fits.
    """
    count = count_tokens or estimate_tokens
    units: list[str] = []
    for paragraph in (p for whole in paragraphs for p in _capped(whole)):
        if count(paragraph) <= max_tokens:
            units.append(paragraph)
        else:
            units.extend(_split_long(paragraph, max_tokens, count))
    merged = _merge_short(units, max_tokens, min_chars, count)
    return [Chunk(position=i, text=text, lang=detect_lang(text)) for i, text in enumerate(merged)]


def _capped(paragraph: str) -> list[str]:
    """The paragraph stripped, in pieces of at most MAX_PARAGRAPH_CHARS cut at the last
    space before the cap (at the cap itself in a word that long); [] if blank."""
    paragraph = paragraph.strip()
    pieces: list[str] = []
    while len(paragraph) > MAX_PARAGRAPH_CHARS:
        cut = paragraph.rfind(" ", 0, MAX_PARAGRAPH_CHARS + 1)
        cut = cut if cut > 0 else MAX_PARAGRAPH_CHARS
        pieces.append(paragraph[:cut].rstrip())
        paragraph = paragraph[cut:].lstrip()
    return [*pieces, paragraph] if paragraph else pieces


def _split_long(paragraph: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    sentences: list[str] = []
    for sentence in split_sentences(paragraph):
        if count(sentence) <= max_tokens:
            sentences.append(sentence)
        else:
            sentences.extend(_split_run_on(sentence, max_tokens, count))
    return _pack(sentences, max_tokens, count, " ")


def _split_run_on(text: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    splitter = RecursiveCharacterTextSplitter(
        separators=_FALLBACK_SEPARATORS,
        keep_separator="end",
        chunk_size=max_tokens,
        chunk_overlap=0,
        length_function=count,
        strip_whitespace=True,
    )
    return [piece for piece in splitter.split_text(text) if piece.strip()]


def _pack(pieces: list[str], max_tokens: int, count: Callable[[str], int], sep: str) -> list[str]:
    """Greedily join consecutive pieces while the joined text fits."""
    out: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{sep}{piece}" if current else piece
        if current and count(candidate) > max_tokens:
            out.append(current)
            current = piece
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def _merge_short(
    units: list[str], max_tokens: int, min_chars: int, count: Callable[[str], int]
) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(units):
        current = units[i]
        i += 1
        while len(current) < min_chars and i < len(units):
            candidate = current + _PARAGRAPH_JOIN + units[i]
            if count(candidate) > max_tokens:
                break
            current = candidate
            i += 1
        out.append(current)
    # A short tail joins the previous chunk instead.
    if len(out) >= 2 and len(out[-1]) < min_chars:
        candidate = out[-2] + _PARAGRAPH_JOIN + out[-1]
        if count(candidate) <= max_tokens:
            out[-2:] = [candidate]
    return out
