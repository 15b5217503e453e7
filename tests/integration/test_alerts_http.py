"""WebhookAlerter against a local HTTP receiver standing in for Telegram and Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared.alert_policy import AlertPolicy
from shared.alerts import Alert, Severity, WebhookAlerter
from shared.clock import ManualClock
from shared.logs import JsonLinesFormatter
from shared.metrics import BaseMetrics
from tests.support import free_port, serving

pytestmark = pytest.mark.integration

BOT_TOKEN = "123456789:AAHfakeBotTokenForTests_x-y"
CHAT_ID = "-1001234567890"
SLACK_PATH = "/services/T000TEST/B000TEST/slackSecretPart42"


@dataclass
class Receiver:
    """Records every request; answers with `status`, or only at teardown when `hang` is set."""

    port: int = 0
    status: int = 200
    hang: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        if self.hang:
            await self.released.wait()
        if self.status != 200:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": self.status,
                    "description": "Bad Request: chat not found",
                },
                status=self.status,
            )
        return web.json_response({"ok": True, "result": {}})

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path.startswith(prefix)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", rec.handle)
    app.router.add_post("/services/{rest:.*}", rec.handle)
    async with serving(app) as rec.port:
        yield rec
        rec.released.set()


def alerter(
    port: int,
    clock: ManualClock,
    rate: int = 20,
    dedup: float = 300,
    timeout: float = 5.0,
    metrics: BaseMetrics | None = None,
) -> WebhookAlerter:
    return WebhookAlerter(
        service="gatekeeper",
        policy=AlertPolicy(rate, dedup),
        clock=clock,
        telegram_bot_token=BOT_TOKEN,
        telegram_chat_id=CHAT_ID,
        slack_webhook_url=f"http://127.0.0.1:{port}{SLACK_PATH}",
        api_root=f"http://127.0.0.1:{port}",
        timeout_seconds=timeout,
        metrics=metrics,
    )


def clock() -> ManualClock:
    return ManualClock(datetime(2024, 1, 2, 4, 0, tzinfo=UTC))


KILL = Alert(Severity.CRITICAL, "kill_switch", "Kill switch tripped", "MTM -2.1% below -2%")


async def test_one_alert_reaches_telegram_and_slack_in_their_shapes(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    a = alerter(receiver.port, clock(), metrics=BaseMetrics(registry, "gatekeeper"))
    await a.send(KILL)
    await a.close()
    text = "[CRITICAL] gatekeeper: Kill switch tripped\nMTM -2.1% below -2%"
    assert receiver.requests == [
        (f"/bot{BOT_TOKEN}/sendMessage",
         {"chat_id": CHAT_ID, "text": text, "disable_web_page_preview": True}),
        (SLACK_PATH, {"text": text}),
    ]  # fmt: skip
    for channel in ("telegram", "slack"):
        labels = {"service": "gatekeeper", "channel": channel, "outcome": "sent"}
        assert registry.get_sample_value("tradealgo_alerts_total", labels) == 1.0


async def test_a_repeat_inside_the_window_is_suppressed_and_reported_later(
    receiver: Receiver,
) -> None:
    manual = clock()
    a = alerter(receiver.port, manual, dedup=300)
    await a.send(KILL)
    manual.advance(10)
    await a.send(KILL)
    manual.advance(10)
    await a.send(KILL)
    assert len(receiver.bodies("/services/")) == 1
    assert a.counts[("policy", "duplicate")] == 2
    manual.advance(300)
    await a.send(KILL)
    await a.close()
    slack = receiver.bodies("/services/")
    assert len(slack) == 2
    assert slack[1]["text"].endswith("(2 repeats suppressed since the last one)")


async def test_the_rate_limit_holds_alerts_back_until_the_minute_has_passed(
    receiver: Receiver,
) -> None:
    manual = clock()
    a = alerter(receiver.port, manual, rate=2)
    for i in range(5):
        await a.send(Alert(Severity.WARNING, f"feed-{i}", f"Feed {i} stale"))
        manual.advance(1)
    assert [b["text"] for b in receiver.bodies("/bot")] == [
        "[WARNING] gatekeeper: Feed 0 stale",
        "[WARNING] gatekeeper: Feed 1 stale",
    ]
    assert a.counts[("policy", "rate_limited")] == 3
    manual.advance(60)
    await a.send(Alert(Severity.WARNING, "feed-9", "Feed 9 stale"))
    await a.close()
    assert receiver.bodies("/bot")[-1]["text"] == (
        "[WARNING] gatekeeper: Feed 9 stale\n(3 other alerts dropped by the rate limit)"
    )


@pytest.mark.parametrize("status", [400, 429, 500])
async def test_an_error_status_is_counted_not_raised(receiver: Receiver, status: int) -> None:
    receiver.status = status
    a = alerter(receiver.port, clock())
    await a.send(KILL)
    await a.close()
    assert len(receiver.requests) == 2
    assert a.counts == {("telegram", "failed"): 1, ("slack", "failed"): 1}


async def test_a_receiver_that_does_not_answer_in_time_is_a_failure(receiver: Receiver) -> None:
    receiver.hang = True
    a = alerter(receiver.port, clock(), timeout=0.2)
    await a.send(KILL)
    await a.close()
    assert a.counts == {("telegram", "failed"): 1, ("slack", "failed"): 1}


async def test_a_receiver_that_is_down_raises_nothing_and_logs_neither_token_nor_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    caplog.set_level(logging.DEBUG)
    a = alerter(port, clock())
    await a.send(KILL)
    await a.close()
    assert a.counts == {("telegram", "failed"): 1, ("slack", "failed"): 1}
    raw = [r.getMessage() for r in caplog.records]  # before any redaction
    assert any("alert to telegram failed: ClientConnectorError" in m for m in raw)
    rendered = "\n".join(raw + [JsonLinesFormatter("t").format(r) for r in caplog.records])
    for secret in (BOT_TOKEN, "AAHfakeBotTokenForTests", "slackSecretPart42", SLACK_PATH):
        assert secret not in rendered
