"""Terminal formatting: tables, rupees, durations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.cli.output import format_count, format_duration, format_rupees, render_table


@pytest.mark.parametrize(
    ("headers", "rows", "expected"),
    [
        (("a", "b"), [], "a  b\n-  -\n(none)"),
        (
            ("symbol", "qty"),
            [("NSE:NIFTY 50", 25), ("X", 1500)],
            "symbol         qty\n------------  ----\nNSE:NIFTY 50    25\nX             1500",
        ),
        (("price",), [(1234.5,)], "   price\n--------\n1,234.50"),
        (("v",), [(None,), (True,)], "v\n---\n-\nyes"),
        (
            ("when",),
            [(datetime(2024, 8, 20, 4, 0, tzinfo=UTC),)],
            "when\n-------------------\n2024-08-20 09:30:00",
        ),
        (
            ("naive",),
            [(datetime(2024, 8, 20, 9, 30),)],
            "naive\n-------------------\n2024-08-20 09:30:00",
        ),
    ],
)
def test_render_table_aligns_numbers_right_text_left_and_says_none_for_no_rows(
    headers: tuple[str, ...], rows: list[tuple[object, ...]], expected: str
) -> None:
    assert render_table(headers, rows) == expected


@pytest.mark.parametrize(
    ("amount", "text"), [(0.0, "+0.00"), (1234.5, "+1,234.50"), (-87.0, "-87.00")]
)
def test_format_rupees_always_shows_the_sign(amount: float, text: str) -> None:
    assert format_rupees(amount) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (12.9, "12s"), (250, "4m 10s"), (7500, "2h 05m"), (-61, "1m 01s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_count_reads_float_counters_as_whole_numbers() -> None:
    assert format_count(12345.0) == "12,345"


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (0, "reason\n----------------\nSTOP_LOSS hit 36"),
        (8, "reason\n--------\nSTOP_LO…"),
        (16, "reason\n----------------\nSTOP_LOSS hit 36"),
    ],
)
def test_render_table_cuts_long_texts(width: int, expected: str) -> None:
    assert render_table(("reason",), [("STOP_LOSS hit 36",)], width) == expected
