"""The emoji picker's catalogue, read once from the UTS #51 data file that `emoji-data` ships.

The `emoji-data` distribution carries Unicode's own data files; only its ``emoji-test.txt``
is read here, located through the distribution's metadata, and parsed by
`glosmsd.core.emojicatalog`. Its Python code is never imported: the data file is what we
need (and it is under Unicode's licence, while the package's code is GPL).

This module only reads that one file, once per process; it never writes anything.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

from glosmsd.core.errors import Unsupported

DISTRIBUTION: Final = "emoji-data"
DATA_FILE: Final = "emoji_data/data/emoji-test.txt"


@functools.cache
def catalog_json() -> dict[str, Any]:
    """The catalogue as the `emoji_catalog` method answers it (cached: it never changes
    while the daemon runs).

    Raises `Unsupported` when the data file is missing (a broken install).
    """
    # Imported here, at the first `emoji_catalog` call: importlib.metadata (with email,
    # zipfile, csv) and the parser cost a daemon that never shows the picker ~1.5 MB.
    import importlib.metadata

    from glosmsd.core import emojicatalog

    try:
        located = importlib.metadata.distribution(DISTRIBUTION).locate_file(DATA_FILE)
        text = Path(str(located)).read_text(encoding="utf-8")
    except (importlib.metadata.PackageNotFoundError, OSError) as exc:
        raise Unsupported(
            f"The emoji catalogue is missing ({DATA_FILE} of the {DISTRIBUTION} package): "
            "reinstall glosmsd."
        ) from exc
    return emojicatalog.parse(text).to_json()
