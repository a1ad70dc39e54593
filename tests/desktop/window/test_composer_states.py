"""The SMS window's composer when sending is impossible (no SMS number assigned), and
axe-core's verdict on the composer with files attached, in real Chromium against real
daemons and a real server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from PIL import Image
from playwright.sync_api import expect

from tests.desktop.window.composerpage import fresh_composer
from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import BOB_MOBILE, World
from tests.support.windowpage import WindowWorld

pytestmark = pytest.mark.usefixtures(fresh_composer.__name__)


@pytest.fixture
def numberless(window: WindowWorld) -> Iterator[WindowWorld]:
    """Dee Fox (1003), an extension of the same server with no SMS number, and her daemon."""
    token = window.server.add_extension("1003", "Dee Fox", None)
    daemon = DaemonProcess.start(window.tmp / "dee", window.server, token)
    try:
        daemon.wait_online()
        dee = WindowWorld(World(window.server, daemon), window.browser, window.tmp)
        yield dee
        dee.close_contexts()
    finally:
        daemon.stop()


def test_without_an_sms_number_the_input_is_disabled_and_says_why(
    numberless: WindowWorld,
) -> None:
    page = numberless.open_page(hash="#/new/+15557654321")
    section = page.get_by_role("region", name="Compose")
    message = section.get_by_role("textbox", name="Message")
    expect(message).to_be_disabled()
    expect(message).to_have_attribute("placeholder", "No SMS number assigned")
    why = numberless.daemon.call("number")["message"]
    assert why.startswith("No SMS number assigned")
    expect(message).to_have_accessible_description(why)
    expect(section.get_by_role("button", name="Send")).to_be_disabled()
    expect(section.get_by_role("button", name="Attach files")).to_be_disabled()


def test_axe_finds_no_serious_violation_with_files_attached(
    window: WindowWorld, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    out = io.BytesIO()
    Image.new("RGB", (200, 150), "#58f").save(out, "PNG")
    photo.write_bytes(out.getvalue())
    note = tmp_path / "note.txt"
    note.write_bytes(b"a note\n")
    for scheme in ("light", "dark"):
        page = window.open_page(conversation=BOB_MOBILE, scheme=scheme, bypass_csp=True)
        section = page.get_by_role("region", name="Compose")
        section.get_by_role("textbox", name="Message").fill("With files 🙂")
        with page.expect_file_chooser() as chooser:
            section.get_by_role("button", name="Attach files").click()
        chooser.value.set_files([str(photo), str(note)])
        expect(section.get_by_role("button", name="Remove note.txt")).to_be_attached()
        results = Axe().run(page, context={"include": [["#composer"]]})
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert bad == [], [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in bad]
