"""When a message pops a notification, what it says, what the tooltip says, and where the
tray menu opens by the icon (pure)."""

from __future__ import annotations

from typing import Any

from glosmsd.desktop.bridge import alert_body, look_and_tooltip, wants_alert
from glosmsd.desktop.icon import Look
from glosmsd.desktop.tray import menu_position

START = 1_000_000.0


def msg(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"direction": "in", "at": START + 5, "text": "hi", "files": []}
    base.update(kw)
    return base


def test_only_new_incoming_messages_with_the_pref_on() -> None:
    on: dict[str, Any] = {"notify": True, "sms_enabled": True, "started_at": START}
    assert wants_alert(msg(), **on)
    assert not wants_alert(msg(), notify=False, sms_enabled=True, started_at=START)
    assert not wants_alert(msg(), notify=True, sms_enabled=False, started_at=START)
    assert not wants_alert(msg(direction="out"), **on)  # own, or a sharer's outgoing
    assert not wants_alert(msg(direction="out", sender={"name": "Cat"}), **on)
    assert not wants_alert(msg(at=START - 60), **on)  # catch-up from before the start
    assert not wants_alert(msg(at=None), **on)


def test_body_text_files_and_privacy() -> None:
    assert alert_body(msg(), hide_text=False) == "hi"
    assert alert_body(msg(), hide_text=True) == "New message"
    pic = {"mime": "image/jpeg", "name": "a.jpg"}
    assert alert_body(msg(text="", files=[pic]), hide_text=False) == "Picture"
    assert alert_body(msg(text="", files=[pic, pic]), hide_text=False) == "2 files"
    pdf = {"mime": "application/pdf", "name": "x.pdf"}
    assert alert_body(msg(text="see", files=[pdf]), hide_text=False) == "see\n(File: x.pdf)"
    long = alert_body(msg(text="x" * 1000), hide_text=False)
    assert len(long) == 240
    assert long.endswith("…")


def test_look_and_tooltip() -> None:
    online = {"link": {"online": True, "line": "Online"}, "number": "+1555", "unread": 3}
    assert look_and_tooltip(online) == (Look.ONLINE, "glosmsd: 3 unread messages")
    assert look_and_tooltip({**online, "unread": 0})[1] == "glosmsd: no unread messages"
    offline = {**online, "link": {"online": False, "line": "Offline: reconnecting in 8 s"}}
    assert look_and_tooltip(offline) == (Look.OFFLINE, "glosmsd: Offline: reconnecting in 8 s")
    nonum = {**online, "number": None, "extension": {"ext": "1001"}}
    assert look_and_tooltip(nonum) == (Look.DISABLED, "glosmsd: No SMS number assigned")
    off = {**online, "sms_enabled": False}
    assert look_and_tooltip(off)[0] is Look.DISABLED


def test_the_tray_menu_opens_beside_the_icon_never_over_it() -> None:
    screen = (1280, 800)
    # A top panel: under the icon, pulled left to stay on the screen.
    assert menu_position((1255, 1, 24, 30), (363, 251), screen) == (917, 31)
    # A bottom panel: above the icon.
    assert menu_position((1255, 770, 24, 30), (363, 251), screen) == (917, 519)
    # A left panel in the middle: under it while it fits.
    assert menu_position((0, 300, 24, 24), (363, 251), screen) == (0, 324)
    # Room neither below nor above: as low as it fits on the screen.
    assert menu_position((10, 100, 24, 24), (300, 700), (800, 720)) == (10, 20)
