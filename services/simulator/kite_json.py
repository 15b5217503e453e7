"""The JSON shapes of Kite's REST answers and order updates, rendered from simulator state.

Times are "yyyy-mm-dd hh:mm:ss" in IST (the client parses 19-character strings into datetimes).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from services.simulator.account import MarginUse, Position
from services.simulator.instruments import Instrument
from services.simulator.orders import Order, Trade
from services.simulator.ticker_packets import TickSnapshot
from shared.clock import from_epoch_s

Json = dict[str, Any]


def kite_time(epoch: float | None) -> str | None:
    """Kite's timestamp format, IST; None stays None."""
    if epoch is None:
        return None
    return from_epoch_s(epoch).strftime("%Y-%m-%d %H:%M:%S")


def candle_time(when: datetime) -> str:
    """Historical candles use ISO-8601 with a +0530 offset."""
    return when.strftime("%Y-%m-%dT%H:%M:%S%z")


def order_json(order: Order) -> Json:
    instrument = order.instrument
    return {
        "placed_by": order.placed_by,
        "order_id": order.order_id,
        "exchange_order_id": order.exchange_order_id,
        "parent_order_id": None,
        "status": order.status,
        "status_message": order.status_message,
        "status_message_raw": order.status_message,
        "order_timestamp": kite_time(order.order_timestamp),
        "exchange_update_timestamp": kite_time(order.exchange_update_timestamp),
        "exchange_timestamp": kite_time(order.exchange_timestamp),
        "variety": order.variety,
        "modified": order.modified,
        "exchange": instrument.exchange,
        "tradingsymbol": instrument.tradingsymbol,
        "instrument_token": instrument.instrument_token,
        "order_type": order.order_type,
        "transaction_type": order.transaction_type,
        "validity": order.validity,
        "validity_ttl": 0,
        "product": order.product,
        "quantity": order.quantity,
        "disclosed_quantity": order.disclosed_quantity,
        "price": order.price,
        "trigger_price": order.trigger_price,
        "average_price": order.average_price,
        "filled_quantity": order.filled_quantity,
        "pending_quantity": order.pending_quantity,
        "cancelled_quantity": order.cancelled_quantity,
        "market_protection": order.market_protection,
        "meta": {},
        "tag": order.tag or None,
        "tags": [order.tag] if order.tag else [],
        "guid": order.guid,
    }


def postback_json(order: Order, user_id: str, api_key: str, api_secret: str) -> Json:
    """An order update as the ticker and postbacks send it, with Kite's checksum."""
    data = order_json(order)
    stamp = data["order_timestamp"] or ""
    digest = hashlib.sha256((order.order_id + stamp + api_secret).encode()).hexdigest()
    data.update(
        {
            "user_id": user_id,
            "app_id": api_key,
            "checksum": digest,
            "unfilled_quantity": order.pending_quantity,
        }
    )
    return data


def trade_json(trade: Trade) -> Json:
    return {
        "trade_id": trade.trade_id,
        "order_id": trade.order_id,
        "exchange": trade.instrument.exchange,
        "tradingsymbol": trade.instrument.tradingsymbol,
        "instrument_token": trade.instrument.instrument_token,
        "product": trade.product,
        "average_price": trade.price,
        "quantity": trade.quantity,
        "exchange_order_id": trade.exchange_order_id,
        "transaction_type": trade.transaction_type,
        "fill_timestamp": kite_time(trade.fill_timestamp),
        "order_timestamp": kite_time(trade.order_timestamp),
        "exchange_timestamp": kite_time(trade.fill_timestamp),
    }


def position_json(position: Position, last_price: float, close_price: float) -> Json:
    i = position.instrument
    pnl = position.pnl(last_price)
    buy_q, sell_q = position.buy_quantity, position.sell_quantity
    return {
        "tradingsymbol": i.tradingsymbol,
        "exchange": i.exchange,
        "instrument_token": i.instrument_token,
        "product": position.product,
        "quantity": position.quantity,
        "overnight_quantity": 0,
        "multiplier": 1,
        "average_price": position.average_price,
        "close_price": close_price,
        "last_price": last_price,
        "value": position.sell_value - position.buy_value,
        "pnl": pnl,
        "m2m": pnl,
        "unrealised": pnl - position.realised,
        "realised": position.realised,
        "buy_quantity": buy_q,
        "buy_price": position.buy_price,
        "buy_value": position.buy_value,
        "buy_m2m": position.buy_value,
        "sell_quantity": sell_q,
        "sell_price": position.sell_price,
        "sell_value": position.sell_value,
        "sell_m2m": position.sell_value,
        "day_buy_quantity": buy_q,
        "day_buy_price": position.buy_price,
        "day_buy_value": position.buy_value,
        "day_sell_quantity": sell_q,
        "day_sell_price": position.sell_price,
        "day_sell_value": position.sell_value,
    }


def _ohlc(tick: TickSnapshot) -> Json:
    return {"open": tick.open, "high": tick.high, "low": tick.low, "close": tick.close}


def ltp_json(instrument: Instrument, tick: TickSnapshot) -> Json:
    return {"instrument_token": instrument.instrument_token, "last_price": tick.last_price}


def ohlc_json(instrument: Instrument, tick: TickSnapshot) -> Json:
    return {**ltp_json(instrument, tick), "ohlc": _ohlc(tick)}


def quote_json(
    instrument: Instrument, tick: TickSnapshot, note: str, band: tuple[float, float]
) -> Json:
    """A full quote; `modelled` says where the numbers come from."""
    change = tick.last_price - tick.close if tick.close else 0.0
    body: Json = {
        "instrument_token": instrument.instrument_token,
        "timestamp": kite_time(tick.exchange_timestamp),
        "last_price": tick.last_price,
        "net_change": round(change, 2),
        "ohlc": _ohlc(tick),
        "modelled": note,
    }
    if instrument.is_index:
        return body
    body.update(
        {
            "last_trade_time": kite_time(tick.last_trade_time),
            "last_quantity": tick.last_quantity,
            "buy_quantity": tick.buy_quantity,
            "sell_quantity": tick.sell_quantity,
            "volume": tick.volume,
            "average_price": tick.average_price,
            "oi": tick.oi,
            "oi_day_high": tick.oi_day_high,
            "oi_day_low": tick.oi_day_low,
            "lower_circuit_limit": round(band[0], 2),
            "upper_circuit_limit": round(band[1], 2),
            "depth": {
                "buy": [
                    {"price": d.price, "quantity": d.quantity, "orders": d.orders}
                    for d in tick.bids
                ],
                "sell": [
                    {"price": d.price, "quantity": d.quantity, "orders": d.orders}
                    for d in tick.asks
                ],
            },
        }
    )
    return body


def margins_segment_json(
    opening: float, realised: float, unrealised: float, charges: float, use: MarginUse
) -> Json:
    cash = opening + realised - charges
    net = cash - use.total
    return {
        "enabled": True,
        "net": round(net, 2),
        "available": {
            "adhoc_margin": 0,
            "cash": round(cash, 2),
            "opening_balance": opening,
            "live_balance": round(net, 2),
            "collateral": 0,
            "intraday_payin": 0,
        },
        "utilised": {
            "debits": round(use.total + charges, 2),
            "exposure": 0,
            "m2m_realised": round(realised, 2),
            "m2m_unrealised": round(unrealised, 2),
            "option_premium": round(use.option_premium, 2),
            "payout": 0,
            "span": round(use.span + use.blocked_by_orders, 2),
            "holding_sales": 0,
            "turnover": 0,
            "liquid_collateral": 0,
            "stock_collateral": 0,
            "delivery": 0,
        },
    }


def empty_segment_json() -> Json:
    """A segment the simulated account has not enabled (commodity)."""
    zero = margins_segment_json(0.0, 0.0, 0.0, 0.0, MarginUse(0.0, 0.0, 0.0))
    zero["enabled"] = False
    return zero
