"""Write deploy/prometheus/nse_calendar_rules.yml: NSE market hours as Prometheus recording rules.

Prometheus cannot read the market calendar, so the alert rules learn when the market is open from
recording rules generated from the same file the services use (shared/marketdata/nse_calendar.csv,
read through shared.calendar). Regenerate after every calendar update:

    python deploy/tools/nse_calendar_rules.py > deploy/prometheus/nse_calendar_rules.yml

(tests/deploy/test_nse_calendar_rules.py fails while the committed file is out of date.)

The rules, all in IST (UTC+05:30, no daylight saving):
- tradealgo:nse_market_open     1 inside a session, else 0
- tradealgo:nse_trading_window  1 from 15 minutes before a trading day's first session (the
                                pre-open) until its last close, else 0: the token must be valid
                                and the services ready
A weekday 09:15-15:30 is a session unless the calendar says otherwise for that date; dates the
calendar treats differently (holidays, special or split sessions, Muhurat trading) are listed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from shared.calendar import (
    PRE_OPEN_LEAD,
    REGULAR_CLOSE,
    REGULAR_OPEN,
    NseCalendar,
    Session,
    load_calendar,
)

# Dates before this year are history: leaving them out keeps the rules short.
FIRST_YEAR = 2025
IST_OFFSET_S = 19800  # 05:30
EPOCH = date(1970, 1, 1)


def seconds_of_day(when: time) -> int:
    return when.hour * 3600 + when.minute * 60 + when.second


def epoch_day(day: date) -> int:
    """Days since 1970-01-01, the number `floor((time() + 19800) / 86400)` gives in IST."""
    return (day - EPOCH).days


def regular_sessions(day: date) -> list[tuple[time, time]]:
    """What the generic rule assumes for a date: 09:15-15:30 on weekdays, nothing at weekends."""
    return [(REGULAR_OPEN, REGULAR_CLOSE)] if day.weekday() < 5 else []


def hours(sessions: list[Session]) -> list[tuple[time, time]]:
    return [(s.open.time(), s.close.time()) for s in sessions]


def exceptions(
    calendar: NseCalendar, first: date, last: date
) -> Iterator[tuple[date, list[tuple[time, time]]]]:
    """Dates whose sessions differ from the generic weekday rule, with their real sessions."""
    day = first
    while day <= last:
        actual = hours(calendar.sessions(day))
        if actual != regular_sessions(day):
            yield day, actual
        day += timedelta(days=1)


def open_windows(sessions: list[tuple[time, time]]) -> list[tuple[int, int]]:
    return [(seconds_of_day(o), seconds_of_day(c)) for o, c in sessions]


def trading_windows(sessions: list[tuple[time, time]]) -> list[tuple[int, int]]:
    if not sessions:
        return []
    lead = int(PRE_OPEN_LEAD.total_seconds())
    return [(max(0, seconds_of_day(sessions[0][0]) - lead), seconds_of_day(sessions[-1][1]))]


def listed_expr(
    special: list[tuple[date, list[tuple[time, time]]]], describe: dict[date, str]
) -> str:
    """1 on the dates the calendar lists (holidays, special sessions), else 0."""
    if not special:
        return "vector(0)"
    lines = ["("]
    for i, (day, _) in enumerate(special):
        joiner = "   " if i == 0 else "or "
        lines.append(
            f"  {joiner}tradealgo:ist_epoch_day == {epoch_day(day)}"
            f"  # {day.isoformat()} {describe[day]}"
        )
    lines += [") * 0 + 1", "or on() vector(0)"]
    return "\n".join(lines)


def hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def window_rule_expr(
    special: list[tuple[date, list[tuple[int, int]]]], regular_start: int, regular_end: int
) -> str:
    """1 inside the weekday window on unlisted dates or inside a listed date's own windows."""
    lines = [
        f"# Monday to Friday {hhmm(regular_start)}-{hhmm(regular_end)} IST, unless the calendar lists the date",
        "(",
        "    (tradealgo:ist_weekday >= 1 <= 5)",
        f"    and on() (tradealgo:ist_seconds_of_day >= {regular_start} < {regular_end})",
        "    and on() (tradealgo:nse_listed_date == 0)",
        ") * 0 + 1",
    ]
    for day, spans in special:
        for start_s, end_s in spans:
            lines.append(
                f"or on() (tradealgo:ist_epoch_day == {epoch_day(day)}"
                f" and on() tradealgo:ist_seconds_of_day >= {start_s} < {end_s}) * 0 + 1"
                f"  # {day.isoformat()} {hhmm(start_s)}-{hhmm(end_s)}"
            )
    lines.append("or on() vector(0)")
    return "\n".join(lines)


def render(calendar: NseCalendar, first_year: int = FIRST_YEAR) -> str:
    first = date(max(first_year, calendar.first_year), 1, 1)
    last = date(calendar.last_year, 12, 31)
    special = list(exceptions(calendar, first, last))
    describe = {day: calendar.describe(day).replace("#", "") for day, _ in special}
    regular_open, regular_close = seconds_of_day(REGULAR_OPEN), seconds_of_day(REGULAR_CLOSE)
    lead = int(PRE_OPEN_LEAD.total_seconds())
    opens = [(day, open_windows(sessions)) for day, sessions in special]
    windows = [(day, trading_windows(sessions)) for day, sessions in special]

    def block(text: str) -> str:
        return "\n".join(f"          {line}" for line in text.splitlines())

    return f"""\
# GENERATED by deploy/tools/nse_calendar_rules.py from shared/marketdata/nse_calendar.csv
# ({first.isoformat()} to {last.isoformat()}); do not edit. Regenerate after a calendar update:
#   python deploy/tools/nse_calendar_rules.py > deploy/prometheus/nse_calendar_rules.yml
# Rules of one group run in order at the same evaluation time, so the helpers are current.
groups:
  - name: nse-calendar
    interval: 5s
    rules:
      - record: tradealgo:ist_seconds_of_day
        expr: vector((time() + {IST_OFFSET_S}) % 86400)
      - record: tradealgo:ist_epoch_day
        expr: floor(vector(time() + {IST_OFFSET_S}) / 86400)
      - record: tradealgo:ist_weekday
        expr: day_of_week(vector(time() + {IST_OFFSET_S}))
      # 1 on dates whose sessions differ from a plain weekday or weekend, else 0.
      - record: tradealgo:nse_listed_date
        expr: |
{block(listed_expr(special, describe))}
      # 1 while an NSE session is open (09:15-15:30 IST on a regular day), else 0.
      - record: tradealgo:nse_market_open
        expr: |
{block(window_rule_expr(opens, regular_open, regular_close))}
      # 1 from 15 minutes before a trading day's first session until its last close, else 0.
      - record: tradealgo:nse_trading_window
        expr: |
{block(window_rule_expr(windows, regular_open - lead, regular_close))}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendar", default="", help="calendar file (default: the shipped one)")
    parser.add_argument("--from-year", type=int, default=FIRST_YEAR)
    args = parser.parse_args(argv)
    sys.stdout.write(render(load_calendar(args.calendar), args.from_year))
    return 0


if __name__ == "__main__":
    sys.exit(main())
