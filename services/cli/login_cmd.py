"""`tradealgo login`: the daily Kite login through the Sentinel's own login flow.

    tradealgo login                        automated: user id + password + TOTP (from .env)
    tradealgo login --request-token TOKEN  manual: exchange the request_token from the redirect URL
    tradealgo login --url                  print the Kite login page to open for the manual way

Either way the token is validated (profile call), stored in Redis for the services with its expiry
and announced (SessionEvent LOGIN, fingerprint only): the running Sentinel adopts it and the
services re-read it. The token itself is never printed. A rejected password or TOTP is not retried
(accounts lock after repeated failures).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from prometheus_client import CollectorRegistry

from services.cli import connections
from services.cli.errors import OK, PROBLEM, USAGE, CliError
from services.cli.output import format_time
from services.cli.settings import RunSettings, endpoints_owner_alive
from services.sentinel.adapters.login_flow import LoginResult
from services.sentinel.kite_login import connect_login_url
from services.sentinel.settings import SentinelSettings
from shared.bus import StreamBus, redis_client
from shared.clock import SystemClock
from shared.logs import register_settings_secrets
from shared.settings import ENV_FILE, load_settings

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "login",
        help="the daily Kite login: automated (TOTP) or with a pasted request_token",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--request-token", help="the request_token from the redirect URL")
    how.add_argument("--url", action="store_true", help="print the Kite login page and exit")
    parser.set_defaults(func=run)


def sentinel_settings() -> SentinelSettings:
    """The Sentinel's settings as the running Sentinel sees them: `.env`, plus the addresses of a
    running local stack (`tradealgo run` writes them next to the CLI's)."""
    endpoints = load_settings(RunSettings).endpoints_file()
    if endpoints_owner_alive(endpoints):
        return load_settings(SentinelSettings, _env_file=(ENV_FILE, str(endpoints)))
    return load_settings(SentinelSettings)


async def login(settings: SentinelSettings, request_token: str | None) -> LoginResult:
    """One login with the Sentinel's own wiring; the `sessions` audit row goes through the
    Sentinel's ClickHouse writer (spooled under SPOOL_DIR when ClickHouse is down)."""
    from services.sentinel.__main__ import login_flow
    from services.sentinel.adapters.clickhouse_store import SentinelClickHouse
    from services.sentinel.adapters.metrics import SentinelMetrics

    audit = SentinelClickHouse(settings, SentinelMetrics(CollectorRegistry()))
    await audit.start()
    redis = redis_client(settings.redis_url)
    try:
        await redis.ping()
        bus = StreamBus(redis, service="cli", maxlen=connections.STREAM_MAXLEN)
        flow, _, _ = login_flow(settings, redis, bus, audit, SystemClock())
        if request_token is not None:
            return await flow.with_request_token(request_token, "cli")
        return await flow.automated("cli")
    finally:
        await redis.aclose()
        await audit.close()


def run(args: argparse.Namespace) -> int:
    settings = sentinel_settings()
    register_settings_secrets(settings)
    if args.url:
        if not settings.api_key:
            raise CliError("SENTINEL_API_KEY (or KITE_API_KEY) is not set in .env", USAGE)
        print(connect_login_url(settings.kite_login_root, settings.api_key))
        print("Log in there; copy request_token=... from the page it redirects to, then run:")
        print("  tradealgo login --request-token <request_token>")
        return OK
    if args.request_token is not None and not args.request_token.strip():
        raise CliError("--request-token is empty", USAGE)
    result = asyncio.run(login(settings, args.request_token))
    if not result.ok or result.info is None:
        hint = (
            ""
            if args.request_token is not None
            else " (or `tradealgo login --url` for the manual way)"
        )
        raise CliError(f"login failed ({result.outcome}): {result.reason}{hint}", PROBLEM)
    info = result.info
    print(f"logged in as {info.user_id}: token {info.fingerprint}, valid until "
          f"{format_time(info.expires_at)} IST")  # fmt: skip
    print(
        "The token is in Redis; the Sentinel and the services pick it up now (SessionEvent LOGIN)."
    )
    return OK
