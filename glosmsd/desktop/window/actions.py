"""What the desktop does for the SMS window and for any client of the API: open the
window (`window.open`), call a conversation's number (`call`), open a link in the user's
browser (`open_link`); and `show`, the one way the tray's unread menu and a notification's
Open bring the window up at a conversation.

These handlers are bound in the one method table (`glosmsd.daemon.api.DESKTOP_SPECS`), so
the Unix socket and the window's WebSocket both have them. The commands they run never go
through a shell: `call_command` and `window_command` are lists of words, and the number
or URL is one word of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from glosmsd.core.errors import BadInput, GlosmsdError, Unsupported
from glosmsd.daemon.service import Service
from glosmsd.desktop.window.server import WindowServer

log = logging.getLogger(__name__)

#: How long the system's opener may take to hand a tel: link to its app.
OPENER_TIMEOUT: Final = 10.0
_DIALABLE: Final = re.compile(r"\+?[0-9]{2,20}")


class WindowActions:
    def __init__(
        self,
        service: Service,
        window: WindowServer,
        *,
        profile: Path,
        window_command: Sequence[str] | None = None,
        call_command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.window = window
        self.profile = profile
        self.window_command = tuple(window_command) if window_command else None
        self.call_command = tuple(call_command) if call_command else None
        self.env = env

    # ------------------------------------------------------------------ window.open

    async def _conversation_id(self, conversation: int | str | None) -> int | None:
        if conversation is None:
            return None
        return (await self.service.resolve_conversation(conversation)).id

    async def window_open(
        self, conversation: int | str | None = None, launch: bool = True
    ) -> dict[str, Any]:
        cid = await self._conversation_id(conversation)
        opening = self.window.open(cid, launch=launch)
        return {
            "url": opening.url,
            "action": opening.action,
            "conversation_id": cid,
            "command": list(self.window_command) if self.window_command else None,
            "profile": str(self.profile),
        }

    async def show(self, conversation_id: int | None) -> bool:
        """Bring the window up at `conversation_id` (None: the list), from the tray or a
        notification: focus the open one, or launch one. Failures are logged; False then
        (the caller may offer the quick-send popup instead)."""
        try:
            opening = self.window.open(conversation_id)
        except GlosmsdError as exc:
            log.warning("window: cannot open: %s", exc.message)
            return False
        if opening.action == "focus":
            await asyncio.to_thread(_raise_window, self.profile)
            return True
        try:
            await asyncio.to_thread(
                _launch,
                opening.url,
                command=self.window_command,
                profile=self.profile,
                env=self.env,
            )
        except GlosmsdError as exc:
            self.window.launch_failed()
            log.warning("window: %s", exc.message)
            return False
        return True

    # ------------------------------------------------------------------ call

    async def call(self, conversation: int | str) -> dict[str, Any]:
        conv = await self.service.resolve_conversation(conversation)
        number = dialable(conv.remote)
        if self.call_command:
            argv = _fill(self.call_command, "{number}", number)
            try:
                await asyncio.to_thread(_start_detached, argv, self.env)
            except OSError as exc:
                raise Unsupported(
                    f"call_command could not start ({argv[0]}: {exc.strerror or exc}); "
                    "check it in config.toml."
                ) from exc
            log.info("call: %s via call_command", number)
            return {"number": number, "via": "call_command"}
        await asyncio.to_thread(_open_with_system, f"tel:{number}", self.env)
        log.info("call: %s via the tel: handler", number)
        return {"number": number, "via": "tel"}

    # ------------------------------------------------------------------ open_link

    async def open_link(self, url: str) -> dict[str, Any]:
        checked = checked_link(url)
        opened = await asyncio.to_thread(_open_in_browser, checked)
        if not opened:
            raise Unsupported(
                "No browser found to open the link. Set the BROWSER environment variable, "
                "or copy the link."
            )
        return {"opened": True, "url": checked}


def dialable(number: str) -> str:
    """A number as a tel: link and a dialer take it: `+` and digits only."""
    text = number.strip()
    digits = re.sub(r"\D", "", text)
    out = ("+" if text.startswith("+") else "") + digits
    if not _DIALABLE.fullmatch(out):
        raise BadInput(f"{number!r} is not a number that can be called.")
    return out


def checked_link(url: str) -> str:
    """An http(s) link fit to hand to a browser, or `BadInput` saying why not."""
    text = url.strip()
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in text):
        raise BadInput("A link cannot contain spaces or control characters.")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise BadInput(f"Not a link: {url[:100]!r}.") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise BadInput("Only http:// and https:// links are opened in the browser.")
    return text


def _fill(words: Sequence[str], slot: str, value: str) -> list[str]:
    if any(slot in w for w in words):
        return [w.replace(slot, value) for w in words]
    return [*words, value]


# `launch` and webbrowser are imported in the worker thread at the first window shown, call
# made or link opened: a daemon that only serves the page (headless) never needs them
# (issue 16: ~0.15 MB of its RSS).


def _raise_window(profile: Path) -> bool:
    from glosmsd.desktop.window import launch

    return launch.raise_window(profile)


def _launch(
    url: str, *, command: Sequence[str] | None, profile: Path, env: Mapping[str, str] | None
) -> None:
    from glosmsd.desktop.window import launch

    launch.launch(url, command=command, profile=profile, env=env)


def _start_detached(argv: Sequence[str], env: Mapping[str, str] | None) -> None:
    from glosmsd.desktop.window import launch

    launch.start_detached(argv, env)


def _open_in_browser(url: str) -> bool:
    import webbrowser

    return webbrowser.open(url, 2)


def _open_with_system(url: str, env: Mapping[str, str] | None) -> None:
    """Hand `url` to the desktop's handler for its scheme and wait for the opener's word."""
    if sys.platform == "win32":  # pragma: no cover - not testable here
        os.startfile(url)  # type: ignore[attr-defined]  # noqa: S606
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        done = subprocess.run(
            [opener, url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            timeout=OPENER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise Unsupported(
            f"{opener} is not installed, so phone numbers cannot be handed to a phone app. "
            "Set call_command in config.toml (e.g. call_command = \"linphonec -c 'call "
            "{number}'\")."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise Unsupported(f"{opener} did not answer within {OPENER_TIMEOUT:g} s.") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise Unsupported(
            "No app on this desktop takes phone numbers (tel: links)"
            + (f": {detail[-1]}" if detail else "")
            + ". Set call_command in config.toml to your softphone's command."
        )
