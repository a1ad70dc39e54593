"""The socket of a real daemon (real server behind it): every method, replay, fuzz, abuse.

One world (server + Ann's daemon, see tests/support/ipcworld.py) serves the whole module; tests
that change things run last or touch only what they created. Every result and every
notification the tests receive must match its schema in the OpenRPC document
(tests/support/specdoc.py `Shapes`): the calls here go through `call`, `Raw` or `CheckedClient`,
which check each one as it arrives.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glosmsd.client.ipc import Client
from glosmsd.core import rpc
from glosmsd.core.errors import BadInput, NotFound, RpcError
from tests.support.ipcworld import ANN, BIG_FILE, BOB_MOBILE, CY, World, running_world
from tests.support.specdoc import shapes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("ipcd")) as w:
        yield w


def shaped(method: str, result: Any) -> Any:
    """`result`, after checking it has the shape the OpenRPC document gives `method`."""
    problems = shapes().result_problems(method, result)
    assert not problems, problems
    return result


def shaped_params(notification: str, params: Any) -> Any:
    problems = shapes().params_problems(notification, params)
    assert not problems, problems
    return params


class CheckedClient(Client):
    """The CLI's client, holding every result and event to its documented shape."""

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        return shaped(method, super().call(method, params, on_progress=on_progress))

    def events(self) -> Iterator[dict[str, Any]]:
        for ev in super().events():
            yield shaped_params("event", ev)


class Raw:
    """A raw socket: send lines, read lines, with a deadline. Notifications and the
    results of `call` are checked against their documented shapes."""

    def __init__(self, path: Path, timeout: float = 15.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> Any:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if isinstance(msg, dict) and "method" in msg and "id" not in msg:
            shaped_params(msg["method"], msg.get("params"))
        return msg

    def call(self, method: str, params: Any = None, rid: Any = 1) -> Any:
        self.send(rpc.encode(rpc.request(method, params, rid)))
        while True:
            msg = self.line()
            if isinstance(msg, dict) and msg.get("id") == rid and "method" not in msg:
                if "result" in msg:
                    shaped(method, msg["result"])
                return msg

    def close(self) -> None:
        self.sock.close()


def call(world: World, method: str, **params: Any) -> Any:
    return shaped(method, world.daemon.call(method, **params))


def error_of(world: World, method: str, params: Any) -> dict[str, Any]:
    raw = Raw(world.daemon.socket)
    try:
        reply = raw.call(method, params)
    finally:
        raw.close()
    assert "error" in reply, reply
    err: dict[str, Any] = reply["error"]
    return err


# --------------------------------------------------------------------------- every method


def test_hello_and_discover(world: World) -> None:
    hello = call(world, "hello", protocol=1, client="tests")
    assert hello["protocol"] == 1
    assert {"subscribe", "replay", "progress", "batch"} <= set(hello["capabilities"])
    assert hello["max_line"] == rpc.DEFAULT_MAX_LINE
    assert "send" in hello["methods"]
    # A newer client is answered with what we speak (additive changes only).
    assert call(world, "hello", protocol=99)["protocol"] == 1
    doc = call(world, "rpc.discover")
    checked_in = json.loads((Path(__file__).parents[2] / "ipc" / "openrpc.json").read_text())
    assert doc == checked_in


def test_status_and_number(world: World) -> None:
    st_ = call(world, "status")
    assert st_["number"] == ANN
    assert st_["link"]["online"] is True
    assert st_["extension"] == {"ext": "1001", "name": "Ann Lee"}
    assert [s["name"] for s in st_["shared_with"]] == ["Bo Diaz"]
    num = call(world, "number")
    assert (num["number"], num["shared"], num["message"]) == (ANN, True, None)


def test_conversations_messages_search_contacts(world: World) -> None:
    convs = call(world, "conversations")
    assert [c["remote"] for c in convs] == [BOB_MOBILE, CY]
    assert [c["unread"] for c in convs] == [2, 1]
    assert call(world, "conversations", limit=1, offset=1)[0]["remote"] == CY
    by_name = call(world, "messages", conversation="Bob Roe")
    by_id = call(world, "messages", conversation=by_name["conversation"]["id"])
    assert by_name == by_id
    texts = [m["text"] for m in by_name["messages"]]
    assert texts == ["Bo here: I will join you too", "Here is the list", "Hi Ann, lunch at noon?"]
    assert by_name["messages"][0]["sender"]["name"] == "Bo Diaz"
    assert by_name["messages"][1]["sender"] is None
    found = call(world, "search", query="lunch")
    assert [m["text"] for m in found["messages"]] == ["Hi Ann, lunch at noon?"]
    assert call(world, "search", query='"); DROP TABLE x; --') == {
        "contacts": [],
        "conversations": [],
        "messages": [],
    }
    contacts = call(world, "contacts", query="bob")
    assert [len(c["numbers"]) for c in contacts] == [2]
    assert call(world, "count", text="hi")["segments"] == 1
    assert call(world, "prefs_get") == {
        "notify": False,
        "sound": True,
        "sms_enabled": True,
        "hide_text": False,
        "auto_download": True,
    }
    assert call(world, "prefs_get", key="sound") is True


def test_emoji(world: World) -> None:
    assert call(world, "emoji_used", emoji=["🙂", "🎉"])[:2] == ["🎉", "🙂"]
    assert call(world, "emoji_recent", limit=1) == ["🎉"]


@pytest.mark.parametrize(
    ("method", "params", "code", "words"),
    [
        ("messages", {}, -32602, "conversation"),
        ("messages", {"conversation": 999}, -32009, "No conversation 999"),
        ("messages", {"conversation": "Nobody Here"}, -32009, "No conversation matches"),
        ("conversations", {"limit": 0}, -32602, "limit"),
        ("conversations", {"limit": "ten"}, -32602, "limit"),
        ("send", {"to": "x" * 201, "text": "hi"}, -32602, "to"),
        ("send", {"to": "+15557654321"}, -32010, "Nothing to send"),
        ("send", {"to": "Bob Roe", "text": "hi"}, -32010, "2 numbers"),
        ("send", {"to": "Bob Roe", "text": "hi", "pick": 3}, -32010, "pick 1 to 2"),
        ("send", {"to": "Zed Unknown", "text": "hi"}, -32009, "No contact named"),
        ("send", {"to": CY, "text": "hi", "files": ["/nonexistent/x.jpg"]}, -32010, "No such file"),
        ("send", {"to": CY, "text": "x" * 1001}, -32008, "1000"),
        ("send", {"to": CY, "files": ["data:image/png;base64,!!"]}, -32010, "not valid base64"),
        ("resend", {"id": 9999}, -32009, ""),
        ("resend", {"id": -1}, -32602, "id"),
        ("delete_message", {"id": 9999}, -32009, ""),
        ("delete_conversation", {"conversation": 999}, -32009, "No conversation"),
        ("mark_read", {"conversation": 999}, -32009, "No conversation"),
        ("search", {"query": 5}, -32602, "query"),
        ("contacts", {}, -32602, "query"),
        ("download", {"id": 1}, -32009, "has no files"),
        ("download", {"id": 9999}, -32009, "No message"),
        ("export", {"dir": "/nonexistent/folder"}, -32010, "not a folder"),
        ("prefs_get", {"key": "colour"}, -32010, "Unknown preference"),
        ("prefs_set", {"key": "colour", "value": 1}, -32010, "Unknown preference"),
        ("prefs_set", {"key": "notify", "value": "maybe"}, -32010, "takes bool"),
        ("prefs_set", {"key": "sms_enabled", "value": False}, -32011, "older than version 7"),
        ("emoji_used", {"emoji": "🙂"}, -32602, "emoji"),
        ("count", {"text": "hi", "files": -1}, -32602, "files"),
        ("hello", {"protocol": 0}, -32602, "protocol"),
        ("subscribe", {"since": -5}, -32602, "since"),
        ("nope", {}, -32601, "nope"),
        ("status", {"extra": 1}, -32602, "extra"),
        # issue 13 item 12: each of these was a -32603 "Internal error"
        ("delete_message", {"id": 1e20}, -32602, "param 'id'"),
        ("delete_message", {"id": 2**70}, -32602, "param 'id'"),
        ("resend", {"id": 2**63}, -32602, "param 'id'"),
        ("messages", {"conversation": 1.0}, -32602, "param 'conversation'"),
        ("messages", {"conversation": 2**64}, -32602, "param 'conversation'"),
        ("messages", {"conversation": "Bob Roe", "before": 1e19}, -32602, "param 'before'"),
        ("search", {"query": "lunch", "limit": 1.0}, -32602, "param 'limit'"),
        ("contacts", {"query": "bob", "limit": 1.0}, -32602, "param 'limit'"),
        ("conversations", {"offset": 2**63}, -32602, "param 'offset'"),
        ("emoji_used", {"emoji": ["\udc80"]}, -32602, "lone surrogate"),
        ("send", {"to": CY, "text": "hi", "client_id": "\udc80"}, -32602, "lone surrogate"),
        ("send", {"to": CY, "text": "a\ud800b"}, -32602, "param 'text'"),
        ("subscribe", {"since": 2**64}, -32602, "param 'since'"),
        ("count", {"text": "hi", "bytes": 1e300}, -32602, "param 'bytes'"),
    ],
)
def test_bad_params_get_exact_errors(
    world: World, method: str, params: dict[str, Any], code: int, words: str
) -> None:
    err = error_of(world, method, params)
    assert err["code"] == code, err
    assert words in err["message"]
    assert "Traceback" not in err["message"]


def inbound_with_a_big_file(world: World, tmp_path: Path) -> tuple[int, bytes]:
    """A new message from Cy with a file too big to download by itself (its id, the file's
    bytes). Each run gets its own name and bytes (a file the daemon has is not fetched
    again), so `--count` can repeat a test that downloads it."""
    name = f"scans-{tmp_path.name}.txt"
    data = BIG_FILE[:-8] + os.urandom(4).hex().encode()
    (tmp_path / name).write_bytes(data)
    world.server.admin("inject", "--from", CY, "--to", ANN, "--file", str(tmp_path / name))

    def arrived() -> int:
        for m in call(world, "messages", conversation=CY)["messages"]:
            if m["files"] and m["files"][0]["name"] == name:
                return int(m["id"])
        return 0  # ids start at 1

    return world.daemon.wait_until(arrived, 20, f"the message with {name}"), data


def test_download_reports_progress(world: World, tmp_path: Path) -> None:
    mid, data = inbound_with_a_big_file(world, tmp_path)
    raw = Raw(world.daemon.socket, timeout=30)
    try:
        raw.call("hello", {"progress": True})
        raw.send(rpc.encode(rpc.request("download", {"id": mid}, 7)))
        seen: list[tuple[int, int]] = []
        while True:
            msg = raw.line()
            if msg.get("method") == "progress":
                assert msg["params"]["id"] == 7
                seen.append((msg["params"]["done"], msg["params"]["total"]))
            elif msg.get("id") == 7:
                break
    finally:
        raw.close()
    shaped("download", msg["result"])
    assert msg["result"]["files"][0]["state"] == "done"
    assert Path(msg["result"]["files"][0]["path"]).read_bytes() == data
    assert len(seen) >= 3
    assert seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_send_idempotent_resend_and_state_events(world: World) -> None:
    with CheckedClient(world.daemon.socket) as c:
        sub = c.call("subscribe", {})
        assert sub["subscribed"] is True
        once = f"tests-once-{os.urandom(4).hex()}"  # new per run: `--count` repeats this
        first = c.call("send", {"to": CY, "text": "once", "client_id": once})["message"]
        again = c.call("send", {"to": CY, "text": "once", "client_id": once})["message"]
        assert first["id"] == again["id"]
        assert first["state"] == "sending"
        for ev in c.events():
            d = ev["data"]
            if ev["kind"] == "message_state" and (d["id"], d["state"]) == (first["id"], "sent"):
                break
    world.server.admin("carrier-mode", "fail", "--reason", "Carrier said no")
    try:
        with CheckedClient(world.daemon.socket) as c:
            c.call("subscribe", {})
            bad = c.call("send", {"to": CY, "text": "will fail"})["message"]
            for ev in c.events():
                d = ev["data"]
                if ev["kind"] == "message_state" and (d["id"], d["state"]) == (bad["id"], "failed"):
                    assert d["reason"] == "Carrier said no"
                    break
    finally:
        world.server.admin("carrier-mode", "accept")
    res = call(world, "resend", id=bad["id"])
    assert res["message"]["state"] == "sending"
    world.daemon.wait_until(
        lambda: call(world, "messages", conversation=CY)["messages"][0]["state"] == "sent",
        15,
        "the resent message to be sent",
    )
    with pytest.raises(BadInput):
        call(world, "resend", id=first["id"])  # not failed: nothing to resend


def test_gap_flag_for_an_id_from_elsewhere(world: World) -> None:
    res = call(world, "subscribe", since=10**9)
    assert res["gap"] is True
    assert res["replayed"] == 0


# --------------------------------------------------------------------------- replay


def test_reconnect_with_since_gets_exactly_what_a_live_subscriber_saw(world: World) -> None:
    with CheckedClient(world.daemon.socket) as c:
        last_seen = int(c.call("subscribe", {})["last_id"])
    live: list[dict[str, Any]] = []
    watcher = CheckedClient(world.daemon.socket, timeout=30).connect()
    watcher.call("subscribe", {})
    with world.server.store() as st_:
        for i in range(50):
            st_.receive(CY, ANN, f"burst {i}")
    # Each inbound message is a `message` and an `unread` event; the read mark ends it.
    marker_text = "burst 49"

    def saw_last(ev: dict[str, Any]) -> bool:
        return bool(ev["kind"] == "message" and ev["data"]["message"]["text"] == marker_text)

    for ev in watcher.events():
        live.append(ev)
        if saw_last(ev):
            break
    call(world, "mark_read", conversation=CY)
    for ev in watcher.events():
        live.append(ev)
        if ev["kind"] == "read":
            break
    watcher.close()
    assert len(live) >= 100
    replayed: list[dict[str, Any]] = []
    with CheckedClient(world.daemon.socket) as c:
        res = c.call("subscribe", {"since": last_seen})
        assert res["gap"] is False
        assert res["replayed"] >= len(live)
        for ev in c.events():
            replayed.append(ev)
            if ev["id"] == live[-1]["id"]:
                break
    assert replayed == live
    assert [e["id"] for e in replayed] == list(range(last_seen + 1, last_seen + 1 + len(live)))
    texts = [e["data"]["message"]["text"] for e in replayed if e["kind"] == "message"]
    assert texts == [f"burst {i}" for i in range(50)]


# --------------------------------------------------------------------------- abuse


SAFE_METHODS = (
    "hello",
    "status",
    "number",
    "conversations",
    "messages",
    "search",
    "contacts",
    "count",
    "prefs_get",
    "emoji_recent",
    "subscribe",
    "unsubscribe",
    "resend",
    "download",
    "rpc.discover",
    "no.such.method",
)
json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=30)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
request_obj = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2])},
    optional={
        "id": st.none() | st.integers() | st.text(max_size=10) | st.floats(allow_nan=False),
        "method": st.sampled_from(SAFE_METHODS) | st.text(max_size=10),
        "params": st.dictionaries(
            st.sampled_from(["conversation", "query", "text", "limit", "id", "since", "x"]),
            json_value,
            max_size=3,
        )
        | st.lists(json_value, max_size=3)
        | json_value,
    },
)
raw_line = (
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" "))
    | request_obj.map(lambda o: json.dumps(o).encode())
    | st.lists(request_obj, max_size=4).map(lambda o: json.dumps(o).encode())
    | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


def methods_by_id(lines: list[bytes]) -> dict[str, str]:
    """The method each request id in `lines` asked for, for ids used only once."""
    asked: dict[str, list[Any]] = {}
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        for item in obj if isinstance(obj, list) else [obj]:
            if isinstance(item, dict) and "id" in item:
                asked.setdefault(json.dumps(item["id"]), []).append(item.get("method"))
    return {rid: m[0] for rid, m in asked.items() if len(m) == 1 and isinstance(m[0], str)}


def valid_reply(obj: Any) -> bool:
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0" or "id" not in obj:
        return False
    if ("result" in obj) == ("error" in obj):
        return False
    if "error" in obj:
        err = obj["error"]
        return (
            isinstance(err, dict)
            and isinstance(err.get("code"), int)
            and isinstance(err.get("message"), str)
        )
    return True


@settings(max_examples=150)
@given(lines=st.lists(raw_line, min_size=1, max_size=3))
def test_fuzzed_lines_never_kill_the_daemon_and_replies_are_json_rpc(
    world: World, lines: list[bytes]
) -> None:
    raw = Raw(world.daemon.socket)
    asked = methods_by_id(lines)
    try:
        raw.send(b"\n".join(lines) + b'\n{"jsonrpc":"2.0","id":"end","method":"number"}\n')
        while True:
            msg = raw.line()
            if isinstance(msg, dict) and msg.get("method") in ("event", "progress"):
                continue
            # Whatever params got through, a result has its method's documented shape.
            for item in msg if isinstance(msg, list) else [msg]:
                method = asked.get(json.dumps(item.get("id"))) if isinstance(item, dict) else None
                if method is not None and "result" in item:
                    shaped(method, item["result"])
            if isinstance(msg, list):
                assert msg, "an empty batch reply must not be sent"
                assert all(valid_reply(m) for m in msg), msg
                continue
            assert valid_reply(msg), msg
            if msg.get("id") == "end":
                assert msg["result"]["number"] == ANN
                break
    finally:
        raw.close()


def test_client_that_never_reads_does_not_delay_others(world: World) -> None:
    stuck = socket.socket(socket.AF_UNIX)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(world.daemon.socket))
    stop = threading.Event()

    def flood() -> None:
        line = b'{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}\n' * 50
        try:
            while not stop.is_set():
                stuck.sendall(line)
        except OSError:
            pass  # dropped by the daemon, as it should be

    stuck.settimeout(5)
    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    answered = 0
    try:
        # Each call is bounded by the client's timeout (10 s would mean the stuck client
        # held the daemon up); how fast they come back is bench/soak.py's to measure.
        with CheckedClient(world.daemon.socket, timeout=10) as c:
            for _ in range(100):
                assert c.call("number")["number"] == ANN
                answered += 1
    finally:
        stop.set()
        flooder.join(10)
        stuck.close()
    assert answered == 100


def test_overlong_line_errors_keeps_the_connection_and_serves_new_ones(world: World) -> None:
    raw = Raw(world.daemon.socket)
    try:
        big = b'{"jsonrpc":"2.0","id":1,"method":"count","params":{"text":"' + b"a" * (1 << 20)
        raw.send(big + b'"}}\n')
        err = raw.line()
        assert err["id"] is None
        assert err["error"]["code"] == -32600
        assert err["error"]["data"] == {"limit": rpc.DEFAULT_MAX_LINE}
        assert raw.call("number", None, 2)["result"]["number"] == ANN
    finally:
        raw.close()
    assert call(world, "number")["number"] == ANN


def test_a_batch_and_notifications(world: World) -> None:
    raw = Raw(world.daemon.socket)
    try:
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "count", "params": {"text": "a"}},
            {"jsonrpc": "2.0", "method": "count", "params": {"text": "no reply"}},
            {"jsonrpc": "2.0", "id": 2, "method": "number"},
        ]
        raw.send(json.dumps(batch).encode() + b"\n")
        reply = raw.line()
        assert [r["id"] for r in reply] == [1, 2]
        shaped("count", reply[0]["result"])
        shaped("number", reply[1]["result"])
    finally:
        raw.close()


# --------------------------------------------------------------------------- another user


NOBODY_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
except BrokenPipeError:
    pass  # the daemon refused at once; its reason is already in our receive buffer
print(s.makefile().readline().strip())
"""


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", NOBODY_CLIENT, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as `nobody`")
@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser is not installed")
def test_another_uid_is_refused(world: World, tmp_path: Path) -> None:
    # nobody cannot traverse pytest's 0700 temp dirs: give the socket inode a second name
    # in an open directory, then try it with the file mode as set and opened up.
    door = Path(f"/tmp/glosmsd-door-{os.getpid()}")
    door.mkdir(mode=0o755)
    try:
        os.chmod(door, 0o755)
        link = door / "socket"
        os.link(world.daemon.socket, link)
        res = _as_nobody(str(link))
        assert res.stdout.strip() == "EACCES", res.stderr  # 0600: the file mode stops it
        os.chmod(link, 0o666)
        try:
            res = _as_nobody(str(link))
        finally:
            os.chmod(link, 0o600)
        assert res.returncode == 0, res.stderr
        reply = json.loads(res.stdout)  # SO_PEERCRED stops it
        assert reply["id"] is None
        assert reply["error"]["code"] == -32600
        assert "Permission denied" in reply["error"]["message"]
    finally:
        shutil.rmtree(door, ignore_errors=True)
    assert call(world, "number")["number"] == ANN


# --------------------------------------------------------------------------- changes (last)


def test_mark_read_delete_and_the_unread_count(world: World) -> None:
    # Bob writes again each run, so `--count` finds something unread every time.
    world.server.admin("inject", "--from", BOB_MOBILE, "--to", ANN, "--text", "still on?")
    world.daemon.wait_until(
        lambda: any(c["unread"] for c in call(world, "conversations") if c["remote"] == BOB_MOBILE),
        20,
        "Bob's new message",
    )
    assert call(world, "mark_read", conversation=BOB_MOBILE)["marked"] == 1
    res = call(world, "mark_read")
    assert res["unread"] == 0
    assert call(world, "status")["unread"] == 0
    msgs = call(world, "messages", conversation=BOB_MOBILE)["messages"]
    assert call(world, "delete_message", id=msgs[-1]["id"]) == {"deleted": msgs[-1]["id"]}
    with pytest.raises(NotFound):
        call(world, "delete_message", id=msgs[-1]["id"])
    conv = call(world, "messages", conversation=BOB_MOBILE)["conversation"]["id"]
    assert call(world, "delete_conversation", conversation=conv) == {"deleted": conv}


def test_prefs_set_round_trip(world: World) -> None:
    assert call(world, "prefs_set", key="notify", value="on")["notify"] is True
    assert call(world, "prefs_get", key="notify") is True


def test_export_writes_a_new_folder(world: World, tmp_path: Path) -> None:
    res = call(world, "export", dir=str(tmp_path))
    assert Path(res["folder"]) == tmp_path / "SMS"
    assert res["conversations"] >= 1
    assert (tmp_path / "SMS").is_dir()


def test_quit_over_the_socket(world: World) -> None:
    with pytest.raises(RpcError):
        call(world, "daemon.quit", now=True)
    assert call(world, "daemon.quit") == {"quitting": True}
    assert world.daemon.proc is not None
    assert world.daemon.proc.wait(15) == 0
    assert not world.daemon.socket.exists()
    world.daemon.spawn()  # the world stays usable for what runs after (`--count` repeats)
