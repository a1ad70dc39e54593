"""Whether a host name or address stays on this machine: the one loopback check.

The daemon lets `ws://` (no TLS) go only to a loopback server, the reference server
listens without TLS only on loopback, and the tests and the demo use nothing else. All of
them ask `is_loopback`, so "localhost", `127.0.0.0/8`, `::1`, a bracketed `[::1]` and an
IPv4-mapped `::ffff:127.0.0.1` are judged alike everywhere.

Pure: it never resolves a name (what "localhost" resolves to is the system's business, and
a lookup could be steered); only the literal name `localhost` counts as a name.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback address literals (IPv4, IPv6, bracketed, mapped)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower().rstrip(".") == "localhost":
        return True
    # A zone index (`::1%lo`) names an interface, not another machine.
    text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
