"""Optional generated answers: an LLM (any LangChain chat model) writes a short
answer from the shown passages only, citing ``[n]``; ``_grounding`` keeps only the
sentences the cited passages support.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import SecretStr

from khabar import ConfigError

from ._answer import CITATION
from ._grounding import DATA_RULES, ground, normalise_citations, passages_as_data, question_as_data
from ._types import Archive, Source

_SYSTEM = {
    "en": ("You answer questions about news coverage using ONLY the numbered passages given. "
           "Answer in English in at most three sentences. After each claim cite its passage "
           "as [n]. If the passages do not answer the question, say so."),
    "ar": ("أجب عن أسئلة حول التغطية الإخبارية مستخدماً المقاطع المرقمة المعطاة فقط. "
           "أجب بالعربية في ثلاث جمل على الأكثر، واذكر بعد كل معلومة رقم مقطعها هكذا [n]. "
           "إذا لم تجب المقاطع عن السؤال فقل ذلك."),
}


def load_chat_model(spec: str, api_key: SecretStr | str | None = None) -> BaseChatModel:
    """``provider:model`` through LangChain's ``init_chat_model``; ``api_key`` is
    ``settings.llm_api_key`` (a ``SecretStr``), else the provider's own variable."""
    try:  # the llm extra: the CLI and the bot run without it
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise ConfigError("KHABAR_LLM needs the llm extra: pip install 'khabar[llm]' (and "
                          "the provider's package, e.g. langchain-openai)") from exc
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    kwargs: dict[str, Any] = {"api_key": api_key} if api_key else {}
    try:
        return init_chat_model(spec, **kwargs)
    except Exception as exc:
        raise ConfigError(f"cannot set up the LLM {spec!r}: {exc}") from exc


def generate(model: BaseChatModel, question: str, lang: str, sources: Sequence[Source],
             index: Archive | None = None) -> str | None:
    """The model's answer from ``sources`` only. With ``index`` (whose encoders check
    each sentence against the passages it cites, see ``_grounding``), unsupported
    citations and every sentence left without one are dropped; without it, only
    citations of no shown passage are. None when nothing is left."""
    messages = [SystemMessage(f"{_SYSTEM.get(lang, _SYSTEM['en'])} "
                              f"{DATA_RULES.get(lang, DATA_RULES['en'])}"),
                HumanMessage(f"{passages_as_data(sources)}\n\n{question_as_data(question)}")]
    reply = model.invoke(messages)
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    if index is not None:
        return ground(index, text, sources)
    return strip_unsupported(normalise_citations(text), {s.n for s in sources}) or None


def strip_unsupported(text: str, valid: set[int]) -> str:
    """Remove ``[n]`` that refer to no shown passage."""
    cleaned = CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).replace(" .", ".").strip()
