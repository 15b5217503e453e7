"""Alerts to people: Telegram and Slack webhooks, or the log when nothing is configured.

`send` never raises into the caller (bar cancellation): a failed post is logged and counted. It
awaits the posts (bounded by `alert_timeout_seconds` per channel); a hot loop that cannot wait
should hand the alert to a task. Every alert is also logged locally, whatever happens to the posts.
Neither the bot token nor the webhook URL is ever logged: both are registered with shared.logs as
secrets, and failures are reported by exception type and HTTP status only. Outgoing text passes
through the same redaction as log lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import aiohttp

from shared.alert_policy import AlertPolicy, Decision
from shared.clock import Clock
from shared.logs import SECRETS, register_secret
from shared.settings import ServiceSettings

logger = logging.getLogger(__name__)

TELEGRAM_API_ROOT = "https://api.telegram.org"
MAX_TEXT_CHARS = 4000  # Telegram rejects messages over 4096 characters


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_LOG_LEVEL = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING,
              Severity.CRITICAL: logging.CRITICAL}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert; `key` groups repeats of the same condition for deduplication."""

    severity: Severity
    key: str
    title: str
    text: str = ""


class Alerter(Protocol):
    async def send(self, alert: Alert) -> None:
        """Deliver or log the alert; never raises."""
        ...

    async def close(self) -> None: ...


class AlertCounter(Protocol):
    """Where outcomes are counted (shared.metrics.BaseMetrics has this method)."""

    def alert_outcome(self, channel: str, outcome: str) -> None: ...


def render(service: str, alert: Alert, decision: Decision | None = None) -> str:
    """The message text: severity, service, title, text and what was held back before it."""
    lines = [f"[{alert.severity.upper()}] {service}: {alert.title}"]
    if alert.text:
        lines.append(alert.text)
    if decision is not None and decision.duplicates_suppressed:
        lines.append(f"({decision.duplicates_suppressed} repeats suppressed since the last one)")
    if decision is not None and decision.rate_limited_dropped:
        lines.append(f"({decision.rate_limited_dropped} other alerts dropped by the rate limit)")
    text = SECRETS.redact("\n".join(lines))
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


class LogAlerter:
    """The fallback: alerts become log lines at their severity."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def send(self, alert: Alert) -> None:
        text = render(self.service, alert)
        logger.log(_LOG_LEVEL[alert.severity], "ALERT %s (key %s)", text, alert.key)

    async def close(self) -> None:
        return None


class WebhookAlerter:
    """Posts to a Telegram chat and/or a Slack incoming webhook, deduplicated and rate-limited."""

    def __init__(
        self,
        *,
        service: str,
        policy: AlertPolicy,
        clock: Clock,
        telegram_bot_token: str = "",
        telegram_chat_id: str = "",
        slack_webhook_url: str = "",
        api_root: str = "",
        timeout_seconds: float = 5.0,
        metrics: AlertCounter | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.clock = clock
        self.metrics = metrics
        self.timeout_seconds = timeout_seconds
        self.counts: Counter[tuple[str, str]] = Counter()  # (channel, outcome) -> count
        self._telegram_url = ""
        self._chat_id = telegram_chat_id
        self._slack_url = slack_webhook_url
        if telegram_bot_token and telegram_chat_id:
            register_secret(telegram_bot_token)
            root = (api_root or TELEGRAM_API_ROOT).rstrip("/")
            self._telegram_url = f"{root}/bot{telegram_bot_token}/sendMessage"
        if slack_webhook_url:
            register_secret(slack_webhook_url)
        configured = (("telegram", self._telegram_url), ("slack", self._slack_url))
        self.channels = [name for name, url in configured if url]
        if not self.channels:
            raise ValueError(
                "WebhookAlerter needs a Telegram bot token and chat id, or a Slack URL"
            )
        self._http: aiohttp.ClientSession | None = None

    async def send(self, alert: Alert) -> None:
        try:
            decision = self.policy.decide(alert.key, self.clock.time_ns() / 1e9)
            level = _LOG_LEVEL[alert.severity]
            if not decision.send:
                reason = decision.reason
                logger.info("alert %r not sent (%s): %s", alert.key, decision.verdict, reason)
                self._count("policy", decision.verdict)
                return
            text = render(self.service, alert, decision)
            logger.log(level, "ALERT %s (key %s, to %s)", text, alert.key, ",".join(self.channels))
            posts = []
            if self._telegram_url:
                body = {"chat_id": self._chat_id, "text": text, "disable_web_page_preview": True}
                posts.append(self._post("telegram", self._telegram_url, body))
            if self._slack_url:
                posts.append(self._post("slack", self._slack_url, {"text": text}))
            await asyncio.gather(*posts)
        except Exception as exc:  # never into the caller; a bug here must not stop trading
            logger.error("alert %r failed before posting: %s", alert.key, type(exc).__name__)
            self._count("policy", "failed")

    async def _post(self, channel: str, url: str, body: dict[str, object]) -> None:
        try:
            http = self._session()
            async with http.post(url, json=body) as resp:
                if resp.status == 200:
                    self._count(channel, "sent")
                    return
                detail = await _error_detail(resp)
            logger.warning("alert to %s failed: HTTP %s%s", channel, resp.status, detail)
        except Exception as exc:  # exception texts may hold the URL: report the type only
            logger.warning("alert to %s failed: %s", channel, type(exc).__name__)
        self._count(channel, "failed")

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds)
            )
        return self._http

    def _count(self, channel: str, outcome: str) -> None:
        self.counts[(channel, outcome)] += 1
        if self.metrics is not None:
            self.metrics.alert_outcome(channel, outcome)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


async def _error_detail(resp: aiohttp.ClientResponse) -> str:
    """Telegram's error description (never holds the token); Slack's short error body."""
    try:
        text = (await resp.text())[:200]
    except Exception:
        return ""
    return f" {SECRETS.redact(text)!r}" if text else ""


def build_alerter(
    settings: ServiceSettings, service: str, clock: Clock, metrics: AlertCounter | None = None
) -> Alerter:
    """A WebhookAlerter when a channel is configured, else a LogAlerter (and a warning)."""
    token = settings.telegram_bot_token.get_secret_value()
    slack = settings.slack_webhook_url.get_secret_value()
    if token and not settings.telegram_chat_id:
        logger.warning("telegram_bot_token is set but telegram_chat_id is empty: Telegram is off")
    if not (token and settings.telegram_chat_id) and not slack:
        logger.warning("no alert channel configured (Telegram or Slack): alerts go to the log only")
        return LogAlerter(service)
    return WebhookAlerter(
        service=service,
        policy=AlertPolicy(settings.alert_rate_per_minute, settings.alert_dedup_seconds),
        clock=clock,
        telegram_bot_token=token,
        telegram_chat_id=settings.telegram_chat_id,
        slack_webhook_url=slack,
        api_root=settings.alert_api_root,
        timeout_seconds=settings.alert_timeout_seconds,
        metrics=metrics,
    )
