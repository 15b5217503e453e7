"""The ClickHouse server process: chdb's embedded engine with a real native TCP listener.

Run as `python -m shared.localservers.clickhouse_main --data DIR --run-dir DIR --port N`.
chdb reads the listener address from ./config.xml in the CURRENT directory, and the listener
lives as long as one keep-alive query runs; SIGTERM kills that query and the process exits 0.
chdb reports a busy port or a locked data directory only on stderr and returns from the query,
so "the query returned without a stop request" is a failed start (exit code 3).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

KEEPALIVE = (
    "SYSTEM START LISTEN TCP; SELECT sleepEachRow(1) AS tradealgo_keepalive FROM system.numbers "
    "SETTINGS max_block_size = 1 FORMAT Null"
)
CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{port}</tcp_port>
  <logger><level>warning</level><console>1</console></logger>
</clickhouse>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    os.makedirs(args.run_dir, exist_ok=True)
    with open(os.path.join(args.run_dir, "config.xml"), "w") as f:
        f.write(CONFIG.format(port=args.port))
    os.chdir(args.run_dir)

    from chdb import _chdb

    stopping = threading.Event()
    failure: list[str] = []

    def serve() -> None:
        try:
            _chdb.query(KEEPALIVE, "CSV", path=os.path.abspath(args.data))  # type: ignore[attr-defined]
        except Exception as exc:  # chdb raises on cancellation and on some start errors
            if not stopping.is_set():
                failure.append(str(exc))

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        threading.Thread(target=_kill_keepalive, args=(args.port,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    server = threading.Thread(target=serve, name="clickhouse-keepalive", daemon=True)
    server.start()
    while server.is_alive():
        server.join(0.2)
    if stopping.is_set():
        return 0
    print(
        "clickhouse: the server stopped without a stop request (port busy or data directory "
        f"locked?) {'; '.join(failure)}",
        file=sys.stderr,
        flush=True,
    )
    return 3


def _kill_keepalive(port: int) -> None:
    from clickhouse_driver import Client

    client = Client(host="127.0.0.1", port=port, connect_timeout=5)
    try:
        rows = client.execute(
            "SELECT query_id FROM system.processes WHERE query LIKE '%tradealgo_keepalive%' "
            "AND query NOT LIKE '%system.processes%'"
        )
        for (query_id,) in rows:
            client.execute(f"KILL QUERY WHERE query_id = '{query_id}' SYNC")
    finally:
        client.disconnect()


if __name__ == "__main__":
    sys.exit(main())
