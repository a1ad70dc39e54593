"""What the composer's page tests share: empty drafts for each test, and a sent message.

The module's daemon keeps drafts across tests; a test's page saves what it typed on
pagehide when it is closed, which may reach the daemon after the next test began. So each
test starts with no draft, and ends by emptying its composers (the last save is then an
empty one, harmless whenever it lands).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.support.daemonproc import wait_until
from tests.support.windowpage import WindowWorld

EMPTY_COMPOSER = """() => {
  const input = document.querySelector('#composer textarea');
  if (!input) return;
  input.value = '';
  window.dispatchEvent(new Event('pagehide'));
}"""


@pytest.fixture
def fresh_composer(window: WindowWorld) -> Iterator[None]:
    for draft in window.daemon.call("drafts"):
        window.daemon.call("draft_set", conversation=draft["conversation_id"], text="")
    yield
    for ctx in window.contexts:
        for page in ctx.pages:
            with contextlib.suppress(PlaywrightError):  # closed by the test meanwhile
                page.evaluate(EMPTY_COMPOSER)


def sent_text(
    window: WindowWorld, conversation: str, text: str, state: str | None = None
) -> dict[str, Any]:
    """The message with `text` once the daemon has it (in `state`, if given)."""

    def found() -> dict[str, Any] | None:
        for m in window.daemon.call("messages", conversation=conversation)["messages"]:
            if m["text"] == text and state in (None, m["state"]):
                return dict(m)
        return None

    got = wait_until(found, 20, f"{text!r} in the daemon")
    assert got is not None
    return got
