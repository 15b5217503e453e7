"""Command-line flags of the simulator; each overrides the SIM_* setting of the same name."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def _speed(text: str) -> float:
    if text.lower() in ("max", "fast", "0"):
        return 0.0
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("speed must be >= 0 or 'max'")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradealgo sim",
        description="A wire-compatible Kite Connect simulator (REST + KiteTicker) replaying real "
        "NSE 1-minute data. Every flag overrides its SIM_* setting (see the simulator README).",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--rest-port", type=int, help="REST port (default 8710; 0 = any free port)")
    p.add_argument("--ws-port", type=int, help="WebSocket port (default 8711; 0 = any free port)")
    p.add_argument("--speed", type=_speed, help="1 = real time, 60 = a minute per second, max")
    p.add_argument("--data", dest="data_dir", help="directory of the market data files")
    p.add_argument("--day", help="the trading day to replay, YYYY-MM-DD (default 2024-08-20)")
    p.add_argument("--start-time", help="simulated start time HH:MM[:SS] IST (default 09:15)")
    p.add_argument("--ticks-per-second", type=float, help="ticks per underlying per second")
    p.add_argument(
        "--paused", action="store_true", default=None, help="start with the clock paused"
    )
    p.add_argument("--seed", type=int, help="seed of the tick paths and depth")
    p.add_argument("--api-key", help="the simulated app's api_key (default sim_api_key)")
    p.add_argument("--api-secret", help="the simulated app's api_secret (default sim_api_secret)")
    p.add_argument("--user-id", help="the simulated user id (default SIM001)")
    p.add_argument("--password", help="the simulated user's password (default sim-password)")
    p.add_argument("--totp-secret", help="base32 TOTP secret of the simulated user")
    p.add_argument("--redirect-url", help="where connect/login redirects with the request_token")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def overrides(argv: Sequence[str] | None) -> dict[str, Any]:
    """The settings given on the command line (absent flags are left to SIM_* and defaults)."""
    args = vars(parser().parse_args(argv))
    return {name: value for name, value in args.items() if value is not None}
