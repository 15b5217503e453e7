"""The terminal of `tradealgo run`: a status line redrawn in place, event lines above it."""

from __future__ import annotations

import shutil
import time
from typing import IO


class Terminal:
    """A status line redrawn in place on a terminal; plain periodic lines otherwise."""

    def __init__(self, out: IO[str], log_interval_s: float) -> None:
        self.out = out
        self.tty = out.isatty()
        self.log_interval_s = log_interval_s
        self._last_logged = 0.0
        self._status = ""

    def say(self, line: str) -> None:
        if self.tty and self._status:
            self.out.write("\r\x1b[K")
        self.out.write(line + "\n")
        if self.tty and self._status:
            self.out.write(self._status)
        self.out.flush()

    def status(self, line: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns
            self._status = line[: max(20, width - 1)]
            self.out.write("\r\x1b[K" + self._status)
            self.out.flush()
            return
        now = time.monotonic()
        if line != self._status and now - self._last_logged >= self.log_interval_s:
            self._status = line
            self._last_logged = now
            self.out.write(line + "\n")
            self.out.flush()

    def end(self) -> None:
        if self.tty and self._status:
            self.out.write("\n")
            self.out.flush()
        self._status = ""
