"""Conversation state kept in memory: previous questions and recent answers.

Follow-ups need the asker's previous question (per user *within* a chat, so two
people in a group do not continue each other's questions); "more sources" needs
the answer a button belongs to. Both are bounded LRUs: losing them on restart only
means a follow-up is read on its own and an old button says "ask again".
Only touched from the event loop, so no locks.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from khabar.retrieval import Answer

from ._texts import UiLang


@dataclass
class Remembered:
    answer: Answer
    lang: UiLang  # the UI language the answer was shown in


K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class ChatState:
    def __init__(self, *, max_askers: int = 20_000, max_answers: int = 5_000) -> None:
        self._previous: _LRU[tuple[int, int], str] = _LRU(max_askers)
        # Keyed by (chat, key); the key is a small counter, so callback data stays short.
        self._answers: _LRU[tuple[int, int], Remembered] = _LRU(max_answers)
        self._keys = itertools.count(1)

    def previous(self, chat_id: int, user_id: int) -> str | None:
        return self._previous.get((chat_id, user_id))

    def set_previous(self, chat_id: int, user_id: int, question: str) -> None:
        self._previous.put((chat_id, user_id), question[-500:])

    def remember(self, chat_id: int, answer: Answer, lang: UiLang) -> int:
        key = next(self._keys)
        self._answers.put((chat_id, key), Remembered(answer, lang))
        return key

    def recall(self, chat_id: int, key: int) -> Remembered | None:
        return self._answers.get((chat_id, key))
