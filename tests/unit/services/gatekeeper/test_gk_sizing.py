"""Sizing in whole lots (2 % risk, 10 % capital) and freeze-quantity slicing."""

from __future__ import annotations

import pytest

from services.gatekeeper.risk.sizing import size_entry, slice_quantity, whole_lots


@pytest.mark.parametrize(
    ("kwargs", "quantity", "binding"),
    [
        # capital 100,000: 10 % = 10,000; 2 % risk = 2,000.
        ({"price": 100.0, "lot_size": 1, "stop_loss": 90.0}, 100, "capital cap"),  # risk: 200
        ({"price": 100.0, "lot_size": 1, "stop_loss": 99.0}, 100, "capital cap"),
        ({"price": 100.0, "lot_size": 1, "stop_loss": 20.0}, 25, "risk"),  # 2000 / 80
        ({"price": 100.0, "lot_size": 1, "stop_loss": None}, 100, "capital cap"),
        ({"price": 100.0, "lot_size": 1, "stop_loss": 90.0, "requested": 37}, 37, "requested"),
        ({"price": 3.0, "lot_size": 75, "stop_loss": 2.0}, 1950, "risk"),  # 2000 / 75 = 26.7 lots
        ({"price": 100.0, "lot_size": 75, "stop_loss": 130.0}, 0, "risk"),  # 2000 / 2250 = 0.9
        ({"price": 100.0, "lot_size": 50, "stop_loss": 130.0}, 50, "risk"),  # 2000 / 1500 = 1.3
        ({"price": 200.0, "lot_size": 50, "stop_loss": 260.0}, 0, "risk"),  # capital 1, risk 0.67
        ({"price": 300.0, "lot_size": 50, "stop_loss": 290.0}, 0, "capital cap"),  # 10000 / 15000
        ({"price": 10.0, "lot_size": 1, "stop_loss": 9.0, "max_quantity": 300}, 300, "slicing"),
        ({"price": 100.0, "lot_size": 25, "stop_loss": 90.0, "requested": 60}, 50, "requested"),
    ],
)
def test_entry_sizing_takes_the_tightest_limit_in_whole_lots(
    kwargs: dict[str, object], quantity: int, binding: str
) -> None:
    sizing = size_entry(
        capital=100_000.0,
        risk_pct=2.0,
        max_capital_pct=10.0,
        **kwargs,  # type: ignore[arg-type]
    )
    assert sizing.quantity == quantity
    assert sizing.quantity % int(kwargs["lot_size"]) == 0  # type: ignore[call-overload]
    assert f"by {binding}" in sizing.reason
    if not quantity:
        assert "zero lots" in sizing.reason


def test_short_option_sizing_uses_margin_per_unit() -> None:
    # premium 100, stop 130; margin 15 % of a 24,000 underlying = 3,600 per unit.
    sizing = size_entry(
        capital=1_000_000.0,
        price=100.0,
        lot_size=25,
        risk_pct=2.0,
        max_capital_pct=10.0,
        stop_loss=130.0,
        capital_per_unit=3_600.0,
    )
    # capital: 100,000 / (3,600 x 25) = 1.1 -> 1 lot; risk: 20,000 / (30 x 25) = 26 lots.
    assert sizing.quantity == 25
    assert "by capital cap" in sizing.reason


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"price": 0.0, "lot_size": 1, "stop_loss": None}, "cannot size"),
        ({"price": 100.0, "lot_size": 1, "stop_loss": 100.0}, "equals the entry price"),
        ({"price": 100.0, "lot_size": 1, "stop_loss": None, "capital_per_unit": 0.0}, "per unit"),
    ],
)
def test_unsizable_entries_say_why(kwargs: dict[str, object], why: str) -> None:
    sizing = size_entry(
        capital=100_000.0,
        risk_pct=2.0,
        max_capital_pct=10.0,
        **kwargs,  # type: ignore[arg-type]
    )
    assert sizing.quantity == 0
    assert why in sizing.reason


@pytest.mark.parametrize(
    ("quantity", "lot", "lots"), [(0, 25, 0), (24, 25, 0), (75, 25, 3), (-5, 1, 0)]
)
def test_whole_lots_round_down(quantity: int, lot: int, lots: int) -> None:
    assert whole_lots(quantity, lot) == lots


@pytest.mark.parametrize(
    ("quantity", "lot", "freeze", "max_slices", "slices", "remainder"),
    [
        (1800, 75, 1800, 10, (1800,), 0),  # equal to the freeze quantity: one order
        (1875, 75, 1800, 10, (1800, 75), 0),
        (3600, 75, 1800, 10, (1800, 1800), 0),
        (2025, 75, 1801, 10, (1800, 225), 0),  # an off-lot freeze rounds down to whole lots
        (600, 30, 600, 10, (600,), 0),
        (6300, 30, 600, 10, (600,) * 10, 300),  # beyond 10 slices: remainder for later
        (100, 1, None, 10, (100,), 0),  # no freeze limit
        (50, 25, 20, 10, (), 50),  # freeze below one lot: impossible
        (70, 25, 1800, 10, (), 70),  # not whole lots
        (0, 25, 1800, 10, (), 0),
    ],
)
def test_slicing_keeps_every_child_within_the_freeze_quantity(
    quantity: int,
    lot: int,
    freeze: int | None,
    max_slices: int,
    slices: tuple[int, ...],
    remainder: int,
) -> None:
    result = slice_quantity(quantity, lot, freeze, max_slices)
    assert result.slices == slices
    assert result.remainder == remainder
    assert sum(result.slices) + result.remainder == quantity
    assert all(s % lot == 0 and (freeze is None or s <= freeze) for s in result.slices)
    assert len(result.slices) <= max_slices
    assert result.reason
