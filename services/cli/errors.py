"""What a CLI command returns to the shell, and the error that carries it.

Exit codes: 0 success; 1 the command ran and found or caused a problem (a service down, a halt
refused, a kill switch tripped...); 2 usage or settings error; 3 Redis, ClickHouse or a service
could not be reached; 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

OK = 0
PROBLEM = 1
USAGE = 2
UNREACHABLE = 3
INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on: printed as one 'error: ...' line, exits with `code`."""

    def __init__(self, message: str, code: int = PROBLEM) -> None:
        super().__init__(message)
        self.code = code
