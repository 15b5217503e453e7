"""The state of a CandleBuilder as plain data: what a Consumer checkpoints so another replica (or
the same one after a restart) continues a partition exactly where it stopped.

A checkpoint holds, per instrument, the state of each of its builders after the last committed
stream entry: the open bucket, the closed buckets a late tick may still revise, the day's
cumulative volume counter and the end of the newest bucket. Restoring it and handling the entries
after that entry produces the same candles, gaps and revisions as if nothing had happened.
Encoded as compact msgpack (array-like structs; datetimes as msgpack timestamps, exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import msgspec

from shared.messages import Timeframe


class BucketState(msgspec.Struct, frozen=True, array_like=True):
    """One open or recently closed bucket."""

    start: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    first_ts: datetime
    last_ts: datetime
    count: int
    volume: int
    revision: int
    received_ns: int


class BuilderState(msgspec.Struct, frozen=True, array_like=True):
    """One (instrument, timeframe) builder between two ticks."""

    instrument_token: int
    symbol: str
    timeframe: Timeframe
    open_bucket: BucketState | None
    recent: tuple[BucketState, ...]
    day: date | None
    cumulative: int
    base: int
    last_end: datetime | None
    tail_reported: bool


class InstrumentState(msgspec.Struct, frozen=True, array_like=True):
    """Every builder of one instrument (one entry of a partition checkpoint)."""

    v: int
    builders: tuple[BuilderState, ...]


class EncodedBuilderState(msgspec.Struct, frozen=True, array_like=True):
    """A BuilderState whose closed buckets are already encoded (`encode_recent`): they change
    only when a bucket closes or is revised, so a builder keeps them encoded between
    checkpoints. Encodes to the very bytes of the BuilderState it stands for."""

    instrument_token: int
    symbol: str
    timeframe: Timeframe
    open_bucket: BucketState | None
    recent: msgspec.Raw
    day: date | None
    cumulative: int
    base: int
    last_end: datetime | None
    tail_reported: bool


class _EncodedInstrumentState(msgspec.Struct, frozen=True, array_like=True):
    v: int
    builders: tuple[EncodedBuilderState, ...]


STATE_VERSION = 1
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(InstrumentState)


class CheckpointError(ValueError):
    """A checkpoint entry that cannot be restored (corrupt or of another version)."""


def encode_instrument(builders: Sequence[BuilderState]) -> bytes:
    """The checkpoint value of one instrument."""
    return _encoder.encode(InstrumentState(STATE_VERSION, tuple(builders)))


def encode_recent(recent: Sequence[BucketState]) -> msgspec.Raw:
    """The closed buckets of a builder state, encoded once for `EncodedBuilderState`."""
    return msgspec.Raw(_encoder.encode(tuple(recent)))


def encode_instrument_states(builders: Sequence[EncodedBuilderState]) -> bytes:
    """`encode_instrument` of the states these stand for, without encoding their closed
    buckets again."""
    return _encoder.encode(_EncodedInstrumentState(STATE_VERSION, tuple(builders)))


def decode_instrument(payload: bytes) -> tuple[BuilderState, ...]:
    """Inverse of `encode_instrument`; CheckpointError when it cannot be read."""
    try:
        state = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CheckpointError(f"unreadable builder state: {exc}") from None
    if state.v != STATE_VERSION:
        raise CheckpointError(f"builder state version {state.v}, this build reads {STATE_VERSION}")
    return state.builders
