"""The one loopback check: names and literals that stay on this machine, and those that don't."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core.loopback import is_loopback


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "[::1]",
        "::1%lo",
        "::ffff:127.0.0.1",  # IPv4-mapped: Python 3.11's is_loopback says False
        "[::ffff:127.0.0.2]",
        " 127.0.0.1 ",
    ],
)
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "example.com",
        "localhost.example.com",
        "mylocalhost",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "::ffff:10.0.0.1",
        "128.0.0.1",
        "[::2]",
        "127.0.0.1.nip.io",
    ],
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@given(st.ip_addresses())
def test_agrees_with_ipaddress_for_every_address(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    mapped = getattr(address, "ipv4_mapped", None)
    expected = mapped.is_loopback if mapped is not None else address.is_loopback
    assert is_loopback(str(address)) == expected
    if isinstance(address, ipaddress.IPv6Address):
        assert is_loopback(f"[{address}]") == expected
