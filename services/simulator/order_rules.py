"""Order requests as Kite receives them (form fields) -> validated requests or an InputException.

These are the checks the API itself makes before an order exists (a 400 answer, no order id).
Risk and exchange checks that produce a REJECTED order (margin, freeze quantity, price band,
market closed) live in the order book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.simulator.errors import InputError
from services.simulator.instruments import Instrument, InstrumentUniverse

SUPPORTED_VARIETIES = ("regular", "amo")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS_FNO = ("NRML", "MIS")
VALIDITIES = ("DAY", "IOC")
MAX_TAG_LENGTH = 20


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A place-order call that passed the API's input checks."""

    variety: str
    instrument: Instrument
    transaction_type: str
    quantity: int
    product: str
    order_type: str
    price: float
    trigger_price: float
    validity: str
    disclosed_quantity: int
    tag: str
    market_protection: float  # percent; -1 = automatic; 0 only for LIMIT / SL


@dataclass(frozen=True, slots=True)
class Modification:
    """The fields of a modify call; None = unchanged."""

    quantity: int | None
    price: float | None
    trigger_price: float | None
    order_type: str | None
    validity: str | None
    disclosed_quantity: int | None
    market_protection: float | None


def _number(form: Mapping[str, str], name: str, kind: type[int] | type[float]) -> float | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"Invalid `{name}`: {raw!r} is not a number.") from None
    if kind is int and value != int(value):
        raise InputError(f"Invalid `{name}`: {raw!r} is not a whole number.")
    return value


def _on_grid(value: float, tick: float) -> bool:
    return abs(round(value / tick) * tick - value) < 1e-6


def _check_prices(
    order_type: str, transaction_type: str, price: float, trigger: float, tick: float
) -> None:
    if order_type in ("LIMIT", "SL"):
        if price <= 0:
            raise InputError(f"`price` is required and must be > 0 for {order_type} orders.")
        if not _on_grid(price, tick):
            raise InputError(f"Invalid `price`: {price} is not a multiple of the tick size {tick}.")
    if order_type in ("SL", "SL-M"):
        if trigger <= 0:
            raise InputError(
                f"`trigger_price` is required and must be > 0 for {order_type} orders."
            )
        if not _on_grid(trigger, tick):
            raise InputError(f"Invalid `trigger_price`: {trigger} is not a multiple of {tick}.")
    if order_type == "SL":
        if transaction_type == "BUY" and trigger > price:
            raise InputError(
                "Trigger price for stoploss buy orders should be less than limit price."
            )
        if transaction_type == "SELL" and trigger < price:
            raise InputError(
                "Trigger price for stoploss sell orders should be higher than limit price."
            )


def check_market_protection(order_type: str, value: float | None) -> float:
    """MARKET and SL-M need a protection percentage (0 < p <= 100) or -1 (automatic)."""
    if order_type not in ("MARKET", "SL-M"):
        return 0.0
    if value is None:
        raise InputError(
            f"`market_protection` is required for {order_type} orders (percent or -1)."
        )
    if value == 0:
        raise InputError("`market_protection` 0 is not allowed: use a percentage or -1 (auto).")
    if value != -1 and not 0 < value <= 100:
        raise InputError(f"Invalid `market_protection` {value}: use 0 < value <= 100 or -1.")
    return value


def parse_order_request(
    variety: str, form: Mapping[str, str], universe: InstrumentUniverse
) -> OrderRequest:
    """Validate a place-order call; InputError names the first problem."""
    if variety not in SUPPORTED_VARIETIES:
        raise InputError(f"Invalid `variety` {variety!r}: the simulator supports regular and amo.")
    exchange, symbol = form.get("exchange", ""), form.get("tradingsymbol", "")
    if not exchange or not symbol:
        raise InputError("`exchange` and `tradingsymbol` are required.")
    instrument = universe.by_key.get(f"{exchange}:{symbol}")
    if instrument is None:
        raise InputError(f"Invalid `tradingsymbol`: {exchange}:{symbol} is not an instrument.")
    if instrument.is_index:
        raise InputError(f"{instrument.key} is an index and cannot be traded.")
    side = form.get("transaction_type", "")
    if side not in ("BUY", "SELL"):
        raise InputError("Invalid `transaction_type`: use BUY or SELL.")
    quantity = _number(form, "quantity", int)
    if quantity is None or quantity <= 0:
        raise InputError("`quantity` is required and must be > 0.")
    if quantity % instrument.lot_size:
        raise InputError(f"Quantity should be a multiple of the lot size {instrument.lot_size}.")
    product = form.get("product", "")
    if product not in PRODUCTS_FNO:
        raise InputError(f"Invalid `product` {product!r} for F&O: use NRML or MIS.")
    order_type = form.get("order_type", "")
    if order_type not in ORDER_TYPES:
        raise InputError(f"Invalid `order_type` {order_type!r}.")
    validity = form.get("validity") or "DAY"
    if validity not in VALIDITIES:
        raise InputError(f"Invalid `validity` {validity!r}: the simulator supports DAY and IOC.")
    price = _number(form, "price", float) or 0.0
    trigger = _number(form, "trigger_price", float) or 0.0
    _check_prices(order_type, side, price, trigger, instrument.tick_size)
    tag = form.get("tag", "")
    if len(tag) > MAX_TAG_LENGTH or (tag and not tag.isalnum()):
        raise InputError(f"Invalid `tag`: alphanumeric, at most {MAX_TAG_LENGTH} characters.")
    disclosed = int(_number(form, "disclosed_quantity", int) or 0)
    if not 0 <= disclosed <= quantity:
        raise InputError("Invalid `disclosed_quantity`.")
    protection = check_market_protection(order_type, _number(form, "market_protection", float))
    return OrderRequest(
        variety,
        instrument,
        side,
        int(quantity),
        product,
        order_type,
        price if order_type in ("LIMIT", "SL") else 0.0,
        trigger if order_type in ("SL", "SL-M") else 0.0,
        validity,
        disclosed,
        tag,
        protection,
    )


def parse_modification(form: Mapping[str, str]) -> Modification:
    """The fields of a modify call, type-checked (the order book checks them against the order)."""
    order_type = form.get("order_type") or None
    if order_type is not None and order_type not in ORDER_TYPES:
        raise InputError(f"Invalid `order_type` {order_type!r}.")
    validity = form.get("validity") or None
    if validity is not None and validity not in VALIDITIES:
        raise InputError(f"Invalid `validity` {validity!r}.")
    quantity = _number(form, "quantity", int)
    disclosed = _number(form, "disclosed_quantity", int)
    return Modification(
        None if quantity is None else int(quantity),
        _number(form, "price", float),
        _number(form, "trigger_price", float),
        order_type,
        validity,
        None if disclosed is None else int(disclosed),
        _number(form, "market_protection", float),
    )


def check_modified_order(
    order_type: str, side: str, quantity: int, price: float, trigger: float, instrument: Instrument
) -> None:
    """The order as it would be after a modification must pass the same input checks."""
    if quantity <= 0 or quantity % instrument.lot_size:
        raise InputError(f"Quantity should be a multiple of the lot size {instrument.lot_size}.")
    _check_prices(order_type, side, price, trigger, instrument.tick_size)
