"""One ticker connection's subscriptions: what the client asked for, applied idempotently.

Client messages are JSON text: {"a": "subscribe"|"unsubscribe", "v": [tokens]} and
{"a": "mode", "v": [mode, [tokens]]}. Subscribing defaults to quote mode (as Kite does) but keeps
the mode of a token already subscribed; repeating any message changes nothing (the official
client re-sends subscribe and mode for everything after a reconnect). Unknown tokens are kept
and simply never tick, as with Kite.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, cast

from services.simulator.ticker_packets import TickMode

MODES: tuple[TickMode, ...] = ("ltp", "quote", "full")


class SubscriptionError(ValueError):
    """A client message the server answers with a {"type": "error"} text frame."""


class Change(NamedTuple):
    description: str
    refreshed: list[int]  # tokens whose current tick the client should get now


class Subscriptions:
    """token -> mode for the tokens of one connection, capped at `max_instruments`."""

    def __init__(self, max_instruments: int) -> None:
        self.max_instruments = max_instruments
        self.modes: dict[int, TickMode] = {}

    def _tokens(self, raw: Any) -> list[int]:
        if not isinstance(raw, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in raw
        ):
            raise SubscriptionError("expected a list of integer instrument tokens")
        return cast(list[int], raw)

    def apply(self, text: str) -> Change:
        """Apply one client message; returns what it did and which tokens to send now."""
        try:
            message = json.loads(text)
        except ValueError:
            raise SubscriptionError("message is not JSON") from None
        if not isinstance(message, dict):
            raise SubscriptionError("message must be a JSON object")
        action, value = message.get("a"), message.get("v")
        if action == "subscribe":
            tokens = self._tokens(value)
            new = [t for t in dict.fromkeys(tokens) if t not in self.modes]
            if len(self.modes) + len(new) > self.max_instruments:
                raise SubscriptionError(
                    f"subscription limit: at most {self.max_instruments} instruments per connection"
                )
            for token in new:
                self.modes[token] = "quote"
            return Change(f"subscribed {len(new)} new of {len(tokens)}", new)
        if action == "unsubscribe":
            tokens = self._tokens(value)
            removed = sum(1 for t in tokens if self.modes.pop(t, None) is not None)
            return Change(f"unsubscribed {removed} of {len(tokens)}", [])
        if action == "mode":
            if not isinstance(value, list) or len(value) != 2 or value[0] not in MODES:
                raise SubscriptionError('mode expects ["ltp"|"quote"|"full", [tokens]]')
            mode = cast(TickMode, value[0])
            tokens = self._tokens(value[1])
            changed: list[int] = []
            for token in tokens:
                # Kite applies a mode only to subscribed tokens.
                if token in self.modes and self.modes[token] != mode:
                    changed.append(token)
                    self.modes[token] = mode
            return Change(f"mode {mode} for {len(tokens)} ({len(changed)} changed)", changed)
        raise SubscriptionError(f"unknown action {action!r}")
