"""Numbers read from a /metrics page."""

from __future__ import annotations

import pytest

from services.cli.metrics_text import label_values, metric_sum, parse_samples

PAGE = """# HELP tradealgo_orders_total Orders
# TYPE tradealgo_orders_total counter
tradealgo_orders_total{mode="paper",status="COMPLETE"} 3.0
tradealgo_orders_total{mode="paper",status="REJECTED"} 1.0
# HELP tradealgo_pnl_rupees P&L
# TYPE tradealgo_pnl_rupees gauge
tradealgo_pnl_rupees{kind="realised"} 120.5
tradealgo_pnl_rupees{kind="mtm"} -30.25
# HELP tradealgo_open_positions Open positions
# TYPE tradealgo_open_positions gauge
tradealgo_open_positions 2.0
"""


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("tradealgo_orders", None, 4.0),
        ("tradealgo_orders_total", {"status": "COMPLETE"}, 3.0),
        ("tradealgo_pnl_rupees", {"kind": "mtm"}, -30.25),
        ("tradealgo_open_positions", None, 2.0),
        ("tradealgo_missing", None, None),
        ("tradealgo_orders", {"status": "OPEN"}, None),
    ],
)
def test_metric_sum_by_name_and_labels(
    name: str, labels: dict[str, str] | None, expected: float | None
) -> None:
    assert metric_sum(parse_samples(PAGE), name, labels) == expected


def test_label_values_sums_per_label_value() -> None:
    assert label_values(parse_samples(PAGE), "tradealgo_orders", "status") == {
        "COMPLETE": 3.0,
        "REJECTED": 1.0,
    }


def test_unparsable_page_reads_as_no_samples() -> None:
    assert parse_samples("this is { not prometheus") == []
