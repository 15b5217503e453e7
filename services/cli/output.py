"""Readable terminal output: aligned tables, rupees, durations and ages (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.clock import to_ist


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 0
) -> str:
    """An aligned plain-text table; numbers are right-aligned, text left-aligned; a text longer
    than `max_width` (0: no limit) is cut with '…'.

    An empty `rows` gives the header and a "(none)" line, so "no rows" is never a blank screen.
    """
    cells = [[_clip(_cell(value), max_width) for value in row] for row in rows]
    numeric = [
        bool(rows)
        and all(
            isinstance(row[i], int | float) and not isinstance(row[i], bool)
            for row in rows
            if row[i] is not None
        )
        for i in range(len(headers))
    ]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells] or ["(none)"]
    return "\n".join(out)


def _clip(text: str, width: int) -> str:
    return text if width <= 0 or len(text) <= width else text[: max(1, width - 1)] + "…"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a column without a zone: shown as stored
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return format_time(value)
    return str(value)


def format_time(when: datetime) -> str:
    """IST wall time, with the date: '2024-08-20 10:03:15'."""
    return to_ist(when).strftime("%Y-%m-%d %H:%M:%S")


def format_rupees(amount: float) -> str:
    """'+1,234.50' / '-87.00': P&L always shows its sign."""
    return f"{amount:+,.2f}"


def format_duration(seconds: float) -> str:
    """'2h 05m', '4m 10s', '12s'; negative durations read as 'ago' elsewhere, here absolute."""
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_count(value: float) -> str:
    """'1,234' for counters read from /metrics (floats there)."""
    return f"{int(value):,}"
