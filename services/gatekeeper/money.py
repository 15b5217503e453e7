"""Rupees as exact values: floats from the wire become Decimal/paise before any boundary test."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def to_decimal(value: float) -> Decimal:
    """The decimal a float was written as (0.05 -> Decimal('0.05'), not 0.05000000000000000277)."""
    return Decimal(repr(value))


def to_paise(rupees: float) -> int:
    """Rupees -> integer paise, rounding half to even at the paisa."""
    return int((to_decimal(rupees) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
