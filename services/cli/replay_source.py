"""A recorded day for `tradealgo replay --from-clickhouse`: the 1-minute candles the Consumer
recorded in ClickHouse, written as the simulator's data files.

What this replays, honestly: the recorded 1-minute OHLC of NIFTY 50 and NIFTY BANK (the candles
built from the live ticks), re-ticked by the simulator's deterministic tick path; not the recorded
ticks one by one. Every recorded minute up to the day is exported, so the strategies warm up on
as much history as was recorded (a short recording means a short warm-up). The daily file is the
bundled one.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.clock import IST, to_ist

# The simulator's underlyings: its file setting -> the symbol the Consumer records candles under.
UNDERLYINGS = {
    "nifty_minute_file": "NSE:NIFTY 50",
    "banknifty_minute_file": "NSE:NIFTY BANK",
}
HEADER = "timestamp,open,high,low,close,volume"


def bars_csv(rows: Iterable[Sequence[Any]]) -> str:
    """(start, open, high, low, close, volume) rows -> the simulator's CSV (IST ISO times)."""
    lines = [HEADER]
    for start, o, h, low, c, volume in rows:
        when = to_ist(start) if isinstance(start, datetime) and start.tzinfo else start
        stamp = when.isoformat() if isinstance(when, datetime) else str(when)
        lines.append(f"{stamp},{o!r},{h!r},{low!r},{c!r},{int(volume)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ExportedDay:
    data_dir: Path
    files: dict[str, str]  # simulator setting -> file name
    rows: dict[str, int]  # symbol -> minute bars exported


def export_recorded_minutes(client: Any, day: date, out_dir: Path, daily_file: Path) -> ExportedDay:
    """Write every recorded minute candle up to `day` of each underlying into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), IST)
    files: dict[str, str] = {}
    counts: dict[str, int] = {}
    for setting, symbol in UNDERLYINGS.items():
        rows = client.execute(
            "SELECT start, open, high, low, close, volume FROM candles FINAL "
            "WHERE symbol = %(symbol)s AND timeframe = 'minute' "
            "AND start < fromUnixTimestamp64Micro(%(end_us)s) ORDER BY start",
            {"symbol": symbol, "end_us": round(end.timestamp() * 1_000_000)},
        )
        name = f"{setting.removesuffix('_file')}.csv.gz"
        with gzip.open(out_dir / name, "wt") as out:
            out.write(bars_csv(rows))
        files[setting] = name
        counts[symbol] = len(rows)
    shutil.copyfile(daily_file, out_dir / daily_file.name)
    files["nifty_daily_file"] = daily_file.name
    return ExportedDay(out_dir, files, counts)
