"""The store's metrics seam: a Protocol the service's metrics object implements (no prometheus
dependency here). `NO_STORE_METRICS` does nothing and is the default."""

from __future__ import annotations

from typing import Protocol


class StoreMetrics(Protocol):
    def rows_written(self, table: str, count: int) -> None:
        """`count` rows reached ClickHouse (directly or replayed from the spool)."""

    def insert_failed(self, table: str, kind: str) -> None:
        """An insert failed; kind is "temporary" (spooled, retried) or "rejected" (quarantined)."""

    def rows_spooled(self, table: str, count: int) -> None:
        """`count` rows were written to the on-disk spool."""

    def rows_quarantined(self, table: str, count: int) -> None:
        """`count` rows ClickHouse refused for good were moved to the spool's rejected/ folder."""

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        """Gauge: batches and rows waiting in the spool."""


class NoStoreMetrics:
    """Counts nothing."""

    def rows_written(self, table: str, count: int) -> None:
        pass

    def insert_failed(self, table: str, kind: str) -> None:
        pass

    def rows_spooled(self, table: str, count: int) -> None:
        pass

    def rows_quarantined(self, table: str, count: int) -> None:
        pass

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        pass


NO_STORE_METRICS: StoreMetrics = NoStoreMetrics()
