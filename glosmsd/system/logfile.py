"""The daemon's log file, rotated by size: `RotatingLog`.

It does what `logging.handlers.RotatingFileHandler(path, maxBytes=N, backupCount=K)`
does (before a record that would take the file to N bytes or more, `path` becomes
`path.1`, `path.1` becomes `path.2` and so on up to K, then a new `path` is started), with
`logging` alone: `logging.handlers` imports `pickle` (for its socket handlers), ~0.6 MB of
an idle headless daemon's 32.5 MB (issue 16, `python -X importtime`).

This module only writes the log file it is given and its numbered predecessors.
"""

from __future__ import annotations

import logging
import os


class RotatingLog(logging.FileHandler):
    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int, backups: int) -> None:
        super().__init__(path, mode="a")
        self.max_bytes = max_bytes
        self.backups = backups

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._should_roll(record):
                self._roll()
            super().emit(record)
        except Exception:
            self.handleError(record)

    def _should_roll(self, record: logging.LogRecord) -> bool:
        # A path that is not a regular file (/dev/null, a FIFO) is never rotated.
        if os.path.exists(self.baseFilename) and not os.path.isfile(self.baseFilename):
            return False
        if self.stream is None:
            self.stream = self._open()
        if self.max_bytes <= 0:
            return False
        line = f"{self.format(record)}{self.terminator}"
        self.stream.seek(0, 2)  # the file's end, whoever else appended to it
        return bool(self.stream.tell() + len(line) >= self.max_bytes)

    def _roll(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        base = self.baseFilename
        for i in range(self.backups - 1, 0, -1):
            older, newer = f"{base}.{i}", f"{base}.{i + 1}"
            if os.path.exists(older):
                if os.path.exists(newer):
                    os.remove(newer)
                os.rename(older, newer)
        if self.backups > 0:
            first = f"{base}.1"
            if os.path.exists(first):
                os.remove(first)
            if os.path.exists(base):
                os.rename(base, first)
        self.stream = self._open()
