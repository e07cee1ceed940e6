"""The sentence splitter as it was before it scanned by index (quadratic on long
lines): the oracle the linear one must agree with, kept verbatim."""

import re

from khabar.text._analysis import _ABBREVIATIONS, _BOUNDARY_RE, _SENTENCE_STARTERS

_OPEN_CLOSE = {"“": "”", "«": "»"}
_MAX_QUOTE = 400


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    """Spans strictly inside balanced, reasonably short quotations."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        close = _OPEN_CLOSE.get(ch) or ('"' if ch == '"' else None)
        if close is None:
            i += 1
            continue
        j = text.find(close, i + 1)
        if j == -1 or j - i > _MAX_QUOTE:
            i += 1
            continue
        spans.append((i + 1, j))
        i = j + 1
    return spans


def _is_boundary(text: str, start: int, end: int) -> bool:
    """Whether the terminal punctuation at text[start:end] ends a sentence."""
    mark = text[start:end]
    following = text[end:].lstrip()
    if not following:
        return True
    nxt = following[0]
    if nxt.islower():  # "approx. three", "U.S.-made ... said. and" never start one
        return False
    if not mark.startswith(".") or mark.startswith(".."):
        return True
    word_match = re.search(r"(\S+)$", text[:start])
    word = word_match.group(1) if word_match else ""
    bare = word.lstrip("(\"'“«[")
    if not bare:
        return True
    if bare.casefold().rstrip(".") in _ABBREVIATIONS:
        return False
    if len(bare) == 1 and bare.isalpha():
        return False  # an initial: "George W. Bush", "د. محمد"
    if re.fullmatch(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}", bare):
        # An acronym such as U.S or a.m: a boundary only before a clear starter.
        nxt_word = re.match(r"[^\W\d_]+", following)
        return nxt_word is not None and nxt_word.group(0).casefold() in _SENTENCE_STARTERS
    return True


def old_split_sentences(text: str) -> list[str]:
    """Split Arabic or English text into sentences, punctuation kept with each."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        quoted = _quoted_spans(line)
        start = 0
        for m in _BOUNDARY_RE.finditer(line):
            # Punctuation inside a quotation ends the sentence only with the quote.
            if any(a <= m.start() and m.end() <= b for a, b in quoted):
                continue
            if not _is_boundary(line, m.start(), m.end()):
                continue
            piece = line[start : m.end()].strip()
            if piece:
                sentences.append(piece)
            start = m.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences
