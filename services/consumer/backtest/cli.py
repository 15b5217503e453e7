"""`tradealgo backtest`: run a live strategy class over 1-minute bars and write its report.

    tradealgo backtest --strategy ema_crossover --data FILE.csv[.gz] --timeframe 15minute \\
        --out DIR [--mode long-only|long-short] [--no-costs] [--quantity N] [--capital X]

Several `--data` files run one strategy over several instruments (the momentum scanner needs
them); `--instrument` names each file's instrument in the same order (the shipped NIFTY files are
recognised). Strategy parameters: `--param fast=5 --param slow=13`. Defaults come from the
Consumer's settings (CONSUMER_BACKTEST_*, CONSUMER_CHARGES). Exit status: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from services.consumer.adapters.clickhouse_bars import ClickHouseBarSource, clickhouse_bars
from services.consumer.backtest.bars import BarFileError, CsvBarSource, build_candles
from services.consumer.backtest.engine import BacktestConfig, run_backtest
from services.consumer.backtest.fills import no_costs, zerodha_costs
from services.consumer.backtest.report import RunInfo, write_report
from services.consumer.buckets import TIMEFRAMES, SessionsOf, data_sessions, regular_sessions
from services.consumer.settings import ConsumerSettings
from services.consumer.strategies import (
    STRATEGY_KINDS,
    StrategyConfig,
    StrategyConfigError,
    build_strategy,
)
from shared.calendar import CalendarError, load_calendar
from shared.messages import Candle
from shared.settings import SettingsError, load_settings
from shared.store import clickhouse_from_settings

logger = logging.getLogger(__name__)

USAGE_ERROR = 2
# The instruments of the files shipped in shared/marketdata, by file-name prefix.
KNOWN_FILES: dict[str, tuple[str, int]] = {
    "nifty50": ("NSE:NIFTY 50", 256265),
    "niftybank": ("NSE:NIFTY BANK", 260105),
}


class ProgressBar:
    """A plain-text progress bar on stderr, redrawn only when the percentage moves."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._shown = -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done:,}/{self.total:,}")
        self.stream.flush()

    def finish(self) -> None:
        self.update(self.total)
        self.stream.write("\n")
        self.stream.flush()


@dataclass(frozen=True)
class Instrument:
    path: Path
    symbol: str
    token: int


def parser(settings: ConsumerSettings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradealgo backtest",
        description="Run a strategy (the live strategy classes) over 1-minute bars.",
    )
    p.add_argument("--strategy", required=True, choices=sorted(STRATEGY_KINDS))
    p.add_argument(
        "--data",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="1-minute bars: timestamp,open,high,low,close,volume (.csv or .csv.gz)",
    )
    p.add_argument(
        "--instrument",
        action="append",
        default=[],
        metavar="NAME",
        help="instrument of each --data file, in order (e.g. 'NSE:NIFTY 50')",
    )
    p.add_argument(
        "--symbol",
        help="read 1-minute bars of EXCHANGE:SYMBOL from ClickHouse history (needs --from, --to)",
    )
    p.add_argument("--timeframe", choices=TIMEFRAMES, help="default: the strategy's own")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--mode", choices=("long-only", "long-short"), default=settings.backtest_mode)
    p.add_argument("--fill", choices=("next-open", "close"), default=settings.backtest_fill)
    p.add_argument("--no-costs", action="store_true", help="ignore brokerage, taxes and fees")
    p.add_argument(
        "--segment",
        choices=("equity_intraday", "equity_delivery", "futures", "options"),
        default=settings.backtest_segment,
        help="charges segment (an index trades as its future)",
    )
    p.add_argument("--quantity", type=int, default=settings.backtest_quantity)
    p.add_argument("--capital", type=float, default=settings.backtest_capital)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy parameter (JSON value, else a string)",
    )
    p.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the backtest command; returns the exit status."""
    try:
        settings = load_settings(ConsumerSettings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        args = parser(settings).parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error
        return int(exc.code or 0)
    try:
        return _run(args, settings)
    except (BarFileError, StrategyConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR


def _run(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    if args.symbol and args.data:
        raise ValueError("give --data FILE or --symbol (ClickHouse), not both")
    if not args.data and not args.symbol:
        raise ValueError("give at least one --data FILE, or --symbol with --from and --to")
    if args.quantity < 1 or args.capital <= 0:
        raise ValueError("--quantity must be >= 1 and --capital > 0")
    sessions = _sessions()
    sources: list[CsvBarSource] | list[ClickHouseBarSource]
    if args.symbol:
        if args.start is None or args.end is None:
            raise ValueError("--symbol needs a date range: --from YYYY-MM-DD --to YYYY-MM-DD")
        sources = [_clickhouse_source(settings, args.symbol, args.start, args.end, sessions)]
        total = len(sources[0].rows)
    else:
        instruments = _instruments(args.data, args.instrument)
        sources = [
            CsvBarSource(i.path, i.symbol, i.token, start_date=args.start, end_date=args.end)
            for i in instruments
        ]
        total = sum(_count_rows(i.path) for i in instruments)
    params = _params(args.param)
    if args.timeframe:
        params["timeframe"] = args.timeframe
    strategy = build_strategy(
        StrategyConfig(kind=args.strategy, symbols=tuple(s.symbol for s in sources), params=params)
    )
    timeframe = strategy.timeframe
    progress = None if args.quiet else ProgressBar(total, "bars")
    candles: list[Candle] = []
    gaps = rejected = left_out = done = 0
    for source in sources:
        series = build_candles(
            source, timeframe, sessions, progress=_rows_of(source, progress, done)
        )
        done += source.rows_read
        candles.extend(series.candles)
        gaps += sum(g.buckets for g in series.gaps)
        rejected += len(series.rejected)
        left_out += source.left_out
    if progress is not None:
        progress.finish()
    if not candles:
        raise ValueError("no bars inside the trading session in the data (check --from/--to)")
    candles.sort(key=lambda c: (c.start, c.symbol))
    config = BacktestConfig(
        mode=args.mode,
        fill=args.fill,
        quantity=args.quantity,
        capital=args.capital,
        costs=no_costs if args.no_costs else zerodha_costs(settings.charges, args.segment),
    )
    result = run_backtest(strategy, candles, config)
    info = RunInfo(
        kind=args.strategy,
        timeframe=timeframe,
        instruments=tuple(s.symbol for s in sources),
        mode=args.mode,
        fill=args.fill,
        costs=not args.no_costs,
        quantity=args.quantity,
        capital=args.capital,
        periods_per_year=settings.backtest_periods_per_year,
        gaps=gaps,
        left_out_bars=left_out,
        rejected_ticks=rejected,
    )
    summary = write_report(result, info, args.out)
    _print_summary(summary, args.out)
    return 0


def _clickhouse_source(
    settings: ConsumerSettings, symbol: str, start: date, end: date, sessions: SessionsOf
) -> ClickHouseBarSource:
    """Bars of `symbol` from the ClickHouse the Consumer's settings point at."""
    client = clickhouse_from_settings(settings, create_database=False)
    try:
        return clickhouse_bars(client, symbol, start, end, sessions)
    finally:
        client.disconnect()


def _rows_of(
    source: CsvBarSource | ClickHouseBarSource, progress: ProgressBar | None, offset: int
) -> Callable[[int], None] | None:
    """Progress in rows read (bars left out or outside --from/--to count as read)."""
    if progress is None:
        return None
    bar = progress
    return lambda _bars: bar.update(offset + source.rows_read)


def _instruments(paths: list[Path], names: list[str]) -> list[Instrument]:
    if names and len(names) != len(paths):
        raise ValueError(
            f"{len(names)} --instrument for {len(paths)} --data: give one per file or none"
        )
    out: list[Instrument] = []
    for index, path in enumerate(paths):
        if not path.is_file():
            raise ValueError(f"no such data file: {path}")
        known = KNOWN_FILES.get(path.name.split("_")[0].lower())
        if names:
            symbol = names[index]
            token = known[1] if known and known[0] == symbol else _synthetic_token(symbol)
        elif known:
            symbol, token = known
        else:
            symbol = "NSE:" + path.name.split(".")[0].split("_")[0].upper()
            token = _synthetic_token(symbol)
        out.append(Instrument(path, symbol, token))
    symbols = [i.symbol for i in out]
    if len(set(symbols)) != len(symbols):
        raise ValueError(
            f"two --data files are the same instrument {symbols}: name them with --instrument"
        )
    return out


def _synthetic_token(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) & 0x7FFFFFFF


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _sessions() -> SessionsOf:
    try:
        return data_sessions(load_calendar())
    except CalendarError as exc:
        logger.warning("market calendar unavailable (%s): regular sessions on every date", exc)
        return regular_sessions()


def _count_rows(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    sharpe = summary["sharpe"]
    print(
        f"{summary['strategy']} {summary['timeframe']} {', '.join(summary['instruments'])}: "
        f"{summary['candles']} candles, {summary['signals']} signals, {summary['trades']} trades, "
        f"{summary['total_points']:.2f} points, compounded {pct(summary['compounded_return'])}, "
        f"win rate {pct(summary['win_rate'])}, max drawdown {pct(summary['max_drawdown'])}, "
        f"Sharpe {'n/a' if sharpe is None else f'{sharpe:.2f}'}"
    )
    if "note" in summary:
        print(f"note: {summary['note']}")
    print(f"written to {out}/ (signals.csv, trades.csv, summary.json, equity_curve.png)")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main(sys.argv[1:]))
