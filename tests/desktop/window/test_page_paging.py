"""A conversation of 10,000 messages in a real Chromium against a real daemon and server:
the newest page shows at once, older pages come on scrolling up, and the DOM never holds
more than a few hundred of them; "Jump to newest" brings the end back."""

from __future__ import annotations

import itertools
import time

import pytest
from playwright.sync_api import expect

from tests.support.windowpage import WindowWorld

COUNT = 10_000
# A new correspondent per fill, so the test can repeat (--count) in one module's world.
_REMOTES = (f"+1555765{n:04d}" for n in itertools.count(1111))


def fill(window: WindowWorld) -> str:
    """COUNT messages with a new correspondent, synced to Ann's daemon; their number."""
    remote = next(_REMOTES)
    start = time.time() - COUNT * 90.0
    window.bulk(
        (remote, "in" if i % 3 else "out", f"Message number {i}", start + i * 90.0)
        for i in range(COUNT)
    )

    def synced() -> bool:
        convs = [c for c in window.daemon.call("conversations") if c["remote"] == remote]
        return bool(convs) and convs[0]["last_text"] == f"Message number {COUNT - 1}"

    window.daemon.wait_until(synced, 150, "the daemon to sync 10,000 messages")
    return remote


@pytest.mark.timeout(240)  # filling and syncing 10,000 messages is slow on a busy machine
def test_ten_thousand_messages_are_paged_never_all_in_the_dom(window: WindowWorld) -> None:
    remote = fill(window)
    page = window.open_page(conversation=remote)
    log = page.get_by_role("log", name="Messages")
    newest = log.get_by_role("article").filter(has_text=f"Message number {COUNT - 1}")
    expect(newest).to_be_in_viewport()
    count = page.locator(".msg").count()
    assert 0 < count <= 60
    # Scrolling up: older pages, a window of them in the DOM.
    seen_oldest = COUNT
    for _ in range(8):
        log.evaluate("(el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        page.wait_for_function(
            """(n) => {
              const t = document.querySelector('#messages .msg .text');
              return t && Number(t.textContent.split(' ').pop()) < n;
            }""",
            arg=seen_oldest,
        )
        first = page.locator(".msg .text").first.inner_text()
        seen_oldest = int(first.split("Message number ")[1])
        assert page.locator(".msg").count() <= 240
    assert seen_oldest < COUNT - 300  # well past what one DOM window holds
    expect(newest).to_have_count(0)  # the newest went out of the DOM
    page.get_by_role("button", name="Jump to newest").click()
    expect(newest).to_be_in_viewport()
    assert page.locator(".msg").count() <= 240
    # A day separator per day: 90 s apart, 960 a day.
    assert page.locator(".day").count() >= 1
    assert page.errors == []  # type: ignore[attr-defined]
