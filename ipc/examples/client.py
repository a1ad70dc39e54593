#!/usr/bin/env python3
"""A glosmsd client in 20 lines of standard library: `client.py METHOD [JSON-PARAMS]`."""

import json
import os
import socket
import sys

run = os.environ.get("XDG_RUNTIME_DIR")
default = f"{run}/glosmsd/socket" if run else f"/tmp/glosmsd-{os.getuid()}/socket"  # noqa: S108
path = os.environ.get("GLOSMSD_SOCKET") or default
method = sys.argv[1] if len(sys.argv) > 1 else "status"
params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
with socket.socket(socket.AF_UNIX) as s:
    s.connect(path)
    s.sendall(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode() + b"\n"
    )
    reply = json.loads(s.makefile("rb").readline())
if "error" in reply:
    sys.exit(f"error {reply['error']['code']}: {reply['error']['message']}")
print(json.dumps(reply["result"], indent=2, ensure_ascii=False))
