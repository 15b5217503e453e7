"""How many ticks per second the Kite simulator emits to one subscriber.

Starts `python -m services.simulator` as its own process (clock paused), logs in through
the automation endpoints, connects ONE real WebSocket client (aiohttp) that subscribes to the
indices and the nearest weekly options in the chosen mode, resumes the replay and counts every
packet it reads (from the frame headers) for a fixed wall-clock window. It also reads the
simulator's CPU time (/proc) around the window: on a shared machine CPU microseconds per tick
(`cpu_us_per_tick`) compare runs better than ticks per second. Prints the figures and writes
bench/results/simulator.json (simulator_paced.json with --speed).

    python bench/bench_simulator.py [--seconds 10] [--mode full] [--options 80] [--speed max]
        [--ticks-per-second 4]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import os
import platform
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pyotp
import requests
from results_file import write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "simulator.json"
API_KEY, API_SECRET, USER, PASSWORD = "sim_api_key", "sim_api_secret", "SIM001", "sim-password"
TOTP_SECRET = "SIMULATORTOTPSECRETFORTESTSONLYA"
START = "09:15"  # the open: a paced replay has ticks from the first second


def start_simulator(
    speed: str, ticks_per_s: float | None
) -> tuple[subprocess.Popen[str], str, str]:
    command = [sys.executable, "-m", "services.simulator", "--rest-port", "0", "--ws-port", "0"]
    command += ["--speed", speed, "--paused", "--start-time", START, "--log-level", "WARNING"]
    if ticks_per_s is not None:
        command += ["--ticks-per-second", str(ticks_per_s)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    rest = process.stdout.readline().strip().removeprefix("REST root: ")
    ws = process.stdout.readline().strip().removeprefix("WebSocket root: ")
    if not rest.startswith("http") or not ws.startswith("ws"):
        process.kill()
        raise RuntimeError(f"the simulator did not start: {rest!r} {ws!r}")
    return process, rest, ws


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def access_token(rest: str) -> str:
    with requests.Session() as browser:
        request_id = browser.post(
            f"{rest}/api/login", data={"user_id": USER, "password": PASSWORD}, timeout=10
        ).json()["data"]["request_id"]
        browser.post(
            f"{rest}/api/twofa",
            data={
                "user_id": USER,
                "request_id": request_id,
                "twofa_value": pyotp.TOTP(TOTP_SECRET).now(),
            },
            timeout=10,
        ).raise_for_status()
        location = browser.get(
            f"{rest}/connect/login",
            params={"v": "3", "api_key": API_KEY},
            allow_redirects=False,
            timeout=10,
        ).headers["Location"]
    request_token = parse_qs(urlparse(location).query)["request_token"][0]
    checksum = hashlib.sha256((API_KEY + request_token + API_SECRET).encode()).hexdigest()
    session = requests.post(
        f"{rest}/session/token",
        data={"api_key": API_KEY, "request_token": request_token, "checksum": checksum},
        timeout=10,
    ).json()
    token: str = session["data"]["access_token"]
    return token


def instrument_tokens(rest: str, token: str, options: int) -> list[int]:
    headers = {"X-Kite-Version": "3", "Authorization": f"token {API_KEY}:{token}"}
    text = requests.get(f"{rest}/instruments", headers=headers, timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    tokens = [int(r["instrument_token"]) for r in rows if r["segment"] == "INDICES"]
    nearest: dict[str, str] = {}
    for r in rows:
        if r["segment"] == "NFO-OPT":
            nearest[r["name"]] = min(nearest.get(r["name"], r["expiry"]), r["expiry"])
    weekly = [r for r in rows if r["segment"] == "NFO-OPT" and r["expiry"] == nearest[r["name"]]]
    return tokens + [int(r["instrument_token"]) for r in weekly[:options]]


async def measure(
    rest: str, ws_root: str, token: str, tokens: list[int], mode: str, seconds: float, pid: int
) -> dict[str, float]:
    url = f"{ws_root}/?api_key={API_KEY}&access_token={token}"
    packets = frames = size = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"a": "subscribe", "v": tokens}))
        await ws.send_str(json.dumps({"a": "mode", "v": [mode, tokens]}))
        await asyncio.sleep(0.5)
        while True:  # drain the snapshots sent on subscribe
            try:
                await ws.receive(timeout=0.2)
            except TimeoutError:
                break
        async with http.post(f"{rest}/_sim/clock", json={"action": "resume"}) as response:
            start_epoch = (await response.json())["data"]["epoch"]
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        deadline = started + seconds
        last = started
        while (now := time.perf_counter()) < deadline:
            try:
                message = await ws.receive(timeout=max(0.01, deadline - now))
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.BINARY or len(message.data) < 2:
                continue
            packets += struct.unpack_from(">H", message.data, 0)[0]
            frames += 1
            size += len(message.data)
            last = time.perf_counter()
        elapsed = last - started
        # Pause, then count what was already produced (queued or in flight) as well: the CPU
        # up to the pause pays for exactly the ticks sent until then.
        async with http.post(f"{rest}/_sim/clock", json={"action": "pause"}) as response:
            await response.read()
        cpu = cpu_seconds(pid) - cpu_before
        cpu_window = time.perf_counter() - started
        produced = packets
        while True:
            try:
                message = await ws.receive(timeout=0.3)
            except TimeoutError:
                break
            if message.type == aiohttp.WSMsgType.BINARY and len(message.data) >= 2:
                produced += struct.unpack_from(">H", message.data, 0)[0]
        async with http.get(f"{rest}/_sim/state") as response:
            end_epoch = (await response.json())["data"]["epoch"]
    simulated = end_epoch - start_epoch
    return {
        "packets": packets,
        "frames": frames,
        "bytes": size,
        "elapsed_s": elapsed,
        "simulated_s": simulated,
        "cpu_s": cpu,
        "packets_produced": produced,
        "cpu_window_s": cpu_window,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=["ltp", "quote", "full"], default="full")
    parser.add_argument("--options", type=int, default=80, help="weekly options to subscribe")
    parser.add_argument(
        "--speed",
        default="max",
        help="replay speed: max, or x real time (15 with 4 ticks/s and "
        "180 instruments is bench_pipeline's ~10,000 ticks/s)",
    )
    parser.add_argument("--ticks-per-second", type=float, help="ticks per underlying per second")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    process, rest, ws_root = start_simulator(args.speed, args.ticks_per_second)
    try:
        token = access_token(rest)
        tokens = instrument_tokens(rest, token, args.options)
        result = asyncio.run(
            measure(rest, ws_root, token, tokens, args.mode, args.seconds, process.pid)
        )
        requests.post(f"{rest}/_sim/clock", json={"action": "seek", "to": START}, timeout=10)
        requests.post(f"{rest}/_sim/clock", json={"action": "pause"}, timeout=10)
        indices = asyncio.run(
            measure(rest, ws_root, token, tokens[:2], args.mode, args.seconds, process.pid)
        )
        state = requests.get(f"{rest}/_sim/state", timeout=10).json()["data"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    elapsed = result["elapsed_s"] or 1e-9
    figures: dict[str, Any] = {
        "ticks_per_s": {"value": round(result["packets"] / elapsed), "unit": "ticks/s"},
        "frames_per_s": {"value": round(result["frames"] / elapsed, 1), "unit": "frames/s"},
        "throughput": {"value": round(result["bytes"] / elapsed / 1e6, 2), "unit": "MB/s"},
        "ticks_per_frame": {
            "value": round(result["packets"] / max(result["frames"], 1), 1),
            "unit": "ticks",
        },
        # The figure that matters on a shared machine: the simulator's CPU per tick delivered.
        "cpu_us_per_tick": {
            "value": round(result["cpu_s"] / max(result["packets_produced"], 1) * 1e6, 2),
            "unit": "us/tick",
        },
        "cpu_share_of_a_core": {
            "value": round(result["cpu_s"] / result["cpu_window_s"] * 100, 1),
            "unit": "%",
        },
        "ticks_per_s_indices_only": {
            "value": round(indices["packets"] / (indices["elapsed_s"] or 1e-9)),
            "unit": "ticks/s",
        },
        "cpu_us_per_tick_indices_only": {
            "value": round(indices["cpu_s"] / max(indices["packets_produced"], 1) * 1e6, 2),
            "unit": "us/tick",
        },
        "simulated_minutes_per_s": {
            "value": round(result["simulated_s"] / 60 / elapsed, 2),
            "unit": "min/s",
        },
    }
    report: dict[str, Any] = {
        "name": "simulator",
        "figures": figures,
        "conditions": {
            "subscriber": "one aiohttp WebSocket client in another process, counting packets from frame headers",
            "mode": args.mode,
            "instruments": len(tokens),
            "instruments_indices_only_run": 2,
            "options_modelled": len(tokens) - 2,
            "window_s": args.seconds,
            "ticks_received": result["packets"],
            "day": state["day"],
            "ticks_per_minute_per_underlying": state["ticks_per_minute"],
            "speed": args.speed,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
        },
    }
    write_results(
        "simulator" if args.speed == "max" else "simulator_paced",
        {n: (f["value"], f["unit"]) for n, f in figures.items()},
        report["conditions"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
