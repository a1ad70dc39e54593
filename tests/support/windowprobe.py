"""Raw HTTP requests to the SMS window, standard library only, for its refusal tests.

Importable by the tests, and runnable as a script by plain `python3 -I` as another local
user (tests/support/otheruser.py), which cannot import glosmsd::

    python3 -I windowprobe.py PORT TOKEN SHA256 ORIGIN

prints a JSON object: what each request the other user tries gets back (status and body).
A raw socket, not http.client, so a test can send any Host header, several or none.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
from collections.abc import Sequence


def exchange(
    port: int, lines: Sequence[str], *, timeout: float = 10.0
) -> tuple[int, dict[str, list[str]], bytes]:
    """Send one request (its request line and header lines) and read the whole answer:
    (status, headers by lower-case name, body)."""
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            head, sep, _rest = b"".join(chunks).partition(b"\r\n\r\n")
            if sep and b" 101 " in head.split(b"\r\n", 1)[0]:
                break  # a WebSocket: the connection stays open
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status_line.split(" ")[1]), headers, body


def get(
    port: int, target: str, *headers: str, host: str | None = None, method: str = "GET"
) -> tuple[int, dict[str, list[str]], bytes]:
    h = f"127.0.0.1:{port}" if host is None else host
    lines = [
        f"{method} {target} HTTP/1.1",
        *([f"Host: {h}"] if h else []),
        *headers,
        "Connection: close",
    ]
    return exchange(port, lines)


def upgrade(
    port: int, *headers: str, host: str | None = None, target: str = "/rpc"
) -> tuple[int, dict[str, list[str]], bytes]:
    key = base64.b64encode(os.urandom(16)).decode()
    h = f"127.0.0.1:{port}" if host is None else host
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {h}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return exchange(port, lines)


def main(argv: Sequence[str]) -> int:
    port, token, sha, origin = int(argv[0]), argv[1], argv[2], argv[3]
    tried = {
        "page": get(port, "/"),
        "file": get(port, f"/files/{sha}"),
        "rpc": upgrade(port, f"Origin: {origin}"),
        "token": get(port, f"/?token={token}"),
    }
    out = {
        k: {"status": s, "body": b.decode("utf-8", "replace")} for k, (s, _h, b) in tried.items()
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
