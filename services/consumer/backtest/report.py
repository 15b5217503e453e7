"""The backtest's figures and its four files: signals.csv, trades.csv, summary.json, equity_curve.png.

Figures (README of services/consumer has the same definitions):
- trades: closed round trips; total_points: sum of their gross points per unit;
  total_pnl / total_costs: rupees, net of charges / the charges alone.
- compounded_return: prod(1 + trade return) - 1, each trade's return being its net pnl over its
  entry notional: what reinvesting the whole notional in every trade would have made.
- return_on_capital: (final equity - capital) / capital with the fixed quantity traded.
- win_rate: share of trades with a net pnl > 0 (null without trades).
- max_drawdown: the largest fall of the marked-to-market equity from its running peak, as a
  fraction of that peak (equity = capital + realised pnl + open positions at the candle close).
- sharpe: mean / standard deviation (ddof 1) of daily equity returns (each day's last equity vs
  the previous day's, the first vs the capital) x sqrt(periods_per_year); risk-free rate 0; null
  with fewer than two days or a flat curve.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.consumer.backtest.engine import BacktestResult


@dataclass(frozen=True)
class RunInfo:
    """What was run, for the summary."""

    kind: str
    timeframe: str
    instruments: tuple[str, ...]
    mode: str
    fill: str
    costs: bool
    quantity: int
    capital: float
    periods_per_year: int = 252
    gaps: int = 0
    left_out_bars: int = 0
    rejected_ticks: int = 0


def max_drawdown(equity: Sequence[float], start: float) -> float:
    """Largest peak-to-trough fall as a fraction of the peak (0 when it never fell)."""
    peak = start
    worst = 0.0
    for value in equity:
        if value > peak:
            peak = value
        elif peak > 0:
            fall = (peak - value) / peak
            if fall > worst:
                worst = fall
    return worst


def daily_sharpe(
    curve: Sequence[tuple[datetime, float]], capital: float, periods: int
) -> float | None:
    """Annualised Sharpe of daily equity returns (risk-free 0), None when undefined."""
    closes: dict[Any, float] = {}
    for when, value in curve:
        closes[when.date()] = value
    previous = capital
    returns: list[float] = []
    for value in closes.values():
        returns.append(value / previous - 1 if previous else 0.0)
        previous = value
    if len(returns) < 2:
        return None
    spread = statistics.stdev(returns)
    if spread == 0:
        return None
    return statistics.fmean(returns) / spread * math.sqrt(periods)


def summarise(result: BacktestResult, info: RunInfo) -> dict[str, Any]:
    """The figures of a run (see the module docstring for their definitions)."""
    trades = result.trades
    compounded = 1.0
    for t in trades:
        compounded *= 1 + t.ret
    final_equity = result.equity[-1][1] if result.equity else info.capital
    summary: dict[str, Any] = {
        "strategy": result.strategy,
        "kind": info.kind,
        "timeframe": info.timeframe,
        "instruments": list(info.instruments),
        "mode": info.mode,
        "fill": info.fill,
        "costs": info.costs,
        "quantity": info.quantity,
        "capital": info.capital,
        "candles": len(result.candles),
        "first_candle": result.candles[0].start.isoformat() if result.candles else None,
        "last_candle": result.candles[-1].start.isoformat() if result.candles else None,
        "signals": len(result.signals),
        "unfilled_signals": len(result.unfilled),
        "ignored_signals": result.ignored_signals,
        "trades": len(trades),
        "total_points": round(sum(t.points for t in trades), 6),
        "total_pnl": round(sum(t.pnl for t in trades), 2),
        "total_costs": round(sum(t.costs for t in trades), 2),
        "compounded_return": compounded - 1,
        "return_on_capital": (final_equity - info.capital) / info.capital,
        "final_equity": round(final_equity, 2),
        "win_rate": sum(1 for t in trades if t.pnl > 0) / len(trades) if trades else None,
        "max_drawdown": max_drawdown([v for _, v in result.equity], info.capital),
        "sharpe": daily_sharpe(result.equity, info.capital, info.periods_per_year),
        "gaps": info.gaps,
        "left_out_bars": info.left_out_bars,
        "rejected_ticks": info.rejected_ticks,
    }
    if not result.trades_simulated:
        summary["note"] = (
            "option-selling strategy: signals only; the data has no option prices to fill them"
        )
    return summary


def write_report(result: BacktestResult, info: RunInfo, out: Path) -> dict[str, Any]:
    """Write the four files into `out` (created if needed); returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "signals.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "candle_start",
                "candle_close",
                "instrument",
                "strategy",
                "action",
                "price",
                "confidence",
                "option_type",
                "reason",
            ]
        )
        for s in result.signals:
            w.writerow(
                [
                    s.candle_start.isoformat(),
                    s.created_at.isoformat(),
                    s.symbol,
                    s.strategy,
                    s.action,
                    s.price,
                    round(s.confidence, 4),
                    s.option_type or "",
                    s.reason,
                ]
            )
    with (out / "trades.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "side",
                "entry_time",
                "entry_price",
                "exit_time",
                "exit_price",
                "quantity",
                "points",
                "return",
                "instrument",
                "pnl",
                "costs",
                "exit_reason",
            ]
        )
        for t in result.trades:
            w.writerow(
                [
                    t.side,
                    t.entry_time.isoformat(),
                    t.entry_price,
                    t.exit_time.isoformat(),
                    t.exit_price,
                    t.quantity,
                    round(t.points, 6),
                    round(t.ret, 8),
                    t.symbol,
                    round(t.pnl, 2),
                    round(t.costs, 2),
                    t.exit_reason,
                ]
            )
    summary = summarise(result, info)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot_equity(result, info, out / "equity_curve.png")
    return summary


def plot_equity(result: BacktestResult, info: RunInfo, path: Path) -> None:
    """Equity and drawdown against candle number (nights and weekends take no room)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [v for _, v in result.equity] or [info.capital]
    peak = info.capital
    drawdown = []
    for v in values:
        peak = max(peak, v)
        drawdown.append(-(peak - v) / peak * 100 if peak > 0 else 0.0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 1))
    top.plot(values, linewidth=0.9)
    top.axhline(info.capital, color="grey", linewidth=0.6, linestyle="--")
    top.set_ylabel("equity (Rs)")
    costs = "with costs" if info.costs else "no costs"
    top.set_title(
        f"{result.strategy} {info.timeframe} {', '.join(info.instruments)} ({info.mode}, {costs})"
    )
    bottom.fill_between(range(len(drawdown)), drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    first = result.equity[0][0].date().isoformat() if result.equity else ""
    last = result.equity[-1][0].date().isoformat() if result.equity else ""
    bottom.set_xlabel(f"candle ({first} .. {last})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
