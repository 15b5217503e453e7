"""The market-hours recording rules generated from the NSE calendar (deploy/tools/nse_calendar_rules.py).

promtool evaluates from the Unix epoch only, so the holidays and special sessions are tested with
calendars that list 1970 dates; the expected value at every 5 minutes of three days comes from
shared.calendar itself, so the rules must agree with what the services believe.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from shared.calendar import PRE_OPEN_LEAD, NseCalendar, load_calendar, parse_calendar
from shared.clock import to_ist
from tests.deploy.deploy_files import DEPLOY, PROMETHEUS, run_promtool


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nse_calendar_rules", DEPLOY / "tools" / "nse_calendar_rules.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HEADER = "date,kind,open,close,description\n"
# Thursday 1970-01-01: a holiday with an evening Muhurat session; Friday: a split DR-drill day;
# Saturday: a special session. Sunday 1970-01-04 is listed nowhere.
CALENDAR_1970 = HEADER + (
    "1970-01-01,holiday,,,Test holiday\n"
    "1970-01-01,session,18:00,19:00,Muhurat trading\n"
    "1970-01-02,session,09:15,10:00,Primary site\n"
    "1970-01-02,session,11:30,12:30,DR site\n"
    "1970-01-03,session,10:00,11:00,Saturday special\n"
)


def test_the_committed_rules_are_generated_from_the_shipped_calendar() -> None:
    committed = (PROMETHEUS / "nse_calendar_rules.yml").read_text()
    assert committed == generator().render(load_calendar()), (
        "regenerate: python deploy/tools/nse_calendar_rules.py > "
        "deploy/prometheus/nse_calendar_rules.yml"
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("", []),
        # A weekday holiday: closed all day.
        ("1970-01-05,holiday,,,Monday holiday\n", [(date(1970, 1, 5), [])]),
        # A weekend holiday changes nothing: not listed.
        ("1970-01-04,holiday,,,Sunday holiday\n", []),
        # A special session on a Saturday.
        (
            "1970-01-03,session,10:00,11:00,Saturday\n",
            [(date(1970, 1, 3), [(time(10), time(11))])],
        ),
        # A weekday session row with the regular hours is no exception.
        ("1970-01-06,session,09:15,15:30,Regular hours\n", []),
    ],
)
def test_exceptions_are_the_dates_whose_sessions_differ_from_the_weekday_rule(
    rows: str, expected: list[tuple[date, list[tuple[time, time]]]]
) -> None:
    calendar = parse_calendar(HEADER + "1970-12-31,holiday,,,Anchor\n" + rows)
    found = list(generator().exceptions(calendar, date(1970, 1, 1), date(1970, 1, 10)))
    assert found == expected


def expected_window(calendar: NseCalendar, ts: datetime) -> int:
    sessions = calendar.sessions(ts.date())
    if not sessions:
        return 0
    return int(sessions[0].open - PRE_OPEN_LEAD <= ts < sessions[-1].close)


def samples(calendar: NseCalendar, days: int, step: timedelta) -> list[dict[str, object]]:
    """promql_expr_test cases: both rules at every step, expected from shared.calendar."""
    cases: list[dict[str, object]] = []
    start = datetime(1970, 1, 1, tzinfo=UTC)
    for k in range(int(timedelta(days=days) / step)):
        offset = step * k
        ts = to_ist(start + offset)
        expected = {
            "tradealgo:nse_market_open": int(calendar.is_market_open(ts)),
            "tradealgo:nse_trading_window": expected_window(calendar, ts),
        }
        for name, value in expected.items():
            cases.append(
                {
                    "expr": name,
                    "eval_time": f"{int(offset.total_seconds())}s",
                    "exp_samples": [{"labels": name, "value": value}],
                }
            )
    return cases


@pytest.mark.parametrize(
    "calendar_text",
    [CALENDAR_1970, HEADER + "1970-01-02,holiday,,,Friday holiday\n"],
    ids=["holiday-with-muhurat-split-day-saturday-session", "plain-friday-holiday"],
)
def test_the_rules_agree_with_the_calendar_every_5_minutes(
    tmp_path: Path, calendar_text: str
) -> None:
    calendar = parse_calendar(calendar_text)
    (tmp_path / "rules.yml").write_text(generator().render(calendar, first_year=1970))
    cases = samples(calendar, days=4, step=timedelta(minutes=5))
    test_file = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "5m",
        "tests": [{"name": "calendar", "promql_expr_test": cases}],
    }
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(test_file))
    result = run_promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # The table is not trivial: it holds open and closed moments on listed and unlisted dates.
    values = [case["exp_samples"][0]["value"] for case in cases]  # type: ignore[index]
    assert 0 < sum(values) < len(values)
