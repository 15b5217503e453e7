"""Run a simulator on its own event loop in a background thread (tests, other services' tests).

The official kiteconnect client is synchronous (requests, Twisted): a simulator on the test's own
loop would deadlock against it, so it lives on a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from services.simulator.service import SimulatorServer
from services.simulator.settings import SimulatorSettings

T = TypeVar("T")
START_TIMEOUT_S = 60.0


class SimulatorThread:
    """A started-on-demand simulator; `stop()` shuts it down and joins the thread."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kite-simulator", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: SimulatorServer | None = None

    @property
    def server(self) -> SimulatorServer:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server

    @property
    def rest_root(self) -> str:
        return self.server.rest_root

    @property
    def ws_root(self) -> str:
        return self.server.ws_root

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = SimulatorServer(self.settings)
            self._loop.run_until_complete(self._server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def start(self) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError("the simulator did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def call(self, function: Callable[[SimulatorServer], T]) -> T:
        """Run `function(server)` on the simulator's loop and return its result."""

        async def run() -> T:
            return function(self.server)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        server = self._server
        if server is not None:
            asyncio.run_coroutine_threadsafe(server.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
