from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.sentinel.instruments import (
    INSTRUMENT_JSON_FIELDS,
    missing_freeze_quantities,
    normalise_dump,
    normalise_instrument,
    redis_hashes,
)
from shared.errors import RejectedInput

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "marketdata" / "kite_samples"
FREEZE = {"NIFTY": 1800, "BANKNIFTY": 600}


def option(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "instrument_token": 12345602,
        "exchange_token": 48225,
        "tradingsymbol": "NIFTY24AUG24500CE",
        "name": "NIFTY",
        "last_price": 0.0,
        "expiry": date(2024, 8, 22),
        "strike": 24500.0,
        "tick_size": 0.05,
        "lot_size": 25,
        "instrument_type": "CE",
        "segment": "NFO-OPT",
        "exchange": "NFO",
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("overrides", "freeze"),
    [
        ({}, 1800),
        ({"name": "BANKNIFTY", "tradingsymbol": "BANKNIFTY24AUG51000PE"}, 600),
        ({"name": "FINNIFTY", "tradingsymbol": "FINNIFTY24AUG23000CE"}, 0),  # not configured
        ({"instrument_type": "FUT", "tradingsymbol": "NIFTY24AUGFUT", "strike": 0.0}, 1800),
        (
            {
                "instrument_type": "EQ",
                "exchange": "NSE",
                "segment": "NSE",
                "name": "NIFTY",
                "tradingsymbol": "NIFTYBEES",
                "expiry": "",
            },
            0,
        ),
    ],
    ids=["nifty option", "banknifty option", "unconfigured", "future", "equity named NIFTY"],
)
def test_freeze_quantities_from_settings_attach_to_that_underlyings_derivatives(
    overrides: dict[str, Any], freeze: int
) -> None:
    assert normalise_instrument(option(**overrides), FREEZE).freeze_quantity == freeze


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tick_size": 0.0}, "must be positive"),
        ({"lot_size": 0}, "must be positive"),
        ({"instrument_token": "x"}, "bad number"),
        ({"expiry": "22-08-2024"}, "not a date"),
        ({"tradingsymbol": ""}, "without token or symbol"),
    ],
)
def test_a_bad_dump_row_is_rejected_with_its_reason(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(RejectedInput, match=reason):
        normalise_instrument(option(**overrides), FREEZE)


def test_an_index_with_zero_tick_and_lot_size_is_kept_as_kite_lists_it() -> None:
    index = option(
        instrument_type="EQ", segment="INDICES", exchange="NSE", tradingsymbol="NIFTY 50",
        name="NIFTY 50", expiry="", strike=0.0, tick_size=0.0, lot_size=0,
    )  # fmt: skip
    assert normalise_instrument(index, FREEZE).key == "NSE:NIFTY 50"
    with pytest.raises(RejectedInput, match="tradable"):
        normalise_instrument(option(segment="NFO-OPT", tick_size=0.0), FREEZE)


def test_a_row_missing_a_column_is_rejected_by_name() -> None:
    row = option()
    del row["exchange"]
    with pytest.raises(RejectedInput, match="exchange"):
        normalise_instrument(row, FREEZE)


def test_the_real_sample_dump_normalises_and_lands_in_both_redis_hashes() -> None:
    with (SAMPLES / "instruments_all.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    dump = normalise_dump(rows, FREEZE)
    assert len(dump.instruments) + len(dump.rejected) == len(rows)
    by_key, by_token = redis_hashes(dump.instruments)
    assert len(by_key) == len(by_token) == len(dump.instruments)
    some = dump.instruments[0]
    assert by_token[str(some.instrument_token)] == some.key
    decoded = json.loads(by_key[some.key])
    assert tuple(decoded) == INSTRUMENT_JSON_FIELDS
    assert decoded["lot_size"] == some.lot_size and decoded["tick_size"] == some.tick_size


def test_duplicates_and_bad_rows_are_kept_out_with_reasons_not_silently() -> None:
    dump = normalise_dump([option(), option(), option(lot_size=0, tradingsymbol="X")], FREEZE)
    assert len(dump.instruments) == 1
    assert len(dump.rejected) == 2 and "duplicate" in dump.rejected[0]


def test_an_expiry_is_stored_as_an_iso_date_or_empty() -> None:
    assert json.loads(normalise_instrument(option(), FREEZE).to_json())["expiry"] == "2024-08-22"
    equity = normalise_instrument(option(expiry="", instrument_type="EQ"), FREEZE)
    assert json.loads(equity.to_json())["expiry"] == ""


def test_a_configured_underlying_without_derivatives_is_reported() -> None:
    dump = normalise_dump([option()], FREEZE)
    assert missing_freeze_quantities(dump.instruments, FREEZE) == ["BANKNIFTY"]
