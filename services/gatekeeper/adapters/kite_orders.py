"""Kite's place_order on the event loop (an IO adapter behind KiteBroker.place).

kiteconnect's client blocks, so KiteBroker runs its calls in worker threads. On the hot path that
thread fought the event loop for the GIL: every order of a burst woke a thread that built its
request in Python while the loop still had the burst's other orders to hand over. Here the very
request kiteconnect makes (same URL, headers and form body, fields in the same order) goes out
with aiohttp on the loop, and the reply is read as kiteconnect reads it: an error reply raises the
same kiteconnect exception class and a transport failure a NetworkException, so KiteBroker sorts
every outcome exactly as before. Every other call (reads, cancels, modifications) stays on
kiteconnect.
"""

from __future__ import annotations

import inspect
import json
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors
from kiteconnect.__version__ import __title__, __version__

# kiteconnect's own values, so a new kiteconnect release moves both paths together.
PLACE_ROUTE = KiteConnect._routes["order.place"]
PLACE_FIELDS = tuple(
    p for p in inspect.signature(KiteConnect.place_order).parameters if p != "self"
)
USER_AGENT = (__title__ + "-python/").capitalize() + __version__
# An idle connection is kept this long (aiohttp's default is 15 s; kiteconnect's requests keeps
# one until the server closes it): orders minutes apart would each open a new TLS connection.
KEEP_ALIVE_S = 120.0


def place_form(params: dict[str, Any]) -> list[tuple[str, str]]:
    """The form fields of `KiteConnect.place_order(**params)`: its fields in its order, None
    values left out; a field it does not take is refused as it would be (TypeError)."""
    unknown = sorted(set(params) - set(PLACE_FIELDS))
    if unknown:
        raise TypeError(f"place_order() got unexpected fields {unknown}")
    return [(name, str(params[name])) for name in PLACE_FIELDS if params.get(name) is not None]


def place_body(params: dict[str, Any]) -> bytes:
    """The urlencoded body requests makes of those fields (encoded here once: aiohttp's form
    handling was half of the request's cost)."""
    return urlencode(place_form(params)).encode()


def kite_reply(status: int, content_type: str, body: bytes) -> Any:
    """The `data` of a Kite reply, or the kiteconnect exception it stands for (as
    KiteConnect._request reads a reply)."""
    if "json" not in content_type:
        raise kite_errors.DataException(
            f"Unknown Content-Type ({content_type}) with response: ({body[:200]!r})"
        )
    try:
        data = json.loads(body)
    except ValueError:
        raise kite_errors.DataException(
            f"Couldn't parse the JSON response received from the server: {body[:200]!r}"
        ) from None
    if not isinstance(data, dict):
        raise kite_errors.DataException(f"unexpected Kite reply: {body[:200]!r}")
    if data.get("status") == "error" or data.get("error_type"):
        kind = getattr(kite_errors, str(data.get("error_type") or ""), None)
        if not (isinstance(kind, type) and issubclass(kind, kite_errors.KiteException)):
            kind = kite_errors.GeneralException
        raise kind(str(data.get("message", "")), code=status)
    return data.get("data")


class KiteOrderSender:
    """POSTs orders to Kite over one aiohttp session (opened on first use, on the running loop)."""

    def __init__(self, api_key: str, root: str, timeout_s: float) -> None:
        self.api_key = api_key
        self.root = root
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, str] = {}  # variety -> its URL (urljoin was ~10 us an order)

    async def place(self, access_token: str, params: dict[str, Any]) -> str:
        """Kite's order id; raises what kiteconnect's place_order would (NetworkException for
        a transport failure or timeout: the order may exist)."""
        variety = str(params["variety"])
        url = self._urls.get(variety)
        if url is None:
            url = self._urls[variety] = urljoin(self.root, PLACE_ROUTE.format(variety=variety))
        headers = {
            "X-Kite-Version": KiteConnect.kite_header_version,
            "User-Agent": USER_AGENT,
            "Authorization": f"token {self.api_key}:{access_token}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(keepalive_timeout=KEEP_ALIVE_S)
            )
        try:
            async with self._session.post(
                url, data=place_body(params), headers=headers
            ) as response:
                reply = await response.read()
                status, content_type = response.status, response.headers.get("content-type", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise kite_errors.NetworkException(f"{type(exc).__name__}: {exc}") from None
        data = kite_reply(status, content_type, reply)
        if not isinstance(data, dict) or "order_id" not in data:
            raise kite_errors.DataException(f"place_order reply without an order id: {data!r}")
        return str(data["order_id"])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
