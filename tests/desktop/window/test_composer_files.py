"""Attaching files in the SMS window's composer (composer.js, attach.js), in real Chromium
against a real daemon: by the file dialog, by dropping onto the conversation, by pasting;
the 11th file and the 500 KB limit discarded with the product's alert; thumbnails removed
with "Remove NAME"; the counter's kilobytes are the daemon's `count`; the files are sent.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.desktop.window.composerpage import fresh_composer, sent_text
from tests.support.ipcworld import BOB_MOBILE
from tests.support.windowpage import WindowWorld

pytestmark = pytest.mark.usefixtures(fresh_composer.__name__)

MAX = "Maximum size of attached files for MMS reached."

# A page-side file list: names and bytes (base64) -> DataTransfer, for drops and pastes.
MAKE_TRANSFER = """
(files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  return dt;
}
"""


def png(color: str, size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def section(page: Page) -> Locator:
    return page.get_by_role("region", name="Compose")


def attached(page: Page) -> Locator:
    return section(page).get_by_role("list", name="Attached files").get_by_role("listitem")


def choose(page: Page, paths: list[str]) -> None:
    with page.expect_file_chooser() as chooser:
        section(page).get_by_role("button", name="Attach files").click()
    chooser.value.set_files(paths)


def test_files_by_the_dialog_show_thumbnails_count_kilobytes_and_are_sent(
    window: WindowWorld, tmp_path: Path
) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    photo = png("#3a7")
    note = b"Meeting notes\n" * 50
    choose(page, [write(tmp_path, "garden.png", photo), write(tmp_path, "notes.txt", note)])
    expect(attached(page)).to_have_count(2)
    expect(attached(page).nth(0).locator("img")).to_be_visible()  # a thumbnail
    expect(attached(page).nth(1)).to_contain_text("notes.txt")
    count = window.daemon.call("count", text="", files=2, bytes=len(photo) + len(note))
    counter = section(page).get_by_role("status", name="Counter")
    expect(counter).to_have_text(f"{count['bytes_left'] // 1024} KB left")
    section(page).get_by_role("textbox", name="Message").fill("The garden and the notes")
    section(page).get_by_role("button", name="Send", exact=True).click()
    expect(attached(page)).to_have_count(0)
    sent = sent_text(window, BOB_MOBILE, "The garden and the notes", state="sent")
    assert [(f["name"], f["mime"]) for f in sent["files"]] == [
        ("garden.png", "image/png"),
        ("notes.txt", "text/plain"),
    ]
    assert page.errors == []  # type: ignore[attr-defined]


def test_files_dropped_onto_the_messages_are_attached(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    transfer = page.evaluate_handle(
        MAKE_TRANSFER,
        [{"name": "dropped.txt", "type": "text/plain", "b64": "RHJvcHBlZCBmaWxlCg=="}],
    )
    messages = page.get_by_role("log", name="Messages")
    messages.dispatch_event("dragenter", {"dataTransfer": transfer})
    messages.dispatch_event("dragover", {"dataTransfer": transfer})
    messages.dispatch_event("drop", {"dataTransfer": transfer})
    expect(attached(page)).to_have_count(1)
    expect(attached(page).first).to_contain_text("dropped.txt")


def test_files_pasted_into_the_message_are_attached(window: WindowWorld) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    shot = base64.b64encode(png("#c33")).decode()
    message = section(page).get_by_role("textbox", name="Message")
    message.fill("Look:")
    message.evaluate(
        f"""(el) => {{
          const dt = ({MAKE_TRANSFER})([{{name: "image.png", type: "image/png", b64: "{shot}"}}]);
          el.dispatchEvent(new ClipboardEvent("paste", {{clipboardData: dt, bubbles: true,
                                                         cancelable: true}}));
        }}"""
    )
    expect(attached(page)).to_have_count(1)
    expect(attached(page).first.locator("img")).to_be_visible()
    expect(message).to_have_value("Look:")  # the file went to the files, not the text


def test_the_eleventh_file_is_discarded_with_the_alert(window: WindowWorld, tmp_path: Path) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    paths = [write(tmp_path, f"note-{i:02}.txt", b"note %d\n" % i) for i in range(1, 12)]
    choose(page, paths)
    expect(section(page).get_by_role("alert")).to_have_text(MAX)
    expect(attached(page)).to_have_count(10)
    expect(attached(page).last).to_contain_text("note-10.txt")
    # One more later is discarded too: still ten.
    choose(page, [write(tmp_path, "late.txt", b"late\n")])
    expect(attached(page)).to_have_count(10)
    expect(section(page).get_by_role("alert")).to_have_text(MAX)


def test_past_500_kb_the_excess_is_discarded_and_fitted_images_are_not(
    window: WindowWorld, tmp_path: Path
) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    big = b"%PDF-1.4\n" + b"0" * 300_000
    choose(page, [write(tmp_path, "one.pdf", big), write(tmp_path, "two.pdf", big)])
    expect(section(page).get_by_role("alert")).to_have_text(MAX)
    expect(attached(page)).to_have_count(1)
    expect(attached(page).first).to_contain_text("one.pdf")
    # A large photo still fits: the daemon fits JPEG and PNG when sending.
    noisy = Image.effect_noise((1200, 900), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "PNG")
    assert len(out.getvalue()) > 500 * 1024
    choose(page, [write(tmp_path, "photo.png", out.getvalue())])
    expect(attached(page)).to_have_count(2)
    verdict = window.daemon.call(
        "count", text="", files=2, bytes=len(big) + 48 * 1024
    )  # rules.FITTED_IMAGE
    expect(section(page).get_by_role("status", name="Counter")).to_have_text(
        f"{verdict['bytes_left'] // 1024} KB left"
    )


def test_remove_name_takes_a_file_off(window: WindowWorld, tmp_path: Path) -> None:
    page = window.open_page(conversation=BOB_MOBILE)
    choose(page, [write(tmp_path, "a.txt", b"a\n"), write(tmp_path, "b.png", png("#35c"))])
    expect(attached(page)).to_have_count(2)
    remove = section(page).get_by_role("button", name="Remove b.png")
    expect(remove).to_have_css("opacity", "0")  # shown on hover and on focus only
    attached(page).nth(1).hover()
    expect(remove).to_have_css("opacity", "1")
    expect(remove).to_have_css("background-color", "rgb(26, 115, 232)")  # the blue circle
    remove.click()
    expect(attached(page)).to_have_count(1)
    expect(section(page).get_by_role("button", name="Remove b.png")).to_have_count(0)
    section(page).get_by_role("button", name="Remove a.txt").focus()
    expect(section(page).get_by_role("button", name="Remove a.txt")).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(attached(page)).to_have_count(0)
    expect(section(page).get_by_role("status", name="Counter")).to_contain_text("SMS")
