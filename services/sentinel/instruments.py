"""The morning instruments dump, normalised for ClickHouse and Redis (pure).

Input: the rows of Kite's instruments CSV as the official client returns them (`expiry` a date or
"", numbers already typed). Output, per instrument:
- a row of the ClickHouse `instruments` table (with the dump date and the freeze quantity),
- a field of the Redis hash INSTRUMENTS_KEY: "EXCHANGE:TRADINGSYMBOL" -> JSON object with the
  keys of `INSTRUMENT_JSON_FIELDS`,
- a field of INSTRUMENT_TOKENS_KEY: instrument_token -> "EXCHANGE:TRADINGSYMBOL".

Freeze quantities are not in Kite's dump: they come from settings (per underlying name) and are
attached to that underlying's derivatives (F&O segments); everything else gets 0 ("no freeze").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from shared.errors import RejectedInput

DERIVATIVE_TYPES = frozenset({"FUT", "CE", "PE"})
INDEX_SEGMENT = "INDICES"
INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
    "freeze_quantity",
    "refreshed_at",
)
INSTRUMENT_JSON_FIELDS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "exchange",
    "segment",
    "instrument_type",
    "expiry",  # "YYYY-MM-DD" or ""
    "strike",
    "tick_size",
    "lot_size",
    "freeze_quantity",  # 0: none known
    "last_price",
)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or index) instrument of the day's dump."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    exchange: str
    segment: str
    instrument_type: str
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    freeze_quantity: int
    last_price: float

    @property
    def key(self) -> str:
        """ "EXCHANGE:TRADINGSYMBOL", the name every service uses."""
        return f"{self.exchange}:{self.tradingsymbol}"

    def to_json(self) -> str:
        data = asdict(self)
        data["expiry"] = self.expiry.isoformat() if self.expiry else ""
        return json.dumps(data, separators=(",", ":"))

    def row(self, refreshed_at: datetime) -> dict[str, Any]:
        """A row of the ClickHouse `instruments` table (INSTRUMENT_COLUMNS); the latest refresh
        of an instrument wins (ReplacingMergeTree on refreshed_at)."""
        data = asdict(self)
        data["refreshed_at"] = refreshed_at
        return data


def _expiry(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise RejectedInput(f"expiry {text!r} is not a date") from None


def normalise_instrument(raw: Mapping[str, Any], freeze: Mapping[str, int]) -> Instrument:
    """One dump row -> Instrument, or RejectedInput naming the bad field."""
    try:
        instrument_type = str(raw.get("instrument_type", "")).strip().upper()
        name = str(raw.get("name", "")).strip()
        is_derivative = instrument_type in DERIVATIVE_TYPES
        instrument = Instrument(
            instrument_token=int(raw["instrument_token"]),
            exchange_token=int(raw.get("exchange_token") or 0),
            tradingsymbol=str(raw["tradingsymbol"]).strip(),
            name=name,
            exchange=str(raw["exchange"]).strip().upper(),
            segment=str(raw.get("segment", "")).strip().upper(),
            instrument_type=instrument_type,
            expiry=_expiry(raw.get("expiry")),
            strike=float(raw.get("strike") or 0.0),
            tick_size=float(raw.get("tick_size") or 0.0),
            lot_size=int(raw.get("lot_size") or 0),
            freeze_quantity=freeze.get(name.upper(), 0) if is_derivative else 0,
            last_price=float(raw.get("last_price") or 0.0),
        )
    except KeyError as exc:
        raise RejectedInput(f"instrument row lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise RejectedInput(f"instrument row has a bad number: {exc}") from None
    if instrument.instrument_token <= 0 or not instrument.tradingsymbol:
        raise RejectedInput(f"instrument row without token or symbol: {dict(raw)!r}")
    # Indices are not tradable: Kite lists them with tick size 0 and lot size 0.
    tradable = instrument.segment != INDEX_SEGMENT
    if (
        instrument.tick_size < 0
        or instrument.lot_size < 0
        or (tradable and (instrument.tick_size == 0 or instrument.lot_size == 0))
    ):
        raise RejectedInput(
            f"{instrument.key}: tick size {instrument.tick_size} / lot size {instrument.lot_size}"
            " must be positive for a tradable instrument"
        )
    return instrument


@dataclass(frozen=True, slots=True)
class InstrumentDump:
    instruments: tuple[Instrument, ...]
    rejected: tuple[str, ...]  # one reason per rejected row


def normalise_dump(rows: Iterable[Mapping[str, Any]], freeze: Mapping[str, int]) -> InstrumentDump:
    """Every row normalised; bad rows are kept out with their reason (never silently)."""
    good: dict[str, Instrument] = {}
    rejected: list[str] = []
    for raw in rows:
        try:
            instrument = normalise_instrument(raw, freeze)
        except RejectedInput as exc:
            rejected.append(str(exc))
            continue
        if instrument.key in good:
            rejected.append(
                f"{instrument.key}: duplicate row (token {instrument.instrument_token})"
            )
            continue
        good[instrument.key] = instrument
    return InstrumentDump(tuple(good.values()), tuple(rejected))


def redis_hashes(
    instruments: Iterable[Instrument],
) -> tuple[dict[str, str], dict[str, str]]:
    """(INSTRUMENTS_KEY fields, INSTRUMENT_TOKENS_KEY fields)."""
    by_key: dict[str, str] = {}
    by_token: dict[str, str] = {}
    for instrument in instruments:
        by_key[instrument.key] = instrument.to_json()
        by_token[str(instrument.instrument_token)] = instrument.key
    return by_key, by_token


def missing_freeze_quantities(
    instruments: Iterable[Instrument], freeze: Mapping[str, int]
) -> list[str]:
    """Configured underlyings with no derivative in the dump (a typo in the setting, or a
    dump that lacks the F&O exchange): worth a warning, not a halt."""
    seen = {i.name.upper() for i in instruments if i.instrument_type in DERIVATIVE_TYPES}
    return sorted(name for name in freeze if name.upper() not in seen)
