"""Planning the history warm-up, purely: what to fetch, in which requests, when, and the merge.

At start (and for a newly subscribed instrument) the service needs the last N candles of every
(instrument, timeframe), N from the strategies' lookback:
1. `history_start` walks back over trading sessions until the window holds N buckets;
2. `covered_ranges` turns the candle starts ClickHouse already holds into covered time;
3. `missing_ranges` is the SESSION time of the window that is not covered, where pieces that
   are separated only by non-trading time (nights, weekends) are joined, so a month of missing
   minutes is one range, not twenty;
4. `plan_fetches` cuts each range to Kite's per-interval limit (a settings table, since sources
   disagree) and `pacing_plan` spaces the requests at the historical API's rate (3 per second);
5. `merge_candles` merges history with live candles: one candle per start, in order, the most
   complete one kept, with a report of the buckets nobody has (`gaps`).
Nothing here does IO; the service runs the plan with its ClickHouse and Kite adapters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from services.consumer.buckets import SessionsOf, buckets_in
from shared.clock import IST
from shared.messages import Candle, Timeframe

KITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TimeRange(NamedTuple):
    """[start, end), timezone-aware."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class HistoryFetch:
    """One call of Kite's historical API: candles starting in [start, end)."""

    instrument_token: int
    interval: Timeframe
    start: datetime
    end: datetime

    @property
    def kite_from(self) -> str:
        """The `from` parameter (IST wall time)."""
        return self.start.astimezone(IST).strftime(KITE_TIME_FORMAT)

    @property
    def kite_to(self) -> str:
        """The `to` parameter: Kite's `to` is inclusive, so one second before `end`."""
        return (self.end - timedelta(seconds=1)).astimezone(IST).strftime(KITE_TIME_FORMAT)


@dataclass(frozen=True, slots=True)
class WarmupPlan:
    """The requests of a warm-up and when each may be sent."""

    fetches: tuple[HistoryFetch, ...]
    send_at: tuple[datetime, ...]
    missing: tuple[TimeRange, ...]

    @property
    def duration(self) -> timedelta:
        """From the first request to the last."""
        return self.send_at[-1] - self.send_at[0] if self.send_at else timedelta(0)


@dataclass(frozen=True, slots=True)
class CandleGapRange:
    """Consecutive buckets without a candle after a merge."""

    start: datetime
    end: datetime
    buckets: int


@dataclass(frozen=True, slots=True)
class MergeResult:
    """History and live candles as one ordered series, and what the merge found."""

    candles: tuple[Candle, ...]
    duplicates: int  # candles dropped because another one of the same start was kept
    gaps: tuple[CandleGapRange, ...]


def history_start(
    lookback: int,
    timeframe: Timeframe,
    until: datetime,
    sessions_of: SessionsOf,
    *,
    max_days: int = 3000,
) -> datetime:
    """The earliest start such that [start, until) holds at least `lookback` buckets."""
    if lookback < 1:
        raise ValueError("lookback must be >= 1")
    day = until.astimezone(IST).date()
    needed = lookback
    for _ in range(max_days):
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=IST)
        day_end = min(until, day_start + timedelta(days=1))
        starts = [b.start for b in buckets_in(day_start, day_end, timeframe, sessions_of)]
        if len(starts) >= needed:
            return starts[len(starts) - needed]
        needed -= len(starts)
        day -= timedelta(days=1)
    raise ValueError(
        f"fewer than {lookback} {timeframe} buckets in the {max_days} days before {until}"
    )


def covered_ranges(
    starts: Iterable[datetime], timeframe: Timeframe, sessions_of: SessionsOf
) -> list[TimeRange]:
    """The time covered by stored candles (their buckets), adjacent buckets joined."""
    ordered = sorted(set(starts))
    if not ordered:
        return []
    ranges: list[TimeRange] = []
    for start in ordered:
        end = _bucket_end(start, timeframe, sessions_of)
        if ranges and ranges[-1].end >= start:
            if end > ranges[-1].end:
                ranges[-1] = TimeRange(ranges[-1].start, end)
        else:
            ranges.append(TimeRange(start, end))
    return ranges


def _bucket_end(start: datetime, timeframe: Timeframe, sessions_of: SessionsOf) -> datetime:
    for bucket in buckets_in(start, start + timedelta(seconds=1), timeframe, sessions_of):
        return bucket.end
    raise ValueError(f"{start} is not the start of a {timeframe} bucket of any session")


def missing_ranges(
    requested: TimeRange, covered: Sequence[TimeRange], sessions_of: SessionsOf
) -> list[TimeRange]:
    """Session time in `requested` that `covered` lacks; pieces split only by closed hours joined."""
    pieces: list[TimeRange] = []
    day = requested.start.astimezone(IST).date()
    last_day = requested.end.astimezone(IST).date()
    while day <= last_day:
        for session in sessions_of(day):
            start = max(session.open, requested.start)
            end = min(session.close, requested.end)
            if start < end:
                pieces.extend(_subtract(TimeRange(start, end), covered))
        day += timedelta(days=1)
    joined: list[TimeRange] = []
    for piece in pieces:
        if joined and not _any_overlap(TimeRange(joined[-1].end, piece.start), covered):
            joined[-1] = TimeRange(joined[-1].start, piece.end)
        else:
            joined.append(piece)
    return joined


def _subtract(window: TimeRange, covered: Sequence[TimeRange]) -> list[TimeRange]:
    out: list[TimeRange] = []
    cursor = window.start
    for c in covered:
        if c.end <= cursor or c.start >= window.end:
            continue
        if c.start > cursor:
            out.append(TimeRange(cursor, c.start))
        cursor = max(cursor, c.end)
        if cursor >= window.end:
            break
    if cursor < window.end:
        out.append(TimeRange(cursor, window.end))
    return out


def _any_overlap(span: TimeRange, covered: Sequence[TimeRange]) -> bool:
    return any(c.start < span.end and c.end > span.start for c in covered)


def plan_fetches(
    instrument_token: int,
    timeframe: Timeframe,
    missing: Sequence[TimeRange],
    range_days: Mapping[str, int],
) -> list[HistoryFetch]:
    """Each missing range cut into requests of at most Kite's range limit for the interval."""
    limit_days = range_days.get(timeframe)
    if limit_days is None or limit_days < 1:
        raise ValueError(f"no historical range limit configured for interval {timeframe!r}")
    limit = timedelta(days=limit_days)
    fetches: list[HistoryFetch] = []
    for r in missing:
        start = r.start
        while start < r.end:
            end = min(start + limit, r.end)
            fetches.append(HistoryFetch(instrument_token, timeframe, start, end))
            start = end
    return fetches


def pacing_plan(requests: int, requests_per_s: float, first_at: datetime) -> list[datetime]:
    """When each of `requests` calls may go out to stay within `requests_per_s`."""
    if requests_per_s <= 0:
        raise ValueError("requests_per_s must be > 0")
    # Rounded UP to the microsecond: rounding down would let rate + 1 requests into one second.
    spacing = timedelta(microseconds=math.ceil(1_000_000 / requests_per_s))
    return [first_at + i * spacing for i in range(requests)]


def plan_warmup(
    instrument_token: int,
    timeframe: Timeframe,
    requested: TimeRange,
    stored_starts: Iterable[datetime],
    sessions_of: SessionsOf,
    range_days: Mapping[str, int],
    requests_per_s: float,
    now: datetime,
) -> WarmupPlan:
    """The whole plan for one (instrument, timeframe): missing time, requests, send times."""
    covered = covered_ranges(stored_starts, timeframe, sessions_of)
    missing = missing_ranges(requested, covered, sessions_of)
    fetches = plan_fetches(instrument_token, timeframe, missing, range_days)
    return WarmupPlan(
        tuple(fetches), tuple(pacing_plan(len(fetches), requests_per_s, now)), tuple(missing)
    )


def merge_candles(
    history: Iterable[Candle],
    live: Iterable[Candle],
    *,
    history_as_of: datetime,
    sessions_of: SessionsOf,
) -> MergeResult:
    """One candle per start, in order. On a tie the higher revision wins; at equal revisions a
    history candle wins for buckets that had ended when the history was read (`history_as_of`),
    since a live candle of such a bucket may have missed ticks before the Consumer started; a
    live candle wins for later buckets. Buckets between the first and last candle that nobody has
    are reported as gaps (never filled)."""
    chosen: dict[datetime, Candle] = {}
    duplicates = 0
    keys: set[tuple[str, Timeframe]] = set()
    for candle, from_history in [*((c, True) for c in history), *((c, False) for c in live)]:
        keys.add((candle.symbol, candle.timeframe))
        held = chosen.get(candle.start)
        if held is None:
            chosen[candle.start] = candle
            continue
        duplicates += 1
        if _prefer(candle, from_history, held, history_as_of):
            chosen[candle.start] = candle
    if len(keys) > 1:
        raise ValueError(f"merge_candles takes one (symbol, timeframe), got {sorted(keys)}")
    candles = tuple(chosen[s] for s in sorted(chosen))
    gaps: tuple[CandleGapRange, ...] = ()
    if candles:
        gaps = tuple(find_gaps(candles, candles[0].start, candles[-1].end, sessions_of))
    return MergeResult(candles, duplicates, gaps)


def _prefer(candidate: Candle, from_history: bool, held: Candle, history_as_of: datetime) -> bool:
    if candidate.revision != held.revision:
        return candidate.revision > held.revision
    ended_before_read = candidate.end <= history_as_of
    return from_history == ended_before_read


def find_gaps(
    candles: Sequence[Candle], start: datetime, end: datetime, sessions_of: SessionsOf
) -> list[CandleGapRange]:
    """Buckets of the grid in [start, end) without a candle, consecutive ones joined."""
    if not candles:
        return []
    have = {c.start for c in candles}
    timeframe = candles[0].timeframe
    gaps: list[CandleGapRange] = []
    for bucket in buckets_in(start, end, timeframe, sessions_of):
        if bucket.start in have:
            continue
        if gaps and gaps[-1].end == bucket.start:
            last = gaps[-1]
            gaps[-1] = CandleGapRange(last.start, bucket.end, last.buckets + 1)
        else:
            gaps.append(CandleGapRange(bucket.start, bucket.end, 1))
    return gaps
