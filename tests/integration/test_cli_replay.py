"""`tradealgo replay` refuses a day it cannot replay before starting anything (reads the real
data files), and `tradealgo sim` / `backtest` hand their arguments to those programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.main import main

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("2024-03-04", "2024-03-04 is not in"),  # a trading day missing from the data (a gap)
        ("2024-03-09", "2024-03-09 is not in"),  # a Saturday without a session
        ("2023-12-29", "which covers 2024-01-01 to 2024-08-23"),
    ],
)
def test_replay_of_a_day_without_data_is_refused_with_the_range(
    day: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUN_VAR_DIR", str(tmp_path / "var"))
    assert main(["replay", "--date", day]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "var").exists()  # nothing was started


def test_sim_passes_its_arguments_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--help"]) == 0
    assert "--speed" in capsys.readouterr().out


def test_backtest_passes_its_arguments_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--help"]) == 0
    assert "usage" in capsys.readouterr().out.lower()
