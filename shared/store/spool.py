"""The on-disk spool: batches that could not reach ClickHouse, one file each, replayed in order.

A file is written atomically (temp file, fsync, rename, fsync of the directory), so after a crash
a batch is either completely in the spool or not at all. File names sort in write order:
`{seq:012d}-{rows}-{batch_id}.batch`; the batch id travels with the rows and is the
insert_deduplication_token of every attempt, so a batch that reached ClickHouse without the
acknowledgement reaching us is not written twice when replayed.

Rows are msgpack with extension types for datetime, date, Decimal and UUID (exact round trip;
a zone is kept as its UTC offset). Tuples inside values come back as lists. Batches ClickHouse
refuses for good are moved to `rejected/` with a `.reason` file: kept for a human, never replayed.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

logger = logging.getLogger(__name__)

_SUFFIX = ".batch"
_NAME = re.compile(r"^(?P<seq>\d{12})-(?P<rows>\d+)-(?P<batch_id>[0-9a-f]{32})\.batch$")
_FORMAT = 1
_EXT_DATETIME, _EXT_DATE, _EXT_DECIMAL, _EXT_UUID = 1, 2, 3, 4


class SpoolError(RuntimeError):
    """A spool file that cannot be read back (corrupt, foreign)."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    batch_id: str
    table: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[Any, ...]]  # a list, or any Sequence of row tuples (written row by row)


class _SpoolFile(msgspec.Struct, frozen=True):
    format: int
    batch_id: str
    table: str
    columns: list[str]
    rows: list[list[Any]]


def new_batch_id() -> str:
    """A fresh batch id (also the insert_deduplication_token)."""
    return uuid.uuid4().hex


def _pack(value: Any) -> Any:
    # msgspec would write these as strings and read strings back; extension types keep the type.
    if isinstance(value, datetime):
        return msgspec.msgpack.Ext(_EXT_DATETIME, value.isoformat().encode())
    if isinstance(value, date):
        return msgspec.msgpack.Ext(_EXT_DATE, value.isoformat().encode())
    if isinstance(value, Decimal):
        return msgspec.msgpack.Ext(_EXT_DECIMAL, str(value).encode())
    if isinstance(value, uuid.UUID):
        return msgspec.msgpack.Ext(_EXT_UUID, value.bytes)
    if isinstance(value, list | tuple):
        return [_pack(v) for v in value]
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    return value


def _unpack_ext(code: int, data: memoryview) -> Any:
    raw = bytes(data)
    if code == _EXT_DATETIME:
        return datetime.fromisoformat(raw.decode())
    if code == _EXT_DATE:
        return date.fromisoformat(raw.decode())
    if code == _EXT_DECIMAL:
        return Decimal(raw.decode())
    if code == _EXT_UUID:
        return uuid.UUID(bytes=raw)
    raise SpoolError(f"unknown extension type {code}")


_decoder = msgspec.msgpack.Decoder(_SpoolFile, ext_hook=_unpack_ext)


@runtime_checkable
class PlainRows(Protocol):
    """Rows that say they hold plain values only (int, float, str, bytes, bool, None and lists
    of them): stored without the per-value walk for extension types, ~40x faster, same bytes."""

    def plain_rows(self) -> list[tuple[Any, ...]]: ...


def encode_batch(batch: SpooledBatch) -> bytes:
    """The bytes of a spool file."""
    rows = batch.rows
    # Tuples are written as msgpack arrays, exactly like the lists _pack makes of them.
    packed: list[Any] = (
        rows.plain_rows() if isinstance(rows, PlainRows) else [_pack(list(r)) for r in rows]
    )
    body = _SpoolFile(
        format=_FORMAT,
        batch_id=batch.batch_id,
        table=batch.table,
        columns=list(batch.columns),
        rows=packed,
    )
    return msgspec.msgpack.encode(body)


def decode_batch(data: bytes) -> SpooledBatch:
    """A spool file's bytes back into a batch (SpoolError if they are not one)."""
    try:
        body = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise SpoolError(f"unreadable spool file: {exc}") from None
    if body.format != _FORMAT:
        raise SpoolError(f"unknown spool file format {body.format}")
    return SpooledBatch(
        batch_id=body.batch_id,
        table=body.table,
        columns=tuple(body.columns),
        rows=[tuple(row) for row in body.rows],
    )


class Spool:
    """One directory of spooled batches (use one directory per table and process)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.rejected_dir = self.directory / "rejected"
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(f".*{_SUFFIX}.tmp"):
            # a write that crashed before its rename: the caller never saw it succeed
            logger.warning("removing incomplete spool file %s", stale)
            stale.unlink(missing_ok=True)
        self._next_seq = max((self._seq(p) for p in self.files()), default=0) + 1

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def backlog(self) -> tuple[int, int]:
        """(batches, rows) waiting."""
        files = self.files()
        rows = sum(int(m["rows"]) for p in files if (m := _NAME.match(p.name)))
        return len(files), rows

    def write(self, batch: SpooledBatch) -> Path:
        """Store a batch durably; returns its file."""
        name = f"{self._next_seq:012d}-{len(batch.rows)}-{batch.batch_id}{_SUFFIX}"
        self._next_seq += 1
        path = self.directory / name
        _write_atomically(path, encode_batch(batch))
        return path

    def read(self, path: Path) -> SpooledBatch:
        return decode_batch(path.read_bytes())

    def remove(self, path: Path) -> None:
        """Forget a batch that reached ClickHouse."""
        path.unlink(missing_ok=True)  # another replayer of this directory may have removed it
        _fsync_dir(self.directory)

    def reject(self, path: Path, reason: str) -> Path:
        """Set a batch aside for a human: moved to rejected/ next to a .reason file."""
        self.rejected_dir.mkdir(exist_ok=True)
        target = self.rejected_dir / path.name
        _write_atomically(target.with_suffix(".reason"), reason.encode())
        os.replace(path, target)
        _fsync_dir(self.rejected_dir)
        _fsync_dir(self.directory)
        return target

    @staticmethod
    def _seq(path: Path) -> int:
        match = _NAME.match(path.name)
        return int(match["seq"]) if match else 0


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_for(root: Path | str, table: str) -> Spool:
    """The spool directory of one table under a service's spool root."""
    return Spool(Path(root) / table)
