from __future__ import annotations

from pathlib import Path

import pytest

from shared.store.migrations import (
    AppliedMigration,
    Migration,
    MigrationError,
    checksum,
    load_migrations,
    order_migrations,
    parse_migration,
    plan_migrations,
    split_statements,
)


@pytest.mark.parametrize(
    ("sql", "statements"),
    [
        ("CREATE TABLE a (x UInt8) ENGINE = Memory;", ["CREATE TABLE a (x UInt8) ENGINE = Memory"]),
        (
            "-- header; with a semicolon\nCREATE TABLE a\n(\n    x UInt8\n)\nENGINE = Memory;\n",
            ["CREATE TABLE a\n(\n    x UInt8\n)\nENGINE = Memory"],
        ),
        (
            "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory;\n\nSELECT 1;  \n",
            ["CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory", "SELECT 1"],
        ),
        ("  -- only a comment\n\n", []),
        (";\nSELECT 2;", ["SELECT 2"]),  # an empty statement is skipped
        ("COMMENT 'it; works';", ["COMMENT 'it; works'"]),
    ],
)
def test_split_statements_ends_a_statement_at_a_line_ending_with_semicolon(
    sql: str, statements: list[str]
) -> None:
    assert split_statements(sql) == statements


def test_split_statements_refuses_a_trailing_unterminated_statement() -> None:
    with pytest.raises(MigrationError, match="unterminated statement"):
        split_statements("SELECT 1;\nSELECT 2")


@pytest.mark.parametrize(
    ("name", "version", "migration_name"),
    [("001_initial.sql", 1, "initial"), ("012_add_oi_index.sql", 12, "add_oi_index")],
)
def test_parse_migration_reads_version_and_name(
    name: str, version: int, migration_name: str
) -> None:
    migration = parse_migration(name, "SELECT 1;")
    assert (migration.version, migration.name) == (version, migration_name)
    assert migration.statements == ("SELECT 1",)
    assert migration.checksum == checksum("SELECT 1;")


@pytest.mark.parametrize(
    ("name", "sql", "error"),
    [
        ("1_initial.sql", "SELECT 1;", "named NNN_lower_snake_name.sql"),
        ("001-initial.sql", "SELECT 1;", "named NNN"),
        ("001_Initial.sql", "SELECT 1;", "named NNN"),
        ("002_empty.sql", "-- nothing\n", "002_empty.sql: no statements"),
        ("003_open.sql", "SELECT 1", "003_open.sql: unterminated"),
    ],
)
def test_parse_migration_refuses_bad_files(name: str, sql: str, error: str) -> None:
    with pytest.raises(MigrationError, match=error):
        parse_migration(name, sql)


def m(version: int, sql: str = "SELECT 1;") -> Migration:
    return parse_migration(f"{version:03d}_m{version}.sql", sql)


def applied(migration: Migration, checksum_: str | None = None) -> AppliedMigration:
    return AppliedMigration(migration.version, migration.name, checksum_ or migration.checksum)


def test_order_migrations_sorts_and_refuses_duplicate_versions() -> None:
    assert [x.version for x in order_migrations([m(3), m(1), m(2)])] == [1, 2, 3]
    with pytest.raises(MigrationError, match="two migrations with version 2"):
        order_migrations([m(2), parse_migration("002_other.sql", "SELECT 2;")])


@pytest.mark.parametrize(
    ("available", "done", "to_apply", "unknown"),
    [
        ([1, 2, 3], [], [1, 2, 3], []),
        ([1, 2, 3], [1], [2, 3], []),
        ([1, 2, 3], [1, 2, 3], [], []),
        ([1, 3], [1], [3], []),
        ([1], [1, 2], [], [2]),  # the database is newer than this build: reported, not fatal
    ],
)
def test_plan_migrations_applies_what_is_missing_in_order(
    available: list[int], done: list[int], to_apply: list[int], unknown: list[int]
) -> None:
    files = {v: m(v) for v in set(available) | set(done)}
    plan = plan_migrations([files[v] for v in available], {v: applied(files[v]) for v in done})
    assert [x.version for x in plan.to_apply] == to_apply
    assert [x.version for x in plan.unknown] == unknown


def test_plan_migrations_refuses_an_applied_migration_whose_file_changed() -> None:
    original = m(1, "SELECT 1;")
    edited = m(1, "SELECT 1;\n-- edited\n")
    with pytest.raises(MigrationError, match="001_m1 changed after it was applied"):
        plan_migrations([edited, m(2)], {1: applied(original)})


def test_load_migrations_reads_sql_files_of_a_directory_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "002_second.sql").write_text("SELECT 2;\n")
    (tmp_path / "001_first.sql").write_text("SELECT 1;\n")
    (tmp_path / "README.md").write_text("not a migration")
    assert [(x.version, x.name) for x in load_migrations(tmp_path)] == [
        (1, "first"),
        (2, "second"),
    ]


def test_the_shipped_schema_parses_and_every_table_names_its_owner() -> None:
    migrations = load_migrations()
    assert migrations[0].version == 1
    creates = [s for x in migrations for s in x.statements if s.startswith("CREATE TABLE")]
    assert len(creates) == 14
    for statement in creates:
        assert "IF NOT EXISTS" in statement
        assert "COMMENT 'owner: " in statement
        if "MergeTree" in statement:
            assert "non_replicated_deduplication_window" in statement
