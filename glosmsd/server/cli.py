"""`glosmsd-server`: run the reference server, or (with `admin ...`) manage its database.

Owns the command line only: parsing, refusing unsafe listen addresses, printing the one
`listening on` line that scripts and tests wait for, and stopping cleanly on SIGTERM or
SIGINT. It must never hold business logic: serving is `app`, administration is `admin`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from glosmsd import __version__
from glosmsd.core.errors import GlosmsdError
from glosmsd.core.loopback import is_loopback
from glosmsd.server import admin, conntable
from glosmsd.server.app import App, ServerConfig
from glosmsd.server.carrier import ADAPTERS
from glosmsd.server.db import DEFAULT_UPLOAD_MAX_AGE, DEFAULT_UPLOAD_QUOTA

log = logging.getLogger("glosmsd.server")

#: How long a thread may hold the GIL while another waits for it (Python's default is
#: 5 ms). The event loop gives the GIL up at every send and poll; with the read thread
#: building a 1 MB sync page, getting it back cost up to 5 ms each time, several times
#: per round trip. At 1 ms the soak's well-behaved sends had a p99 of 168 and 119 ms
#: against 213 and 232 ms at 5 ms (120 s runs, interleaved, on a loaded 2-core machine).
SWITCH_INTERVAL: Final = 0.001


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glosmsd-server",
        description="glosmsd reference SMS server (protocol: docs/protocol.md)",
    )
    p.add_argument("--version", action="version", version=f"glosmsd-server {__version__}")
    p.add_argument("--db", type=Path, required=True, help="SQLite database (created if missing)")
    p.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 8765),
        help="HOST:PORT to listen on (port 0 picks a free one); default 127.0.0.1:8765",
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve wss://")
    p.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    p.add_argument(
        "--carrier",
        choices=ADAPTERS,
        default="demo",
        help="carrier adapter for numbers not hosted here (default demo)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow plain ws:// on a non-loopback address"
    )
    p.add_argument(
        "--log-horizon",
        type=int,
        default=100_000,
        metavar="N",
        help="keep the newest N events; older cursors get a snapshot",
    )
    p.add_argument(
        "--ping-interval",
        type=float,
        default=20.0,
        metavar="S",
        help="websocket keepalive ping interval in seconds",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=conntable.DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections held at most (fewer if the descriptor limit leaves less room); "
        f"default {conntable.DEFAULT_MAX_CONNECTIONS}",
    )
    p.add_argument(
        "--max-per-peer",
        type=int,
        default=conntable.DEFAULT_MAX_PER_PEER,
        metavar="N",
        help="signed-in connections from one address at most; "
        f"default {conntable.DEFAULT_MAX_PER_PEER}",
    )
    p.add_argument(
        "--upload-quota",
        type=int,
        default=DEFAULT_UPLOAD_QUOTA,
        metavar="BYTES",
        help="bytes of uploads not yet sent in a message one extension may hold; "
        f"default {DEFAULT_UPLOAD_QUOTA}",
    )
    p.add_argument(
        "--upload-max-age",
        type=float,
        default=DEFAULT_UPLOAD_MAX_AGE,
        metavar="S",
        help="seconds an upload no message carries is kept before it is removed; "
        f"default {DEFAULT_UPLOAD_MAX_AGE:g} (a day)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    sub = p.add_subparsers(dest="command")
    admin.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "admin":
        return admin.run(args)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    host, port = args.listen
    if (args.tls_cert is None) != (args.tls_key is None):
        print("glosmsd-server: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tls_cert is None and not is_loopback(host) and not args.insecure:
        print(
            f"glosmsd-server: refusing plain ws:// on {host}: give --tls-cert/--tls-key, "
            "or --insecure if a proxy in front does TLS",
            file=sys.stderr,
        )
        return 2
    for flag, value in (
        ("--log-horizon", args.log_horizon),
        ("--max-connections", args.max_connections),
        ("--max-per-peer", args.max_per_peer),
        ("--upload-quota", args.upload_quota),
        ("--upload-max-age", args.upload_max_age),
    ):
        if value < 1:
            print(f"glosmsd-server: {flag} must be at least 1, not {value}", file=sys.stderr)
            return 2
    config = ServerConfig(
        db=args.db,
        host=host,
        port=port,
        carrier=args.carrier,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        log_horizon=args.log_horizon,
        ping_interval=args.ping_interval,
        max_connections=args.max_connections,
        max_per_peer=args.max_per_peer,
        upload_quota=args.upload_quota,
        upload_max_age=args.upload_max_age,
    )
    try:
        return asyncio.run(serve(config))
    except (GlosmsdError, OSError) as exc:
        print(f"glosmsd-server: {exc}", file=sys.stderr)
        return 1


async def serve(config: ServerConfig) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = App(config)
    try:
        url = await app.start()
        print(f"glosmsd-server listening on {url}", flush=True)
        await stop.wait()
        log.info("stopping")
    finally:
        await app.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
