"""A real daemon against a server that is not ours, sending events no store can take.

Issue 13 item 11: a file name with a lone surrogate ("\\udc80") made the store's write fail
(UnicodeEncodeError) and the daemon reconnected forever, storing nothing after it. Here a
scripted server on 127.0.0.1 (in a thread of the test process) sends such events among
good ones, in a sync page and live; the daemon must clean what it can, skip what it
cannot, count it in its status, and never reconnect for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from tests.support.daemonproc import DaemonProcess

ANN = "+15550001001"
BOB = "+15557654321"
SHA = "ab" * 32
WAIT = 30.0


def message(mid: int, text: str, **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": mid,
        "client_id": None,
        "number": ANN,
        "remote": BOB,
        "direction": "in",
        "text": text,
        "state": "sent",
        "reason": None,
        "at": 1_764_050_000.0 + mid,
        "files": [],
        "sender": None,
    }
    return {**msg, **extra}


def event(seq: int, msg: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "kind": "message", "at": 1_764_050_000.0, "message": msg}


# ensure_ascii (json's default) writes a lone surrogate as the escape "\udc80": valid
# JSON text that decodes to a Python str no UTF-8 database can store.
SYNCED = [
    event(1, message(1, "one", files=[{"sha256": SHA, "name": "\udc80evil.png", "size": 9}])),
    event(2, message(2**70, "an id past what SQLite holds")),
    event(3, message(3, "three \udcff")),
]
LIVE = [
    {"seq": 4, "kind": "message_state", "id": 3, "state": "exploded", "reason": None},
    event(5, message(5, "after the poison")),
]


@dataclass
class HostileServer:
    """Answers hello and one sync as scripted, then pushes `LIVE`; counts connections."""

    url: str = ""
    connections: int = 0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        async for frame in ws:
            req = json.loads(frame)
            if req.get("method") == "hello":
                result: Any = {
                    "protocol": 1,
                    "server": "not-ours/1",
                    "extension": {"ext": "1001", "name": "Ann Lee", "avatar": None},
                    "numbers": [{"number": ANN, "shared_with": []}],
                    "settings": {},
                }
            elif req.get("method") == "sync" and req["params"]["cursor"] < 3:
                result = {"events": SYNCED, "cursor": 3, "more": False, "reset": False}
            elif req.get("method") == "sync":
                result = {"events": [], "cursor": req["params"]["cursor"], "more": False}
            else:
                result = []
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            if req.get("method") == "sync":
                for ev in LIVE:
                    if ev["seq"] > req["params"]["cursor"]:
                        await ws.send(
                            json.dumps({"jsonrpc": "2.0", "method": "event", "params": ev})
                        )

    def run(self, ready: threading.Event, stop: asyncio.Event) -> None:
        async def main() -> None:
            async with serve(self.handle, "127.0.0.1", 0, compression=None) as srv:
                self.url = f"ws://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/v1"
                ready.set()
                await stop.wait()

        self.loop.run_until_complete(main())


@contextlib.contextmanager
def hostile_server() -> Iterator[HostileServer]:
    srv = HostileServer()
    ready = threading.Event()
    stop = asyncio.Event()
    thread = threading.Thread(target=srv.run, args=(ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield srv
    finally:
        srv.loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        srv.loop.close()


def texts(d: DaemonProcess) -> list[str]:
    """The conversation's texts, oldest first (`messages` lists the newest first)."""
    try:
        return [m["text"] for m in d.call("messages", conversation=BOB)["messages"]][::-1]
    except Exception:  # no conversation yet
        return []


def test_poison_events_are_cleaned_or_skipped_never_retried(tmp_path: Path) -> None:
    with hostile_server() as srv, DaemonProcess.start(tmp_path / "ann", srv, "t") as ann:  # type: ignore[arg-type]
        ann.wait_until(
            lambda: texts(ann) == ["one", "three \ufffd", "after the poison"],
            WAIT,
            "the good messages, cleaned",
        )
        msgs = ann.call("messages", conversation=BOB)["messages"]
        assert msgs[-1]["files"][0]["name"] == "evil.png"
        status = ann.wait_until(
            lambda: (s := ann.call("status"))["link"]["skipped"] == 2 and s,
            WAIT,
            "both poison events counted",
        )
        assert status["link"]["online"]
        assert "exploded" in status["link"]["last_skipped"]
        assert srv.connections == 1, ann.log()
        # The poison is behind the stored cursor for good: a restart does not meet it.
        ann.restart()
        ann.wait_online()
        assert ann.call("status")["link"]["skipped"] == 0
        assert texts(ann) == ["one", "three \ufffd", "after the poison"]
    assert "UnicodeEncodeError" not in ann.log()
