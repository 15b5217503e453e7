"""A builder restored from its checkpoint continues exactly as if it had never stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.consumer.builder_state import (
    CheckpointError,
    decode_instrument,
    encode_instrument,
)
from services.consumer.candle_book import CandleBook
from services.consumer.candles import CandleBuilder
from shared.clock import IST
from shared.messages import Candle, Tick, Timeframe

DAY1 = datetime(2024, 3, 1, 9, 15, tzinfo=IST)
DAY2 = datetime(2024, 3, 4, 9, 15, tzinfo=IST)


def tick(at: datetime, price: float, volume: int = 0, token: int = 7) -> Tick:
    # Off the bus ticks are UTC-aware: the restored builder must take them as they come.
    return Tick(instrument_token=token, symbol="NSE:X", last_price=price,
                exchange_ts=at.astimezone(UTC), received_ns=1, volume=volume)  # fmt: skip


def script() -> list[Tick]:
    """Two dates: steady ticks, an empty stretch (gap), a late tick (revision), a reject."""
    out: list[Tick] = []
    volume = 0
    for i in range(0, 1500, 7):  # ~25 minutes, one tick every 7 s
        volume += 10
        out.append(tick(DAY1 + timedelta(seconds=i), 100 + (i % 13), volume))
    out.append(tick(DAY1 + timedelta(minutes=17, seconds=5), 90.0, volume))  # late: a revision
    out.append(tick(DAY1 + timedelta(minutes=40), 101.0, volume + 5))  # after an empty stretch
    out.append(tick(DAY1 - timedelta(minutes=5), 99.0))  # pre-open: rejected
    for i in range(0, 900, 11):
        out.append(tick(DAY2 + timedelta(seconds=i), 200 + (i % 7), 1000 + i))
    return out


def run(builder: CandleBuilder, ticks: list[Tick]) -> tuple[list[Candle], list[object]]:
    candles: list[Candle] = []
    gaps: list[object] = []
    for t in ticks:
        candles.extend(builder.update(t))
        gaps.extend(builder.take_gaps())
    candles.extend(builder.on_time(DAY2 + timedelta(hours=8)))
    gaps.extend(builder.take_gaps())
    return candles, gaps


@pytest.mark.parametrize("timeframe", ["minute", "5minute", "60minute", "day"])
@pytest.mark.parametrize("cut", [1, 40, 150, 216, 217, 218, 219, 250, 300])
def test_a_builder_restored_at_any_tick_gives_the_same_candles_and_gaps(
    timeframe: Timeframe, cut: int
) -> None:
    ticks = script()
    whole_candles, whole_gaps = run(CandleBuilder(7, "NSE:X", timeframe), ticks)

    first = CandleBuilder(7, "NSE:X", timeframe)
    before: list[Candle] = []
    gaps_before: list[object] = []
    for t in ticks[:cut]:
        before.extend(first.update(t))
        gaps_before.extend(first.take_gaps())
    [state] = decode_instrument(encode_instrument([first.state()]))
    second = CandleBuilder.restore(state)
    after, gaps_after = run(second, ticks[cut:])

    assert before + after == whole_candles
    assert gaps_before + gaps_after == whole_gaps
    assert any(c.revision for c in whole_candles) or timeframe in ("60minute", "day")


def test_a_book_restores_the_timeframes_it_builds_and_starts_the_others_fresh() -> None:
    book = CandleBook(["minute", "5minute"])
    book.update(tick(DAY1, 100.0))
    states = decode_instrument(encode_instrument(book.state_of(7)))
    other = CandleBook(["minute", "15minute"])
    assert other.restore(states) == 1  # minute restored, 15minute fresh, 5minute ignored
    assert [b.timeframe for b in other.builders(7)] == ["minute", "15minute"]
    assert other.builders(7)[0].open_bucket_start == DAY1
    assert other.builders(7)[1].open_bucket_start is None
    assert other.tokens() == [7]


@pytest.mark.parametrize("payload", [b"", b"\x93\x01", b"not msgpack at all"])
def test_an_unreadable_checkpoint_entry_is_refused_with_a_reason(payload: bytes) -> None:
    with pytest.raises(CheckpointError, match="unreadable"):
        decode_instrument(payload)


def test_a_checkpoint_of_another_version_is_refused() -> None:
    import msgspec

    payload = msgspec.msgpack.encode([99, []])
    with pytest.raises(CheckpointError, match="version 99"):
        decode_instrument(payload)


@pytest.mark.parametrize("cut", [0, 1, 40, 216, 217, 218, 219, 250, 300, 370])
def test_a_book_s_encoded_state_is_the_bytes_of_its_state_at_any_tick(cut: int) -> None:
    # The closed buckets' encoding is reused between checkpoints: it must follow every change
    # (a close, a revision, a revived gap bucket, a restore) exactly.
    book = CandleBook(["minute", "5minute", "60minute", "day"])
    ticks = script()
    for t in ticks[:cut]:
        book.update(t)
        assert book.encoded_state_of(7) == encode_instrument(book.state_of(7))
    restored = CandleBook(["minute", "5minute", "60minute", "day"])
    restored.restore(decode_instrument(book.encoded_state_of(7)))
    for t in ticks[cut:]:
        book.update(t)
        restored.update(t)
    book.on_time(DAY2 + timedelta(hours=8))
    restored.on_time(DAY2 + timedelta(hours=8))
    assert decode_instrument(restored.encoded_state_of(7)) == book.state_of(7)
    assert restored.encoded_state_of(7) == encode_instrument(restored.state_of(7))


def test_a_checkpoint_stores_instants_so_the_zone_of_a_datetime_changes_no_byte() -> None:
    book = CandleBook(["minute"])
    book.update(tick(DAY1, 100.0))
    [state] = book.state_of(7)
    assert state.open_bucket is not None
    in_ist = state.open_bucket.__replace__(
        start=state.open_bucket.start.astimezone(IST), end=state.open_bucket.end.astimezone(IST)
    )
    assert encode_instrument([state.__replace__(open_bucket=in_ist)]) == encode_instrument([state])
