"""Instruments and option quotes as the engine needs them, from the Sentinel's dump and live data.

- `instrument_info`: one INSTRUMENTS_KEY value (the Sentinel's JSON row) -> `InstrumentInfo`;
- `option_quote_from_tick` / `option_quote_from_kite`: a full-mode tick or a Kite quote of an
  option -> `OptionQuote` (bid/ask from the best depth levels);
- `chain_window`: the contracts of an underlying worth quoting: the nearest `expiries` expiries
  after `now`, `strikes_each_side` listed strikes around the underlying's price.
Pure: the shell reads Redis, ticks and Kite and hands the rows here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from services.gatekeeper.options import OptionQuote
from services.gatekeeper.state import InstrumentInfo
from shared.clock import to_ist
from shared.messages import Tick


def instrument_info(raw: str | bytes | Mapping[str, Any]) -> InstrumentInfo:
    """Parse one instruments row; ValueError (with the symbol when known) when unusable."""
    row: Mapping[str, Any] = json.loads(raw) if isinstance(raw, str | bytes) else raw
    try:
        exchange, tradingsymbol = str(row["exchange"]), str(row["tradingsymbol"])
        kind = str(row.get("instrument_type") or "")
        expiry_text = str(row.get("expiry") or "")
        freeze = int(row.get("freeze_quantity") or 0)
        lot = int(row.get("lot_size") or 1)
        tick = float(row.get("tick_size") or 0.05)
        info = InstrumentInfo(
            symbol=f"{exchange}:{tradingsymbol}",
            instrument_token=int(row["instrument_token"]),
            lot_size=max(lot, 1),
            tick_size=tick if tick > 0 else 0.05,
            freeze_qty=freeze or None,
            segment=str(row.get("segment") or exchange),
            underlying=str(row.get("name") or "") or None,
            expiry=date.fromisoformat(expiry_text) if expiry_text else None,
            strike=float(row.get("strike") or 0.0) if kind in ("CE", "PE") else None,
            option_type="CE" if kind == "CE" else "PE" if kind == "PE" else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        name = f"{row.get('exchange')}:{row.get('tradingsymbol')}"
        raise ValueError(f"instrument {name}: {type(exc).__name__}: {exc}") from None
    return info


def _option(
    info: InstrumentInfo, ltp: float, bid: float, ask: float, volume: int, oi: int
) -> OptionQuote | None:
    if info.option_type is None or info.expiry is None or info.strike is None or ltp <= 0:
        return None
    return OptionQuote(
        symbol=info.symbol,
        instrument_token=info.instrument_token,
        expiry=info.expiry,
        strike=info.strike,
        option_type=info.option_type,
        lot_size=info.lot_size,
        tick_size=info.tick_size,
        ltp=ltp,
        bid=bid,
        ask=ask,
        volume=volume,
        oi=oi,
    )


def option_quote_from_tick(info: InstrumentInfo, tick: Tick) -> OptionQuote | None:
    """A full-mode tick of an option as a chain entry (no depth: bid = ask = 0, filtered out)."""
    bid = max((b.price for b in tick.bids if b.quantity > 0), default=0.0)
    asks = [a.price for a in tick.asks if a.quantity > 0 and a.price > 0]
    return _option(info, tick.last_price, bid, min(asks, default=0.0), tick.volume, tick.oi)


def option_quote_from_kite(info: InstrumentInfo, quote: Mapping[str, Any]) -> OptionQuote | None:
    """One value of `KiteConnect.quote()` for an option as a chain entry."""
    depth = quote.get("depth") or {}
    bids = [float(b.get("price") or 0) for b in depth.get("buy", []) if b.get("quantity")]
    asks = [float(a.get("price") or 0) for a in depth.get("sell", []) if a.get("quantity")]
    return _option(
        info,
        float(quote.get("last_price") or 0.0),
        max(bids, default=0.0),
        min((a for a in asks if a > 0), default=0.0),
        int(quote.get("volume") or 0),
        int(quote.get("oi") or 0),
    )


def chain_window(
    options: Iterable[InstrumentInfo],
    spot: float,
    now: datetime,
    expiries: int,
    strikes_each_side: int,
) -> list[InstrumentInfo]:
    """The options to quote for a chain: nearest expiries (today's included), strikes near spot."""
    today = to_ist(now).date()
    listed = [o for o in options if o.expiry is not None and o.strike is not None]
    upcoming = sorted({o.expiry for o in listed if o.expiry is not None and o.expiry >= today})
    chosen: list[InstrumentInfo] = []
    for expiry in upcoming[:expiries]:
        of_expiry = [o for o in listed if o.expiry == expiry]
        strikes = sorted({o.strike for o in of_expiry if o.strike is not None})
        if not strikes:
            continue
        atm = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), strikes[i]))
        near = set(strikes[max(atm - strikes_each_side, 0) : atm + strikes_each_side + 1])
        chosen.extend(o for o in of_expiry if o.strike in near)
    return sorted(chosen, key=lambda o: (o.expiry or today, o.strike or 0.0, o.symbol))
