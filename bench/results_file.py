"""The one format every benchmark writes: bench/results/<name>.json.

{"name": ..., "figures": {figure: {"value": v, "unit": u}}, "conditions": {...}}; the machine's
facts (python, cpus, load average) are added to the conditions, and the figures are printed.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(
    name: str, figures: Mapping[str, tuple[float, str]], conditions: Mapping[str, Any]
) -> Path:
    """Print the figures and write them, with the conditions they were measured under."""
    report = {
        "name": name,
        "figures": {key: {"value": value, "unit": unit} for key, (value, unit) in figures.items()},
        "conditions": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            **conditions,
        },
    }
    width = max((len(key) for key in figures), default=0)
    for key, (value, unit) in figures.items():
        print(f"{key:<{width}}  {value:>14,} {unit}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return out
