"""The daemon's rotating log file: what `RotatingFileHandler` did, with `logging` alone."""

from __future__ import annotations

import logging
from pathlib import Path

from glosmsd.system.logfile import RotatingLog


def _logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"test_logfile.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log


def test_it_rotates_by_size_and_keeps_the_backups_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "glosmsd.log"
    handler = RotatingLog(path, max_bytes=1000, backups=2)
    log = _logger(handler)
    try:
        for i in range(100):
            log.info("line %03d %s", i, "x" * 40)
    finally:
        handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["glosmsd.log", "glosmsd.log.1", "glosmsd.log.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size < 1000
    # Nothing lost within what is kept: the newest file ends with the last line, and the
    # backups hold the lines just before it, in order.
    text = "".join((tmp_path / n).read_text() for n in names[::-1][:2] + names[:1])
    numbers = [int(line.split()[1]) for line in text.splitlines()]
    assert numbers == list(range(numbers[0], 100))


def test_it_appends_to_what_an_earlier_run_wrote(tmp_path: Path) -> None:
    path = tmp_path / "glosmsd.log"
    path.write_text("from before\n")
    handler = RotatingLog(path, max_bytes=2_000_000, backups=2)
    log = _logger(handler)
    try:
        log.info("now")
    finally:
        handler.close()
    assert path.read_text() == "from before\nnow\n"
    assert not (tmp_path / "glosmsd.log.1").exists()
