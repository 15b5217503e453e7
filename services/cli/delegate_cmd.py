"""`tradealgo backtest ...` and `tradealgo sim ...`: hand the arguments to those programs as is."""

from __future__ import annotations

import argparse
import importlib

from services.cli.errors import USAGE, CliError

DELEGATES = {
    "backtest": (
        "services.consumer.backtest.cli",
        "run a strategy over history (the same strategy code as live); --help for its options",
    ),
    "sim": (
        "services.simulator.__main__",
        "run the Kite simulator alone (REST + KiteTicker on loopback); --help for its options",
    ),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, (_module, summary) in DELEGATES.items():
        parser = commands.add_parser(name, help=summary, add_help=False)
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(func=run, delegate_name=name)


def run(args: argparse.Namespace) -> int:
    return delegate(args.delegate_name, list(args.rest))


def delegate(name: str, argv: list[str]) -> int:
    """Call `main(argv)` of the program behind `tradealgo <name>`; its return is the exit code."""
    module_name = DELEGATES[name][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"`tradealgo {name}` is not available: {exc}", USAGE) from None
    try:
        code = module.main(argv)
    except SystemExit as exc:  # an argparse-based main exits on --help and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE)
    return int(code or 0)
