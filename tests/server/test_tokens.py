"""Tokens and unassigned extensions (issue 13 item 15), through the real admin CLI against
the database of a real server process on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from glosmsd.core.errors import NoSmsNumber, NotFound
from tests.support.serverproc import Client, ServerProcess, running_server

ANN, BOB = "+15550001001", "+15557654321"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        srv.admin("add-extension", "1001", "--name", "Ann Lee")
        srv.admin("assign-number", "1001", ANN)
        yield srv


def tokens(server: ServerProcess, *args: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(server.admin("tokens", *args, "--json"))
    return listed


async def test_tokens_lists_ids_never_the_tokens(server: ServerProcess) -> None:
    first = server.admin("token", "1001").strip()
    second = server.admin("token", "1001").strip()
    listed = tokens(server)
    assert [t["ext"] for t in listed] == ["1001", "1001"]
    assert all(len(str(t["id"])) == 16 for t in listed)
    text = server.admin("tokens", "1001")
    assert first not in text
    assert second not in text
    assert "Ann Lee" in text
    assert len(text.splitlines()) == 2
    res = server.admin_run("tokens", "9999")
    assert res.returncode == 2
    assert "No extension '9999'" in res.stderr


async def test_a_revoked_token_is_refused_at_once_and_its_connection_closed(
    server: ServerProcess,
) -> None:
    token = server.admin("token", "1001").strip()
    other = server.admin("token", "1001").strip()
    async with (
        await Client.connect(server.url, token, device="phone") as phone,
        await Client.connect(server.url, other, device="laptop") as laptop,
    ):
        await phone.sync_live()
        await laptop.sync_live()
        ids = [str(t["id"]) for t in tokens(server)]
        mine = ids[0]  # oldest first: the phone's
        out = server.admin("revoke-token", mine[:10])
        assert out.strip() == f"revoked token {mine} of extension 1001 (Ann Lee)"
        assert await phone.closed() == 4003
        assert phone.ws.close_reason == "the token was revoked: ask for a new one"
        with pytest.raises(InvalidStatus) as info:
            await Client.connect(server.url, token)
        assert info.value.response.status_code == 401
        # The other token, and its connection, are untouched.
        assert await laptop.call("contacts", query="") == []
        assert [str(t["id"]) for t in tokens(server)] == [i for i in ids if i != mine]


async def test_revoke_by_the_token_itself_or_every_token_of_an_extension(
    server: ServerProcess,
) -> None:
    token = server.admin("token", "1001").strip()
    server.admin("token", "1001")
    server.admin("token", "1001")
    assert "revoked token" in server.admin("revoke-token", token)
    assert len(tokens(server)) == 2
    out = server.admin("revoke-token", "--ext", "1001")
    assert len(out.splitlines()) == 2
    assert tokens(server) == []
    assert server.admin("revoke-token", "--ext", "1001").strip() == "extension 1001 had no tokens"


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("abc", "give a token id from `admin tokens` (at least 8 hex digits)"),
        ("0123456789abcdef", "No token with id '0123456789abcdef': see `admin tokens`."),
    ],
)
def test_revoking_what_is_not_a_token_says_what_to_give(
    server: ServerProcess, arg: str, says: str
) -> None:
    server.admin("token", "1001")
    res = server.admin_run("revoke-token", arg)
    assert res.returncode == 2
    assert says in res.stderr
    assert len(tokens(server)) == 1


async def test_an_extension_taken_off_its_number_signs_in_but_sees_and_sends_nothing_of_it(
    server: ServerProcess,
) -> None:
    token = server.admin("token", "1001").strip()
    server.admin("add-extension", "1002", "--name", "Bo Diaz")
    server.admin("assign-number", "1002", ANN)  # the number stays hosted, by Bo
    server.admin("inject", "--from", BOB, "--to", ANN, "--text", "before")
    async with await Client.connect(server.url, token) as ann:
        events = await ann.sync_live(0)
        assert [e["message"]["text"] for e in events] == ["before"]
        server.admin("unassign-number", "1001", ANN)
        assert await ann.closed() == 4002
        assert ann.ws.close_reason == "your SMS numbers changed: connect again"
    async with await Client.connect(server.url, token) as ann:
        assert ann.hello["numbers"] == []
        # None of the number's history, nor what comes after.
        server.admin("inject", "--from", BOB, "--to", ANN, "--text", "after")
        assert await ann.sync_live(0) == []
        with pytest.raises(NoSmsNumber, match="No SMS number assigned"):
            await ann.call("send", client_id="c1", to=BOB, text="hi")
        with pytest.raises(NotFound):
            await ann.call("read", number=ANN, remote=BOB, up_to=1)
        # The directory stays open to it.
        assert await ann.call("contacts", query="") == []
    help_text = server.admin("unassign-number", "--help")
    assert "Its token stays valid" in " ".join(help_text.split())
