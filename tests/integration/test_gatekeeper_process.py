"""`python -m services.gatekeeper` as a process (the composition root): it applies the ClickHouse
schema, serves /metrics (every Gatekeeper name of deploy/metrics.txt in a real scrape) /healthz
/ready on its port, decides an intent, and stops cleanly on SIGTERM; a bad setting exits 2 with
the variable's name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from shared import constants as c
from shared.bus import decode_entry, entry_fields
from shared.clock import IST
from shared.messages import OrderIntent, RiskEvent
from tests.support import eventually_sync, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(redis_url: str, server: Any, database: str, port: int, spool: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEKEEPER_", "KITE_"))}
    return env | {
        "GATEKEEPER_REDIS_URL": redis_url,
        "GATEKEEPER_CLICKHOUSE_HOST": server.host,
        "GATEKEEPER_CLICKHOUSE_PORT": str(server.port),
        "GATEKEEPER_CLICKHOUSE_DATABASE": database,
        "GATEKEEPER_METRICS_PORT": str(port),
        "GATEKEEPER_SPOOL_DIR": str(spool),
        "GATEKEEPER_LOG_JSON": "false",
        "GATEKEEPER_SAMPLE_INTERVAL_S": "0.3",
    }


def gatekeeper_metric_names() -> list[str]:
    """Every name deploy/metrics.txt lists for the Gatekeeper (histograms by their buckets)."""
    names = []
    for line in (ROOT / "deploy/metrics.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#") and "gatekeeper" in parts[2].split(","):
            names.append(parts[0] + ("_bucket" if parts[1] == "histogram" else ""))
    return names


def test_the_service_runs_serves_its_endpoints_decides_and_stops_on_sigterm(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.gatekeeper"],
        cwd=tmp_path,  # no .env from the working tree
        env=_env(redis_url, clickhouse_server, clickhouse_db, port, tmp_path / "spool")
        | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(redis_url)
    try:

        def ready() -> bool:
            try:
                return requests.get(f"{base}/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        eventually_sync(ready, timeout=30)
        names = gatekeeper_metric_names()
        assert "tradealgo_kill_switch_tripped" in names and len(names) >= 20

        def missing() -> list[str]:
            scrape = requests.get(f"{base}/metrics", timeout=2).text
            return [n for n in names if f"\n{n} " not in scrape and f"\n{n}{{" not in scrape]

        eventually_sync(lambda: not missing(), timeout=10, message="metrics in a scrape")
        metrics = requests.get(f"{base}/metrics", timeout=2).text
        assert 'tradealgo_gatekeeper_mode{mode="logging"} 1.0' in metrics
        assert requests.get(f"{base}/healthz", timeout=2).text == "ok"
        # An intent for an instrument nobody knows: decided (denied) with its reason.
        now = datetime.now(IST)
        intent = OrderIntent(
            intent_id="proc-1", signal_id="proc-1", strategy="t", symbol="NSE:NOPE",
            instrument_token=1, side="BUY", order_type="MARKET", reference_price=10.0,
            confidence=1.0, timeframe="minute", candle_start=now - timedelta(minutes=1),
            created_at=now, reason="test",
        )  # fmt: skip
        client.xadd(c.INTENTS, entry_fields(c.INTENTS, intent))  # type: ignore[arg-type]

        def denial() -> list[RiskEvent]:
            entries: Any = client.xrange(c.RISK_EVENTS)
            events = [decode_entry(c.RISK_EVENTS, f) for _, f in entries]
            return [e for e in events if isinstance(e, RiskEvent) and e.intent_id == "proc-1"]

        eventually_sync(denial, timeout=10)
        (event,) = denial()
        assert event.kind == "DENIED" and event.reason
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        client.close()
        out = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert "Gatekeeper stopped" in out and "Traceback" not in out


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
    env |= {"GATEKEEPER_MODE": "live", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "services.gatekeeper"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "GATEKEEPER_LIVE_CONFIRM" in done.stderr
