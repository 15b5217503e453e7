"""Order updates from the KiteTicker WebSocket (an IO adapter): {"type": "order"} text messages.

The ticker subscribes to no instrument: it is opened only for `on_order_update`, which the official
client calls with the postback payload of every order of the account. Each payload is handed to
the asyncio side through `deliver` (wired to `loop.call_soon_threadsafe`); parsing and the state
machine stay on the asyncio side. Twisted's reactor is process-global and cannot be restarted: it
is started once in a daemon thread (unless something else already runs it) and everything that
touches Twisted runs on it through `callFromThread`. A new access token -> a NEW KiteTicker; the
old one is dropped. Polling the order book (the service) backs this feed up: an update missed
while the socket was down is picked up there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kiteconnect import KiteTicker

from shared.twisted_reactor import ensure_reactor_running, on_reactor

logger = logging.getLogger(__name__)


class OrderUpdateFeed:
    """One KiteTicker used for order updates only. `start()`, later `close()`."""

    def __init__(
        self,
        api_key: str,
        ws_root: str,
        access_token: str,
        deliver: Callable[[dict[str, Any]], None],
        on_status: Callable[[str, str], None],
        reconnect_max_delay_s: int = 5,
    ) -> None:
        self.api_key = api_key
        self.ws_root = ws_root
        self.access_token = access_token
        self.deliver = deliver
        self.on_status = on_status  # (kind, detail): connected, closed, error
        self.reconnect_max_delay_s = reconnect_max_delay_s
        self.connected = False
        self.closed = False
        self._kws: Any = None

    def start(self) -> None:
        ensure_reactor_running()
        on_reactor(self._start)

    def close(self) -> None:
        self.closed = True
        on_reactor(self._close)

    # -- reactor thread -------------------------------------------------------------------------

    def _start(self) -> None:
        kws = KiteTicker(
            self.api_key,
            self.access_token,
            root=self.ws_root,
            reconnect_max_delay=self.reconnect_max_delay_s,
        )
        kws.on_connect = self._on_connect
        kws.on_close = self._on_close
        kws.on_error = self._on_error
        kws.on_order_update = self._on_order_update
        self._kws = kws
        kws.connect(threaded=True)  # the reactor already runs: this only schedules the connect

    def _close(self) -> None:
        kws = self._kws
        if kws is None:
            return
        try:
            kws.stop_retry()
            if kws.ws is not None:
                kws.ws.dropConnection(abort=True)
        except Exception:  # never kill the reactor thread while closing
            logger.exception("closing the order-update ticker failed")
        self.connected = False

    def _on_connect(self, ws: Any, response: Any) -> None:
        if self.closed:
            self._close()
            return
        self.connected = True
        self.on_status("connected", "order updates on the KiteTicker")

    def _on_order_update(self, ws: Any, data: Any) -> None:
        if not self.closed and isinstance(data, dict):
            self.deliver(data)

    def _on_close(self, ws: Any, code: object, reason: object) -> None:
        self.connected = False
        if not self.closed:
            self.on_status("closed", f"{code} {reason}")

    def _on_error(self, ws: Any, code: object, reason: object) -> None:
        self.connected = False
        if self.closed:
            return
        text = str(reason)
        if "403" in text or "Forbidden" in text:
            if self._kws is not None:
                self._kws.stop_retry()  # a refused token: wait for a new one
            self.on_status("token_rejected", text)
        else:
            self.on_status("error", f"{code} {text}")
