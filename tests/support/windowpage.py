"""The SMS window's page in a real browser, against a real daemon and a real server.

Debian's Chromium (`/usr/bin/chromium`, never Playwright's own download) driven by
Playwright's sync API. The world is tests/support/ipcworld.py's (Ann Lee on a number she
shares with Bo Diaz; Bob Roe with two numbers; Cy Ng), one per test module; each test
gets a fresh browser context (its own cookie jar), signed in through a one-time URL from
`window.open` exactly as `glosms open` gets it.

Usage (tests/desktop/window/conftest.py makes the fixtures available)::

    def test_x(window: WindowWorld) -> None:
        page = window.open_page()                   # the list
        page = window.open_page(conversation=BOB_MOBILE)  # at #/c/ID
        window.receive(CY, "hello")                 # an SMS arrives at the server
        window.sharer_sends(BOB_MOBILE, "Bo again") # Bo writes from the shared number
        other = window.second_device()              # Ann's second daemon (synced)
        page.get_by_role("listbox", name="Conversations")

`open_page` waits until the page says it is ready (`html[data-ready]`: connected,
subscribed, list shown). Nothing here sleeps: Playwright's expect() waits on state.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from glosmsd.server.db.records import CarrierMode
from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import ANN, World, running_world

CHROMIUM = "/usr/bin/chromium"
READY_TIMEOUT_MS = 20_000
Scheme = Literal["light", "dark"]


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("the SMS window's page tests need Debian's chromium (apt-get install chromium)")


@dataclass
class WindowWorld:
    world: World
    browser: Browser
    tmp: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    _second: DaemonProcess | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def daemon(self) -> DaemonProcess:
        return self.world.daemon

    @property
    def server(self) -> Any:
        return self.world.server

    # ---------------------------------------------------------------- the page

    def url(self, conversation: int | str | None = None) -> str:
        params: dict[str, Any] = {"launch": False}
        if conversation is not None:
            params["conversation"] = conversation
        return str(self.daemon.call("window.open", **params)["url"])

    def new_context(
        self, *, width: int = 1280, height: int = 800, scheme: Scheme = "light", **kw: Any
    ) -> BrowserContext:
        ctx = self.browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=scheme,
            permissions=["clipboard-read", "clipboard-write"],
            **kw,
        )
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        return ctx

    def open_page(
        self,
        conversation: int | str | None = None,
        *,
        hash: str | None = None,
        context: BrowserContext | None = None,
        **kw: Any,
    ) -> Page:
        """A signed-in page at the list, at `conversation`, or at `hash` (e.g. #/new/N)."""
        ctx = context or self.new_context(**kw)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        url = self.url(conversation)
        if hash is not None:
            url = url.split("#", 1)[0] + hash
        page.goto(url)
        page.wait_for_selector("html[data-ready]", state="attached", timeout=READY_TIMEOUT_MS)
        return page

    def close_contexts(self) -> None:
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                ctx.close()
        self.contexts.clear()

    # ---------------------------------------------------------------- the world

    def receive(
        self, sender: str, text: str, files: Sequence[tuple[bytes, str]] = (), to: str = ANN
    ) -> dict[str, Any]:
        """An SMS/MMS from `sender` reaches the server (the carrier's inbound)."""
        with self.server.store() as st:
            return dict(st.receive(sender, to, text, files))

    def bulk(self, messages: Iterable[tuple[str, str, str, float]]) -> int:
        """Many messages (remote, direction, text, at) in one server transaction, as if
        they had come and gone over time; returns how many. Ann's daemon syncs them."""
        return bulk_messages(self.server, messages)

    def sharer_sends(self, remote: str, text: str, *, state: str | None = "sent") -> int:
        """Bo Diaz (1002) writes to `remote` from the number he shares with Ann; the
        carrier's verdict `state` follows (None: none yet, the server says `sending`).
        Returns the server's message id (for `sharer_state`)."""
        with self.server.store() as st:
            sent = st.send("1002", f"bo-page-{next(self._ids)}", remote, text, [], from_=ANN)
        server_id = int(sent.message["id"])
        if state is not None:
            self.sharer_state(server_id, state)
        return server_id

    def sharer_state(self, server_id: int, state: str, reason: str | None = None) -> None:
        """The carrier's verdict on a sharer's message, as the server records it."""
        with self.server.store() as st:
            st.set_state(server_id, state, reason)

    def carrier(self, mode: str, reason: str = "Carrier refused the message") -> None:
        """How the test carrier answers the next sends: accept, fail or delay."""
        with self.server.store() as st:
            st.set_carrier_mode(CarrierMode(mode=mode, reason=reason))

    def second_device(self) -> DaemonProcess:
        """Ann's second device: its own daemon, synced through the server."""
        if self._second is None:
            with self.server.store() as st:
                token = st.new_token("1001")
            self._second = DaemonProcess.start(self.tmp / "ann-laptop", self.server, token)
            self._second.wait_online()
        return self._second

    def stop(self) -> None:
        self.close_contexts()
        if self._second is not None:
            try:
                self._second.stop()
            except Exception:
                self._second.kill()


def bulk_messages(server: Any, messages: Iterable[tuple[str, str, str, float]]) -> int:
    """Many messages (remote, "in" or "out", text, at) for Ann's number in one server
    transaction (with their sync events): 10,000 in about a second, where one `receive`
    each would commit 10,000 times."""
    n = 0
    batch = uuid.uuid4().hex[:8]  # client ids unique per call: a test can fill twice
    with server.store() as st, st._write():  # bulk set-up, as bench does
        for remote, direction, text, at in messages:
            st._insert_message(
                number=ANN,
                remote=remote,
                direction=direction,
                text=text,
                state="sent",
                sender_ext="1001" if direction == "out" else None,
                client_id=f"bulk-{batch}-{n}" if direction == "out" else None,
                files=[],
                at=at,
            )
            n += 1
    return n


# Package scope, never session: while Playwright's sync API is open, its event loop counts
# as running in the main thread (it runs in a greenlet), so every asyncio test collected
# after tests/desktop/window would fail at teardown with "Cannot run the event loop while
# another loop is running". Closing it at the package's end gives the thread back.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
    yield b
    b.close()


@pytest.fixture(scope="module")
def window_world(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WindowWorld]:
    """One world (server + Ann's daemon, seeded) per test module, a browser per package."""
    tmp = tmp_path_factory.mktemp("page")
    with running_world(tmp) as world:
        ww = WindowWorld(world, browser, tmp)
        try:
            yield ww
        finally:
            ww.stop()


@pytest.fixture
def window(window_world: WindowWorld) -> Iterator[WindowWorld]:
    """The module's world; the browser contexts a test opened are closed after it."""
    yield window_world
    window_world.close_contexts()
