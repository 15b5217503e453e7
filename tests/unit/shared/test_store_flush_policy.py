from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from clickhouse_driver import errors

from shared.clock import IST
from shared.store.flush_policy import BatchPolicy, FlushReason, flush_reason, replay_due
from shared.store.insert_errors import InsertFailure, classify_insert_error

NOW = datetime(2024, 8, 1, 9, 15, tzinfo=IST)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("rows", "oldest_at", "reason"),
    [
        (0, None, None),
        (0, ago(100), None),  # nothing to flush however old
        (1, ago(0.5), None),
        (1, ago(1.0), FlushReason.AGED),
        (1, ago(5.0), FlushReason.AGED),
        (99, ago(0.1), None),
        (100, ago(0.1), FlushReason.FULL),
        (150, ago(2.0), FlushReason.FULL),  # full wins over aged
        (5, None, None),
    ],
)
def test_flush_reason_by_rows_and_age(
    rows: int, oldest_at: datetime | None, reason: FlushReason | None
) -> None:
    assert flush_reason(rows, oldest_at, NOW, max_rows=100, max_age_s=1.0) is reason


@pytest.mark.parametrize(
    ("last", "due"), [(None, True), (ago(4.9), False), (ago(5.0), True), (ago(60), True)]
)
def test_replay_due_every_interval(last: datetime | None, due: bool) -> None:
    assert replay_due(last, NOW, 5.0) is due


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rows": 0},
        {"insert_attempts": 0},
        {"max_age_s": 0},
        {"replay_interval_s": -1},
        {"retry_initial_s": -0.1},
        {"retry_initial_s": 3.0, "retry_max_s": 1.0},
    ],
)
def test_batch_policy_refuses_unusable_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="BatchPolicy"):
        BatchPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (errors.NetworkError("Connection refused"), InsertFailure.TEMPORARY),
        (errors.SocketTimeoutError("timed out"), InsertFailure.TEMPORARY),
        (EOFError("Unexpected EOF while reading bytes"), InsertFailure.TEMPORARY),
        (ConnectionResetError(), InsertFailure.TEMPORARY),
        (TimeoutError(), InsertFailure.TEMPORARY),
        (errors.ServerException("too many parts", code=252), InsertFailure.TEMPORARY),
        (errors.ServerException("memory limit", code=241), InsertFailure.TEMPORARY),
        (errors.ServerException("shutting down", code=394), InsertFailure.TEMPORARY),
        (errors.ServerException("unknown table", code=60), InsertFailure.REJECTED),
        (errors.ServerException("type mismatch", code=53), InsertFailure.REJECTED),
        (errors.ServerException("no code"), InsertFailure.REJECTED),
        (errors.TypeMismatchError("bad value"), InsertFailure.REJECTED),
        (TypeError("'str' object has no attribute 'tzinfo'"), InsertFailure.REJECTED),
        (AttributeError("'str' object has no attribute 'tzinfo'"), InsertFailure.REJECTED),
        (ValueError("bad"), InsertFailure.REJECTED),
    ],
)
def test_classify_insert_error(error: Exception, failure: InsertFailure) -> None:
    assert classify_insert_error(error) is failure
