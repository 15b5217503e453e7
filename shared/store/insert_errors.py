"""What an insert failure means: retry it later (temporary) or set the batch aside (rejected)."""

from __future__ import annotations

from enum import StrEnum

from clickhouse_driver import errors

# ClickHouse server error codes worth retrying: overload, shutdown, timeouts, network.
TEMPORARY_SERVER_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (e.g. a replica restarting)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED (server shutting down)
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


class InsertFailure(StrEnum):
    TEMPORARY = "temporary"  # ClickHouse unreachable or overloaded: retry, then spool
    REJECTED = "rejected"  # the rows themselves are refused: retrying cannot help


def classify_insert_error(error: BaseException) -> InsertFailure:
    """Network trouble and a few server codes are temporary; anything else (a type mismatch, an
    unknown table or column, a value out of range) is a rejection of the batch."""
    if isinstance(
        error,
        errors.NetworkError
        | errors.SocketTimeoutError
        | errors.UnexpectedPacketFromServerError
        | EOFError
        | ConnectionError
        | TimeoutError,
    ):
        return InsertFailure.TEMPORARY
    if isinstance(error, errors.ServerException) and error.code in TEMPORARY_SERVER_CODES:
        return InsertFailure.TEMPORARY
    return InsertFailure.REJECTED
