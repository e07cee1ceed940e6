"""Conversation state kept in memory: each asker's previous question.

Follow-ups need the asker's previous question (per asker *within* a chat, so two
people in a group do not continue each other's questions). A bounded LRU: losing
it on restart only means a follow-up is read on its own. (Answers, for their
buttons and replies, are kept in ``bot.sqlite3``.) Only touched from the event
loop, so no locks.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

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

    def items(self) -> list[tuple[K, V]]:
        return list(self._d.items())

    def __len__(self) -> int:
        return len(self._d)


class ChatState:
    def __init__(self, *, max_askers: int = 20_000) -> None:
        self._previous: _LRU[tuple[int, int], str] = _LRU(max_askers)

    def previous(self, chat_id: int, user_id: int) -> str | None:
        return self._previous.get((chat_id, user_id))

    def set_previous(self, chat_id: int, user_id: int, question: str) -> None:
        self._previous.put((chat_id, user_id), question[-500:])

    def move_chat(self, old: int, new: int) -> None:
        """A group's new id (upgraded to a supergroup): its askers' questions go along."""
        for (chat, user), question in self._previous.items():
            if chat == old:
                self._previous.put((new, user), question)
