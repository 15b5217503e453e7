"""`tradealgo`: the operator's command line (composition root of the CLI).

    tradealgo run                      the whole system locally (simulator + paper, or Kite)
    tradealgo status                   services, token, mode, halt, kill switch, positions, P&L
    tradealgo login [--request-token]  the daily Kite login (automated, or paste a request_token)
    tradealgo halt --reason ... / resume --reason ...
    tradealgo kill-switch release --reason ...
    tradealgo positions | orders | signals [--limit N] [--since ...]
    tradealgo backtest ... | replay --date ... | sim ... | config --markdown|--env|--write

Each command module registers its sub-parser and a `func(args) -> int`; errors the user can act on
are `CliError`s, printed as one line with a non-zero exit code (see services.cli.errors).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.cli import (
    config_cmd,
    control_cmd,
    delegate_cmd,
    history_cmd,
    login_cmd,
    replay_cmd,
    run_cmd,
    status_cmd,
)
from services.cli.errors import INTERRUPTED, UNREACHABLE, USAGE, CliError
from shared.settings import SettingsError

COMMANDS = (
    run_cmd,
    status_cmd,
    login_cmd,
    control_cmd,
    history_cmd,
    delegate_cmd,
    replay_cmd,
    config_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradealgo",
        description="TradeAlgo: run, watch and steer the trading system.",
        epilog="Exit codes: 0 ok, 1 problem found or refused, 2 usage/settings error, "
        "3 Redis/ClickHouse/service unreachable, 130 interrupted.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the CLI does")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in delegate_cmd.DELEGATES:
        # Everything after `backtest` / `sim` (including --help) belongs to that program.
        return _guarded(lambda: delegate_cmd.delegate(args_list[0], args_list[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return _guarded(lambda: int(args.func(args)))


def _guarded(command: Callable[[], int]) -> int:
    """Run a command, turning the errors a user can act on into one line and an exit code."""
    try:
        code = command()
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except (RedisConnectionError, RedisTimeoutError) as exc:
        print(f"error: cannot reach Redis ({exc}); is the system running?", file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
