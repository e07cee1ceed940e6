"""Optional LLM phrasing of a story, from its cited passages only, citations checked."""

from __future__ import annotations

import html
import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from ._answer import CITATION
from ._generate import strip_unsupported
from ._grounding import DATA_RULES, ground, normalise_citations, passages_as_data
from ._summary_types import Story
from ._types import Archive

log = logging.getLogger(__name__)

_SYSTEM = {
    "en": ("You summarise one news story using ONLY the numbered passages given. Write one "
           "or two sentences in English. After each claim cite its passage as [n]. Add "
           "nothing the passages do not say."),
    "ar": ("لخّص قصة إخبارية واحدة مستخدماً المقاطع المرقمة المعطاة فقط. اكتب جملة أو جملتين "
           "بالعربية، واذكر بعد كل معلومة رقم مقطعها هكذا [n]. لا تضف شيئاً لا تقوله المقاطع."),
}


def phrase_story(model: BaseChatModel, story: Story, lang: str,
                 index: Archive | None = None) -> str | None:
    """The model's summary of ``story``, or None when it fails or nothing it says is
    supported by the passages it cites (checked with ``index``'s encoders, see
    ``_grounding``; without ``index``, only that it cites shown passages)."""
    if not story.sources:
        return None
    messages = [SystemMessage(f"{_SYSTEM.get(lang, _SYSTEM['en'])} "
                              f"{DATA_RULES.get(lang, DATA_RULES['en'])}"),
                HumanMessage(f"<story>{html.escape(story.headline, quote=False)}</story>\n\n"
                             f"{passages_as_data(story.sources)}")]
    try:
        reply = model.invoke(messages)
    except Exception as exc:  # the provider's errors: keep the extractive summary
        log.warning("LLM story summary failed, extractive only: %s", exc)
        return None
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    if index is not None:
        return ground(index, text, story.sources)
    text = strip_unsupported(normalise_citations(text), {s.n for s in story.sources})
    # Uncited prose cannot be checked against the passages: drop it.
    return text if text and CITATION.search(text) else None
