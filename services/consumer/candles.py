"""Ticks -> candles for one (instrument, timeframe): a pure accumulator (NautilusTrader's BarBuilder).

Rules, all decided from the tick's EXCHANGE timestamp (never the wall clock):
- OHLC from last prices: open = earliest tick of the bucket, close = latest (ties: arrival order).
- A candle closes when a tick of a later bucket arrives (`update`) or when `on_time(now)` sees
  `now >= end + grace`, so that an illiquid instrument still closes on time.
- Volume comes from the exchange's CUMULATIVE day volume. A bucket's volume is the rise of the
  running maximum of that counter while the bucket was open; the counter restarts every date.
  The base of the first bucket of a date is 0 (the day's whole volume so far, pre-open trades
  included) when that bucket is the date's first bucket or the builder has been running since an
  earlier date; otherwise (started mid-day) it is the first tick's own count, so volume traded
  before the builder existed is not dumped into one candle. Index ticks carry 0: volume 0.
- Late ticks: a tick for a bucket that has already closed produces a REVISED candle (revision + 1)
  and is counted. Volume never moves between candles on a revision: the cumulative count of a late
  tick is already included in the candle that first saw the counter rise. A late tick for a bucket
  reported as a gap (inside the revision window) produces that candle with revision 1 and volume 0.
  A tick for a candle that ended more than `revision_window_s` (exchange time) before the newest
  closed candle ended, or from an earlier date, is rejected with that reason; the newest closed
  candle can always be revised.
- Gaps: buckets of the same date between two candles that received no tick are reported as
  `CandleGap` records, never invented. When the builder has already seen an earlier date, the tail
  of that date and the head of the new one are gaps too (a builder started mid-day cannot tell
  "no trades yet" from "not running yet", so it reports no head gap on its first date).
- Ticks outside every session (pre-open, the closing session after 15:30, the flat prints some
  feeds send after the close) are rejected and counted.
Rejected ticks and gaps are collected for the caller (`take_rejects`, `take_gaps`): nothing is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from msgspec import Raw

from services.consumer.buckets import (
    TIMEFRAME_MINUTES,
    Bucket,
    SessionsOf,
    TradingSession,
    bucket_of,
    buckets_in,
    day_close,
    regular_sessions,
)
from services.consumer.builder_state import (
    BucketState,
    BuilderState,
    EncodedBuilderState,
    encode_recent,
)
from shared.clock import IST
from shared.messages import Candle, Tick, Timeframe


@dataclass(frozen=True, slots=True)
class CandleGap:
    """Buckets [start, end) of one instrument and timeframe that received no tick."""

    instrument_token: int
    symbol: str
    timeframe: Timeframe
    start: datetime
    end: datetime
    buckets: int


@dataclass(frozen=True, slots=True)
class RejectedTick:
    """A tick that made no candle, and why."""

    tick: Tick
    timeframe: Timeframe
    reason: str


class CandleBuilderStats:
    """Counters of one builder (the service exports them as metrics)."""

    __slots__ = ("candles", "gaps", "late_ticks", "rejected", "revisions", "ticks")

    def __init__(self) -> None:
        self.ticks = 0
        self.candles = 0
        self.revisions = 0
        self.late_ticks = 0
        self.rejected = 0
        self.gaps = 0


class _Bucket:
    """The mutable state of one bucket, open or recently closed."""

    __slots__ = (
        "close",
        "count",
        "end",
        "first_ts",
        "hi",
        "high",
        "last_ts",
        "lo",
        "low",
        "open",
        "received_ns",
        "revision",
        "start",
        "volume",
    )

    def __init__(self, start: datetime, end: datetime, tick: Tick, volume: int) -> None:
        price = tick.last_price
        self.start = start
        self.end = end
        # The bounds again in the tick's own zone: comparing datetimes of two different tzinfo
        # objects costs ~10x more (ticks off the bus are UTC, candles are IST).
        zone = tick.exchange_ts.tzinfo
        self.lo = start.astimezone(zone)
        self.hi = end.astimezone(zone)
        self.open = self.high = self.low = self.close = price
        self.first_ts = self.last_ts = tick.exchange_ts
        self.count = 1
        self.volume = volume
        self.revision = 0
        self.received_ns = tick.received_ns

    def add(self, tick: Tick) -> None:
        price = tick.last_price
        ts = tick.exchange_ts
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if ts >= self.last_ts:
            self.close = price
            self.last_ts = ts
        elif ts < self.first_ts:
            self.open = price
            self.first_ts = ts
        self.count += 1


# (start and end in the ticks' zone, the bucket) of the bucket after the open one.
_Following = tuple[datetime, datetime, Bucket]


class CandleBuilder:
    """Builds the candles of one (instrument, timeframe) from its ticks."""

    __slots__ = (
        "_base",
        "_cum",
        "_day",
        "_following",
        "_gaps",
        "_grace",
        "_last_end",
        "_open",
        "_recent",
        "_recent_encoded",
        "_recent_states",
        "_rejects",
        "_sessions",
        "_sessions_day",
        "_sessions_of",
        "_step",
        "_tail_reported",
        "_window",
        "_with_records",
        "instrument_token",
        "stats",
        "symbol",
        "timeframe",
    )

    def __init__(
        self,
        instrument_token: int,
        symbol: str,
        timeframe: Timeframe,
        *,
        sessions_of: SessionsOf | None = None,
        grace_s: float = 2.0,
        revision_window_s: float = 600.0,
        with_records: set[CandleBuilder] | None = None,
    ) -> None:
        if grace_s < 0 or revision_window_s < 0:
            raise ValueError("grace_s and revision_window_s must be >= 0")
        self.instrument_token = instrument_token
        self.symbol = symbol
        self.timeframe: Timeframe = timeframe
        self.stats = CandleBuilderStats()
        self._sessions_of = sessions_of or regular_sessions()
        self._sessions_day: date | None = None
        self._sessions: Sequence[TradingSession] = ()
        minutes = TIMEFRAME_MINUTES.get(timeframe)
        self._step = timedelta(minutes=minutes) if minutes else None
        # The bucket after the open one, with its bounds in the ticks' zone: a fast path.
        self._following: _Following | None = None
        self._grace = timedelta(seconds=grace_s)
        self._open: _Bucket | None = None
        # Closed buckets a late tick may still revise: those ending within the window before the
        # newest closed one (always at least the newest), so memory stays a few buckets each.
        self._recent: deque[_Bucket] = deque()
        # Their checkpoint form, kept until one of them changes (closed, revised, revived).
        self._recent_states: tuple[BucketState, ...] | None = None
        self._recent_encoded: Raw | None = None
        self._window = timedelta(seconds=revision_window_s)
        self._day: date | None = None  # the date of the cumulative volume counter
        self._cum = 0  # running maximum of today's cumulative volume
        self._base = 0  # the counter's value when the open bucket started
        self._last_end: datetime | None = None  # end of the newest bucket that had ticks
        self._tail_reported = False
        self._gaps: list[CandleGap] = []
        self._rejects: list[RejectedTick] = []
        # An owner's set (a CandleBook's) this builder joins when it records a gap or a reject,
        # so collecting them costs the builders that have some, not every builder.
        self._with_records = with_records

    # -- the hot path ---------------------------------------------------------------------------
    def update(self, tick: Tick) -> list[Candle]:
        """Add a tick; returns the candles it closed or revised (usually none)."""
        self.stats.ticks += 1
        b = self._open
        if b is not None and tick.instrument_token == self.instrument_token:
            ts = tick.exchange_ts
            try:
                inside = b.lo <= ts < b.hi
            except TypeError:  # a naive timestamp: the slow path rejects it with a reason
                inside = False
            if inside:
                b.add(tick)
                b.received_ns = tick.received_ns
                if tick.volume > self._cum:
                    self._cum = tick.volume
                return []
        return self._route(tick)

    def on_time(self, now: datetime) -> list[Candle]:
        """Close the open bucket once `now` has passed its end plus the grace period."""
        closed: list[Candle] = []
        b = self._open
        if b is not None and now >= b.end + self._grace:
            closed.append(self._close_open(b.received_ns))
        if self._open is None and self._last_end is not None and not self._tail_reported:
            last_day = self._last_end.astimezone(IST).date()
            close = day_close(last_day, self._sessions_of)
            if close is not None and now >= close + self._grace:
                self._report_gap(self._last_end, close)
                self._tail_reported = True
        return closed

    # -- collected records ----------------------------------------------------------------------
    def take_gaps(self) -> list[CandleGap]:
        """The gaps found since the last call."""
        gaps, self._gaps = self._gaps, []
        return gaps

    def take_rejects(self) -> list[RejectedTick]:
        """The rejected ticks since the last call."""
        rejects, self._rejects = self._rejects, []
        return rejects

    def has_records(self) -> bool:
        """Whether gaps or rejects are waiting to be taken."""
        return bool(self._gaps or self._rejects)

    @property
    def open_bucket_start(self) -> datetime | None:
        """Start of the bucket being built, if any."""
        return self._open.start if self._open is not None else None

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> BuilderState:
        """Everything needed to continue this builder elsewhere (collected gaps and rejects are
        not part of it: the caller drains them before checkpointing)."""
        return BuilderState(
            instrument_token=self.instrument_token,
            symbol=self.symbol,
            timeframe=self.timeframe,
            open_bucket=_bucket_state(self._open) if self._open is not None else None,
            recent=self._recent_state(),
            day=self._day,
            cumulative=self._cum,
            base=self._base,
            last_end=self._last_end,
            tail_reported=self._tail_reported,
        )

    def encoded_state(self) -> EncodedBuilderState:
        """`state()` with its closed buckets already encoded: what a checkpoint writes (their
        encoding is reused until one of them changes)."""
        encoded = self._recent_encoded
        if encoded is None:
            encoded = self._recent_encoded = encode_recent(self._recent_state())
        return EncodedBuilderState(
            self.instrument_token, self.symbol, self.timeframe,
            _bucket_state(self._open) if self._open is not None else None, encoded, self._day,
            self._cum, self._base, self._last_end, self._tail_reported,
        )  # fmt: skip

    def _recent_state(self) -> tuple[BucketState, ...]:
        states = self._recent_states
        if states is None:
            states = self._recent_states = tuple(_bucket_state(b) for b in self._recent)
        return states

    def _recent_changed(self) -> None:
        self._recent_states = None
        self._recent_encoded = None

    @classmethod
    def restore(
        cls,
        state: BuilderState,
        *,
        sessions_of: SessionsOf | None = None,
        grace_s: float = 2.0,
        revision_window_s: float = 600.0,
        with_records: set[CandleBuilder] | None = None,
    ) -> CandleBuilder:
        """A builder that continues from `state` (see `state`); its stats start at zero."""
        builder = cls(
            state.instrument_token,
            state.symbol,
            state.timeframe,
            sessions_of=sessions_of,
            grace_s=grace_s,
            revision_window_s=revision_window_s,
            with_records=with_records,
        )
        builder._open = _bucket_of_state(state.open_bucket) if state.open_bucket else None
        builder._recent.extend(_bucket_of_state(b) for b in state.recent)
        builder._recent_changed()
        builder._day = state.day
        builder._cum = state.cumulative
        builder._base = state.base
        builder._last_end = state.last_end.astimezone(IST) if state.last_end else None
        builder._tail_reported = state.tail_reported
        return builder

    # -- the slow path: a new bucket, a late tick or a bad one ------------------------------------
    def _route(self, tick: Tick) -> list[Candle]:
        if tick.instrument_token != self.instrument_token:
            return self._reject(tick, f"instrument {tick.instrument_token} is not this builder's")
        ts = tick.exchange_ts
        following = self._following
        if following is not None and ts.tzinfo is following[0].tzinfo:
            lo, hi, next_bucket = following
            if lo <= ts < hi:  # the usual case: the bucket right after the open one
                return self._start_bucket(tick, next_bucket)
        if ts.tzinfo is None:
            return self._reject(tick, "naive exchange timestamp")
        bucket = bucket_of(ts, self.timeframe, self._cached_sessions)
        if bucket is None:
            return self._reject(tick, f"outside the trading sessions ({ts.astimezone(IST)})")
        if self._last_end is not None and bucket.start < self._last_end:
            return self._late(tick, bucket)
        return self._start_bucket(tick, bucket)

    def _cached_sessions(self, day: date) -> Sequence[TradingSession]:
        if day != self._sessions_day:
            self._sessions = tuple(self._sessions_of(day))
            self._sessions_day = day
        return self._sessions

    def _start_bucket(self, tick: Tick, bucket: Bucket) -> list[Candle]:
        closed: list[Candle] = []
        if self._open is not None:
            closed.append(self._close_open(tick.received_ns))
        day = bucket.start.date()
        if day != self._day:
            self._new_day(day, bucket, tick)
        elif self._last_end is not None and self._last_end != bucket.start:
            self._report_gap(self._last_end, bucket.start)
        if tick.volume > self._cum:
            self._cum = tick.volume
        opened = self._open = _Bucket(bucket.start, bucket.end, tick, 0)
        self._last_end = bucket.end
        self._following = self._next_bucket(bucket, opened.hi)
        return closed

    def _next_bucket(self, bucket: Bucket, end_in_tick_zone: datetime) -> _Following | None:
        session = bucket.session
        if self._step is None or bucket.end >= session.close:
            return None
        end = bucket.end + self._step
        if end > session.close:
            end = session.close
        zone = end_in_tick_zone.tzinfo
        return (end_in_tick_zone, end.astimezone(zone), Bucket(bucket.end, end, session))

    def _new_day(self, day: date, bucket: Bucket, tick: Tick) -> None:
        first_bucket = bucket.start == self._sessions_of(day)[0].open
        running_before = self._day is not None
        if running_before and self._last_end is not None:
            if not self._tail_reported:
                previous_close = day_close(self._last_end.date(), self._sessions_of)
                if previous_close is not None:
                    self._report_gap(self._last_end, previous_close)
            self._report_gap(self._sessions_of(day)[0].open, bucket.start)
        self._day = day
        self._cum = 0 if first_bucket or running_before else tick.volume
        self._base = self._cum
        self._tail_reported = False

    def _close_open(self, received_ns: int) -> Candle:
        b = self._open
        assert b is not None
        b.volume = self._cum - self._base
        self._base = self._cum
        self._open = None
        recent = self._recent
        recent.append(b)
        horizon = b.end - self._window
        while recent[0].end < horizon:
            recent.popleft()
        self._recent_changed()
        self.stats.candles += 1
        return self._candle(b, received_ns)

    def _late(self, tick: Tick, bucket: Bucket) -> list[Candle]:
        self.stats.late_ticks += 1
        for b in reversed(self._recent):
            if b.start == bucket.start:
                b.add(tick)
                b.revision += 1
                self._recent_changed()
                self.stats.revisions += 1
                return [self._candle(b, tick.received_ns)]
        oldest = self._recent[0].start if self._recent else None
        if self._open is not None and self._open.start.date() == bucket.start.date():
            oldest = self._open.start if oldest is None else oldest
        if oldest is None or bucket.start < oldest or bucket.start.date() != self._day:
            return self._reject(tick, f"too late to revise the {bucket.start} candle")
        # A bucket that was reported as a gap: its candle exists after all, as a revision.
        revived = _Bucket(bucket.start, bucket.end, tick, 0)
        revived.revision = 1
        self._insert_recent(revived)
        self.stats.revisions += 1
        return [self._candle(revived, tick.received_ns)]

    def _insert_recent(self, revived: _Bucket) -> None:
        ordered = sorted([*self._recent, revived], key=lambda b: b.start)
        self._recent.clear()
        self._recent.extend(ordered)
        self._recent_changed()

    def _candle(self, b: _Bucket, received_ns: int) -> Candle:
        return Candle(
            instrument_token=self.instrument_token,
            symbol=self.symbol,
            timeframe=self.timeframe,
            start=b.start,
            end=b.end,
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=b.volume,
            tick_count=b.count,
            revision=b.revision,
            last_tick_received_ns=received_ns,
        )

    def _report_gap(self, start: datetime, end: datetime) -> None:
        buckets = list(buckets_in(start, end, self.timeframe, self._sessions_of))
        if not buckets:
            return
        # One record per session piece, so a gap never spans non-trading time.
        piece_start = buckets[0]
        previous = buckets[0]
        for b in buckets[1:]:
            if b.start != previous.end:
                self._add_gap(piece_start, previous)
                piece_start = b
            previous = b
        self._add_gap(piece_start, previous)

    def _add_gap(self, first: Bucket, last: Bucket) -> None:
        step = first.end - first.start
        count = 1 + round((last.start - first.start) / step) if step else 1
        self._gaps.append(
            CandleGap(
                self.instrument_token, self.symbol, self.timeframe, first.start, last.end, count
            )
        )
        if self._with_records is not None:
            self._with_records.add(self)
        self.stats.gaps += count

    def _reject(self, tick: Tick, reason: str) -> list[Candle]:
        self.stats.rejected += 1
        self._rejects.append(RejectedTick(tick, self.timeframe, reason))
        if self._with_records is not None:
            self._with_records.add(self)
        return []


def _bucket_state(b: _Bucket) -> BucketState:
    # The bounds in the ticks' zone (UTC off the bus): the same instants as start/end, and a
    # checkpoint stores instants only, but UTC datetimes encode ~7x faster than IST ones.
    return BucketState(
        b.lo, b.hi, b.open, b.high, b.low, b.close, b.first_ts, b.last_ts, b.count, b.volume,
        b.revision, b.received_ns,
    )  # fmt: skip


def _bucket_of_state(s: BucketState) -> _Bucket:
    # Bounds back in IST (the candles' zone); the fast-path bounds in UTC, the zone of ticks read
    # off the bus, so the first ticks after a restore take the fast path.
    start, end = s.start.astimezone(IST), s.end.astimezone(IST)
    first = Tick(
        instrument_token=0, symbol="", last_price=s.open,
        exchange_ts=s.first_ts.astimezone(UTC), received_ns=s.received_ns,
    )  # fmt: skip
    b = _Bucket(start, end, first, s.volume)
    b.high, b.low, b.close = s.high, s.low, s.close
    b.last_ts = s.last_ts.astimezone(UTC)
    b.count = s.count
    b.revision = s.revision
    return b
