"""The broker: the official kiteconnect client behind an async seam (an IO adapter).

The client is synchronous, so every call runs in a worker thread, except `place`: the order on
the hot path is sent on the event loop as kiteconnect would send it (kite_orders.py), no thread
competing with the loop for the GIL. Errors come out in three kinds, by what the caller may do
next:
- `BrokerRejected`: the broker refused the request (InputException, OrderException,
  PermissionException, an access token refused twice): nothing was placed;
- `BrokerUnavailable`: a network error, timeout, 5xx or 429: for a placement the outcome is
  UNKNOWN (the order may exist): the caller records FAILED and looks the tag up before anything
  is retried (recovery.py);
- anything else is a bug and propagates.
Retries (tenacity) happen ONLY on network errors and ONLY for calls that are safe to repeat (reads
and cancel). `place_order` and `modify_order` are never retried here: a retried placement could
become two orders. One exception is safe: a 403 TokenException is refused at authentication, before
the order exists, so the call is made once more with a DIFFERENT token re-read from Redis.
The access token is read from Redis (ACCESS_TOKEN_KEY), registered as a secret (never logged),
and reported to the Sentinel (SessionEvent EXPIRED, fingerprint only) when Kite refuses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import requests
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from services.gatekeeper.adapters.kite_orders import KiteOrderSender
from services.gatekeeper.broker_view import BrokerOrder, BrokerPosition
from shared.logs import register_secret

logger = logging.getLogger(__name__)

T = TypeVar("T")

_REFUSALS = (
    kite_errors.InputException,
    kite_errors.OrderException,
    kite_errors.PermissionException,
)
_NETWORK = (
    kite_errors.NetworkException,
    kite_errors.DataException,
    kite_errors.GeneralException,
    requests.ConnectionError,
    requests.Timeout,
)


class BrokerRejected(Exception):
    """The broker refused the request: nothing was placed or changed."""


class BrokerUnavailable(Exception):
    """The call failed in transit: for a placement, whether the order exists is unknown."""


class Broker(Protocol):
    """What the Gatekeeper asks of a broker (live Kite, or the Kite simulator in paper mode)."""

    async def place(self, params: dict[str, Any]) -> str: ...

    async def modify(self, broker_order_id: str, **changes: Any) -> str: ...

    async def cancel(self, broker_order_id: str) -> str: ...

    async def orders(self) -> list[BrokerOrder]: ...

    async def positions(self) -> list[BrokerPosition]: ...

    async def available_margin(self) -> float | None: ...

    async def quote(self, symbols: Sequence[str]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    api_key: str
    root: str
    timeout_s: float
    retry_attempts: int
    retry_initial_s: float
    retry_max_s: float


TokenReader = Callable[[], Awaitable[str | None]]
Run = Callable[[str, KiteConnect], Awaitable[T]]  # (access token, client) -> the call
TokenRejectedHook = Callable[[str], Awaitable[None]]
ErrorHook = Callable[[str, str], None]  # (call, kind) for metrics


def _is_network(error: BaseException) -> bool:
    return isinstance(error, _NETWORK)


class KiteBroker:
    def __init__(
        self,
        options: BrokerOptions,
        read_token: TokenReader,
        on_token_rejected: TokenRejectedHook,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.options = options
        self._read_token = read_token
        self._on_token_rejected = on_token_rejected
        self._on_error = on_error or (lambda call, kind: None)
        self._token: str | None = None
        self._client: KiteConnect | None = None
        self._reported: set[str] = set()  # refused tokens already reported (once each)
        self._orders = KiteOrderSender(options.api_key, options.root, options.timeout_s)

    # -- the Broker protocol --------------------------------------------------------------------

    async def place(self, params: dict[str, Any]) -> str:
        """Place one order (`KiteConnect.place_order`'s keywords), on the event loop; returns
        Kite's order id. NEVER retried on a network error."""
        return await self._authorised(
            "place_order", lambda token, _: self._orders.place(token, params), retry=False
        )

    async def modify(self, broker_order_id: str, **changes: Any) -> str:
        data = await self._call(
            "modify_order",
            lambda k: k.modify_order("regular", broker_order_id, **changes),
            retry=False,
        )
        return str(data)

    async def cancel(self, broker_order_id: str) -> str:
        # Cancelling twice is harmless (the second is refused as already cancelled).
        data = await self._call(
            "cancel_order", lambda k: k.cancel_order("regular", broker_order_id), retry=True
        )
        return str(data)

    async def orders(self) -> list[BrokerOrder]:
        rows = await self._call("orders", lambda k: k.orders(), retry=True)
        out = []
        for row in rows or []:
            try:
                out.append(BrokerOrder.from_kite(row))
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("unreadable broker order row %s: %s", row.get("order_id"), exc)
        return out

    async def positions(self) -> list[BrokerPosition]:
        data = await self._call("positions", lambda k: k.positions(), retry=True)
        return [BrokerPosition.from_kite(row) for row in (data or {}).get("net", [])]

    async def available_margin(self) -> float | None:
        """Equity segment's net available margin (rupees), None when Kite does not say."""
        data = await self._call("margins", lambda k: k.margins("equity"), retry=True)
        net = (data or {}).get("net")
        return float(net) if isinstance(net, int | float) else None

    async def quote(self, symbols: Sequence[str]) -> dict[str, Any]:
        if not symbols:
            return {}
        data = await self._call("quote", lambda k: k.quote(list(symbols)), retry=True)
        return dict(data or {})

    async def close(self) -> None:
        await self._orders.close()

    # -- plumbing -------------------------------------------------------------------------------

    async def _current_client(self, refresh: bool = False) -> tuple[str, KiteConnect]:
        if refresh or self._token is None or self._client is None:
            token = await self._read_token()
            if not token:
                raise BrokerUnavailable("no access token in Redis yet (the Sentinel logs in)")
            if token != self._token or self._client is None:
                register_secret(token)
                o = self.options
                self._client = KiteConnect(
                    o.api_key, access_token=token, root=o.root, timeout=o.timeout_s
                )
                self._token = token
        assert self._token is not None and self._client is not None
        return self._token, self._client

    async def _call(self, name: str, call: Callable[[KiteConnect], T], *, retry: bool) -> T:
        """A kiteconnect call, in a worker thread."""
        return await self._authorised(
            name, lambda _, client: asyncio.to_thread(call, client), retry=retry
        )

    async def _authorised(self, name: str, run: Run[T], *, retry: bool) -> T:
        token, client = await self._current_client()
        try:
            return await self._attempt(name, run, token, client, retry)
        except kite_errors.TokenException:
            self._on_error(name, "token")
            logger.warning("Kite refused the access token on %s: re-reading it from Redis", name)
            await self._report_refused(token)
            fresh, client = await self._current_client(refresh=True)
            if fresh == token:
                raise BrokerRejected(f"{name}: the access token was refused (403)") from None
            try:
                # Refused at authentication, before anything was placed: safe to call again.
                return await self._attempt(name, run, fresh, client, retry)
            except kite_errors.TokenException:
                await self._report_refused(fresh)
                raise BrokerRejected(f"{name}: the new access token was refused too") from None

    async def _report_refused(self, token: str) -> None:
        """Tell the Sentinel once per token: calls in flight together (a margin refresh and a
        place_order) that meet the same dead token make one report, not one each."""
        if token in self._reported:
            return
        self._reported.add(token)
        await self._on_token_rejected(token)

    async def _attempt(
        self, name: str, run: Run[T], token: str, client: KiteConnect, retry: bool
    ) -> T:
        try:
            if not retry:
                return await run(token, client)
            return await self._retrying(name, run, token, client)
        except kite_errors.TokenException:
            raise
        except _REFUSALS as exc:
            self._on_error(name, "refused")
            raise BrokerRejected(f"{type(exc).__name__}: {exc}") from None
        except _NETWORK as exc:
            self._on_error(name, "network")
            raise BrokerUnavailable(f"{name}: {type(exc).__name__}: {exc}") from None

    async def _retrying(self, name: str, run: Run[T], token: str, client: KiteConnect) -> T:
        o = self.options

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "Kite %s failed (attempt %s of %s), retrying: %s",
                name,
                state.attempt_number,
                o.retry_attempts,
                type(error).__name__,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(o.retry_attempts),
            wait=wait_exponential(multiplier=o.retry_initial_s, max=o.retry_max_s),
            retry=retry_if_exception(_is_network),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await run(token, client)
        raise AssertionError("unreachable: tenacity either returns or reraises")
