"""Kite Connect's REST API at the host root: user, market data, orders and portfolio.

The middleware answers every failure in Kite's envelope (with `error_type`), applies injected
slowness and 429s, and the per-family rate limits. Handlers parse, call the pure simulation and
render; order updates also go out on the ticker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.simulator.errors import InputError, KiteApiError, RateLimited
from services.simulator.historical import check_range, modelled_candles, parse_kite_datetime
from services.simulator.instruments import Instrument
from services.simulator.kite_json import (
    candle_time,
    empty_segment_json,
    ltp_json,
    margins_segment_json,
    ohlc_json,
    order_json,
    position_json,
    quote_json,
    trade_json,
)
from services.simulator.matching import price_band
from services.simulator.order_rules import parse_modification, parse_order_request
from services.simulator.pricing import model_note
from services.simulator.rate_limits import family_of
from services.simulator.ticker_packets import TickSnapshot
from services.simulator.web.common import authorised, error, error_from, form_of, server_of, success
from services.simulator.web.login import profile_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNLIMITED_PREFIXES = ("/_sim", "/connect/", "/api/")
NON_INDEX_CIRCUIT_PCT = 10.0  # the simulator's stand-in circuit for futures (options: the band)


@web.middleware
async def kite_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    server = server_of(request)
    path = request.path
    wall = time.monotonic()
    faults = server.sim.faults
    delay = 0.0 if path.startswith("/_sim") else faults.response_delay(wall)
    if delay:
        await asyncio.sleep(delay)
    try:
        if not path.startswith(UNLIMITED_PREFIXES):
            if faults.rate_limited(wall):
                raise RateLimited("Too many requests (simulated fault).")
            refusal = server.sim.limits.check(family_of(request.method, path), wall)
            if refusal is not None:
                raise RateLimited(refusal)
        return await handler(request)
    except KiteApiError as exc:
        return error_from(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.reason or "Route not found", "GeneralException", exc.status)


async def profile(request: web.Request) -> web.Response:
    authorised(request)
    return success(profile_json(server_of(request).settings))


def _margins(request: web.Request) -> dict[str, object]:
    sim = server_of(request).sim
    book = sim.book
    account = book.account
    use = book.margin_use_without()
    equity = margins_segment_json(
        account.opening_cash,
        account.realised(),
        account.unrealised(book.prices),
        account.charges,
        use,
    )
    return {"equity": equity, "commodity": empty_segment_json()}


async def margins(request: web.Request) -> web.Response:
    authorised(request)
    return success(_margins(request))


async def margins_segment(request: web.Request) -> web.Response:
    authorised(request)
    segment = request.match_info["segment"]
    if segment not in ("equity", "commodity"):
        raise InputError(f"Invalid segment {segment!r}.")
    return success(_margins(request)[segment])


def _quotes(request: web.Request, limit: int, render: Callable[..., object]) -> web.Response:
    authorised(request)
    sim = server_of(request).sim
    refs = request.query.getall("i", [])
    if len(refs) > limit:
        raise InputError(f"Too many instruments: at most {limit} per request.")
    out: dict[str, object] = {}
    for ref in refs:
        instrument = sim.universe.lookup(ref)
        tick = None if instrument is None else sim.market.snapshot(instrument)
        if instrument is not None and tick is not None:
            out[ref] = render(instrument, tick)
    return success(out)


async def quote(request: web.Request) -> web.Response:
    s = server_of(request).settings
    sim = server_of(request).sim

    def render(instrument: Instrument, tick: TickSnapshot) -> object:
        underlying = sim.market.underlyings[instrument.underlying_token]
        if instrument.is_option:
            band = price_band(
                tick.last_price, s.price_band_threshold, s.price_band_pct, s.price_band_abs
            )
        else:
            width = tick.last_price * NON_INDEX_CIRCUIT_PCT / 100
            band = (tick.last_price - width, tick.last_price + width)
        return quote_json(
            instrument, tick, model_note(instrument, underlying, sim.market.model), band
        )

    return _quotes(request, s.quote_max_instruments, render)


async def ohlc(request: web.Request) -> web.Response:
    return _quotes(request, server_of(request).settings.ohlc_max_instruments, ohlc_json)


async def ltp(request: web.Request) -> web.Response:
    return _quotes(request, server_of(request).settings.ltp_max_instruments, ltp_json)


async def instruments(request: web.Request) -> web.Response:
    authorised(request)
    exchange = request.match_info.get("exchange")
    universe = server_of(request).sim.universe
    if exchange is not None and exchange not in {i.exchange for i in universe.instruments}:
        raise InputError(f"Invalid exchange {exchange!r}.")
    return web.Response(text=universe.csv(exchange), content_type="text/csv")


async def historical(request: web.Request) -> web.Response:
    authorised(request)
    server = server_of(request)
    sim = server.sim
    raw_token, interval = request.match_info["token"], request.match_info["interval"]
    instrument = sim.universe.by_token.get(int(raw_token)) if raw_token.isdigit() else None
    if instrument is None:
        raise InputError(f"Invalid instrument token {raw_token!r}.")
    start = parse_kite_datetime(request.query.get("from", ""), "from")
    end = parse_kite_datetime(request.query.get("to", ""), "to")
    check_range(interval, start, end, server.settings.historical_max_days)
    now = server.now()
    rows = sim.historical.candles(instrument.underlying_token, interval, start, end, now)
    if not instrument.is_index:
        underlying = sim.market.underlyings[instrument.underlying_token]
        model = sim.market.model
        expires = instrument.expires_at
        rows = modelled_candles(
            rows,
            lambda spot, epoch: model.price(instrument, underlying, spot, epoch),
            instrument.instrument_type != "PE",
            None if expires is None else expires.timestamp(),
        )
    with_oi = request.query.get("oi") in ("1", "true")
    candles = [
        [candle_time(c[0]), c[1], c[2], c[3], c[4], c[5], *([0] if with_oi else [])] for c in rows
    ]
    return success({"candles": candles})


async def place_order(request: web.Request) -> web.Response:
    authorised(request)
    server = server_of(request)
    sim = server.sim
    refusal = sim.limits.check_new_order(time.monotonic())
    if refusal is not None:
        raise RateLimited(refusal)
    order_request = parse_order_request(
        request.match_info["variety"], await form_of(request), sim.universe
    )
    order, updates = sim.book.place(order_request, server.now())
    server.broadcast_orders(updates)
    return success({"order_id": order.order_id})


async def modify_order(request: web.Request) -> web.Response:
    authorised(request)
    server = server_of(request)
    change = parse_modification(await form_of(request))
    variety, order_id = request.match_info["variety"], request.match_info["order_id"]
    server.broadcast_orders(server.sim.book.modify(variety, order_id, change, server.now()))
    return success({"order_id": order_id})


async def cancel_order(request: web.Request) -> web.Response:
    authorised(request)
    server = server_of(request)
    variety, order_id = request.match_info["variety"], request.match_info["order_id"]
    server.broadcast_orders(server.sim.book.cancel(variety, order_id, server.now()))
    return success({"order_id": order_id})


async def orders(request: web.Request) -> web.Response:
    authorised(request)
    return success([order_json(o) for o in server_of(request).sim.book.orders.values()])


async def order_history(request: web.Request) -> web.Response:
    authorised(request)
    order_id = request.match_info["order_id"]
    history = server_of(request).sim.book.history.get(order_id)
    if history is None:
        raise InputError(f"Couldn't find that `order_id` {order_id}.")
    return success([order_json(o) for o in history])


async def trades(request: web.Request) -> web.Response:
    authorised(request)
    return success([trade_json(t) for t in server_of(request).sim.book.trades])


async def order_trades(request: web.Request) -> web.Response:
    authorised(request)
    order_id = request.match_info["order_id"]
    book = server_of(request).sim.book
    if order_id not in book.orders:
        raise InputError(f"Couldn't find that `order_id` {order_id}.")
    return success([trade_json(t) for t in book.trades if t.order_id == order_id])


async def positions(request: web.Request) -> web.Response:
    authorised(request)
    sim = server_of(request).sim
    rows = []
    for position in sim.book.account.open_positions():
        tick = sim.market.snapshot(position.instrument)
        last = 0.0 if tick is None else tick.last_price
        close = 0.0 if tick is None else tick.close
        rows.append(position_json(position, last, close))
    # One simulated day: nothing is carried overnight, so net and day are the same positions.
    return success({"net": rows, "day": rows})


async def holdings(request: web.Request) -> web.Response:
    authorised(request)
    # The simulated universe has no deliverable equities: the demat account is empty.
    return success([])


def rest_routes() -> list[web.RouteDef]:
    return [
        web.get("/user/profile", profile),
        web.get("/user/margins", margins),
        web.get("/user/margins/{segment}", margins_segment),
        web.get("/quote", quote),
        web.get("/quote/ohlc", ohlc),
        web.get("/quote/ltp", ltp),
        web.get("/instruments", instruments),
        web.get("/instruments/historical/{token}/{interval}", historical),
        web.get("/instruments/{exchange}", instruments),
        web.post("/orders/{variety}", place_order),
        web.put("/orders/{variety}/{order_id}", modify_order),
        web.delete("/orders/{variety}/{order_id}", cancel_order),
        web.get("/orders", orders),
        web.get("/orders/{order_id}", order_history),
        web.get("/orders/{order_id}/trades", order_trades),
        web.get("/trades", trades),
        web.get("/portfolio/positions", positions),
        web.get("/portfolio/holdings", holdings),
    ]
