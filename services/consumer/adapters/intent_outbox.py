"""Intents decided and not yet sent, of every partition of a replica: sent together.

Each send is one script call (adapters/commit.py `publish_intents`, fenced per partition) run as
an eager task: the command is written before `flush` returns, its reply is awaited by each
partition's next commit (a signal is never committed while its intent may still fail to go out).
The reader flushes after the first pass of a read, so the intents of every partition go out in
one call; a partition also flushes while it builds once the oldest intent has waited
`intent_batch_ms`, so a read full of decisions does not hold the first ones back. An instrument's
intents go out in decision order (a send waits for the previous one carrying the same
instrument); after a failed send none of its later ones does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from services.consumer.adapters.commit import LeaseLost, PartitionCommitter, Published
from shared.messages import OrderIntent


class Sender(Protocol):
    """What the outbox needs of a partition worker."""

    partition: int

    def fail(self, exc: BaseException) -> None: ...

    def after_publish(self, intents: list[OrderIntent], published: Published) -> None: ...

    def track_publication(self, task: asyncio.Task[None]) -> None: ...


class IntentOutbox:
    """The replica's queue of decided intents."""

    def __init__(
        self, committer: PartitionCommitter, mono: Callable[[], float], max_wait_ms: float
    ) -> None:
        self.committer = committer
        self.mono = mono
        self.max_wait_s = max_wait_ms / 1000
        self._queued: dict[Sender, list[OrderIntent]] = {}
        self._oldest = 0.0
        self._last: dict[int, asyncio.Task[None]] = {}  # instrument -> its newest send

    def add(self, sender: Sender, intents: list[OrderIntent]) -> None:
        if not intents:
            return
        if not self._queued:
            self._oldest = self.mono()
        self._queued.setdefault(sender, []).extend(intents)

    def due(self) -> bool:
        """Whether the oldest queued intent has waited long enough to go out alone."""
        return bool(self._queued) and self.mono() - self._oldest >= self.max_wait_s

    def flush(self) -> None:
        """Send everything queued, in one call."""
        if not self._queued:
            return
        groups = list(self._queued.items())
        self._queued = {}
        before = {
            task
            for _, intents in groups
            for intent in intents
            if (task := self._last.get(intent.instrument_token)) is not None and not task.done()
        }
        task = asyncio.Task(
            self._send(groups, before), loop=asyncio.get_running_loop(), eager_start=True
        )
        for sender, intents in groups:
            sender.track_publication(task)
            for intent in intents:
                self._last[intent.instrument_token] = task
        for token in [t for t, sent in self._last.items() if sent.done()]:
            del self._last[token]

    async def _send(
        self, groups: list[tuple[Sender, list[OrderIntent]]], before: set[asyncio.Task[None]]
    ) -> None:
        try:
            for task in before:
                await task
            results = await self.committer.publish_intents([(s.partition, i) for s, i in groups])
        except BaseException as exc:
            for sender, _ in groups:
                sender.fail(exc)
            raise
        for (sender, intents), published in zip(groups, results, strict=True):
            if published.lease_held:
                sender.after_publish(intents, published)
            else:
                sender.fail(LeaseLost(f"tick partition {sender.partition} is not ours: "
                                      f"{len(intents)} intents not published"))  # fmt: skip
