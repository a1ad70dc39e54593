"""The SMS window in a pywebview window (the `[window]` extra), as a process of its own.

`python -m glosmsd.desktop.window.webview --storage DIR` reads the one-time URL from its
standard input (never from its command line, which other users can read) and shows it
until the window is closed. `glosmsd.desktop.window.launch` starts it when pywebview is
importable; it takes only the daemon's own loopback URLs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

TITLE = "SMS"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="glosmsd-window", description=__doc__)
    p.add_argument("--storage", required=True, help="folder for the window's own storage")
    args = p.parse_args(argv)
    url = sys.stdin.readline().strip()
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        print("glosmsd-window: give the SMS window's URL on standard input", file=sys.stderr)
        return 2
    import webview

    webview.create_window(TITLE, url, width=1100, height=760, min_size=(380, 480))
    webview.start(private_mode=False, storage_path=args.storage)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
