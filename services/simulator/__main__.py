"""`python -m services.simulator` / `tradealgo sim`: run the Kite simulator until stopped.

The first two lines on stdout are the roots to pass to the official client:
`REST root: http://127.0.0.1:8710` and `WebSocket root: ws://127.0.0.1:8711`.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from services.simulator.cli import overrides
from services.simulator.market_data import DataError
from services.simulator.service import SimulatorServer
from services.simulator.settings import SimulatorSettings
from shared.calendar import CalendarError
from shared.runtime import load_or_report, stop_on_signals

logger = logging.getLogger("services.simulator")


async def serve(settings: SimulatorSettings) -> int:
    server = SimulatorServer(settings)
    await server.start()
    print(f"REST root: {server.rest_root}", flush=True)
    print(f"WebSocket root: {server.ws_root}", flush=True)
    stop = stop_on_signals()
    await stop.wait()
    logger.info("stop requested")
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse flags over SIM_* settings, then serve; 2 on a bad setting or missing data."""
    settings = load_or_report(SimulatorSettings, **overrides(argv))
    if settings is None:
        return 2
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(serve(settings))
    except (DataError, CalendarError, OSError) as exc:
        print(f"simulator cannot start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
