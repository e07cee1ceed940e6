"""Optional LLM phrasing of a story, from its cited passages only, citations checked."""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from ._answer import CITATION
from ._generate import strip_unsupported
from ._summary_types import Story

log = logging.getLogger(__name__)

_SYSTEM = {
    "en": ("You summarise one news story using ONLY the numbered passages given. Write one "
           "or two sentences in English. After each claim cite its passage as [n]. Add "
           "nothing the passages do not say."),
    "ar": ("لخّص قصة إخبارية واحدة مستخدماً المقاطع المرقمة المعطاة فقط. اكتب جملة أو جملتين "
           "بالعربية، واذكر بعد كل معلومة رقم مقطعها هكذا [n]. لا تضف شيئاً لا تقوله المقاطع."),
}


def phrase_story(model: BaseChatModel, story: Story, lang: str) -> str | None:
    """The model's summary of ``story``, or None when it fails or cites nothing valid."""
    if not story.sources:
        return None
    passages = "\n\n".join(
        f"[{s.n}] ({', '.join(s.outlets) or 'unknown outlet'} — {s.title})\n{s.text}"
        for s in story.sources)
    messages = [SystemMessage(_SYSTEM.get(lang, _SYSTEM["en"])),
                HumanMessage(f"Story: {story.headline}\n\nPassages:\n{passages}")]
    try:
        reply = model.invoke(messages)
    except Exception as exc:  # the provider's errors: keep the extractive summary
        log.warning("LLM story summary failed, extractive only: %s", exc)
        return None
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    text = strip_unsupported(text, {s.n for s in story.sources})
    # Uncited prose cannot be checked against the passages: drop it.
    return text if text and CITATION.search(text) else None
