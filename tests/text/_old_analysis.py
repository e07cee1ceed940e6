"""The writer's text analysis as it was before one cache served both fields (each
passage was folded and stemmed for ``tokens``, then every word of it again for
``words``): the oracle the cached one must agree with, kept verbatim."""

from khabar.text._analysis import (
    _ARABIC_SCRIPT_RE,
    _LATIN_RE,
    _NUMBER_RE,
    _TA_MARBUTA,
    _WORD_RE,
    _fold,
    _stemmers,
    _stopwords,
)


def lexical_tokens(text: str) -> list[str]:
    ar_stem, en_stem = _stemmers()
    stop = _stopwords()
    out: list[str] = []
    for token in _fold(text, ta_marbuta=False).split():
        folded = token.translate(_TA_MARBUTA)
        if folded in stop or token in stop:
            continue
        if _NUMBER_RE.match(token):
            out.append(token)
            continue
        if len(token) < 2:
            continue
        if _ARABIC_SCRIPT_RE.search(token):
            stem = ar_stem.stemWord(token).translate(_TA_MARBUTA)
        elif _LATIN_RE.search(token):
            stem = en_stem.stemWord(token)
        else:
            stem = token
        out.append(stem or folded)
    return out


def content_words(text: str) -> list[str]:
    words = [w for w in _WORD_RE.findall(text) if lexical_tokens(w)]
    return list(dict.fromkeys(words))


def tokens_text(text: str) -> str:
    return " ".join(lexical_tokens(text))


def words_text(text: str) -> str:
    return " ".join(content_words(text))
