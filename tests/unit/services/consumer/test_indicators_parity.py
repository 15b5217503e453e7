"""The incremental indicators equal pandas-ta's on 8 months of real NIFTY minutes, warm-up included."""

from __future__ import annotations

import gzip
import importlib
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.consumer.indicators import Ema, RateOfChange, Rsi, pairwise_sum

DATA = Path(__file__).parents[4] / "shared/marketdata/nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"


def pandas_ta() -> Any:
    # pandas-ta 0.4.71b0 trips a pandas deprecation warning at import time (pytest makes it fatal).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas_ta as ta
    return ta


def pandas() -> Any:
    return importlib.import_module("pandas")  # untyped: kept out of mypy's sight


@pytest.fixture(scope="module")
def closes() -> list[float]:
    with gzip.open(DATA, "rt") as f:
        next(f)
        return [float(line.split(",")[4]) for line in f]


def assert_same_series(incremental: list[float], reference: Any) -> None:
    expected = np.asarray(reference, dtype=float)
    got = np.asarray(incremental, dtype=float)
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected)), "the warm-up (NaN) regions differ"
    valid = ~np.isnan(expected)
    np.testing.assert_allclose(got[valid], expected[valid], rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    ("name", "make", "reference"),
    [
        ("ema2", lambda: Ema(2), lambda ta, s: ta.ema(s, 2)),
        ("ema9", lambda: Ema(9), lambda ta, s: ta.ema(s, 9)),
        ("ema21", lambda: Ema(21), lambda ta, s: ta.ema(s, 21)),
        ("ema200", lambda: Ema(200), lambda ta, s: ta.ema(s, 200)),  # seed above numpy's block
        ("rsi2", lambda: Rsi(2), lambda ta, s: ta.rsi(s, 2)),
        ("rsi14", lambda: Rsi(14), lambda ta, s: ta.rsi(s, 14)),
        ("roc1", lambda: RateOfChange(1), lambda ta, s: ta.roc(s, 1)),
        ("roc10", lambda: RateOfChange(10), lambda ta, s: ta.roc(s, 10)),
    ],
)
def test_incremental_indicator_equals_pandas_ta_on_real_nifty_minutes(
    closes: list[float],
    name: str,
    make: Callable[[], Ema | Rsi | RateOfChange],
    reference: Callable[[Any, Any], Any],
) -> None:
    pd = pandas()
    indicator = make()
    incremental = [indicator.update(x) for x in closes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(pandas_ta(), pd.Series(closes))
    assert_same_series(incremental, expected)


@pytest.mark.parametrize("length", [1, 3, 5, 11])
def test_incremental_indicators_match_pandas_ta_on_a_short_crafted_series(length: int) -> None:
    pd = pandas()
    # Repeated prices exercise pandas' "no update on an unchanged value" branch.
    series = [100.0, 101.5, 101.5, 99.0, 102.25, 98.5, 97.0, 97.0, 103.0, 104.5, 104.5, 90.0]
    ta = pandas_ta()
    cases: list[tuple[Ema | Rsi | RateOfChange, Callable[[Any], Any]]] = [
        (Ema(length), lambda s: ta.ema(s, length)),
        (Rsi(length), lambda s: ta.rsi(s, length)),
        (RateOfChange(length), lambda s: ta.roc(s, length)),
    ]
    for indicator, reference in cases:
        got = [indicator.update(x) for x in series]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = reference(pd.Series(series))
        assert_same_series(got, expected)


def test_rsi_of_a_flat_start_is_nan_until_the_price_moves() -> None:
    rsi = Rsi(14)
    assert [math.isnan(rsi.update(x)) for x in (100.0, 100.0, 100.0)] == [True, True, True]
    assert rsi.update(101.0) == 100.0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 21, 128, 129, 200, 1000])
def test_pairwise_sum_equals_numpy_sum_bit_for_bit(n: int) -> None:
    values = np.random.default_rng(n).uniform(20000, 23000, n)
    assert pairwise_sum(values.tolist()) == float(values.sum())


@pytest.mark.parametrize("make", [lambda: Ema(0), lambda: Rsi(0), lambda: RateOfChange(0)])
def test_an_indicator_length_below_one_is_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        make()
