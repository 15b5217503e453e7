"""The Sentinel's async shell: log in on schedule and on rejection, validate the token, refresh the
instruments, run the pre-market checks and HALT / RESUME the system.

One cycle runs every `check_interval_s`, and at once when something happens (a service reports a
rejected token, a login arrives from the CLI or the redirect endpoint). Every decision comes from
the pure modules (schedule, login_policy, checks); this file only gathers facts and writes results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.sentinel.adapters.halt_store import HaltStore
from services.sentinel.adapters.instrument_loader import InstrumentLoader
from services.sentinel.adapters.kite_session import KiteSessionClient
from services.sentinel.adapters.login_flow import LoginFlow, LoginResult
from services.sentinel.adapters.metrics import SentinelMetrics
from services.sentinel.adapters.premarket import PremarketGate
from services.sentinel.adapters.session_store import SessionStore
from services.sentinel.checks import (
    CheckResult,
    HaltState,
    instruments_check,
)
from services.sentinel.kite_login import connect_login_url
from services.sentinel.login_policy import LoginFailure, LoginGate, LoginTrigger, ValidationFailed
from services.sentinel.schedule import (
    TokenState,
    next_login_at,
    scheduled_login_skip_reason,
    token_problem,
)
from services.sentinel.settings import SentinelSettings
from services.sentinel.token_expiry import seconds_until
from shared import constants as c
from shared.alerts import Alert, Alerter, Severity
from shared.bus import StreamBus
from shared.calendar import NseCalendar
from shared.clock import Clock, to_ist
from shared.messages import Message, SessionEvent
from shared.session import token_fingerprint

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 60
HEARTBEAT_EVERY_S = 5.0


@dataclass
class SentinelDeps:
    """Everything the Sentinel talks to, built in __main__ (or a test)."""

    redis: Any  # redis.asyncio.Redis, bytes replies
    bus: StreamBus
    flow: LoginFlow
    session_client: KiteSessionClient
    sessions: SessionStore
    halts: HaltStore
    loader: InstrumentLoader
    clickhouse_ping: Callable[[], Awaitable[Any]]
    metrics: SentinelMetrics
    alerter: Alerter
    clock: Clock
    calendar: NseCalendar | None


class Sentinel:
    def __init__(self, settings: SentinelSettings, deps: SentinelDeps) -> None:
        self.settings = settings
        self.d = deps
        self.token = TokenState()
        self.gate = LoginGate()
        self.results: dict[str, CheckResult] = {}
        self.halt = HaltState(True, "sentinel", ("starting: checks not run yet",))
        self.instruments_loaded_at: datetime | None = None
        self.instrument_rows = 0
        self.instruments_error = ""
        self._instruments_tried_at = -1e18
        self._instruments_due = False
        self._validated_at = -1e18
        self._requested: LoginTrigger | None = "startup"
        self._last_refusal = ""
        self._wake = asyncio.Event()
        self._own_login = False
        self.next_scheduled = self._next_login(self.d.clock.now())
        self.cycles = 0
        self.gate_checks = PremarketGate(
            settings, deps.redis, deps.clickhouse_ping, deps.halts, deps.metrics, deps.alerter
        )

    # -- readiness ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """/ready: 503 with the reasons while the system is halted."""
        if self.halt.halted:
            return False, "halted: " + "; ".join(self.halt.reasons)
        return True, "ready"

    # -- running --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self._cycle_loop(stop), name="sentinel-cycle"),
            asyncio.create_task(self._listen(stop), name="sentinel-listen"),
            asyncio.create_task(self._heartbeat(stop), name="sentinel-heartbeat"),
        ]
        try:
            await stop.wait()
        finally:
            self._wake.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def request_login(self, trigger: LoginTrigger) -> None:
        """Ask for a login at the next cycle (and run it now)."""
        self._requested = trigger
        self._wake.set()

    async def _cycle_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.cycle()
            except Exception:  # a bug or an outage must not end the Sentinel: next cycle
                logger.exception("sentinel cycle failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.check_interval_s)

    async def cycle(self) -> None:
        """One pass: token, login, validation, instruments, checks, halt."""
        self.cycles += 1
        now = self.d.clock.now()
        if self.cycles == 1:
            await self._reload_token()
        await self._maybe_login(now)
        await self._maybe_validate()
        await self._maybe_load_instruments()
        await self._run_checks()

    # -- login ----------------------------------------------------------------------------------

    def _next_login(self, now: datetime) -> datetime:
        s = self.settings
        return next_login_at(now, s.login_time, self.d.calendar, s.login_on_trading_days_only)

    async def _maybe_login(self, now: datetime) -> None:
        trigger: LoginTrigger | None = None
        if now >= self.next_scheduled:
            self.next_scheduled = self._next_login(now)
            self._instruments_due = True  # the day's dump is published before the login time
            skip = scheduled_login_skip_reason(self.token, now, self.settings.token_expiry_time)
            if skip:
                logger.info("scheduled login skipped: %s", skip)
            else:
                trigger = "schedule"
        if trigger is None and self._requested is not None:
            problem = token_problem(self.token, now)
            if self._requested in ("command", "schedule") or problem is not None:
                trigger = self._requested
            self._requested = None
        if trigger is None and token_problem(self.token, now) is not None:
            # A token that simply reached 06:00 waits for the daily login (the new day's
            # instruments appear before it); a missing or failed one is replaced now.
            expired = self.token.expires_at is not None and now >= self.token.expires_at
            if self.gate.retry_at is not None:
                trigger = "retry"
            elif not expired:
                trigger = "no_token"
        if trigger is not None:
            await self._login(trigger, now)

    async def _login(self, trigger: LoginTrigger, now: datetime) -> None:
        problem = token_problem(self.token, now) or "scheduled daily login"
        if self.settings.login_method == "manual":
            await self._ask_for_manual_login(problem)
            return
        refusal = self.gate.refusal(trigger, now, self.settings.relogin_min_interval_s)
        if refusal is not None:
            if refusal != self._last_refusal:
                logger.warning("login (%s) not attempted: %s", trigger, refusal)
                self._last_refusal = refusal
            return
        self._last_refusal = ""
        logger.info("logging in (%s): %s", trigger, problem)
        self._own_login = True  # its LOGIN event is ours, not a login made elsewhere
        try:
            result = await self.d.flow.automated("auto")
        finally:
            self._own_login = False
        await self._after_login(result, self.d.clock.now())

    async def _after_login(self, result: LoginResult, now: datetime) -> None:
        self.d.metrics.logins.labels(result.outcome).inc()
        self.gate = self.gate.after_attempt(
            result.outcome, result.reason, now, self.settings.network_retry_after_s
        )
        if result.ok and result.info is not None:
            info = result.info
            self.token = TokenState(info.fingerprint, info.issued_at, info.expires_at, True)
            self._validated_at = time.monotonic()
            return
        severity = Severity.CRITICAL if self.gate.blocked_reason else Severity.WARNING
        await self.d.alerter.send(
            Alert(severity, f"sentinel-login-{result.outcome}", "Kite login failed", result.reason)
        )

    async def _ask_for_manual_login(self, problem: str) -> None:
        s = self.settings
        where = (
            f"http://{s.redirect_host}:{s.redirect_port}/kite/login"
            if s.redirect_port
            else connect_login_url(s.kite_login_root, s.api_key)
        )
        text = f"{problem}: log in at {where} or run `tradealgo login --request-token ...`"
        if text != self._last_refusal:
            logger.warning("manual login needed: %s", text)
            self._last_refusal = text
            await self.d.alerter.send(
                Alert(Severity.WARNING, "sentinel-manual-login", "Kite login needed", text)
            )

    async def login_with_request_token(self, request_token: str) -> LoginResult:
        """The manual way (redirect endpoint): exchange, validate, distribute; then re-check."""
        self._own_login = True
        try:
            result = await self.d.flow.with_request_token(request_token, "manual")
        finally:
            self._own_login = False
        await self._after_login(result, self.d.clock.now())
        self._wake.set()
        return result

    # -- token ----------------------------------------------------------------------------------

    async def _reload_token(self) -> None:
        """Adopt the token in Redis (written by a previous run or by the CLI)."""
        token = await self.d.sessions.token()
        info = await self.d.sessions.info()
        if not token:
            self.token = TokenState()
            return
        fingerprint = token_fingerprint(token)
        if fingerprint == self.token.fingerprint:
            return
        issued = info.issued_at if info and info.fingerprint == fingerprint else None
        expires = info.expires_at if info and info.fingerprint == fingerprint else None
        self.token = TokenState(fingerprint, issued, expires, None)
        self._validated_at = -1e18
        logger.info("adopted access token %s from Redis", fingerprint)

    async def _maybe_validate(self) -> None:
        if not self.token.present or token_problem(self.token, self.d.clock.now()):
            return
        due = time.monotonic() - self._validated_at >= self.settings.token_validate_interval_s
        if self.token.valid is not None and not due:
            return
        token = await self.d.sessions.token()
        if not token or token_fingerprint(token) != self.token.fingerprint:
            await self._reload_token()
            return
        try:
            await self.d.session_client.profile(token)
        except ValidationFailed as exc:
            logger.error("access token %s rejected by Kite: %s", self.token.fingerprint, exc)
            self.token = replace(self.token, valid=False)
            await self.d.sessions.publish_expired(
                self.token.fingerprint, "sentinel", self.d.clock.now()
            )
            self._requested = "token_rejected"
            self._wake.set()
            return
        except LoginFailure as exc:  # network: keep what we knew, try again next cycle
            logger.warning("token validation inconclusive: %s", exc)
            return
        self.token = replace(self.token, valid=True)
        self._validated_at = time.monotonic()

    # -- instruments ----------------------------------------------------------------------------

    async def _maybe_load_instruments(self) -> None:
        now = self.d.clock.now()
        if self.token.valid is not True:
            return
        fresh = (
            not self._instruments_due
            and self.instruments_loaded_at is not None
            and to_ist(self.instruments_loaded_at).date() == to_ist(now).date()
        )
        retry_due = time.monotonic() - self._instruments_tried_at >= self.settings.check_interval_s
        if fresh or not retry_due:
            return
        self._instruments_tried_at = time.monotonic()
        token = await self.d.sessions.token()
        if not token:
            return
        try:
            dump = await self.d.loader.load(token, now)
        except Exception as exc:
            self.instruments_error = f"{type(exc).__name__}: {exc}"
            logger.error("instruments dump failed: %s", self.instruments_error)
            return
        self._instruments_due = False
        self.instruments_loaded_at = dump.loaded_at
        self.instrument_rows = dump.rows
        self.instruments_error = ""
        self.d.metrics.instruments_loaded.set(dump.rows)

    # -- checks and halt ------------------------------------------------------------------------

    def _token_result(self, now: datetime) -> CheckResult:
        problem = token_problem(self.token, now)
        if problem is not None:
            return CheckResult.failed("token", problem)
        if self.token.valid is not True:
            return CheckResult.failed(
                "token", f"access token {self.token.fingerprint} not validated yet"
            )
        return CheckResult.passed("token", f"access token {self.token.fingerprint} valid")

    async def _run_checks(self) -> None:
        s = self.settings
        now = self.d.clock.now()
        results = await self.gate_checks.probe()
        results["token"] = self._token_result(now)
        results["instruments"] = instruments_check(
            self.instruments_loaded_at,
            self.instrument_rows,
            now,
            s.instruments_max_age_h,
            self.instruments_error if self.instruments_loaded_at is None else "",
        )
        self.results = results
        self._update_token_gauges(now)
        self.halt = await self.gate_checks.apply(results, now)

    def _update_token_gauges(self, now: datetime) -> None:
        ok = self.results.get("token")
        self.d.metrics.token_valid.set(1 if ok is not None and ok.ok else 0)
        expires = self.token.expires_at
        left = seconds_until(expires, now) if expires is not None and self.token.present else 0.0
        self.d.metrics.token_expiry_seconds.set(left)

    # -- events ---------------------------------------------------------------------------------

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.d.bus.listen([c.SESSION_EVENTS], self._on_event, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("session event listener failed; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _on_event(self, stream: str, entry_id: str, message: Message) -> None:
        if not isinstance(message, SessionEvent):
            return
        if (
            message.kind == "LOGIN"
            and not self._own_login
            and message.token_fingerprint != self.token.fingerprint
        ):
            logger.info("a login happened elsewhere (token %s): adopting it",
                        message.token_fingerprint)  # fmt: skip
            await self._reload_token()
            self.gate = self.gate.unblocked()
            self._wake.set()
        elif message.kind == "EXPIRED":
            self.d.metrics.token_rejections.inc()
            current = self.token.fingerprint
            if message.token_fingerprint and message.token_fingerprint != current:
                logger.info("ignoring a rejection of old token %s (current %s), from %s",
                            message.token_fingerprint, current or "none", message.user_id)  # fmt: skip
                return
            if self.token.valid is not False:
                logger.warning("token %s reported rejected by %s: logging in again",
                               current or "none", message.user_id)  # fmt: skip
            self.token = replace(self.token, valid=False)
            self.request_login("token_rejected")

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        key = c.HEARTBEAT_KEY.format(service="sentinel")
        while not stop.is_set():
            try:
                await self.d.redis.set(key, self.d.clock.now().isoformat(), ex=HEARTBEAT_TTL_S)
            except Exception as exc:
                logger.debug("heartbeat not written: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_EVERY_S)
