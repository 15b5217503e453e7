"""The live progress of `tradealgo run`: event lines and the status line."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.cli.run.progress import EventTally, Progress, status_line
from shared.clock import IST
from shared.messages import Control, Message, OrderEvent, RiskEvent, Signal

T = datetime(2024, 8, 20, 10, 3, 0, tzinfo=IST)


def signal(**changes: object) -> Signal:
    base: dict[str, object] = dict(
        signal_id="a1", strategy="ema_crossover", symbol="NSE:NIFTY 50", instrument_token=256265,
        timeframe="5minute", action="BUY", price=24512.3, confidence=0.7, candle_start=T,
        created_at=T, reason="EMA 9 crossed above EMA 21",
    )  # fmt: skip
    base.update(changes)
    return Signal(**base)  # type: ignore[arg-type]


def order(status: str, order_id: str = "o1", **changes: object) -> OrderEvent:
    base: dict[str, object] = dict(
        event_id=f"{order_id}-{status}", order_id=order_id, intent_id="a1", mode="paper",
        status=status, symbol="NFO:NIFTY24AUG24500CE", side="BUY", quantity=25,
        order_type="LIMIT", price=112.0, ts=T,
    )  # fmt: skip
    base.update(changes)
    return OrderEvent(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (
            signal(),
            "10:03:00 signal  BUY NSE:NIFTY 50 @ 24,512.30 [ema_crossover] EMA 9 crossed above EMA 21",
        ),
        (order("SENT"), None),
        (order("OPEN"), None),
        (
            order("COMPLETE", filled_quantity=25, average_price=111.85),
            "10:03:00 order   COMPLETE BUY 25 NFO:NIFTY24AUG24500CE @ 111.85 [paper]",
        ),
        (
            order("REJECTED", reason="price outside the band"),
            "10:03:00 order   REJECTED BUY 25 NFO:NIFTY24AUG24500CE @ 112.00 [paper] "
            "(price outside the band)",
        ),
        (
            RiskEvent(event_id="r", kind="KILL_SWITCH_TRIPPED", reason="loss 2 %", ts=T),
            "10:03:00 risk    KILL_SWITCH_TRIPPED: loss 2 %",
        ),
        (RiskEvent(event_id="r", kind="QUEUED", reason="rate", ts=T), None),
        (
            Control(command="HALT", reason="news", source="cli:asha", ts=T),
            "10:03:00 control HALT by cli:asha: news",
        ),
    ],
)
def test_event_lines(message: Message, line: str | None) -> None:
    assert EventTally().add(message) == line


def test_tally_counts_signals_distinct_orders_and_filled_orders() -> None:
    tally = EventTally()
    for message in (
        signal(),
        signal(signal_id="a2"),
        order("SENT"),
        order("COMPLETE"),
        order("COMPLETE"),  # a redelivered event counts once
        order("SENT", order_id="o2"),
        order("REJECTED", order_id="o2"),
    ):
        tally.add(message)
    assert (tally.signals, len(tally.orders), len(tally.filled)) == (2, 2, 1)


def test_only_the_first_denials_get_a_line_of_their_own() -> None:
    tally = EventTally()
    denial = RiskEvent(event_id="d", kind="DENIED", reason="max positions", ts=T)
    lines = [tally.add(denial) for _ in range(7)]
    assert sum(line is not None for line in lines) == 5
    assert tally.denials == 7


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (
            Progress(),
            "waiting for ticks | ticks - | candles - | signals 0 | orders 0 (0 filled) "
            "| P&L - | positions - | up 0/4",
        ),
        (
            Progress("2024-08-20 10:42:15", 12345.0, 210.0, 3, 2, 2, 1234.5, 1.0, 4, 4),
            "10:42:15 | ticks 12,345 | candles 210 | signals 3 | orders 2 (2 filled) "
            "| P&L +1,234.50 | positions 1 | up 4/4",
        ),
        (
            Progress(services_ready=4, halted=True, halt_reason="token: expired"),
            "waiting for ticks | ticks - | candles - | signals 0 | orders 0 (0 filled) "
            "| P&L - | positions - | up 4/4 | HALTED: token: expired",
        ),
    ],
)
def test_status_line(progress: Progress, line: str) -> None:
    assert status_line(progress) == line
