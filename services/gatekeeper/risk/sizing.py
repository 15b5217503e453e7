"""Position sizing in whole lots and freeze-quantity slicing.

Sizing of an entry takes the smallest of:
- risk: capital x risk_pct % / (|price - stop| x lot size) lots; without a stop-loss the risk leg is
  skipped and the reason says so (the capital cap still bounds the position);
- capital: capital x max_capital_pct % / (capital per unit x lot size) lots, where capital per unit
  is the price for a purchase and the margin per unit for a short option or future;
- the strategy's requested quantity, rounded DOWN to whole lots;
- `max_quantity` (what `max_slices` slices of the freeze quantity can carry).
Exact Decimal division, floored: a fraction of a lot is never bought.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from services.gatekeeper.money import to_decimal


@dataclass(frozen=True)
class Sizing:
    """Quantity in units (a multiple of the lot size); 0 means denied, with the reason."""

    quantity: int
    lots: int
    reason: str


@dataclass(frozen=True)
class Slicing:
    """Child-order quantities, each <= the freeze quantity; `remainder` did not fit `max_slices`."""

    slices: tuple[int, ...]
    remainder: int
    reason: str


def _floor_div(numerator: Decimal, denominator: Decimal) -> int:
    return int((numerator / denominator).to_integral_value(ROUND_FLOOR))


def whole_lots(quantity: int, lot_size: int) -> int:
    """How many whole lots `quantity` units hold (rounded down)."""
    if lot_size < 1:
        raise ValueError(f"lot size must be >= 1 (got {lot_size})")
    return max(quantity, 0) // lot_size


def size_entry(
    *,
    capital: float,
    price: float,
    lot_size: int,
    risk_pct: float,
    max_capital_pct: float,
    stop_loss: float | None,
    capital_per_unit: float | None = None,
    requested: int | None = None,
    max_quantity: int | None = None,
) -> Sizing:
    """Whole lots for a new position, with every limit that bound it in the reason."""
    if price <= 0 or lot_size < 1 or capital <= 0:
        return Sizing(0, 0, f"cannot size: price {price}, lot size {lot_size}, capital {capital}")
    per_unit = to_decimal(capital_per_unit if capital_per_unit is not None else price)
    if per_unit <= 0:
        return Sizing(0, 0, f"cannot size: capital per unit {per_unit}")
    lot = Decimal(lot_size)
    limits: list[tuple[int, str]] = []

    budget = to_decimal(capital) * to_decimal(max_capital_pct) / 100
    limits.append(
        (
            _floor_div(budget, per_unit * lot),
            f"capital cap {max_capital_pct} % = {budget:.2f} / ({per_unit} x lot {lot_size})",
        )
    )
    if stop_loss is not None:
        risk_unit = abs(to_decimal(price) - to_decimal(stop_loss))
        risk_budget = to_decimal(capital) * to_decimal(risk_pct) / 100
        if risk_unit == 0:
            return Sizing(0, 0, f"stop-loss {stop_loss} equals the entry price {price}")
        limits.append(
            (
                _floor_div(risk_budget, risk_unit * lot),
                f"risk {risk_pct} % = {risk_budget:.2f} / (|{price} - {stop_loss}| x lot "
                f"{lot_size})",
            )
        )
    else:
        limits.append((10**12, "no stop-loss: risk leg skipped, capital cap applies"))
    if requested is not None:
        limits.append(
            (whole_lots(requested, lot_size), f"requested {requested} units (lot {lot_size})")
        )
    if max_quantity is not None:
        limits.append((whole_lots(max_quantity, lot_size), f"slicing cap {max_quantity} units"))

    lots, binding = min(limits, key=lambda item: item[0])
    lots = max(lots, 0)
    detail = "; ".join(f"{text} -> {n} lots" for n, text in limits if n < 10**12)
    if lots == 0:
        return Sizing(0, 0, f"sized to zero lots by {binding} ({detail})")
    return Sizing(lots * lot_size, lots, f"{lots} lots x {lot_size} by {binding} ({detail})")


def max_slice_quantity(lot_size: int, freeze_qty: int | None) -> int | None:
    """The largest whole-lot quantity one order may carry (None: no freeze limit)."""
    if freeze_qty is None:
        return None
    return whole_lots(freeze_qty, lot_size) * lot_size


def slice_quantity(
    quantity: int, lot_size: int, freeze_qty: int | None, max_slices: int
) -> Slicing:
    """Split into child orders of at most the freeze quantity, whole lots each, <= max_slices.

    Greedy: full slices first, the rest last. What does not fit in `max_slices` is returned as
    the remainder (an exit sends it in a later order; an entry is sized to avoid it).
    """
    if quantity < 1:
        return Slicing((), 0, f"nothing to slice (quantity {quantity})")
    if lot_size < 1 or quantity % lot_size:
        return Slicing((), quantity, f"quantity {quantity} is not a multiple of lot {lot_size}")
    per_slice = max_slice_quantity(lot_size, freeze_qty)
    if per_slice is None or quantity <= per_slice:
        return Slicing((quantity,), 0, f"one order of {quantity}")
    if per_slice == 0:
        return Slicing((), quantity, f"freeze quantity {freeze_qty} is below one lot {lot_size}")
    full, rest = divmod(quantity, per_slice)
    slices = [per_slice] * full + ([rest] if rest else [])
    kept = tuple(slices[:max_slices])
    remainder = quantity - sum(kept)
    reason = f"{quantity} sliced into {len(kept)} orders of <= {per_slice} (freeze {freeze_qty})"
    if remainder:
        reason += f"; {remainder} beyond the {max_slices}-slice cap left for a later order"
    return Slicing(kept, remainder, reason)
