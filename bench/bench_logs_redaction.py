"""How much the secret redaction costs per log line (shared/logs.py), JSON and text formats.

Prints microseconds per formatted line with 0 and with 10 registered secrets, and writes
bench/results/logs_redaction.json.
"""

from __future__ import annotations

import logging
import time

from results_file import write_results

from shared.logs import JsonLinesFormatter, SecretRegistry, TextFormatter

LINES = 20_000


REPEATS = 5


def per_line_us(formatter: logging.Formatter, record: logging.LogRecord) -> float:
    """Best of REPEATS runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(LINES):
            formatter.format(record)
        best = min(best, (time.perf_counter() - start) / LINES * 1e6)
    return best


def main() -> None:
    record = logging.getLogger("services.gatekeeper.risk").makeRecord(
        "services.gatekeeper.risk", logging.INFO, __file__, 1,
        "intent %s denied: %s (mtm %.2f%%, limit %.2f%%)",
        ("NFO:NIFTY24JAN21500CE", "max_loss", -2.13, -2.0), None,
        extra={"intent_id": "0b8c9f3e", "strategy": "ema_cross", "qty": 50},
    )  # fmt: skip
    baseline = per_line_us(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"), record
    )
    print(f"stdlib logging.Formatter (no redaction): {baseline:6.1f} us/line")
    figures = {"stdlib_formatter_line": (round(baseline, 2), "us/line")}
    for secrets_count in (0, 10):
        secrets = SecretRegistry()
        for i in range(secrets_count):
            secrets.register(f"secretValue{i:02d}xyzABC")
        for name, formatter in (
            ("json", JsonLinesFormatter("gatekeeper", secrets)),
            ("text", TextFormatter("gatekeeper", secrets)),
        ):
            us = per_line_us(formatter, record)
            figures[f"{name}_line_{secrets_count}_secrets"] = (round(us, 2), "us/line")
    write_results(
        "logs_redaction",
        figures,
        {
            "lines": LINES,
            "repeats": f"best of {REPEATS}",
            "record": "INFO, 4 %-args, 3 extra fields, no exception",
            "note": "formatting only (no stream write); machine shared with other jobs",
        },
    )


if __name__ == "__main__":
    main()
