"""`tradealgo positions`, `orders`, `signals`: the trading tables in ClickHouse, newest first."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, time, timedelta

from clickhouse_driver.errors import Error as ClickHouseError
from clickhouse_driver.errors import NetworkError, SocketTimeoutError

from services.cli import connections, history
from services.cli.errors import OK, PROBLEM, USAGE, CliError
from services.cli.output import render_table
from services.cli.settings import load_cli_settings
from shared.clock import IST, SystemClock

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

COMMANDS = {
    "positions": (history.POSITIONS, "open and closed positions (latest row per symbol)"),
    "orders": (history.ORDERS, "orders with their latest status"),
    "signals": (history.SIGNALS, "strategy signals"),
}


def parse_since(text: str, now: datetime) -> datetime:
    """'30m', '2h', '1d', 'today', '2024-08-20', '2024-08-20T10:00' (IST) -> an aware time."""
    value = text.strip().lower()
    match = _RELATIVE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if value == "today":
        return datetime.combine(now.astimezone(IST).date(), time(0), IST)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use 30m, 2h, 1d, today, YYYY-MM-DD or YYYY-MM-DDTHH:MM (IST)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, (view, summary) in COMMANDS.items():
        parser = commands.add_parser(name, help=f"{summary} (ClickHouse `{view.table}`)")
        parser.add_argument("--limit", type=int, help="rows to show (CLI_DEFAULT_LIMIT)")
        parser.add_argument("--since", help="30m, 2h, 1d, today, YYYY-MM-DD[THH:MM] (IST)")
        parser.add_argument("--wide", action="store_true", help="show long texts in full")
        if name == "positions":
            parser.add_argument(
                "--all", action="store_true", help="also closed positions (quantity 0)"
            )
        parser.set_defaults(func=run, view=view)


def run(args: argparse.Namespace) -> int:
    settings = load_cli_settings()
    limit = settings.default_limit if args.limit is None else args.limit
    if limit < 1:
        raise CliError("--limit must be at least 1", USAGE)
    try:
        since = parse_since(args.since, SystemClock().now()) if args.since else None
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    view: history.TableView = args.view
    try:
        client = connections.clickhouse_client(settings)
        try:
            columns, rows = history.fetch(client, view, limit, since)
        finally:
            client.disconnect()
    except history.TableMissing as exc:
        raise CliError(str(exc), PROBLEM) from None
    except (NetworkError, SocketTimeoutError, OSError, EOFError) as exc:
        raise connections.clickhouse_unreachable(settings, exc) from None
    except ClickHouseError as exc:
        raise CliError(f"ClickHouse refused the query on `{view.table}`: {exc}", PROBLEM) from None
    if view is history.POSITIONS and not getattr(args, "all", False):
        quantity = columns.index("quantity") if "quantity" in columns else None
        if quantity is not None:
            rows = [row for row in rows if row[quantity]]
    print(render_table(columns, rows, 0 if args.wide else settings.cell_width))
    if len(rows) == limit:
        print(f"(newest {limit} rows; --limit to see more)")
    return OK
