"""`glosmsd doctor`: what this desktop has and lacks for glosmsd, and what to install.

Three modules, by concern: `seen` holds the observations (plain frozen values saying which
programs exist and what the X server, the session bus, the daemon's socket, the config and
the server answered); `verdicts`, the pure half, turns them into one `Result` per check
(`assess`); `probes` looks at the real system (`look`), every probe bounded by a timeout.
This module is the command line that joins them.

The doctor only looks: it writes no file, stops nothing, and says only `hello` to the
server (and `status` to the daemon).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from glosmsd.cli.doctor.probes import DEFAULT_TIMEOUT, look
from glosmsd.cli.doctor.verdicts import assess, exit_code, render


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glosmsd doctor",
        description="Check what glosmsd needs on this desktop (display, tray, notifications, "
        "clipboard, sound, the daemon, the config, the server) and say what to install.",
        epilog="exit codes: 0 everything needed works (warnings alone do not fail), "
        "1 something is missing",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of the checks")
    p.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: the user's config.toml)"
    )
    p.add_argument("--server", metavar="URL", help="check this server URL instead of the config's")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="use the token in this file")
    p.add_argument("--ca-file", type=Path, metavar="FILE", help="trust this CA (PEM) for wss://")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for each probe (default {DEFAULT_TIMEOUT:g})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    # Probes log (websockets, the config's group-readable warning); the report says it all.
    logging.getLogger().addHandler(logging.NullHandler())
    overrides = {
        "server": args.server,
        "token_file": str(args.token_file) if args.token_file else None,
        "ca_file": str(args.ca_file) if args.ca_file else None,
    }
    seen = look(config_path=args.config, overrides=overrides, timeout=max(0.1, args.timeout))
    results = assess(seen)
    if args.json:
        sys.stdout.write(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(render(results)) + "\n")
    sys.stdout.flush()
    return exit_code(results)
