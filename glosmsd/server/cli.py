"""`glosmsd-server` command line (placeholder until the server lands)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from glosmsd import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glosmsd-server", description="glosmsd reference SMS server")
    parser.add_argument("--version", action="version", version=f"glosmsd-server {__version__}")
    parser.parse_args(argv)
    return 0
