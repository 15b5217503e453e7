"""The bounded waiting room for intents over the order rate.

Exits jump the queue and never expire or bounce (closing risk must not wait behind new risk, nor be
dropped); entries wait first-in first-out, at most `size` of them, each at most `max_wait_s`.
Nothing leaves the queue without a reason: a full queue refuses with one, an expired entry
comes back with one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from shared.messages import OrderIntent


@dataclass(frozen=True)
class QueuedIntent:
    intent: OrderIntent
    queued_at: float
    is_exit: bool


@dataclass(frozen=True)
class Expired:
    intent: OrderIntent
    reason: str


class IntentQueue:
    def __init__(self, size: int, max_wait_s: float) -> None:
        if size < 0 or max_wait_s <= 0:
            raise ValueError(f"size >= 0 and max_wait_s > 0 required (got {size}, {max_wait_s})")
        self.size = size
        self.max_wait_s = max_wait_s
        self._exits: deque[QueuedIntent] = deque()
        self._entries: deque[QueuedIntent] = deque()
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._exits) + len(self._entries)

    def __contains__(self, intent_id: object) -> bool:
        return intent_id in self._ids

    def push(self, intent: OrderIntent, now: float, is_exit: bool) -> str | None:
        """Queue an intent; returns the refusal reason when an entry finds the queue full."""
        if intent.intent_id in self._ids:
            return f"intent {intent.intent_id} is already queued"
        if is_exit:
            self._exits.append(QueuedIntent(intent, now, True))
        elif len(self._entries) >= self.size:
            return f"rate queue full ({self.size} intents waiting)"
        else:
            self._entries.append(QueuedIntent(intent, now, False))
        self._ids.add(intent.intent_id)
        return None

    def requeue(self, item: QueuedIntent) -> None:
        """Put a popped intent back at the head of its lane, keeping its original queue time."""
        (self._exits if item.is_exit else self._entries).appendleft(item)
        self._ids.add(item.intent.intent_id)

    def expire(self, now: float) -> list[Expired]:
        """Remove and return entries that waited longer than `max_wait_s`, each with its reason."""
        expired: list[Expired] = []
        while self._entries and now - self._entries[0].queued_at > self.max_wait_s:
            item = self._entries.popleft()
            self._ids.discard(item.intent.intent_id)
            expired.append(
                Expired(
                    item.intent,
                    f"waited {now - item.queued_at:.1f} s for the order rate, more than "
                    f"{self.max_wait_s:.1f} s",
                )
            )
        return expired

    def peek(self) -> QueuedIntent | None:
        """The next intent to try: exits first, then the oldest entry."""
        if self._exits:
            return self._exits[0]
        if self._entries:
            return self._entries[0]
        return None

    def pop(self) -> QueuedIntent:
        item = self._exits.popleft() if self._exits else self._entries.popleft()
        self._ids.discard(item.intent.intent_id)
        return item
