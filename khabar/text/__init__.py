"""Text analysis shared by index, store and retrieval: Arabic/English normalisation
for search, lexical tokens, sentences, language, and outlet names. Display text is
never normalised; only what is searched is.
"""

from ._analysis import (
    Lang,
    ascii_digits,
    content_words,
    detect_lang,
    detect_question_lang,
    lexical_tokens,
    normalize_for_search,
    passage_sentences,
    split_sentences,
    words_of,
)
from ._controls import one_line, strip_bidi, strip_controls
from ._outlets import canonical_outlet, outlets_from_attribution

__all__ = [
    "Lang",
    "ascii_digits",
    "canonical_outlet",
    "content_words",
    "detect_lang",
    "detect_question_lang",
    "lexical_tokens",
    "normalize_for_search",
    "one_line",
    "outlets_from_attribution",
    "passage_sentences",
    "split_sentences",
    "strip_bidi",
    "strip_controls",
    "words_of",
]
