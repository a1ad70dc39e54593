"""`glosmsd-server --db PATH admin ...`: manage the server's database from a shell.

Works while the server runs (the server notices commits from other processes and pushes
the resulting events). Each command is one short transaction through `ServerStore`; bad input
prints one clear line to stderr and exits 2. This module must never speak SQL or open a
socket.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from glosmsd.core.errors import GlosmsdError
from glosmsd.server.db import DEFAULT_CARRIER_REASON, CarrierMode, ServerStore

UNASSIGNED = (
    "Take an extension off an SMS number. From then on the extension sees nothing of that "
    "number: no new messages or states, none of its history in a sync or snapshot, none "
    "of its files, and it cannot send from it or mark it read. Its token stays valid: "
    "with no number left it may still sign in (hello lists no numbers), read the company "
    "directory and avatars, and keep its own read and deletion marks; `send` is refused "
    "with no-sms-number. Its open connections are closed (code 4002) so its devices sign "
    "in again and learn the change. Revoke its tokens (revoke-token --ext) to lock it out."
)
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


def add_parser(sub: Any) -> None:
    """Add the `admin` command and its subcommands to the main parser."""
    p = sub.add_parser("admin", help="manage extensions, numbers, contacts, settings")
    cmds = p.add_subparsers(dest="admin_command", required=True)

    c = cmds.add_parser("add-extension", help="add (or rename) an extension")
    c.add_argument("ext")
    c.add_argument("--name", required=True)
    c.add_argument("--avatar", type=Path, help="an image file")

    c = cmds.add_parser("assign-number", help="put an extension on an SMS number (shares it)")
    c.add_argument("ext")
    c.add_argument("number")

    c = cmds.add_parser(
        "unassign-number",
        help="take an extension off an SMS number",
        description=UNASSIGNED,
    )
    c.add_argument("ext")
    c.add_argument("number")

    c = cmds.add_parser("token", help="print a new login token for an extension")
    c.add_argument("ext")

    c = cmds.add_parser("tokens", help="list the valid login tokens (by id, never the token)")
    c.add_argument("ext", nargs="?", help="only this extension's")
    c.add_argument("--json", action="store_true")

    c = cmds.add_parser(
        "revoke-token",
        help="revoke a login token: refused at once, its open connections closed",
        description="Revoke a login token. New sign-ins with it are refused at once (HTTP "
        "401) and the server closes the connections signed in with it within about 100 ms "
        "(close code 4003); the device then asks its user for a new token. Name the token "
        "by its id from `admin tokens` (or an unambiguous prefix of at least 8 digits), by "
        "the token itself, or revoke every token of an extension with --ext.",
    )
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="a token id from `admin tokens`, or the token")
    which.add_argument("--ext", help="revoke every token of this extension")

    c = cmds.add_parser("add-contact", help="add a directory contact")
    c.add_argument("name")
    c.add_argument(
        "--number",
        action="append",
        default=[],
        metavar="LABEL=NUMBER",
        help="repeat for several numbers, e.g. mobile=+15557654321",
    )

    c = cmds.add_parser("inject", help="an inbound message, as if from the carrier")
    c.add_argument("--from", dest="sender", required=True)
    c.add_argument("--to", required=True)
    c.add_argument("--text", default="")
    c.add_argument("--file", type=Path, action="append", default=[])

    c = cmds.add_parser("messages", help="list the messages of a number")
    c.add_argument("--number", required=True)
    c.add_argument("--json", action="store_true")

    c = cmds.add_parser("settings", help="show or change the settings sent at hello")
    s = c.add_subparsers(dest="settings_command", required=True)
    s.add_parser("show")
    sset = s.add_parser("set")
    sset.add_argument("key")
    sset.add_argument("value", help="true/false, a number, a comma list (mms_types), or text")

    c = cmds.add_parser("carrier-mode", help="how the test carrier answers")
    c.add_argument("mode", choices=("accept", "fail", "delay"))
    c.add_argument("--reason", default=DEFAULT_CARRIER_REASON)
    c.add_argument("--seconds", type=float, default=0.0)

    cmds.add_parser(
        "seed-demo", help="demo extensions, numbers, contacts and history; prints the token of 1001"
    )


def parse_setting(current: Any, raw: str) -> Any:
    """Turn the command-line text into a value of the setting's type."""
    if isinstance(current, bool):
        low = raw.strip().lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if isinstance(current, list | tuple):
        text = raw.strip()
        if text.startswith("["):
            value = json.loads(text)
            if not isinstance(value, list):
                raise ValueError("expected a JSON list")
            return value
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw


def run(args: argparse.Namespace) -> int:
    try:
        store = ServerStore(args.db)
    except GlosmsdError as exc:
        print(f"glosmsd-server admin: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(store, args)
    except (GlosmsdError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, GlosmsdError) else str(exc)
        print(f"glosmsd-server admin: {message}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _dispatch(store: ServerStore, args: argparse.Namespace) -> int:
    cmd = args.admin_command
    if cmd == "add-extension":
        avatar = args.avatar.read_bytes() if args.avatar else None
        store.add_extension(args.ext, args.name, avatar)
        print(f"extension {args.ext} ({args.name.strip()})")
    elif cmd == "assign-number":
        sharers = store.assign_number(args.ext, args.number)
        note = f"; shared by {', '.join(sharers)}" if len(sharers) > 1 else ""
        print(f"extension {args.ext} is on {args.number}{note}")
    elif cmd == "unassign-number":
        store.unassign_number(args.ext, args.number)
        print(f"extension {args.ext} is no longer on {args.number}")
    elif cmd == "token":
        print(store.new_token(args.ext))
    elif cmd == "tokens":
        tokens = store.tokens(args.ext)
        if args.json:
            print(json.dumps([t.to_json() for t in tokens], ensure_ascii=False, indent=1))
        for t in tokens if not args.json else ():
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t.at))
            print(f"{t.id}  {t.ext:<12} {at} UTC  {t.name}")
    elif cmd == "revoke-token":
        gone = store.revoke_tokens(args.token or "", ext=args.ext)
        if not gone:
            print(f"extension {args.ext} had no tokens")
        for t in gone:
            print(f"revoked token {t.id} of extension {t.ext} ({t.name})")
    elif cmd == "add-contact":
        numbers = []
        for item in args.number:
            label, sep, number = item.rpartition("=")
            numbers.append((label if sep else "mobile", number))
        cid = store.add_contact(args.name, numbers)
        print(f"contact {cid} ({args.name.strip()})")
    elif cmd == "inject":
        files = [(f.read_bytes(), f.name) for f in args.file]
        msg = store.receive(args.sender, args.to, args.text, files)
        print(f"message {msg['id']} to {msg['number']} from {msg['remote']}")
    elif cmd == "messages":
        msgs = store.messages_of(args.number)
        if args.json:
            print(json.dumps(msgs, ensure_ascii=False, indent=1))
        else:
            for m in msgs:
                who = m["sender"]["ext"] if m["sender"] else m["remote"]
                print(
                    f"{m['id']:>6} {m['direction']:<3} {m['remote']:<16} {m['state']:<8} "
                    f"{who:<16} {m['text'][:60]}"
                )
    elif cmd == "settings":
        if args.settings_command == "set":
            current = store.settings()
            if args.key not in current:
                raise ValueError(f"unknown setting {args.key!r}; known: {', '.join(current)}")
            store.set_setting(args.key, parse_setting(current[args.key], args.value))
        for key, value in store.settings().items():
            print(f"{key} = {json.dumps(value)}")
    elif cmd == "carrier-mode":
        store.set_carrier_mode(CarrierMode(args.mode, args.reason, args.seconds))
        print(f"test carrier: {args.mode}")
    elif cmd == "seed-demo":
        from glosmsd.server.demo import seed

        print(seed(store))
    return 0
