"""Tests for glosmsd/desktop/window/server.py against a real daemon and a real reference
server: the one-time URL, every refusal (no cookie, a spent token, a wrong Host, a
foreign Origin, another local user), the headers on every answer, files by id only, and
the WebSocket speaking the Unix socket's API.

One world (server + Ann's daemon, tests/support/ipcworld.py) serves the whole module.
Requests go out raw (tests/support/windowprobe.py) so any Host header can be sent.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.support import windowprobe
from tests.support.ipcworld import BOB_MOBILE, SMALL_FILE, World, running_world
from tests.support.otheruser import run_as_other

NOT_SIGNED_IN = "Not signed in. Open the SMS window with `glosms open` (or from the tray icon).\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("window")) as w:
        yield w


@dataclass
class Signed:
    port: int
    cookie: str  # name=value

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, target: str, *headers: str, **kw: Any) -> tuple[int, dict[str, list[str]], bytes]:
        return windowprobe.get(self.port, target, f"Cookie: {self.cookie}", *headers, **kw)

    def ws(self) -> ClientConnection:
        return connect(
            f"ws://127.0.0.1:{self.port}/rpc",
            origin=Origin(self.origin),
            additional_headers={"Cookie": self.cookie},
        )


def one_time(world: World, **params: Any) -> tuple[int, str]:
    """A fresh one-time URL: (port, its target `/?token=...`)."""
    url = world.daemon.call("window.open", launch=False, **params)["url"]
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port is not None
    return parts.port, f"{parts.path}?{parts.query}"


def sign_in(world: World) -> Signed:
    port, target = one_time(world)
    status, headers, _ = windowprobe.get(port, target)
    assert status == 303
    return Signed(port, headers["set-cookie"][0].split(";")[0])


@pytest.fixture(scope="module")
def signed(world: World) -> Signed:
    return sign_in(world)


def list_txt_sha(world: World) -> str:
    msgs = world.daemon.call("messages", conversation=BOB_MOBILE)["messages"]
    return str(next(f["sha256"] for m in msgs for f in m["files"] if f["name"] == "list.txt"))


def rpc(ws: ClientConnection, method: str, params: Any = None, id: int = 1) -> Any:
    ws.send(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}))
    while True:
        reply = json.loads(ws.recv(timeout=20))
        if reply.get("id") == id:
            return reply


# ---------------------------------------------------------------------------- signing in


def test_the_one_time_url_signs_in_once_and_redirects_to_a_url_without_it(world: World) -> None:
    url = world.daemon.call("window.open", conversation=BOB_MOBILE, launch=False)
    assert url["action"] == "none"
    conv = url["conversation_id"]
    assert url["url"].endswith(f"#/c/{conv}")
    port, target = one_time(world, conversation=conv)
    status, headers, body = windowprobe.get(port, target)
    assert status == 303
    assert headers["location"] == ["/"]  # the browser keeps the #/c/ID fragment
    cookie = headers["set-cookie"][0]
    name, _, rest = cookie.partition("=")
    value, *attrs = rest.split("; ")
    assert name == f"glosmsd_{port}"
    assert len(base64.urlsafe_b64decode(value + "=")) == 32  # 256 random bits
    assert attrs == ["Path=/", "HttpOnly", "SameSite=Strict"]
    assert b"token" not in body
    # Spent: the same link again is refused, with what to do.
    again, _, body = windowprobe.get(port, target)
    assert again == 401
    assert b"used already" in body
    assert b"glosms open" in body
    # The cookie opens the page.
    page, headers, body = windowprobe.get(port, "/", f"Cookie: {name}={value}")
    assert page == 200
    assert headers["content-type"] == ["text/html; charset=utf-8"]
    assert body.startswith(b"<!doctype html>")


def test_each_daemon_start_has_its_own_secret_and_every_window_shares_it(world: World) -> None:
    a, b = sign_in(world), sign_in(world)
    assert a.cookie == b.cookie
    assert a.get("/")[0] == 200


def test_a_made_up_token_signs_nobody_in(signed: Signed) -> None:
    for target in ("/?token=", "/?token=AAAA", "/?token=" + "A" * 43, "/?x=1&token=%00"):
        status, headers, body = windowprobe.get(signed.port, target)
        assert status == 401, target
        assert "set-cookie" not in headers
        assert b"used already" in body


# ---------------------------------------------------------------------------- refusals


def test_without_the_cookie_pages_files_and_the_websocket_are_401_with_no_data(
    world: World, signed: Signed
) -> None:
    port, sha = signed.port, list_txt_sha(world)
    for target in ("/", "/index.html", "/static/index.html", f"/files/{sha}", "/nope"):
        status, headers, body = windowprobe.get(port, target)
        assert (status, body.decode()) == (401, NOT_SIGNED_IN), target
        assert headers["content-type"] == ["text/plain; charset=utf-8"]
    bad = windowprobe.get(port, f"/files/{sha}", f"Cookie: glosmsd_{port}=forged")
    assert bad[0] == 401
    assert SMALL_FILE not in bad[2]
    status, _h, body = windowprobe.upgrade(port, f"Origin: {signed.origin}")
    assert (status, body.decode()) == (401, NOT_SIGNED_IN)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{port}/rpc", origin=Origin(signed.origin))
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1:1", "127.0.0.1", "", "0.0.0.0:{port}"],
)
def test_a_host_that_is_not_this_server_is_421(signed: Signed, host: str) -> None:
    h = host.format(port=signed.port)
    for target in ("/", "/rpc", "/?token=x"):
        status, _headers, body = signed.get(target, host=h)
        assert status == 421, (host, target)
        assert body.startswith(b"This server answers only to 127.0.0.1:")
    status, _h, _b = windowprobe.upgrade(
        signed.port, f"Cookie: {signed.cookie}", f"Origin: {signed.origin}", host=h
    )
    assert status == 421


def test_localhost_is_this_server_too(signed: Signed) -> None:
    assert signed.get("/", host=f"localhost:{signed.port}")[0] == 200


@pytest.mark.parametrize(
    "origin",
    [None, "null", "http://evil.example", "http://127.0.0.1:1", "https://127.0.0.1:{port}"],
)
def test_the_upgrade_from_another_origin_is_403(signed: Signed, origin: str | None) -> None:
    headers = [f"Cookie: {signed.cookie}"]
    if origin is not None:
        headers.append(f"Origin: {origin.format(port=signed.port)}")
    status, _h, body = windowprobe.upgrade(signed.port, *headers)
    assert status == 403
    assert body == b"The WebSocket is only for the page this server serves.\n"


def test_requests_a_browser_marks_as_from_another_site_are_403(signed: Signed) -> None:
    for site in ("same-site", "cross-site"):
        status, _h, _b = signed.get("/", f"Sec-Fetch-Site: {site}")
        assert status == 403
    assert signed.get("/", "Sec-Fetch-Site: same-origin")[0] == 200


def test_only_get_and_head(signed: Signed) -> None:
    status, headers, _ = signed.get("/", method="DELETE")
    assert status == 405
    assert headers["allow"] == ["GET, HEAD"]
    status, headers, body = signed.get("/", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["content-length"][0]) > 0


def test_another_local_user_with_the_port_and_even_a_token_gets_nothing(
    world: World, signed: Signed
) -> None:
    port, target = one_time(world)
    token = target.removeprefix("/?token=")
    sha = list_txt_sha(world)
    probe = Path(windowprobe.__file__)
    done = run_as_other(
        ["/usr/bin/python3", "-I", str(probe), str(port), token, sha, signed.origin]
    )
    assert done.returncode == 0, done.stderr
    tried = json.loads(done.stdout)
    for what in ("page", "file", "rpc", "token"):
        assert tried[what] == {
            "status": 403,
            "body": "This SMS window belongs to another user.\n",
        }, what
    # The refused try did not spend the token: its owner can still use it.
    assert windowprobe.get(port, target)[0] == 303
    assert "another user's connection" in world.daemon.log()


def test_garbage_gets_an_error_and_the_window_keeps_serving(world: World, signed: Signed) -> None:
    host = f"Host: 127.0.0.1:{signed.port}"
    for lines in (
        ["NOT HTTP AT ALL"],
        ["GET / HTTP/9.9", host],
        ["GET /" + "a" * 70000 + " HTTP/1.1", host],
        ["POST / HTTP/1.1", host, "Content-Length: 5"],
        ["GET / HTTP/1.1", host, "Transfer-Encoding: chunked"],
        ["GET /\xff HTTP/1.1", host, "X: " + "y" * 100000],
    ):
        try:
            status, _h, _b = windowprobe.exchange(signed.port, lines, timeout=10)
        except (OSError, ValueError, IndexError):
            continue  # closed without an answer: also a refusal
        assert 400 <= status < 500, lines[0][:40]
    assert signed.get("/")[0] == 200
    assert "Traceback" not in world.daemon.log()


# ---------------------------------------------------------------------------- headers


def test_every_answer_carries_the_csp_and_nosniff_and_never_a_cors_header(
    world: World, signed: Signed
) -> None:
    port = signed.port
    _p, target = one_time(world)
    answers = [
        windowprobe.get(port, target, "Origin: http://evil.example"),  # 303
        signed.get("/", "Origin: http://evil.example"),  # 200
        signed.get("/nope"),  # 404
        windowprobe.get(port, "/"),  # 401
        signed.get("/", host="evil.example"),  # 421
        windowprobe.upgrade(port, f"Cookie: {signed.cookie}", "Origin: http://evil.example"),
        # websockets' own refusal: the right cookie and Origin, but no Upgrade header.
        signed.get("/rpc", f"Origin: {signed.origin}"),
        signed.get(f"/files/{list_txt_sha(world)}"),
    ]
    statuses = [a[0] for a in answers]
    assert statuses == [303, 200, 404, 401, 421, 403, 426, 200]
    for status, headers, _ in answers:
        assert headers["x-content-type-options"] == ["nosniff"], status
        assert headers["content-security-policy"][0].startswith(
            "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
            "frame-ancestors 'none'"
        ), status
        assert headers["cross-origin-resource-policy"] == ["same-origin"], status
        assert headers["referrer-policy"] == ["no-referrer"], status
        assert not [h for h in headers if h.startswith("access-control-")], status
        assert "server" not in headers


def test_assets_revalidate_by_etag(signed: Signed) -> None:
    status, headers, body = signed.get("/static/index.html")
    assert status == 200
    etag = headers["etag"][0]
    assert headers["cache-control"] == ["no-cache"]
    again, headers, body = signed.get("/", f"If-None-Match: {etag}")
    assert (again, body) == (304, b"")


# ---------------------------------------------------------------------------- files


def test_a_downloaded_file_is_served_by_its_sha256_with_its_safe_name(
    world: World, signed: Signed
) -> None:
    status, headers, body = signed.get(f"/files/{list_txt_sha(world)}")
    assert status == 200
    assert body == SMALL_FILE
    assert headers["content-type"] == ["text/plain; charset=utf-8"]
    assert headers["content-disposition"] == [
        "inline; filename=\"list.txt\"; filename*=UTF-8''list.txt"
    ]
    assert headers["content-security-policy"][0].endswith("; sandbox")
    assert headers["cache-control"] == ["private, max-age=31536000, immutable"]


def test_files_come_only_by_id_from_the_files_dir(world: World, signed: Signed) -> None:
    scans = next(
        f
        for c in world.daemon.call("conversations")
        for m in world.daemon.call("messages", conversation=c["id"])["messages"]
        for f in m["files"]
        if f["name"] == "scans.txt"
    )
    assert scans["state"] == "none"  # over 500 KB: not downloaded by itself
    assert signed.get(f"/files/{scans['sha256']}") == (
        404,
        signed.get(f"/files/{scans['sha256']}")[1],
        b"This file is not downloaded yet.\n",
    )
    for target in (
        "/files/" + "0" * 64,
        "/files/../../../../etc/passwd",
        "/files/%2e%2e%2fetc%2fpasswd",
        "/files/" + list_txt_sha(world).upper(),
        "/static/../server.py",
        "/static/../../daemon/store.py",
        "/static/" + str(Path("/etc/passwd")),
    ):
        status, _h, body = signed.get(target)
        assert status == 404, target
        assert b"root:" not in body


def test_a_file_of_a_dangerous_type_is_a_download_never_a_page(
    world: World, signed: Signed
) -> None:
    html = b"<!doctype html><script>alert(document.cookie)</script>"
    with world.server.store() as st:
        st.receive(BOB_MOBILE, "+15550001001", "a page", [(html, "invoice.html")])

    def downloaded() -> str | None:
        for m in world.daemon.call("messages", conversation=BOB_MOBILE, limit=5)["messages"]:
            for f in m["files"]:
                # Our server names it invoice.txt by its content; a server that is not
                # ours may not, so what is served must be safe whatever the name says.
                if m["text"] == "a page" and f["state"] == "done":
                    return str(f["sha256"])
        return None

    sha = world.daemon.wait_until(downloaded, 20, "the html file to download")
    status, headers, body = signed.get(f"/files/{sha}")
    assert status == 200
    assert body == html
    # Text by its content, but never HTML: no script of a stranger runs on this origin.
    assert headers["content-type"][0] in ("text/plain; charset=utf-8", "application/octet-stream")
    assert headers["content-security-policy"][0].endswith("; sandbox")


# ---------------------------------------------------------------------------- the WebSocket


def test_the_websocket_answers_exactly_as_the_socket_does(world: World, signed: Signed) -> None:
    calls = [
        '{"jsonrpc":"2.0","id":1,"method":"status"}',
        '{"jsonrpc":"2.0","id":2,"method":"conversations","params":{"limit":10}}',
        '{"jsonrpc":"2.0","id":3,"method":"count","params":{"text":"Hello 🙂"}}',
        '{"jsonrpc":"2.0","id":4,"method":"nope"}',
        '{"jsonrpc":"2.0","id":5,"method":"messages","params":{"conversation":"Nobody"}}',
        '{"jsonrpc":"2.0","id":6,"method":"conversations","params":{"limit":0}}',
        "{not json",
        '[{"jsonrpc":"2.0","id":7,"method":"count","params":{"text":"a"}},'
        '{"jsonrpc":"2.0","method":"count","params":{"text":"no reply"}}]',
        '{"jsonrpc":"2.0","id":8,"method":"rpc.discover"}',
        '{"jsonrpc":"2.0","id":9,"method":"drafts"}',
    ]

    def over_ws() -> list[Any]:
        with signed.ws() as ws:
            out = []
            for call in calls:
                ws.send(call)
                out.append(json.loads(ws.recv(timeout=20)))
        return out

    def over_socket() -> list[Any]:
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(20)
            unix.connect(str(world.daemon.socket))
            out = []
            with unix.makefile("rb") as reader:
                for call in calls:
                    unix.sendall(call.encode() + b"\n")
                    out.append(json.loads(reader.readline()))
        return out

    def without_link(replies: list[Any]) -> list[Any]:
        for reply in replies:
            if isinstance(reply, dict) and reply.get("id") == 1:  # status: its link line ticks
                reply["result"].pop("link")
        return replies

    # Exactly alike once nothing else is arriving: a message of an earlier test (or of
    # this one's earlier run, under --count) may land between the two rounds and change
    # the unread count and the list; the rounds are then asked again.
    for _ in range(10):
        ws_replies, socket_replies = without_link(over_ws()), without_link(over_socket())
        if ws_replies == socket_replies:
            break
        time.sleep(0.3)
    for a, b in zip(ws_replies, socket_replies, strict=True):
        assert a == b


def test_hello_over_the_websocket_names_its_frame_limit(signed: Signed) -> None:
    with signed.ws() as ws:
        hello = rpc(ws, "hello", {"client": "test"})["result"]
    assert hello["max_line"] == 64 * 1024 * 1024
    assert "window.open" in hello["methods"]
    assert "draft_set" in hello["methods"]


def test_a_binary_frame_gets_an_error_and_the_connection_stays(signed: Signed) -> None:
    with signed.ws() as ws:
        ws.send(b'{"jsonrpc":"2.0","id":1,"method":"status"}')
        reply = json.loads(ws.recv(timeout=20))
        assert reply["error"]["code"] == -32600
        assert "text frames" in reply["error"]["message"]
        assert reply["id"] is None
        assert "result" in rpc(ws, "count", {"text": "still here"}, id=2)


def test_events_arrive_over_the_websocket_with_replay(world: World, signed: Signed) -> None:
    with signed.ws() as ws:
        sub = rpc(ws, "subscribe")["result"]
        assert sub["subscribed"] is True
        world.daemon.call("mark_read")
        world.daemon.call("mark_unread", conversation=BOB_MOBILE)
        kinds: list[str] = []
        while "unread" not in kinds or kinds.count("read") < 1:
            note = json.loads(ws.recv(timeout=20))
            assert note["method"] == "event"
            kinds.append(note["params"]["kind"])
        last = note["params"]["id"]
    with signed.ws() as ws:
        replay = rpc(ws, "subscribe", {"since": sub["last_id"]})["result"]
        assert replay["replayed"] >= 2
        seen = [json.loads(ws.recv(timeout=20))["params"]["id"] for _ in range(replay["replayed"])]
        assert seen == sorted(seen)
        assert seen[-1] >= last


def test_a_slow_call_does_not_hold_up_the_counter(signed: Signed) -> None:
    photo = io.BytesIO()
    Image.effect_noise((3000, 2000), 80).convert("RGB").save(photo, "PNG")
    uri = "data:image/png;name=noise.png;base64," + base64.b64encode(photo.getvalue()).decode()
    with signed.ws() as ws:
        send = {"to": BOB_MOBILE, "text": "noise", "files": [uri]}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": "send", "method": "send", "params": send}))
        count = {"text": "typing on"}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": "count", "method": "count", "params": count}))
        order: list[str] = []
        while len(order) < 2:
            reply = json.loads(ws.recv(timeout=60))
            if "id" in reply:
                order.append(reply["id"])
                assert "result" in reply, reply
    assert order == ["count", "send"]


def test_the_page_is_told_to_show_what_window_open_asks_for(world: World, signed: Signed) -> None:
    with signed.ws() as ws:
        rpc(ws, "hello")
        opened = world.daemon.call("window.open", conversation=BOB_MOBILE)
        assert opened["action"] == "focus"
        note = json.loads(ws.recv(timeout=20))
        assert note == {
            "jsonrpc": "2.0",
            "method": "window.show",
            "params": {"conversation": opened["conversation_id"]},
        }
        world.daemon.call("window.open")
        assert json.loads(ws.recv(timeout=20))["params"] == {"conversation": None}


def test_with_no_page_open_window_open_says_launch_then_focus_while_it_starts(
    tmp_path: Path,
) -> None:
    # A world of its own: in the module's, an earlier open (of a test before, or of this
    # one under --count) leaves a window "starting" for LAUNCH_GRACE, and opens focus.
    with running_world(tmp_path) as world:
        _launch_then_focus(world)


def _launch_then_focus(world: World) -> None:
    first = world.daemon.call("window.open")
    assert first["action"] == "launch"
    assert first["profile"].endswith("/window")
    assert first["command"] is None
    # A second open while that window starts must not start another.
    assert world.daemon.call("window.open", conversation=1)["action"] == "focus"


def test_many_pages_at_once(signed: Signed) -> None:
    errors: list[BaseException] = []

    def page(n: int) -> None:
        try:
            with signed.ws() as ws:
                for i in range(20):
                    assert rpc(ws, "count", {"text": f"{n}-{i}"}, id=i)["result"]["fits"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=page, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
