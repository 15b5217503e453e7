"""The one Twisted reactor behind every KiteTicker in a process (an IO adapter).

KiteTicker runs on Twisted's process-global reactor, which cannot be restarted once stopped
(`ReactorNotRestartable`). Services start it once in a daemon thread, never stop it, build new
KiteTickers on the running reactor for new tokens, and hand work to it with `on_reactor`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor

_reactor: Any = reactor  # Twisted has no type hints for the global reactor
_lock = threading.Lock()
_thread: threading.Thread | None = None

REACTOR_START_TIMEOUT_S = 10.0


def ensure_reactor_running() -> None:
    """Start the Twisted reactor in a daemon thread unless it already runs (idempotent)."""
    global _thread
    with _lock:
        if _reactor.running:
            return
        if _thread is None:
            _thread = threading.Thread(
                target=_reactor.run,
                kwargs={"installSignalHandlers": False},
                name="twisted-reactor",
                daemon=True,
            )
            _thread.start()
        deadline = time.monotonic() + REACTOR_START_TIMEOUT_S
        while not _reactor.running:
            if time.monotonic() > deadline or not _thread.is_alive():
                raise RuntimeError("the Twisted reactor did not start (was it stopped before?)")
            time.sleep(0.005)


def on_reactor(call: Callable[..., Any], *args: Any) -> None:
    """Run `call(*args)` on the reactor thread (KiteTicker is not thread-safe)."""
    _reactor.callFromThread(call, *args)
