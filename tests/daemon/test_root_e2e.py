"""Real daemons against a real server process: two extensions, two devices, files.

Ann (1001, +15550001001) and Dan (1003, +15550001003) each run their own daemon; a second
daemon with Ann's token but another device id is "Ann's laptop". Everything goes through
the daemons' sockets, exactly as the CLI and the tray use them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from glosmsd.core.errors import NotFound
from tests.support.daemonproc import DaemonProcess
from tests.support.photos import photo_jpeg
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
DAN = "+15550001003"
BOB = "+15557654321"


def messages(d: DaemonProcess, conversation: str) -> list[dict[str, Any]]:
    try:
        result: list[dict[str, Any]] = d.call("messages", conversation=conversation)["messages"]
    except NotFound:
        return []
    return result


def wait_for_text(d: DaemonProcess, conversation: str, text: str) -> dict[str, Any]:
    def found() -> dict[str, Any]:
        return next((m for m in messages(d, conversation) if m["text"] == text), {})

    return d.wait_until(found, 20, f"{text!r} in {conversation}")


def server_messages(srv: ServerProcess, number: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(srv.admin("messages", "--number", number, "--json"))
    return result


def view(d: DaemonProcess) -> list[tuple[Any, ...]]:
    """What a user sees: each conversation with its unread count and its messages."""
    out = []
    for c in d.call("conversations", limit=500):
        msgs = messages(d, c["remote"])
        out.append(
            (
                c["number"],
                c["remote"],
                c["unread"],
                tuple(sorted((m["server_id"], m["text"], m["state"]) for m in msgs)),
            )
        )
    return sorted(out)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        with srv.store() as st:
            st.add_contact("Bob Roe", [("mobile", BOB)])
        yield srv


def test_two_extensions_exchange_sms_and_mms_with_auto_and_on_request_download(
    server: ServerProcess, tmp_path: Path
) -> None:
    ann_token = server.add_extension("1001", "Ann Lee", ANN)
    dan_token = server.add_extension("1003", "Dan Wu", DAN)
    with (
        DaemonProcess.start(tmp_path / "ann", server, ann_token) as ann,
        DaemonProcess.start(tmp_path / "dan", server, dan_token) as dan,
    ):
        ann.wait_online()
        dan.wait_online()

        # SMS both ways.
        sent = ann.call("send", to=DAN, text="Hi Dan, SMS here", client_id="a-sms-1")
        assert sent["message"]["state"] == "sending"
        got = wait_for_text(dan, ANN, "Hi Dan, SMS here")
        assert got["direction"] == "in"
        ann.wait_until(lambda: messages(ann, DAN)[0]["state"] == "sent", 20, "Ann's SMS to be sent")
        dan.call("send", to=ANN, text="Hi Ann 👋")
        assert wait_for_text(ann, DAN, "Hi Ann 👋")["direction"] == "in"

        # MMS with a real photo, under the limit: Dan's daemon downloads it by itself.
        photo = tmp_path / "holiday.jpg"
        photo.write_bytes(photo_jpeg("coffee", 400, 300))
        reply = ann.call("send", to=DAN, text="Look", files=[str(photo)])
        assert reply["dropped"] == []
        mms = wait_for_text(dan, ANN, "Look")
        assert [f["name"] for f in mms["files"]] == ["holiday.jpg"]

        def downloaded() -> dict[str, Any]:
            f: dict[str, Any] = wait_for_text(dan, ANN, "Look")["files"][0]
            return f if f["state"] == "done" else {}

        f: dict[str, Any] = dan.wait_until(downloaded, 20, "the photo to download by itself")
        path = Path(f["path"])
        files_dir = dan.home / "data" / "glosmsd" / "files"
        assert path.parent == files_dir
        with Image.open(path) as img:
            assert img.format == "JPEG"
            assert img.size == (400, 300)

        # A file over the limit, with a name that tries tricks: not downloaded by itself.
        big = tmp_path / "..  ..scan\u202etxt.pdf"
        contents = []
        for i in range(2):  # two different files of the same name: neither overwrites
            contents.append(b"%PDF-1.4\n" + bytes([48 + i]) * 600_000)
            big.write_bytes(contents[-1])
            server.admin("inject", "--from", ANN, "--to", DAN, "--text", "big", "--file", str(big))
        dan.wait_until(
            lambda: len([m for m in messages(dan, ANN) if m["text"] == "big"]) == 2,
            20,
            "both big files",
        )
        bigs = [m for m in messages(dan, ANN) if m["text"] == "big"]
        assert all(m["files"][0]["state"] == "none" for m in bigs)
        paths = []
        for m in bigs:
            out = dan.call("download", id=m["id"])["files"]
            assert out[0]["state"] == "done"
            paths.append(Path(out[0]["path"]))
        assert len(set(paths)) == 2
        for p in paths:
            assert p.parent == files_dir
            assert not p.name.startswith(".")
            assert "\u202e" not in p.name
        assert sorted(p.read_bytes() for p in paths) == sorted(contents)
        # Fetching again keeps the one file it has.
        again = dan.call("download", id=bigs[0]["id"])["files"][0]
        assert Path(again["path"]) in paths

        # The server holds each send once.
        texts = [m["text"] for m in server_messages(server, ANN) if m["direction"] == "out"]
        assert sorted(texts) == ["Hi Dan, SMS here", "Look"]


def test_a_second_device_sees_the_same_also_after_being_offline(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = server.add_extension("1001", "Ann Lee", ANN)
    with server.store() as st:
        for i in range(3):
            st.receive(BOB, ANN, f"from Bob {i}")
        st.receive("+15557650000", ANN, "from Cy")
    with (
        DaemonProcess.start(tmp_path / "desk", server, token) as desk,
        DaemonProcess.start(tmp_path / "laptop", server, token) as laptop,
    ):
        desk.wait_online()
        laptop.wait_online()
        for d in (desk, laptop):
            d.wait_until(lambda d=d: bool(d.call("status")["unread"] == 4), 20, "4 unread")  # type: ignore[misc]

        # Live: a read mark, a deletion and a send on the desk show up on the laptop.
        desk.call("mark_read", conversation=BOB)
        laptop.wait_until(lambda: laptop.call("status")["unread"] == 1, 20, "read mark synced")
        first = next(m for m in messages(desk, BOB) if m["text"] == "from Bob 0")
        desk.call("delete_message", id=first["id"])
        laptop.wait_until(
            lambda: all(m["text"] != "from Bob 0" for m in messages(laptop, BOB)),
            20,
            "the deletion synced",
        )
        desk.call("send", to=BOB, text="sent from the desk")
        wait_for_text(laptop, BOB, "sent from the desk")
        laptop.wait_until(lambda: view(laptop) == view(desk), 20, "the same view")

        # Offline: the laptop is off while the desk works and messages arrive.
        laptop.stop()
        desk.call("mark_read")
        desk.call("delete_conversation", conversation="+15557650000")
        with server.store() as st:
            st.receive(BOB, ANN, "while the laptop was off")
        wait_for_text(desk, BOB, "while the laptop was off")
        desk.call("send", to=BOB, text="desk again")
        desk.wait_until(
            lambda: all(m["state"] == "sent" for m in messages(desk, BOB)), 20, "desk sends sent"
        )
        laptop.spawn()
        laptop.wait_online()
        wait_for_text(laptop, BOB, "desk again")
        laptop.wait_until(lambda: view(laptop) == view(desk), 20, "the same view after offline")
        assert laptop.call("status")["unread"] == 1
        assert [c["remote"] for c in laptop.call("conversations")] == [BOB]


def test_a_photo_that_fits_as_it_is_loses_its_gps_on_the_way(
    server: ServerProcess, tmp_path: Path
) -> None:
    ann_token = server.add_extension("1001", "Ann Lee", ANN)
    dan_token = server.add_extension("1003", "Dan Wu", DAN)
    image = Image.open(io.BytesIO(photo_jpeg("chelsea", 300, 200)))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    gps[1] = "N"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(out.getvalue())
    assert b"PhoneMaker" in photo.read_bytes()
    with (
        DaemonProcess.start(tmp_path / "ann", server, ann_token) as ann,
        DaemonProcess.start(tmp_path / "dan", server, dan_token) as dan,
    ):
        ann.wait_online()
        dan.wait_online()
        ann.call("send", to=DAN, text="cat", files=[str(photo)])

        def downloaded() -> str:
            msgs = [m for m in messages(dan, ANN) if m["text"] == "cat"]
            return str(msgs[0]["files"][0]["path"] or "") if msgs else ""

        received = Path(dan.wait_until(downloaded, 20, "the photo at Dan")).read_bytes()
    assert b"PhoneMaker" not in received
    assert b"secret comment" not in received
    with Image.open(io.BytesIO(received)) as img:
        exif_out = img.getexif()
        assert 0x8825 not in exif_out
        assert 0x010F not in exif_out
        # The picture still shows the right way up.
        shown = img.size if exif_out.get(0x0112, 1) == 1 else img.size[::-1]
        assert shown == (200, 300)
