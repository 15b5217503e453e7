"""An Inserter that brings the schema up to date before its first insert.

For services that must start (and keep working on Redis) while ClickHouse is down: their writers
spool batches until ClickHouse answers, and the first insert that reaches it applies the
migrations first, so replayed batches never meet a missing table. A failure to migrate raises
the driver's error, which the BatchWriter classifies like any insert failure (network errors are
temporary: the batch is spooled and replayed later).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from shared.store.batch_writer import ClickHouseInserter
from shared.store.migrations import apply_migrations

logger = logging.getLogger(__name__)


class MigratedInserter:
    """ClickHouseInserter preceded, once, by apply_migrations on the same client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._inserter = ClickHouseInserter(client)
        self._lock = threading.Lock()
        self._migrated = False

    @property
    def migrated(self) -> bool:
        return self._migrated

    def ensure_schema(self) -> None:
        """Apply pending migrations once (blocking; raises when ClickHouse is unreachable)."""
        with self._lock:
            self._ensure_schema()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Any], token: str) -> None:
        # One lock around both: the client is not thread-safe and writers of several tables
        # may share it.
        with self._lock:
            self._ensure_schema()
            self._inserter.insert(table, columns, rows, token)

    def _ensure_schema(self) -> None:
        if not self._migrated:
            applied = apply_migrations(self.client)
            if applied:
                logger.info("applied ClickHouse migrations: %s", [m.name for m in applied])
            self._migrated = True
