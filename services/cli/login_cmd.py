"""`tradealgo login`: the daily Kite login (wired to the Sentinel once its shell lands)."""

from __future__ import annotations

import argparse

from services.cli.errors import USAGE, CliError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("login", help="the daily Kite login")
    parser.add_argument("--request-token", help="paste the request_token from the redirect URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise CliError("login is not wired yet (waiting for the Sentinel's login functions)", USAGE)
