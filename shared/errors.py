"""Errors grouped by what the caller should do (see STYLE.md).

- `RejectedInput`: the input can never be processed (malformed, out of range, unknown). The bus
  acks it, writes it to the dead-letter stream with the reason and counts it; the loop goes on.
  `shared.messages.MessageError` is rejected input too.
- Temporary errors (network, a restarting server) are retried with tenacity at the IO edges.
- Anything else is a bug or a fatal condition: a bus handler's entry stays pending and is retried a
  bounded number of times before it is dead-lettered as a poison entry.

This module imports nothing, so the pure core of any service can raise `RejectedInput`.
"""

from __future__ import annotations


class RejectedInput(ValueError):
    """Input that will never be processed; the message is the reason kept in the dead letter."""
