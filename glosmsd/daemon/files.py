"""Saving received and exported files on disk under safe, unique names.

A name from the network or a contact is sanitized (`media.safe_name`: no path parts, no
leading dot, no control characters) and a file is never overwritten: `a.jpg`,
`a (2).jpg`, ... each written whole under a fresh name (`system.atomicwrite.write_new`:
never replacing, never seen half written), so two writers cannot clobber each other.
This module only writes inside the folder it is given.
"""

from __future__ import annotations

from pathlib import Path

from glosmsd.core.errors import BadInput
from glosmsd.system.atomicwrite import write_new


def save_unique(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` under a sanitized, unused name in `directory`; return the path."""
    from glosmsd.daemon.media import safe_name  # loaded at the first file (issue 16)

    directory.mkdir(parents=True, exist_ok=True)
    safe = safe_name(name)
    stem, dot, ext = safe.rpartition(".")
    if not dot or not stem:
        stem, ext = safe, ""
    for n in range(1, 10000):
        candidate = safe if n == 1 else (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
        path = directory / candidate
        try:
            write_new(path, data, mode=0o600)
        except FileExistsError:
            continue
        return path
    raise BadInput(f"Too many files named {safe} in {directory}.")


def copy_unique(src: Path, directory: Path, name: str) -> Path:
    """Copy `src` into `directory` under a sanitized, unused version of `name`."""
    return save_unique(directory, name, src.read_bytes())
