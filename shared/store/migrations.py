"""Versioned schema migrations: shared/schema/NNN_name.sql applied in order at start-up.

Each applied migration is recorded in `schema_migrations` (version, name, checksum, applied_at).
Running twice applies nothing the second time; a migration whose file changed after it was applied
is an error (write a new migration instead). Two services starting at once may both apply a
migration: the statements are idempotent (IF NOT EXISTS) and the record table is a
ReplacingMergeTree keyed by version, so that race is harmless.

The parsing and planning functions are pure; `apply_migrations` is the IO.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
_FILE_NAME = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
COMMENT 'owner: shared.store.migrations (whichever service starts first)'
"""


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, content checksum and statements."""

    version: int
    name: str
    checksum: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str


def schema_dir() -> Traversable:
    """The migrations shipped with the code (shared/schema)."""
    return resources.files("shared") / "schema"


def split_statements(sql: str) -> list[str]:
    """Statements of a migration file: a statement ends on a line whose text ends with ';'.
    Lines starting with '--' are comments and dropped. Text after the last ';' is an error."""
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line.rstrip())
        if stripped.endswith(";"):
            statement = "\n".join(current).rstrip()[:-1].strip()
            if statement:
                statements.append(statement)
            current = []
    if current:
        raise MigrationError(f"unterminated statement (no ';' at a line end): {current[0]!r}")
    return statements


def checksum(sql: str) -> str:
    """sha256 of the file text: any edit of an applied migration is noticed."""
    return hashlib.sha256(sql.encode()).hexdigest()


def parse_migration(file_name: str, sql: str) -> Migration:
    """A migration from its file name (NNN_name.sql) and text."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise MigrationError(f"{file_name}: a migration file is named NNN_lower_snake_name.sql")
    try:
        statements = split_statements(sql)
    except MigrationError as exc:
        raise MigrationError(f"{file_name}: {exc}") from None
    if not statements:
        raise MigrationError(f"{file_name}: no statements")
    return Migration(
        version=int(match["version"]),
        name=match["name"],
        checksum=checksum(sql),
        statements=tuple(statements),
    )


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """Every *.sql file of the directory as a migration, by version; duplicates are an error."""
    root = directory if directory is not None else schema_dir()
    files = sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    migrations = [parse_migration(f.name, f.read_text(encoding="utf-8")) for f in files]
    return order_migrations(migrations)


def order_migrations(migrations: Iterable[Migration]) -> list[Migration]:
    """Migrations sorted by version; two files with one version is an error."""
    by_version: dict[int, Migration] = {}
    for migration in migrations:
        other = by_version.get(migration.version)
        if other is not None:
            raise MigrationError(
                f"two migrations with version {migration.version}: {other.name}, {migration.name}"
            )
        by_version[migration.version] = migration
    return [by_version[v] for v in sorted(by_version)]


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    to_apply: tuple[Migration, ...]  # in version order
    unknown: tuple[AppliedMigration, ...]  # applied, but this build has no such file (newer db)


def plan_migrations(
    available: Sequence[Migration], applied: Mapping[int, AppliedMigration]
) -> MigrationPlan:
    """What to apply. An applied migration whose file changed is an error; an applied version
    this build does not know (the database is newer than the code) is reported, not an error,
    so an older build can still start during a rollback."""
    for migration in available:
        done = applied.get(migration.version)
        if done is not None and done.checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:03d}_{migration.name} changed after it was applied"
                f" (checksum {migration.checksum[:12]} in the file, {done.checksum[:12]} applied);"
                " never edit an applied migration, add a new one"
            )
    known = {m.version for m in available}
    return MigrationPlan(
        to_apply=tuple(m for m in available if m.version not in applied),
        unknown=tuple(a for v, a in sorted(applied.items()) if v not in known),
    )


def apply_migrations(client: Any, directory: Traversable | Path | None = None) -> list[Migration]:
    """Bring the client's database up to date; returns the migrations applied now.

    `client` is a clickhouse_driver.Client connected to the target database."""
    available = load_migrations(directory)
    client.execute(_CREATE_MIGRATIONS_TABLE)
    rows = client.execute(f"SELECT version, name, checksum FROM {MIGRATIONS_TABLE} FINAL")
    applied = {int(v): AppliedMigration(int(v), n, c) for v, n, c in rows}
    plan = plan_migrations(available, applied)
    for unknown in plan.unknown:
        logger.warning(
            "database has migration %03d_%s that this build does not know (newer schema)",
            unknown.version,
            unknown.name,
        )
    for migration in plan.to_apply:
        logger.info(
            "applying migration %03d_%s (%s statements)",
            migration.version,
            migration.name,
            len(migration.statements),
        )
        for statement in migration.statements:
            client.execute(statement)
        client.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES",
            [(migration.version, migration.name, migration.checksum)],
        )
    if not plan.to_apply:
        logger.info("schema up to date at version %s", max(applied, default=0))
    return list(plan.to_apply)
