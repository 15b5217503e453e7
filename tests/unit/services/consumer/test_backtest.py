from __future__ import annotations

import csv
import io
import json
import statistics
from datetime import date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from services.consumer.backtest.bars import (
    Bar,
    BarFileError,
    CsvBarSource,
    build_candles,
    ticks_of_bar,
)
from services.consumer.backtest.cli import ProgressBar, main
from services.consumer.backtest.engine import BacktestConfig, equity_curve, run_backtest
from services.consumer.backtest.fills import Book, Fill, zerodha_costs
from services.consumer.backtest.report import daily_sharpe, max_drawdown
from services.consumer.buckets import bucket_of, data_sessions
from services.consumer.strategies import EmaCrossover, RsiReversal, StrategyConfig, build_strategy
from services.consumer.strategy_engine import StrategyEngine
from shared.calendar import load_calendar
from shared.charges import ChargeSchedule, order_charges
from shared.clock import IST
from shared.messages import Action, Candle, Timeframe
from tests.unit.services.consumer.consumer_factories import (
    BANKNIFTY_1M,
    NIFTY,
    NIFTY_1M,
    NIFTY_TOKEN,
    candles_from_closes,
)

T0 = datetime(2024, 3, 1, 9, 15, tzinfo=IST)


def nifty(start: date | None = None, end: date | None = None) -> CsvBarSource:
    return CsvBarSource(NIFTY_1M, NIFTY, NIFTY_TOKEN, start_date=start, end_date=end)


# --- bars -> candles -----------------------------------------------------------------------------


@pytest.mark.parametrize("timeframe", ["minute", "5minute", "15minute", "60minute", "day"])
def test_candles_from_synthetic_ticks_equal_plain_bar_aggregation(timeframe: Timeframe) -> None:
    """The SAME CandleBuilder as live, fed four ticks per bar, aggregates bars exactly."""
    source = nifty(date(2024, 3, 1), date(2024, 3, 5))  # includes the 2024-03-02 special session
    sessions = data_sessions(load_calendar())
    bars = [b._replace(volume=100 + i) for i, b in enumerate(source.bars())]  # index files have 0
    expected: dict[datetime, list[Bar]] = {}
    for bar in bars:
        bucket = bucket_of(bar.start, timeframe, sessions)
        assert bucket is not None
        expected.setdefault(bucket.start, []).append(bar)

    class Source:
        symbol, instrument_token = NIFTY, NIFTY_TOKEN

        def bars(self):  # type: ignore[no-untyped-def]
            return iter(bars)

    series = build_candles(Source(), timeframe, sessions)
    assert series.rejected == [] and series.gaps == []
    got = {c.start: (c.open, c.high, c.low, c.close, c.volume) for c in series.candles}
    want = {
        start: (
            group[0].open,
            max(b.high for b in group),
            min(b.low for b in group),
            group[-1].close,
            sum(b.volume for b in group),
        )
        for start, group in expected.items()
    }
    assert got == want
    assert all(
        c.revision == 0 and c.tick_count == 4 * len(expected[c.start]) for c in series.candles
    )


def test_ticks_of_a_bar_stay_inside_its_minute_and_carry_cumulative_volume() -> None:
    bar = Bar(T0, 10.0, 12.0, 9.0, 11.0, 50)
    ticks = ticks_of_bar(bar, NIFTY, NIFTY_TOKEN, 1000)
    assert [t.last_price for t in ticks] == [10.0, 12.0, 9.0, 11.0]
    assert all(T0 <= t.exchange_ts < T0 + timedelta(minutes=1) for t in ticks)
    assert [t.volume for t in ticks] == [1000, 1000, 1000, 1050]


def test_the_csv_source_leaves_out_bars_outside_the_session() -> None:
    source = nifty(date(2024, 1, 20), date(2024, 1, 20))  # a Saturday session + flat bars to 18:16
    bars = list(source.bars())
    assert len(bars) == 375 and source.left_out == 167
    assert bars[0].start.isoformat() == "2024-01-20T09:15:00+05:30"
    assert bars[-1].start.isoformat() == "2024-01-20T15:29:00+05:30"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,o,h,l,c,v\n", "expected timestamp"),
        (
            "timestamp,open,high,low,close,volume\n2024-01-01T09:15:00,1,1,1,1,0\n",
            "without an offset",
        ),
        ("timestamp,open,high,low,close,volume\n2024-01-01T09:15:00+05:30,1,x,1,1,0\n", ":2:"),
        (
            "timestamp,open,high,low,close,volume\n2024-01-01T09:16:00+05:30,1,1,1,1,0\n"
            "2024-01-01T09:15:00+05:30,1,1,1,1,0\n",
            "is not after",
        ),
    ],
)
def test_a_bad_bar_file_is_refused_with_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(content)
    with pytest.raises(BarFileError, match=message):
        list(CsvBarSource(path, "NSE:X", 1).bars())


# --- fills ---------------------------------------------------------------------------------------


def flat_cost(side: str, quantity: int, price: float) -> float:
    return 1.0


@pytest.mark.parametrize(
    ("mode", "actions", "expected_trades", "expected_position"),
    [
        ("long-only", ["BUY", "SELL"], [("LONG", 100, 110)], 0),
        (
            "long-only",
            ["SELL", "BUY", "BUY", "SELL"],
            [("LONG", 110, 130)],
            0,
        ),  # SELL flat, BUY held: ignored
        ("long-only", ["BUY"], [], 2),
        ("long-short", ["BUY", "SELL", "BUY"], [("LONG", 100, 110), ("SHORT", 110, 120)], 2),
        ("long-short", ["SELL", "SELL", "BUY"], [("SHORT", 100, 120)], 2),
        ("long-short", ["BUY", "EXIT", "EXIT"], [("LONG", 100, 110)], 0),
    ],
)
def test_the_book_enters_exits_and_reverses_by_mode(
    mode: str,
    actions: list[Action],
    expected_trades: list[tuple[str, float, float]],
    expected_position: int,
) -> None:
    book = Book(mode, 2, flat_cost)  # type: ignore[arg-type]
    for i, action in enumerate(actions):
        book.on_signal(action, NIFTY, 100.0 + 10 * i, T0 + timedelta(minutes=i), i)
    assert [(t.side, t.entry_price, t.exit_price) for t in book.trades] == expected_trades
    assert book.position(NIFTY) == expected_position
    for t in book.trades:
        direction = 1 if t.side == "LONG" else -1
        assert t.points == (t.exit_price - t.entry_price) * direction
        assert t.pnl == t.points * 2 - 2.0  # two orders at 1 rupee each
        assert t.ret == pytest.approx(t.pnl / (t.entry_price * 2))


def test_zerodha_costs_are_the_shared_charges_model() -> None:
    schedule = ChargeSchedule()
    cost = zerodha_costs(schedule, "futures")
    assert cost("BUY", 75, 22000.0) == order_charges(schedule, "futures", "BUY", 75, 22000.0).total


# --- engine --------------------------------------------------------------------------------------


CROSS = (
    [100.0 - i for i in range(30)]
    + [71.0 + 3 * i for i in range(15)]
    + [113.0 - 4 * i for i in range(15)]
)


def shifted(candles: list[Candle]) -> list[Candle]:
    """Opens differ from closes so that fills at the next open are visible."""
    return [msgspec.structs.replace(c, open=c.close + 0.5) for c in candles]


def test_a_signal_fills_at_the_next_candles_open() -> None:
    candles = shifted(candles_from_closes(CROSS))
    result = run_backtest(EmaCrossover(), candles, BacktestConfig())
    buy, sell = result.signals
    [trade] = result.trades
    buy_at = next(i for i, c in enumerate(candles) if c.start == buy.candle_start)
    sell_at = next(i for i, c in enumerate(candles) if c.start == sell.candle_start)
    assert (trade.entry_price, trade.entry_time) == (
        candles[buy_at + 1].open,
        candles[buy_at + 1].start,
    )
    assert (trade.exit_price, trade.exit_time) == (
        candles[sell_at + 1].open,
        candles[sell_at + 1].start,
    )
    assert trade.exit_reason == "SELL signal"


def test_fill_at_close_uses_the_signal_candle() -> None:
    candles = shifted(candles_from_closes(CROSS))
    result = run_backtest(EmaCrossover(), candles, BacktestConfig(fill="close"))
    [trade] = result.trades
    assert (
        trade.entry_price == result.signals[0].price
        and trade.entry_time == result.signals[0].created_at
    )


def test_a_signal_on_the_last_candle_is_unfilled_and_an_open_position_closes_at_the_end() -> None:
    candles = shifted(candles_from_closes(CROSS[:45]))  # ends after the BUY, before the SELL
    last_buy = candles_from_closes(CROSS[:45])
    result = run_backtest(EmaCrossover(), candles, BacktestConfig())
    [trade] = result.trades
    assert trade.exit_reason == "end of data" and trade.exit_price == candles[-1].close
    # Cut right at the BUY candle: nothing to fill on.
    buy_at = next(i for i, c in enumerate(last_buy) if c.start == result.signals[0].candle_start)
    cut = run_backtest(EmaCrossover(), candles[: buy_at + 1], BacktestConfig())
    assert [s.signal_id for s in cut.unfilled] == [result.signals[0].signal_id] and cut.trades == []


def test_the_backtest_makes_the_same_signals_as_the_live_engine() -> None:
    source = nifty(date(2024, 2, 1), date(2024, 3, 31))
    candles = build_candles(source, "15minute", data_sessions(load_calendar())).candles
    backtest = run_backtest(RsiReversal(), candles, BacktestConfig()).signals
    live = StrategyEngine.from_configs([StrategyConfig(kind="rsi", symbols=(NIFTY,))])
    assert [s for c in candles for s in live.on_candle(c)] == backtest
    assert len(backtest) > 5


def test_equity_is_marked_to_market_at_every_close() -> None:
    candles = candles_from_closes([100.0, 110.0, 105.0, 120.0])
    fills = [
        Fill(1, candles[1].start, NIFTY, "BUY", 2, 108.0, 1.0),  # at candle 1's "open"
        Fill(3, candles[3].end, NIFTY, "SELL", 2, 120.0, 1.0),
    ]
    assert equity_curve(candles, fills, 1000.0) == [
        1000.0,
        1000 - 1 + 2 * (110 - 108),
        1000 - 1 + 2 * (105 - 108),
        1000 - 2 + 2 * 12,
    ]


def test_equity_points_are_one_per_candle_end_across_instruments() -> None:
    a = candles_from_closes([100.0, 101.0], symbol="NSE:A", token=1)
    b = candles_from_closes([50.0, 52.0], symbol="NSE:B", token=2)
    candles = sorted(a + b, key=lambda c: (c.start, c.symbol))
    result = run_backtest(EmaCrossover(), candles, BacktestConfig(capital=10.0))
    assert result.equity == [(a[0].end, 10.0), (a[1].end, 10.0)]
    assert len(result.equity_values) == 4


# --- report figures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "expected"),
    [
        ([100.0, 110.0, 99.0, 120.0, 60.0], 0.5),
        ([100.0, 101.0, 102.0], 0.0),
        ([90.0, 95.0], 0.1),
        ([], 0.0),
    ],
)
def test_max_drawdown_is_the_largest_fall_from_a_running_peak(
    equity: list[float], expected: float
) -> None:
    assert max_drawdown(equity, 100.0) == pytest.approx(expected)


def test_daily_sharpe_annualises_daily_returns_and_is_undefined_when_flat() -> None:
    days = [datetime(2024, 3, d, 15, 30, tzinfo=IST) for d in (1, 4, 5)]
    curve = [(days[0], 101.0), (days[1], 100.0), (days[2], 102.0)]
    returns = [0.01, 100 / 101 - 1, 0.02]
    expected = statistics.fmean(returns) / statistics.stdev(returns) * 252**0.5
    assert daily_sharpe(curve, 100.0, 252) == pytest.approx(expected)
    assert daily_sharpe([(days[0], 100.0), (days[1], 100.0)], 100.0, 252) is None
    assert daily_sharpe([(days[0], 101.0)], 100.0, 252) is None


def test_the_progress_bar_draws_plain_text_on_its_stream() -> None:
    out = io.StringIO()
    bar = ProgressBar(200, "bars", out, width=10)
    bar.update(50)
    bar.update(51)  # same percentage: not redrawn
    bar.finish()
    assert out.getvalue() == "\rbars [##........]  25% 50/200\rbars [##########] 100% 200/200\n"


# --- the command ---------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_the_command_writes_the_four_outputs_for_a_few_real_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "--strategy",
            "ema_crossover",
            "--data",
            str(NIFTY_1M),
            "--timeframe",
            "5minute",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-08",
            "--out",
            str(out),
            "--quantity",
            "25",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "equity_curve.png",
        "signals.csv",
        "summary.json",
        "trades.csv",
    ]
    assert (out / "equity_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    signals, trades = read_csv(out / "signals.csv"), read_csv(out / "trades.csv")
    assert list(signals[0])[:6] == [
        "candle_start",
        "candle_close",
        "instrument",
        "strategy",
        "action",
        "price",
    ]
    assert list(trades[0])[:8] == [
        "side",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "quantity",
        "points",
        "return",
    ]
    assert summary["signals"] == len(signals) > 0 and summary["trades"] == len(trades) > 0
    assert summary["total_points"] == pytest.approx(
        sum(float(t["points"]) for t in trades), abs=1e-4
    )
    assert summary["first_candle"] == "2024-03-01T09:15:00+05:30"
    # 03-04 is one of the file's missing days and 03-08 a holiday: 4 regular days of 75 candles,
    # plus the 2024-03-02 special session (09:15-10:00: 9, 11:30-12:30: 12).
    assert summary["candles"] == 4 * 75 + 9 + 12
    assert 0 <= summary["win_rate"] <= 1 and 0 <= summary["max_drawdown"] < 0.2
    assert summary["total_costs"] > 0 and all(int(t["quantity"]) == 25 for t in trades)
    compounded = 1.0
    for t in trades:
        compounded *= 1 + float(t["return"])
    assert summary["compounded_return"] == pytest.approx(compounded - 1, abs=1e-6)
    assert "ema_crossover 5minute NSE:NIFTY 50" in capsys.readouterr().out


def test_costs_lower_the_result_and_no_costs_removes_them(tmp_path: Path) -> None:
    args = [
        "--strategy",
        "rsi",
        "--data",
        str(NIFTY_1M),
        "--from",
        "2024-04-01",
        "--to",
        "2024-04-30",
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--no-costs"]) == 0
    with_costs = json.loads((tmp_path / "a" / "summary.json").read_text())
    free = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert free["total_costs"] == 0 and with_costs["total_costs"] > 0
    assert with_costs["total_points"] == free["total_points"]
    assert with_costs["total_pnl"] == pytest.approx(
        free["total_pnl"] - with_costs["total_costs"], abs=0.05
    )


def test_the_command_runs_the_whole_8_month_nifty_file(tmp_path: Path) -> None:
    out = tmp_path / "full"
    assert (
        main(
            [
                "--strategy",
                "ema_crossover",
                "--data",
                str(NIFTY_1M),
                "--timeframe",
                "15minute",
                "--out",
                str(out),
                "--mode",
                "long-short",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    # 153 regular days x 25 + the full Saturday 2024-01-20 + two split special sessions (3 + 4 each).
    assert summary["candles"] == 3864
    assert (summary["first_candle"], summary["last_candle"]) == (
        "2024-01-01T09:15:00+05:30",
        "2024-08-23T15:15:00+05:30",
    )
    assert (
        summary["left_out_bars"] == 167 and summary["gaps"] == 0 and summary["rejected_ticks"] == 0
    )
    assert summary["trades"] > 100 and summary["sharpe"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/file.csv"], "no such data file"),
        (["--data", str(NIFTY_1M), "--param", "fast=0"], "fast"),
        (["--data", str(NIFTY_1M), "--param", "nonsense"], "KEY=VALUE"),
        (["--symbol", "NSE:INFY"], "--symbol needs a date range"),
        (["--symbol", "NSE:INFY", "--data", str(NIFTY_1M)], "not both"),
        (["--data", str(NIFTY_1M), "--from", "2030-01-01"], "no bars"),
        (["--data", str(NIFTY_1M), "--instrument", "A", "--instrument", "B"], "one per file"),
    ],
)
def test_bad_input_exits_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["--strategy", "ema_crossover", "--out", str(tmp_path), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0() -> None:
    assert main(["--help"]) == 0


@pytest.mark.parametrize(
    ("files", "kind", "params"),
    [
        (1, "ema_crossover", {"timeframe": "5minute"}),
        (2, "ema_crossover", {"timeframe": "5minute"}),  # two instruments: the general path
        (2, "momentum", {"timeframe": "15minute", "period": 8, "top_k": 1}),
    ],
)
def test_final_equity_is_capital_plus_the_net_pnl_of_every_trade(
    files: int, kind: str, params: dict[str, object]
) -> None:
    sessions = data_sessions(load_calendar())
    sources = [
        nifty(date(2024, 4, 1), date(2024, 4, 30)),
        CsvBarSource(
            BANKNIFTY_1M,
            "NSE:NIFTY BANK",
            260105,
            start_date=date(2024, 4, 1),
            end_date=date(2024, 4, 30),
        ),
    ][:files]
    strategy_config = StrategyConfig(
        kind=kind, symbols=tuple(s.symbol for s in sources), params=params
    )
    strategy = build_strategy(strategy_config)
    candles = sorted(
        (c for s in sources for c in build_candles(s, strategy.timeframe, sessions).candles),
        key=lambda c: (c.start, c.symbol),
    )
    result = run_backtest(
        strategy,
        candles,
        BacktestConfig(
            mode="long-short", quantity=3, costs=zerodha_costs(ChargeSchedule(), "futures")
        ),
    )
    assert len(result.trades) > 2 and len(result.equity_values) == len(candles)
    assert result.equity_values[-1] == pytest.approx(
        100_000.0 + sum(t.pnl for t in result.trades), abs=1e-6
    )
