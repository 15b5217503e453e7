"""`python -m services.simulator` as its own process, and its command line."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import requests

from services.simulator.__main__ import main
from services.simulator.service import SimulatorServer
from services.simulator.settings import SimulatorSettings
from tests.sim_fixtures import KiteSim, TickerHarness
from tests.support import eventually_sync

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_process_prints_its_roots_first_serves_on_loopback_and_stops_on_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "services.simulator",
        "--rest-port",
        "0",
        "--ws-port",
        "0",
        "--speed",
        "max",
        "--paused",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        rest_line, ws_line = process.stdout.readline().strip(), process.stdout.readline().strip()
        assert rest_line.startswith("REST root: http://127.0.0.1:")
        assert ws_line.startswith("WebSocket root: ws://127.0.0.1:")
        rest = rest_line.removeprefix("REST root: ")
        state = requests.get(f"{rest}/_sim/state", timeout=10).json()["data"]
        assert (state["day"], state["paused"], state["speed"]) == ("2024-08-20", True, 0.0)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "sim_api_secret" not in stderr and "sim-password" not in stderr  # no secret is logged


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--day", "2024-02-01"], "known gap"),  # a day missing from the data is never filled
        (["--day", "2024-08-17"], "weekend"),
        (["--ticks-per-second", "0"], "SIM_TICKS_PER_SECOND"),
    ],
)
def test_a_day_outside_the_data_or_a_bad_setting_exits_2_with_the_reason(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--rest-port", "0", "--ws-port", "0"]) == 2
    assert problem in capsys.readouterr().err


def test_a_paced_replay_moves_the_shared_clock_in_real_time(
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    sim = kite_sim_factory(speed=120.0)  # two simulated minutes per second
    harness = TickerHarness.open(sim, sim.login(), [256265], mode="ltp")
    try:
        start = sim.control.state()["epoch"]
        sim.control.resume()
        eventually_sync(lambda: harness.tick_count() >= 60, timeout=20, message="paced ticks")
        assert sim.control.state()["epoch"] > start + 30
        assert sim.kite().ltp("NSE:NIFTY 50")["NSE:NIFTY 50"]["last_price"] > 0
    finally:
        harness.close()


async def test_the_server_runs_inside_a_callers_event_loop_and_leaves_nothing_behind() -> None:
    server = SimulatorServer(SimulatorSettings(rest_port=0, ws_port=0, speed=0.0, paused=True))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.rest_root}/_sim/state") as response:
                assert (await response.json())["data"]["paused"] is True
            url = f"{server.ws_root}/?api_key=sim_api_key&access_token=nope"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)
            assert refused.value.status == 403
    finally:
        await server.stop()
