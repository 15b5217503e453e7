"""Write the Grafana dashboards (deploy/grafana/dashboards/*.json) from deploy/tools/grafana_panels.py.

    python deploy/tools/grafana_dashboards.py          (rewrites the four JSON files)

The JSON files are what Grafana provisions; this script is their source, so the panels stay
uniform and reviewable. tests/deploy/test_grafana.py fails while a JSON file differs from what
this script writes, and checks every metric name against deploy/metrics.txt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or loaded by a test

from grafana_panels import DASHBOARDS, Panel

OUT = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps = [{"color": "green", "value": None}] + [
        {"color": c, "value": v} for v, c in panel.thresholds
    ]
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if panel.mappings:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {value: {"text": text} for value, text in panel.mappings.items()},
            }
        ]
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 4 if panel.kind == "stat" else 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + i),
            }
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }
    if panel.kind == "stat":
        body["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "textMode": panel.text_mode,
        }
    else:
        body["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        }
    return body


def dashboard(uid: str, title: str, description: str, panels: tuple[Panel, ...]) -> dict[str, Any]:
    laid_out = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        height = 4 if panel.kind == "stat" else 8
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(panel_json(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, height)
    return {
        "uid": f"tradealgo-{uid}",
        "title": title,
        "description": description,
        "tags": ["tradealgo"],
        "timezone": "Asia/Kolkata",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "5s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"title": "TradeAlgo", "type": "dashboards", "tags": ["tradealgo"], "asDropdown": False}
        ],
        "panels": laid_out,
    }


def render(uid: str) -> str:
    title, description, panels = DASHBOARDS[uid]
    return json.dumps(dashboard(uid, title, description, panels), indent=2) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for uid in DASHBOARDS:
        (OUT / f"{uid}.json").write_text(render(uid))
    print(f"wrote {', '.join(f'{uid}.json' for uid in DASHBOARDS)} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
