"""KiteTicker connections on one process-global Twisted reactor (an IO adapter).

Twisted's reactor cannot be restarted (ReactorNotRestartable), so it is started ONCE per process
in a daemon thread and never stopped; everything that touches Twisted objects runs on that thread
through `reactor.callFromThread`. A new token or a forced reconnect builds a NEW KiteTicker on the
running reactor and drops the old one: no process restart, no reactor restart.

The hot path (`_on_message`, reactor thread) does no parsing: `on_ticks` is never set, so the
official client skips its slow parser, and the raw frame goes into the FrameBuffer with its
receipt time (time.time_ns()). Parsing happens on the asyncio side.

Connection status (connected, last frame time, rejected token) is plain attributes written by the
reactor thread and read by the asyncio side (single writes of immutable values, safe under the
GIL). Events the asyncio side must act on (token rejected, reconnect attempts) go through
`notify`, which the service wires to `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kiteconnect import KiteTicker

from services.producer.frame_buffer import Frame, FrameBuffer
from shared.twisted_reactor import ensure_reactor_running, on_reactor

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickerOptions:
    api_key: str
    ws_root: str
    mode: str  # "full" | "quote" | "ltp"
    reconnect_max_tries: int
    reconnect_max_delay_s: int
    connect_timeout_s: int
    snapshot_grace_ns: int = 500_000_000


TickerEvent = tuple[str, str, str]  # (connection name, kind, detail); kinds below
EVENT_CONNECTED, EVENT_CLOSED, EVENT_RECONNECTING = "connected", "closed", "reconnecting"
EVENT_TOKEN_REJECTED, EVENT_GAVE_UP, EVENT_SERVER_ERROR = "token_rejected", "gave_up", "error"


def is_token_rejection(code: object, reason: object) -> bool:
    """A handshake refused with HTTP 403 (autobahn reports it in the close reason text)."""
    text = str(reason)
    return "403" in text or "Forbidden" in text


class TickerConnection:
    """One KiteTicker for one shard of instruments. Create, `start()`, later `close()`."""

    def __init__(
        self,
        name: str,
        tokens: Sequence[int],
        access_token: str,
        options: TickerOptions,
        buffer: FrameBuffer,
        notify: Callable[[TickerEvent], None],
        started_ns: int,
    ) -> None:
        self.name = name
        self.tokens = list(tokens)
        self.options = options
        self.buffer = buffer
        self.notify = notify
        self.started_ns = started_ns
        self.last_frame_ns: int | None = None  # the last LIVE frame (not a subscribe snapshot)
        self.frames = 0
        self._connected_ns = 0
        self.connected = False
        self.closed = False
        self.token_rejected = False
        self.silent_restarts = 0  # forced reconnects in a row without a tick (watchdog back-off)
        self._access_token = access_token
        self._kws: Any = None

    # -- asyncio side ---------------------------------------------------------------------------

    def start(self) -> None:
        ensure_reactor_running()
        on_reactor(self._start)

    def close(self, clean: bool = False) -> None:
        """Stop retrying and drop the connection at once (its replacement may be connecting),
        or with `clean`, send a WebSocket close (shutdown)."""
        self.closed = True
        on_reactor(self._close, clean)

    # -- reactor thread -------------------------------------------------------------------------

    def _start(self) -> None:
        o = self.options
        kws = KiteTicker(
            o.api_key,
            self._access_token,
            root=o.ws_root,
            reconnect_max_tries=o.reconnect_max_tries,
            reconnect_max_delay=o.reconnect_max_delay_s,
            connect_timeout=o.connect_timeout_s,
        )
        kws.on_message = self._on_message
        kws.on_connect = self._on_connect
        kws.on_close = self._on_close
        kws.on_error = self._on_error
        kws.on_reconnect = self._on_reconnect
        kws.on_noreconnect = self._on_noreconnect
        self._kws = kws
        kws.connect(threaded=True)  # the reactor already runs: this only schedules the connect

    def _close(self, clean: bool = False) -> None:
        kws = self._kws
        if kws is None:
            return
        try:
            kws.stop_retry()
            if kws.ws is not None and clean:
                kws.ws.sendClose(1000, "shutdown")
            elif kws.ws is not None:
                kws.ws.dropConnection(abort=True)
        except Exception:  # closing a half-open connection must never kill the reactor thread
            logger.exception("closing ticker connection %s failed", self.name)
        self.connected = False

    def _on_connect(self, ws: Any, response: Any) -> None:
        if self.closed:  # a connect that completed after close(): do not keep it
            self._close()
            return
        self.connected = True
        self.token_rejected = False
        # Kite answers a subscription (and a mode change) with a snapshot of the current quotes:
        # frames in the first `snapshot_grace_s` prove the socket works, not that the feed is
        # live (a stalled feed still sends them), so they do not count as liveness.
        self._connected_ns = time.time_ns()
        ws.subscribe(self.tokens)
        ws.set_mode(self.options.mode, self.tokens)
        self.notify((self.name, EVENT_CONNECTED, f"{len(self.tokens)} instruments"))

    def _on_message(self, ws: Any, payload: bytes, is_binary: bool) -> None:
        received_ns = time.time_ns()
        if is_binary:
            if len(payload) < 2:  # heartbeat: alive, but not a tick
                return
            self.frames += 1
            if received_ns - self._connected_ns > self.options.snapshot_grace_ns:
                self.last_frame_ns = received_ns
            self.buffer.put(Frame(self.name, payload, received_ns))
            return
        self._on_text(payload)

    def _on_text(self, payload: bytes | str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            logger.warning("ticker %s sent unreadable text (%d bytes)", self.name, len(payload))
            return
        if isinstance(data, dict) and data.get("type") == "error":
            self.notify((self.name, EVENT_SERVER_ERROR, str(data.get("data"))))

    def _on_close(self, ws: Any, code: object, reason: object) -> None:
        self.connected = False
        if not self.closed:
            self.notify((self.name, EVENT_CLOSED, f"{code} {reason}"))

    def _on_error(self, ws: Any, code: object, reason: object) -> None:
        self.connected = False
        if self.closed:
            return
        if is_token_rejection(code, reason):
            # Retrying with a rejected token only hammers Kite: stop, report, wait for a new one.
            self.token_rejected = True
            if self._kws is not None:
                self._kws.stop_retry()
            self.notify((self.name, EVENT_TOKEN_REJECTED, str(reason)))

    def _on_reconnect(self, ws: Any, attempts: int) -> None:
        if not self.closed:
            self.notify((self.name, EVENT_RECONNECTING, str(attempts)))

    def _on_noreconnect(self, ws: Any) -> None:
        if not self.closed:
            self.notify((self.name, EVENT_GAVE_UP, "reconnect attempts exhausted"))
