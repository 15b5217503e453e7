"""BatchWriter with a scripted inserter: batching, retry, spool, ordered deduplicated replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import errors

from shared.clock import IST, ManualClock
from shared.store.batch_writer import BatchWriter, Row
from shared.store.flush_policy import BatchPolicy, FlushReason
from shared.store.metrics import NoStoreMetrics
from shared.store.spool import Spool

T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
POLICY = BatchPolicy(
    max_rows=3,
    max_age_s=1.0,
    insert_attempts=2,
    retry_initial_s=0,
    retry_max_s=0,
    replay_interval_s=10.0,
)


class FakeClickHouse:
    """Keeps inserted blocks; dedups by token like ClickHouse; fails on command."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, list[Row]]] = []
        self.tokens: set[str] = set()
        self.down = False
        self.refuse: Exception | None = None
        self.lose_ack_once = False
        self.calls = 0

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        self.calls += 1
        if self.down:
            raise errors.NetworkError("Connection refused")
        if self.refuse is not None:
            raise self.refuse
        if token not in self.tokens:
            self.tokens.add(token)
            self.blocks.append((token, list(rows)))
        if self.lose_ack_once:  # written, but the client never hears back
            self.lose_ack_once = False
            raise errors.NetworkError("Connection reset by peer")

    @property
    def rows(self) -> list[Row]:
        return [row for _, rows in self.blocks for row in rows]


class Metrics(NoStoreMetrics):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.backlog = (0, 0)

    def rows_written(self, table: str, count: int) -> None:
        self.counts["written"] += count

    def insert_failed(self, table: str, kind: str) -> None:
        self.counts[f"failed:{kind}"] += 1

    def rows_spooled(self, table: str, count: int) -> None:
        self.counts["spooled"] += count

    def rows_quarantined(self, table: str, count: int) -> None:
        self.counts["quarantined"] += count

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        self.backlog = (files, rows)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db() -> FakeClickHouse:
    return FakeClickHouse()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def writer(tmp_path: Path, clock: ManualClock, db: FakeClickHouse, metrics: Metrics) -> BatchWriter:
    return BatchWriter(
        "ticks",
        ("n", "ts"),
        inserter=db,
        spool=Spool(tmp_path),
        clock=clock,
        policy=POLICY,
        metrics=metrics,
    )


def row(n: int) -> dict[str, Any]:
    return {"n": n, "ts": T0}


def test_a_flush_is_due_when_full_or_aged(writer: BatchWriter, clock: ManualClock) -> None:
    assert writer.due() is None
    writer.add(row(1))
    assert writer.due() is None
    clock.advance(1.0)
    assert writer.due() is FlushReason.AGED
    writer.add_many([row(2), row(3)])
    assert writer.due() is FlushReason.FULL


def test_flush_if_due_writes_one_batch_only_when_due(
    writer: BatchWriter, clock: ManualClock, db: FakeClickHouse
) -> None:
    writer.add(row(1))
    assert writer.flush_if_due() == 0
    assert db.rows == []
    clock.advance(1.0)
    assert writer.flush_if_due() == 1
    assert db.rows == [(1, T0)]
    assert writer.buffered == 0


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"n": 1}, r"missing \['ts'\], unknown \[\]"),
        ({"n": 1, "ts": T0, "extra": 2}, r"missing \[\], unknown \['extra'\]"),
    ],
)
def test_add_refuses_a_row_with_other_columns(
    writer: BatchWriter, bad: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        writer.add(bad)
    with pytest.raises(ValueError, match=error):
        writer.add_many([row(1), bad])
    assert writer.buffered == 0  # add_many is all or nothing


def test_an_outage_spools_batches_and_replays_them_in_order_once(
    writer: BatchWriter, clock: ManualClock, db: FakeClickHouse, metrics: Metrics, tmp_path: Path
) -> None:
    writer.add(row(1))
    writer.flush()
    db.down = True
    writer.add_many([row(2), row(3)])
    writer.flush()  # retried insert_attempts times, then spooled
    assert db.calls == 1 + POLICY.insert_attempts
    writer.add(row(4))
    writer.flush()  # goes straight behind the spooled batch
    assert metrics.backlog == (2, 3)
    assert writer.replay() == 0  # still down: nothing lost, nothing written
    db.down = False
    writer.add(row(5))
    clock.advance(POLICY.replay_interval_s)
    writer.flush()  # spools row 5 behind the others, then replays all in order
    assert [r[0] for r in db.rows] == [1, 2, 3, 4, 5]
    assert metrics.backlog == (0, 0)
    assert metrics.counts["written"] == 5
    assert metrics.counts["spooled"] == 4
    assert Spool(tmp_path).files() == []


def test_a_written_but_unacknowledged_batch_is_not_doubled_by_its_replay(
    writer: BatchWriter, db: FakeClickHouse
) -> None:
    db.lose_ack_once = True
    writer.add_many([row(1), row(2)])
    writer.flush()  # the retry (same token) is deduplicated by the server
    assert [r[0] for r in db.rows] == [1, 2]
    assert db.calls == 2


def test_replay_of_a_batch_that_reached_the_server_keeps_its_token(
    tmp_path: Path, clock: ManualClock, db: FakeClickHouse
) -> None:
    one_try = BatchPolicy(insert_attempts=1, retry_initial_s=0, retry_max_s=0)
    writer = BatchWriter(
        "ticks", ("n", "ts"), inserter=db, spool=Spool(tmp_path), clock=clock, policy=one_try
    )
    db.lose_ack_once = True
    writer.add_many([row(1), row(2)])
    writer.flush()  # written, but we only saw a network error: spooled
    assert Spool(tmp_path).backlog() == (1, 2)
    assert writer.replay() == 2  # the server recognises the token
    assert [r[0] for r in db.rows] == [1, 2]
    assert Spool(tmp_path).files() == []


def test_a_batch_clickhouse_refuses_is_set_aside_and_does_not_block_the_rest(
    writer: BatchWriter, db: FakeClickHouse, metrics: Metrics, tmp_path: Path
) -> None:
    db.refuse = errors.ServerException("Type mismatch", code=53)
    writer.add(row(1))
    writer.flush()
    assert db.calls == 1  # a rejection is not retried
    db.refuse = None
    writer.add(row(2))
    writer.flush()
    assert [r[0] for r in db.rows] == [2]
    assert metrics.counts["quarantined"] == 1
    assert metrics.counts["failed:rejected"] == 1
    assert len(list((tmp_path / "rejected").glob("*.batch"))) == 1
    assert Spool(tmp_path).files() == []


def test_an_unreadable_spool_file_is_set_aside(
    writer: BatchWriter, db: FakeClickHouse, tmp_path: Path
) -> None:
    db.down = True
    writer.add(row(1))
    writer.flush()
    [path] = Spool(tmp_path).files()
    path.write_bytes(b"\xc1 corrupted")
    db.down = False
    writer.add(row(2))
    writer.flush()
    writer.replay()
    assert [r[0] for r in db.rows] == [2]
    assert (tmp_path / "rejected" / path.name).exists()
