"""The durable record of an order (pure codec) and the day's book rebuilt from those records.

The shell writes one `JournalEntry` per order to Redis BEFORE the broker is called, and again at
every state change, so a crash anywhere leaves a record `recovery_action` can act on. On start the
position book is rebuilt from the day's entries: each order's cumulative fill is booked as one fill
with id "<order id>:<filled>", the same id the state machine gives that fill, so a broker update
that repeats it is ignored and a larger one books only the increment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from services.gatekeeper.orders import OrderRecord
from services.gatekeeper.positions import Fill, PositionBook, PositionTerms


@dataclass(frozen=True)
class JournalEntry:
    """An order, the terms its fills open a position with (entries), and when it was recorded."""

    order: OrderRecord
    terms: PositionTerms | None
    recorded_at: datetime
    intent_received_ns: int = 0  # when the intent reached us (latency of later stages)
    tick_received_ns: int = 0  # the Producer receive time behind the intent (0: unknown)
    strategy: str = ""  # the intent's strategy (ClickHouse `orders.strategy`)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JournalEntry)


def encode_entry(entry: JournalEntry) -> bytes:
    return _encoder.encode(entry)


def decode_entry(payload: bytes | str) -> JournalEntry:
    """JSON -> entry; ValueError (msgspec's errors are ValueErrors) when unreadable."""
    return _decoder.decode(payload)


def rebuild_book(entries: Iterable[JournalEntry]) -> tuple[PositionBook, list[str]]:
    """The day's book from its orders, oldest first; plus the problems met (logged by the shell).

    An exit order still working marks its position's exit as in flight, so the monitor does not
    send a second exit for it after the restart.
    """
    book = PositionBook()
    problems: list[str] = []
    ordered = sorted(entries, key=lambda e: (e.recorded_at, e.order.plan.order_id))
    for entry in ordered:
        order = entry.order
        plan = order.plan
        if order.filled_quantity > 0:
            fill = Fill(
                fill_id=f"{plan.order_id}:{order.filled_quantity}",
                order_id=plan.order_id,
                symbol=plan.symbol,
                instrument_token=plan.instrument_token,
                side=plan.side,
                quantity=order.filled_quantity,
                price=order.average_price,
                ts=order.updated_at,
            )
            problem = book.apply_fill(fill, entry.terms)
            if problem is not None:
                problems.append(problem)
    for entry in ordered:
        plan = entry.order.plan
        position = book.get(plan.symbol)
        if (
            plan.is_exit
            and not entry.order.is_final
            and position is not None
            and position.is_open
            and position.exit_pending is None
        ):
            book.exit_sent(plan.symbol, plan.intent_id)
    return book, problems
