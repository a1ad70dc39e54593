"""A daemon while its server is away, and when the server says no.

Real server and daemon processes: sends accepted offline survive a daemon restart and go
out once the server is back; read marks and deletions made offline reach the server; a
refusal becomes `failed` with the server's reason in words, and `resend` works.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glosmsd.core.errors import BadInput, NotFound
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"
CY = "+15557650000"
DEE = "+15557651111"


def server_messages(srv: ServerProcess, number: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(srv.admin("messages", "--number", number, "--json"))
    return result


def messages(d: DaemonProcess, conversation: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = d.call("messages", conversation=conversation)["messages"]
    return result


def message(d: DaemonProcess, local_id: int) -> dict[str, Any]:
    for conv in d.call("conversations"):
        for m in messages(d, conv["remote"]):
            if m["id"] == local_id:
                return m
    raise AssertionError(f"no message {local_id}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


def test_offline_work_survives_a_restart_and_reaches_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        st.receive(BOB, ANN, "bob 1")
        st.receive(BOB, ANN, "bob 2")
        st.receive(CY, ANN, "cy 1")
        st.receive(CY, ANN, "cy 2")
        st.receive(DEE, ANN, "dee 1")
    with DaemonProcess.start(tmp_path / "desk", server, token, "--ping-interval", "1") as desk:
        desk.wait_online()
        desk.wait_until(lambda: desk.call("status")["unread"] == 5, 20, "5 unread")

        server.stop()
        desk.wait_until(lambda: not desk.call("status")["link"]["online"], 10, "offline")
        status = desk.call("status")
        assert status["link"]["detail"]  # why it is offline, in words
        queued = desk.call("send", to=BOB, text="written offline", client_id="off-1")["message"]
        assert queued["state"] == "sending"
        desk.call("mark_read", conversation=BOB)
        cy_first = next(m for m in messages(desk, CY) if m["text"] == "cy 1")
        desk.call("delete_message", id=cy_first["id"])
        desk.call("delete_conversation", conversation=DEE)
        assert desk.call("status")["unread"] == 1
        # Dee writes again while we are offline: deleting what we had must not delete this.
        with server.store() as st:
            st.receive(DEE, ANN, "dee 2")

        # A crash while offline loses none of it.
        desk.kill()
        desk.spawn()
        assert message(desk, queued["id"])["state"] == "sending"
        assert desk.call("status")["unread"] == 1
        assert desk.call("status")["outbox"] == 1

        server.restart()
        desk.wait_online(20)
        desk.wait_until(
            lambda: message(desk, queued["id"])["state"] == "sent", 20, "the offline send"
        )
        assert [m["text"] for m in server_messages(server, ANN) if m["direction"] == "out"] == [
            "written offline"
        ]
        desk.wait_until(
            lambda: [m["text"] for m in messages(desk, DEE)] == ["dee 2"], 20, "Dee's new message"
        )
        assert desk.call("status")["unread"] == 2

    # A device that was never online before sees the offline read mark and deletion.
    with DaemonProcess.start(tmp_path / "laptop", server, token) as laptop:
        laptop.wait_online()

        def same() -> bool:
            texts = sorted(m["text"] for c in (BOB, CY, DEE) for m in messages(laptop, c))
            return texts == ["bob 1", "bob 2", "cy 2", "dee 2", "written offline"]

        laptop.wait_until(same, 20, "the laptop to see what the desk did offline")
        assert laptop.call("status")["unread"] == 2


def test_refusals_fail_with_the_reason_and_resend_works(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()

        # The carrier refuses: the server reports the state later, with its reason.
        server.admin("carrier-mode", "fail", "--reason", "Number blocked")
        sent = ann.call("send", to=BOB, text="to a blocked number")["message"]
        failed = ann.wait_until(
            lambda: (m := message(ann, sent["id"]))["state"] == "failed" and m,
            20,
            "the carrier's refusal",
        )
        assert failed["reason"] == "Number blocked"
        with pytest.raises(NotFound):
            ann.call("resend", id=sent["id"] + 1000)
        server.admin("carrier-mode", "accept")
        again = ann.call("resend", id=sent["id"])["message"]
        assert again["state"] == "sending"
        ann.wait_until(
            lambda: message(ann, again["id"])["state"] == "sent", 20, "the resend to go out"
        )
        with pytest.raises(BadInput, match="only a failed message"):
            ann.call("resend", id=again["id"])

        # The server itself refuses (MMS switched off after hello): failed at once.
        server.admin("settings", "set", "mms_enabled", "false")
        note = tmp_path / "note.txt"
        note.write_text("a file")
        mms = ann.call("send", to=BOB, text="with a file", files=[str(note)])["message"]
        refused = ann.wait_until(
            lambda: (m := message(ann, mms["id"]))["state"] == "failed" and m,
            20,
            "the server's refusal",
        )
        assert "MMS" in refused["reason"], refused
        assert refused["server_id"] is None
        server.admin("settings", "set", "mms_enabled", "true")
        resent = ann.call("resend", id=mms["id"])["message"]
        assert resent["id"] == mms["id"]  # never reached the server: the same row goes again
        ann.wait_until(
            lambda: message(ann, mms["id"])["state"] == "sent", 20, "the MMS resend to go out"
        )
        outs = [m for m in server_messages(server, ANN) if m["direction"] == "out"]
        assert sorted((m["text"], m["state"]) for m in outs) == [
            ("to a blocked number", "failed"),
            ("to a blocked number", "sent"),
            ("with a file", "sent"),
        ]


def test_a_failed_message_is_resent_once_however_often_resend_is_asked(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        server.admin("carrier-mode", "fail", "--reason", "Number blocked")
        sent = ann.call("send", to=BOB, text="only one copy")["message"]
        ann.wait_until(
            lambda: message(ann, sent["id"])["state"] == "failed", 20, "the carrier's refusal"
        )
        server.admin("carrier-mode", "accept")
        # Two resends in flight at once (the window and `glosms resend`, two windows).
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first, second = pool.map(
                lambda _i: ann.call("resend", id=sent["id"])["message"], range(2)
            )
        assert first["id"] != sent["id"]  # the server had it: a new copy
        assert (second["id"], second["client_id"]) == (first["id"], first["client_id"])
        ann.wait_until(
            lambda: message(ann, first["id"])["state"] == "sent", 20, "the copy to go out"
        )
        old = message(ann, sent["id"])
        assert (old["state"], old["resent_as"]) == ("failed", first["id"])
        assert message(ann, first["id"])["resent_as"] is None
        again = ann.call("resend", id=sent["id"])["message"]  # after it went out
        assert (again["id"], again["client_id"], again["state"]) == (
            first["id"],
            first["client_id"],
            "sent",
        )

        ann.restart()  # it is stored, not remembered
        ann.wait_online()
        after = ann.call("resend", id=sent["id"])["message"]
        assert (after["id"], after["client_id"]) == (first["id"], first["client_id"])
        assert message(ann, sent["id"])["resent_as"] == first["id"]
        outs = [m for m in server_messages(server, ANN) if m["text"] == "only one copy"]
        assert sorted(m["state"] for m in outs) == ["failed", "sent"]


def test_a_send_the_server_refused_goes_again_once(server: ServerProcess, tmp_path: Path) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with DaemonProcess.start(tmp_path / "ann", server, token) as ann:
        ann.wait_online()
        server.admin("settings", "set", "mms_enabled", "false")
        note = tmp_path / "note.txt"
        note.write_text("a file")
        mms = ann.call("send", to=BOB, text="one file, once", files=[str(note)])["message"]
        ann.wait_until(
            lambda: message(ann, mms["id"])["state"] == "failed", 20, "the server's refusal"
        )
        server.admin("settings", "set", "mms_enabled", "true")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first, second = pool.map(
                lambda _i: ann.call("resend", id=mms["id"])["message"], range(2)
            )
        assert first["id"] == mms["id"]  # never reached the server: the same row goes again
        assert first["client_id"] != mms["client_id"]
        assert (second["id"], second["client_id"]) == (first["id"], first["client_id"])
        ann.wait_until(lambda: message(ann, mms["id"])["state"] == "sent", 20, "the MMS to go out")
        ann.restart()
        ann.wait_online()
        again = ann.call("resend", id=mms["id"])["message"]
        assert (again["id"], again["client_id"], again["state"]) == (
            mms["id"],
            first["client_id"],
            "sent",
        )
        outs = [m for m in server_messages(server, ANN) if m["text"] == "one file, once"]
        assert [m["state"] for m in outs] == ["sent"]
