"""pytest fixtures for the Kite simulator: `kite_sim` and `kite_sim_factory`.

`kite_sim` is a simulator on its own thread for one test: free loopback ports, max speed, clock
PAUSED at 09:15 of the default day (the opening tick already played), generous rate limits. Move
time with `kite_sim.control` (step / seek / resume), log in with `kite_sim.login()`.
`kite_sim_factory(**settings)` starts one with other settings (e.g. tight rate limits).
Twisted's reactor is process-global and cannot be restarted: use `TickerHarness`, which starts it
once and talks to it only from its own thread, and never stop it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import requests
from kiteconnect import KiteConnect, KiteTicker

from services.simulator.runner import SimulatorThread
from services.simulator.settings import SimulatorSettings

_REACTOR_START = threading.Lock()
TEST_SETTINGS: dict[str, Any] = {
    "rest_port": 0,
    "ws_port": 0,
    "speed": 0.0,
    "paused": True,
    "rate_quote_per_s": 1000.0,
    "rate_historical_per_s": 1000.0,
    "rate_orders_per_s": 1000.0,
    "rate_other_per_s": 1000.0,
    "heartbeat_interval_s": 0.5,
    "log_level": "INFO",
}


class SimControl:
    """A client of the simulator's /_sim control API."""

    def __init__(self, rest_root: str) -> None:
        self.rest_root = rest_root
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(f"{self.rest_root}{path}", json=body, timeout=30)
        payload: dict[str, Any] = response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"control call {path} {body} failed: {payload}")
        data: dict[str, Any] = payload["data"]
        return data

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = self._http.get(f"{self.rest_root}/_sim/state", timeout=30).json()[
            "data"
        ]
        return data

    def pause(self) -> dict[str, Any]:
        return self._post("/_sim/clock", {"action": "pause"})

    def resume(self) -> dict[str, Any]:
        return self._post("/_sim/clock", {"action": "resume"})

    def speed(self, speed: float) -> dict[str, Any]:
        return self._post("/_sim/clock", {"action": "speed", "speed": speed})

    def step(self, seconds: float) -> dict[str, Any]:
        return self._post("/_sim/clock", {"action": "step", "seconds": seconds})

    def seek(self, to: str) -> dict[str, Any]:
        return self._post("/_sim/clock", {"action": "seek", "to": to})

    def faults(self, **faults: Any) -> dict[str, Any]:
        return self._post("/_sim/faults", faults)


@dataclass
class KiteSim:
    """A running simulator and everything a client needs to use it."""

    runner: SimulatorThread
    control: SimControl
    rest_root: str
    ws_root: str
    api_key: str
    api_secret: str
    user_id: str
    password: str
    totp_secret: str

    def request_token(self) -> str:
        """The automated login (user id + password + TOTP), as a daily login job does it."""
        with requests.Session() as browser:
            step1 = browser.post(
                f"{self.rest_root}/api/login",
                data={"user_id": self.user_id, "password": self.password},
                timeout=30,
            ).json()
            request_id = step1["data"]["request_id"]
            browser.post(
                f"{self.rest_root}/api/twofa",
                data={
                    "user_id": self.user_id,
                    "request_id": request_id,
                    "twofa_value": pyotp.TOTP(self.totp_secret).now(),
                    "twofa_type": "totp",
                },
                timeout=30,
            ).raise_for_status()
            redirect = browser.get(
                f"{self.rest_root}/connect/login",
                params={"v": "3", "api_key": self.api_key},
                allow_redirects=False,
                timeout=30,
            )
        location = redirect.headers["Location"]
        return parse_qs(urlparse(location).query)["request_token"][0]

    def login(self) -> str:
        """A fresh access token through the official client's generate_session."""
        kite = KiteConnect(self.api_key, root=self.rest_root)
        session = kite.generate_session(self.request_token(), api_secret=self.api_secret)
        token: str = session["access_token"]
        return token

    def kite(self, access_token: str | None = None) -> KiteConnect:
        """An official client logged in (a new session unless a token is given)."""
        return KiteConnect(
            self.api_key, access_token=access_token or self.login(), root=self.rest_root
        )

    def checksum(self, request_token: str) -> str:
        return hashlib.sha256((self.api_key + request_token + self.api_secret).encode()).hexdigest()


def start_kite_sim(**overrides: Any) -> KiteSim:
    settings = SimulatorSettings(**{**TEST_SETTINGS, **overrides})
    runner = SimulatorThread(settings).start()
    return KiteSim(
        runner,
        SimControl(runner.rest_root),
        runner.rest_root,
        runner.ws_root,
        settings.api_key,
        settings.api_secret.get_secret_value(),
        settings.user_id,
        settings.password.get_secret_value(),
        settings.totp_secret.get_secret_value(),
    )


def stop_kite_sim(sim: KiteSim) -> None:
    sim.control.close()
    sim.runner.stop()


@pytest.fixture
def kite_sim() -> Iterator[KiteSim]:
    """A paused, max-speed simulator of the default day for one test."""
    sim = start_kite_sim()
    yield sim
    stop_kite_sim(sim)


@pytest.fixture
def kite_sim_factory() -> Iterator[Callable[..., KiteSim]]:
    """Start simulators with other settings; all are stopped after the test."""
    started: list[KiteSim] = []

    def start(**overrides: Any) -> KiteSim:
        sim = start_kite_sim(**overrides)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        stop_kite_sim(sim)


@dataclass
class TickerHarness:
    """The official KiteTicker on the shared reactor, collecting what it receives (thread-safe)."""

    ticker: KiteTicker
    tokens: list[int]
    mode: str
    ticks: list[dict[str, Any]] = field(default_factory=list)
    order_updates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    connects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls, sim: KiteSim, access_token: str, tokens: list[int], mode: str = "full"
    ) -> TickerHarness:
        ticker = KiteTicker(sim.api_key, access_token, root=sim.ws_root, reconnect_max_delay=5)
        harness = cls(ticker, tokens, mode)
        ticker.on_connect = harness._on_connect
        ticker.on_ticks = harness._on_ticks
        ticker.on_order_update = harness._on_order_update
        ticker.on_error = harness._on_error
        ticker.on_close = harness._on_close
        from twisted.internet import reactor

        with _REACTOR_START:
            if reactor.running:
                reactor.callFromThread(ticker.connect, threaded=True)
            else:
                # The first ticker starts the shared reactor in a daemon thread; wait until it
                # runs so that the next ticker joins it instead of starting a second one.
                ticker.connect(threaded=True)
                deadline = time.monotonic() + 10
                while not reactor.running and time.monotonic() < deadline:
                    time.sleep(0.01)
        return harness

    def _on_connect(self, ws: KiteTicker, response: Any) -> None:
        with self.lock:
            self.connects += 1
            first = self.connects == 1
        if first:  # later connects: the client re-subscribes by itself
            ws.subscribe(self.tokens)
            ws.set_mode(self.mode, self.tokens)

    def _on_ticks(self, ws: KiteTicker, ticks: list[dict[str, Any]]) -> None:
        with self.lock:
            self.ticks.extend(ticks)

    def _on_order_update(self, ws: KiteTicker, data: dict[str, Any]) -> None:
        with self.lock:
            self.order_updates.append(data)

    def _on_error(self, ws: KiteTicker, code: int, reason: Any) -> None:
        with self.lock:
            self.errors.append((code, str(reason)))

    def _on_close(self, ws: KiteTicker, code: int, reason: Any) -> None:
        with self.lock:
            self.closes.append(code)

    def tick_count(self) -> int:
        with self.lock:
            return len(self.ticks)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.ticks)

    def close(self) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(self.ticker.close)
