"""Helpers every article parser shares: outlet attribution lines, titles, language, tags."""

from __future__ import annotations

import re
from collections.abc import Iterable

from khabar.text._analysis import detect_lang, split_sentences
from khabar.text._outlets import canonical_outlet, outlets_from_attribution

TITLE_MAX = 120

_SOURCE_LINE_RE = re.compile(r"^(?:المصدر|المصادر|source|sources)\s*[:：]\s*(.+)$", re.IGNORECASE)
_DATELINE_RE = re.compile(r"^.{0,60}?\(([^()]{2,40})\)\s*[-–—:]")


def _source_line(line: str) -> list[str]:
    """Outlets from an attribution line or a "Source: ..."/"المصدر: ..." line."""
    found = outlets_from_attribution(line)
    if found:
        return found
    m = _SOURCE_LINE_RE.match(line.strip())
    if not m or len(line) > 80:
        return []
    named = m.group(1).strip()
    return outlets_from_attribution(named) or ([canonical_outlet(named)] if named else [])


def _add(outlets: list[str], more: Iterable[str]) -> None:
    for name in more:
        if name and name not in outlets:
            outlets.append(name)


def _split_body_outlets(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    """Take attribution and "Source:" lines out of the body; read a wire dateline."""
    body: list[str] = []
    outlets: list[str] = []
    for p in paragraphs:
        found = _source_line(p)
        if found:
            _add(outlets, found)
        else:
            body.append(p)
    if body and (m := _DATELINE_RE.match(body[0])):
        _add(outlets, outlets_from_attribution(m.group(1)))
    return body, outlets


def _title_from_text(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    sentences = split_sentences(first)
    return _truncate(sentences[0] if sentences else first)


def _truncate(text: str, limit: int = TITLE_MAX) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,،;؛:-–—") + "…"


def _lang_code(declared: str | None, paragraphs: list[str]) -> str:
    """A declared language ("ar-SA", "English") as "ar"/"en"/"other"; detected if absent."""
    if not declared:
        return detect_lang(" ".join(paragraphs))
    code = re.split(r"[-_\s]", declared.strip().lower())[0]
    return {"ar": "ar", "ara": "ar", "arabic": "ar", "en": "en", "eng": "en",
            "english": "en"}.get(code, "other")


def _split_tags(values: Iterable[str] | None) -> list[str]:
    tags: list[str] = []
    for value in values or []:
        for tag in re.split(r"\s*[,،;]\s*", value):
            if tag.strip() and tag.strip() not in tags:
                tags.append(tag.strip())
    return tags
