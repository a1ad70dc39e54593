"""The desktop side of the daemon: feeds the tray, raises notifications, runs menu clicks.

Runs on the daemon's event loop. It listens to the hub (the local events every socket
client also sees), asks the service layer for what the tray shows, and turns tray clicks
and notification actions into service calls. The tray itself lives on the main thread:
it only ever gets immutable `TrayState` snapshots from here, and its clicks arrive through
`command_threadsafe` (`loop.call_soon_threadsafe`).

The rules for when a message pops a notification are the pure `wants_alert` and
`alert_body`. This module never talks to the store or the link directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from glosmsd.core.errors import GlosmsdError, SubscriberDropped
from glosmsd.daemon.hub import Event, Hub
from glosmsd.daemon.service import Service
from glosmsd.desktop.icon import Look
from glosmsd.desktop.notify import Alert, Notifier
from glosmsd.desktop.tray import MenuCommand, PrefItem, TrayState
from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)

REFRESH_KINDS: Final = frozenset(
    {"message", "message_state", "read", "deleted", "unread", "reset", "link", "prefs"}
)
PREF_LABELS: Final = (
    ("notify", "Notify me when I receive a new SMS message"),
    ("sound", "New SMS Message Received (sound)"),
    ("sms_enabled", "Enable the SMS messaging on Desktop"),
    ("hide_text", "Hide message text in notifications"),
)
IMAGE_MIMES: Final = ("image/",)
COPIED_SECONDS: Final = 4.0
MAX_BODY: Final = 240


class TrayPort(Protocol):
    def show(self, state: TrayState) -> None: ...


#: Brings the SMS window up at a conversation (None: the list): the window's
#: `WindowActions.show`, the one way the tray and notifications open it (issue 15).
ShowWindow = Callable[[int | None], Awaitable[bool]]


# --------------------------------------------------------------------------- pure rules


def wants_alert(
    message: Mapping[str, Any], *, notify: bool, sms_enabled: bool, started_at: float
) -> bool:
    """Should this new message pop a notification (before asking if it is still unread)?

    Only incoming messages (never the user's own, nor a sharer's outgoing ones), only with
    the pref on, and never for a catch-up of messages older than the daemon's start.
    """
    if not (notify and sms_enabled):
        return False
    if message.get("direction") != "in":
        return False
    at = message.get("at")
    return isinstance(at, int | float) and at >= started_at


def alert_body(message: Mapping[str, Any], *, hide_text: bool) -> str:
    """The notification text: the message, or what it carries ("Picture", "2 files")."""
    if hide_text:
        return "New message"
    files = list(message.get("files") or ())
    text = str(message.get("text") or "").strip()
    what = ""
    if len(files) == 1:
        mime = str(files[0].get("mime") or "")
        what = "Picture" if mime.startswith(IMAGE_MIMES) else f"File: {files[0].get('name')}"
    elif files:
        what = f"{len(files)} files"
    if text and what:
        text = f"{text}\n({what})"
    text = text or what or "(empty message)"
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1] + "…"


def look_and_tooltip(status: Mapping[str, Any]) -> tuple[Look, str]:
    link = status.get("link") or {}
    unread = int(status.get("unread") or 0)
    if not status.get("number") and status.get("extension", {}).get("ext"):
        return Look.DISABLED, "glosmsd: No SMS number assigned"
    if not status.get("sms_enabled", True):
        return Look.DISABLED, "glosmsd: SMS messaging is switched off on this desktop"
    if not link.get("online"):
        return Look.OFFLINE, f"glosmsd: {link.get('line') or 'Offline'}"
    if unread == 0:
        return Look.ONLINE, "glosmsd: no unread messages"
    return Look.ONLINE, f"glosmsd: {unread} unread message{'s' if unread != 1 else ''}"


# --------------------------------------------------------------------------- wiring


class Desktop:
    def __init__(
        self,
        service: Service,
        hub: Hub,
        *,
        tray: TrayPort | None,
        notifier: Notifier | None,
        socket_path: Path,
        on_quit: Callable[[], None],
        show_window: ShowWindow | None = None,
        tasks: Supervisor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        #: The daemon's supervisor: clicks and notification actions run as its chores.
        self.tasks = tasks
        self.hub = hub
        self.tray = tray
        self.notifier = notifier
        self.socket_path = socket_path
        self.on_quit = on_quit
        self.show_window = show_window
        self.clock = clock
        self.state = TrayState()
        self._dirty = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._notice: tuple[str, float] | None = None  # a short tooltip, until the time
        self.started_at = service.started_at
        self.popups: list[asyncio.subprocess.Process] = []

    # -- running

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        sub = self.hub.subscribe("desktop")
        # No tray (headless, notifications only): nobody sees a refreshed state, and each
        # refresh is several trips to the store competing with sends and syncs (py-spy
        # under bench_delivery: Desktop.snapshot was 782 of the sender's samples).
        refresher = (
            asyncio.create_task(self._refresher(), name="tray-refresh")
            if self.tray is not None
            else None
        )
        self._dirty.set()
        try:
            while True:
                try:
                    event = await sub.get()
                except (SubscriberDropped, EOFError):
                    log.warning("desktop fell behind the event feed; resubscribing")
                    sub = self.hub.subscribe("desktop")
                    self._dirty.set()
                    continue
                await self._on_event(event)
        finally:
            sub.close()
            if refresher is not None:
                refresher.cancel()
            if self._tick is not None:
                self._tick.cancel()
            if refresher is not None:
                with contextlib.suppress(BaseException):
                    await refresher

    async def _on_event(self, event: Event) -> None:
        if event.kind in REFRESH_KINDS:
            self._dirty.set()
        if self.notifier is None:
            return
        if event.kind == "message":
            message = event.data.get("message")
            if isinstance(message, Mapping):
                self.tasks.spawn(self._maybe_alert(message), name="notify")
        elif event.kind == "read":
            cid = event.data.get("conversation_id")
            self.tasks.spawn(self.notifier.clear(str(cid)), name="clear notification")

    async def _refresher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                state = await self.snapshot()
            except GlosmsdError as exc:
                log.warning("tray refresh failed: %s", exc.message)
                continue
            except Exception:
                # A bug in one refresh must not freeze the tray: logged, and the next
                # change refreshes again.
                log.exception("tray refresh failed")
                continue
            self.state = state
            if self.tray is not None:
                self.tray.show(state)

    async def snapshot(self) -> TrayState:
        svc = self.service
        status = await svc.status()
        prefs = await svc.prefs_get()
        convs = await svc.conversations(limit=200)
        look, tooltip = look_and_tooltip(status)
        loop = asyncio.get_running_loop()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if status["link"]["state"] == "backoff":
            # Only while a countdown is shown: idle online costs no timer at all.
            self._tick = loop.call_later(1.0, self._dirty.set)
        if self._notice is not None:
            text, until = self._notice
            if loop.time() < until:
                tooltip = text
                self._tick = self._tick or loop.call_later(until - loop.time(), self._dirty.set)
            else:
                self._notice = None
        major = svc.account.pbx_major
        items = tuple(
            PrefItem(
                key,
                label,
                bool(prefs.get(key)),
                enabled=not (key == "sms_enabled" and major is not None and major >= 7),
            )
            for key, label in PREF_LABELS
        )
        sharers = tuple(str(s.get("name") or s.get("ext") or "?") for s in svc.account.shared_with)
        return TrayState(
            unread=int(status.get("unread") or 0),
            look=look,
            tooltip=tooltip,
            number=status.get("number"),
            sharers=sharers,
            conversations=tuple(
                (int(c["id"]), str(c["title"]), int(c["unread"]), str(c["remote"]))
                for c in convs
                if c["unread"]
            ),
            prefs=items,
        )

    # -- notifications

    async def _maybe_alert(self, message: Mapping[str, Any]) -> None:
        assert self.notifier is not None
        svc = self.service
        prefs = await svc.prefs_get()
        if not wants_alert(
            message,
            notify=bool(prefs["notify"]),
            sms_enabled=bool(prefs["sms_enabled"]),
            started_at=self.started_at,
        ):
            return
        cid = int(message["conversation_id"])
        try:
            conv = await svc.resolve_conversation(cid)
        except GlosmsdError:
            return
        if conv.unread == 0:  # read on another device meanwhile
            return
        title = conv.title if conv.unread == 1 else f"{conv.title} ({conv.unread})"
        await self.notifier.show(
            Alert(
                str(cid),
                title,
                alert_body(message, hide_text=bool(prefs["hide_text"])),
                sound=bool(prefs["sound"]),
            )
        )

    def on_notification_action(self, key: str, action: str, text: str | None) -> None:
        cid = int(key)
        if action == "read":
            self.tasks.spawn(self._mark_read(cid), name="notification: mark read")
        elif action == "reply" and text:
            self.tasks.spawn(self._reply(cid, text), name="notification: reply")
        elif action == "reply":  # no reply field on this server: the popup, for a quick one
            self.tasks.spawn(self.open_popup(cid), name="notification: reply in the popup")
        else:
            self.tasks.spawn(self.open_conversation(cid), name="notification: open")

    async def _mark_read(self, cid: int | None) -> None:
        try:
            await self.service.mark_read(cid)
        except GlosmsdError as exc:
            log.warning("mark as read failed: %s", exc.message)

    async def _reply(self, cid: int, text: str) -> None:
        try:
            conv = await self.service.resolve_conversation(cid)
            await self.service.send(conv.remote, text)
        except GlosmsdError as exc:
            log.warning("reply failed: %s", exc.message)
            if self.notifier is not None:
                await self.notifier.say("Reply not sent", exc.message)

    # -- tray commands

    def command_threadsafe(self, command: MenuCommand) -> None:
        """For the tray thread: run `command` on the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self.command, command)

    def command(self, command: MenuCommand) -> None:
        log.info("tray: %s %s", command.kind, "" if command.arg is None else command.arg)
        match command.kind:
            case "copy_number":
                self.tasks.spawn(self.copy_number(str(command.arg)), name="tray: copy number")
            case "open":
                self.tasks.spawn(self.open_conversation(int(command.arg)), name="tray: open")
            case "compose":
                self.tasks.spawn(self.open_popup(None), name="tray: compose")
            case "mark_all_read":
                self.tasks.spawn(self._mark_read(None), name="tray: mark all read")
            case "toggle_pref":
                self.tasks.spawn(self._toggle(str(command.arg)), name="tray: toggle pref")
            case "quit":
                self.on_quit()
            case _:
                log.warning("unknown tray command %r", command.kind)

    async def copy_number(self, number: str) -> None:
        from glosmsd.desktop import clip

        try:
            await asyncio.to_thread(clip.copy, number)
        except GlosmsdError as exc:
            self._say(exc.message)
            return
        self._say(f"Copied {number} to the clipboard")

    def _say(self, text: str) -> None:
        log.info("tray: %s", text)
        loop = asyncio.get_running_loop()
        self._notice = (f"glosmsd: {text}", loop.time() + COPIED_SECONDS)
        self._dirty.set()
        if self.notifier is not None:
            self.tasks.spawn(self.notifier.say("glosmsd", text), name="say")

    async def _toggle(self, key: str) -> None:
        try:
            current = await self.service.prefs_get(key)
            await self.service.prefs_set(key, not current)
        except GlosmsdError as exc:
            self._say(exc.message)

    async def open_conversation(self, conversation: int) -> None:
        """The SMS window at `conversation` (issue 15: the tray's unread menu and a
        notification's Open bring it up); the quick-send popup where there is no window."""
        if self.show_window is not None and await self.show_window(conversation):
            return
        await self.open_popup(conversation)  # no SMS window here (its port taken, no browser)

    async def open_popup(self, conversation: int | None) -> None:
        args = ["--conversation", str(conversation)] if conversation is not None else []
        env = {**os.environ, "GLOSMSD_SOCKET": str(self.socket_path)}
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "glosmsd.desktop.popup",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            log.warning("could not open the popup: %s", exc)
            return
        self.popups.append(proc)
        await proc.wait()
        self.popups.remove(proc)
