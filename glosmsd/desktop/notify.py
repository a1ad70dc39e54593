"""Desktop notifications: the only importer of desktop_notifier.

One notification per conversation (`key`): a new one first closes the previous one, so
they never pile up. Every call to the notification server is bounded by `timeout`: a
server that accepts the connection and never answers (desktop-notifier then waits
forever) costs a log line, never a stuck daemon. When the sound is wanted, the
notification carries the bundled chime as a `sound-file` hint; where the server cannot
play sounds (no "sound" capability, e.g. dunst) the chime is played here with whatever
player the system has.

Runs on the daemon's event loop; it never talks to the store, the link or the socket:
the actions it reports (`open`, `reply`, `read`) go back through `on_action`.

A click on a notification opens its conversation (`open`, the default action). dunst's
default left click only closes a notification ("dismissed by the user", never the default
action); on dunst one of ours dismissed on its own is taken as that click, so it opens the
conversation too. A dismissal of several at once (dunst's right click closes all) opens
nothing. No traceback from the notification server's side ever reaches the terminal: what
fails is one log line (the traceback only at debug level).

Once the user acted on a notification it is closed here: servers such as dunst leave that
to the app, and a "Mark as read" that stays on screen looks like it did not work.
desktop-notifier forgets a notification's D-Bus id before it reports the action, so its
`clear()` cannot do this; `_dbus_ids` keeps the id from the send (desktop-notifier 6.x
internals, read in one place; without them the notification simply stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)

ASSETS: Final = resources.files("glosmsd") / "assets"
SOUND_FILE: Final = Path(str(ASSETS / "chime.wav"))
ICON_FILE: Final = Path(str(ASSETS / "glosmsd.png"))
#: Players tried in order for the chime when the notification server has no sound.
PLAYERS: Final = (
    ("pw-play",),
    ("paplay",),
    ("aplay", "-q"),
    ("afplay",),
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"),
)
ACTIONS: Final = (("open", "Open"), ("reply", "Reply"), ("read", "Mark as read"))
#: Notification servers whose click closes a notification instead of running its default
#: action (dunst: `mouse_left_click = close_current`): there a dismissal is the click.
CLICK_CLOSES: Final = frozenset({"dunst"})
#: Dismissals this close together are one gesture (close all), not a click on one.
DISMISS_GESTURE: Final = 0.3


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification: `key` names the conversation it replaces within."""

    key: str
    title: str
    body: str
    sound: bool


class Notifier:
    def __init__(
        self,
        on_action: Callable[[str, str, str | None], Any],
        *,
        tasks: Supervisor,
        app_name: str = "glosmsd",
        timeout: float = 5.0,
    ) -> None:
        from desktop_notifier import DesktopNotifier, Icon

        self._dn = DesktopNotifier(app_name=app_name, app_icon=Icon(path=ICON_FILE))
        self.on_action = on_action
        self.timeout = timeout
        self._shown: dict[str, str] = {}  # key -> desktop-notifier identifier
        self._ids: dict[str, int] = {}  # desktop-notifier identifier -> D-Bus id
        self._caps: frozenset[Any] | None = None
        self._player: tuple[str, ...] | None = None
        self._looked_up = False
        #: Closing an acted-on notification and playing the chime run as its chores.
        self.tasks = tasks
        self._server: str | None = None  # the notification server's name, once asked
        self._dismissed: list[str] = []  # keys dismissed within one gesture
        self._gesture: asyncio.TimerHandle | None = None

    async def _bounded(self, what: str, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self.timeout)
        except TimeoutError:
            log.warning("notification server did not answer %s within %.0f s", what, self.timeout)
        except Exception as exc:  # one line; the traceback only for -vv
            log.warning("notification %s failed: %s", what, exc or type(exc).__name__)
            log.debug("notification %s failed", what, exc_info=True)
        return None

    async def capabilities(self) -> frozenset[Any]:
        if self._caps is None:
            caps = await self._bounded("capabilities", self._dn.get_capabilities())
            if caps is None:
                return frozenset()
            self._caps = frozenset(caps)
        return self._caps

    async def show(self, alert: Alert) -> bool:
        """Show (or replace) the notification for `alert.key`; False if it did not go out."""
        from desktop_notifier import Button, Capability, ReplyField, Sound

        caps = await self.capabilities()
        if self._server is None:
            self._server = await self._server_name()
        await self.clear(alert.key)
        key = alert.key
        buttons = [
            Button(title, functools.partial(self._act, key, action), identifier=action)
            for action, title in ACTIONS
            if not (action == "reply" and Capability.REPLY_FIELD in caps)
        ]
        reply = (
            ReplyField(
                title="Reply", button_title="Send", on_replied=lambda t: self._act(key, "reply", t)
            )
            if Capability.REPLY_FIELD in caps
            else None
        )
        ident = await self._bounded(
            "send",
            self._dn.send(
                alert.title,
                alert.body,
                buttons=buttons,
                reply_field=reply,
                on_clicked=lambda: self._act(key, "open"),
                on_dismissed=lambda: self._on_dismissed(key),
                sound=Sound(path=SOUND_FILE) if alert.sound else None,
            ),
        )
        if ident is None:
            return False
        self._shown[key] = str(ident)
        dbus_id = self._dbus_ids().get(str(ident))
        if dbus_id is not None:
            self._ids[str(ident)] = dbus_id
        if alert.sound and Capability.SOUND not in caps:
            self._play_chime()
        return True

    async def say(self, title: str, body: str) -> None:
        """A short feedback notification (e.g. "copied"), not tied to a conversation."""
        await self._bounded("send", self._dn.send(title, body, timeout=3))

    async def clear(self, key: str) -> None:
        ident = self._shown.pop(key, None)
        if ident is None:
            return
        self._ids.pop(ident, None)
        # Closed on the server's side already (dismissed, timed out): desktop-notifier
        # has forgotten it and its clear() would raise KeyError.
        if ident in self._dbus_ids():
            await self._bounded("clear", self._dn.clear(ident))

    @property
    def shown(self) -> frozenset[str]:
        return frozenset(self._shown)

    def _act(self, key: str, action: str, text: str | None = None) -> None:
        ident = self._shown.pop(key, None)
        dbus_id = self._ids.pop(ident, None) if ident is not None else None
        if dbus_id is not None:
            self.tasks.spawn(self._close_acted(dbus_id), name="close notification")
        try:
            self.on_action(key, action, text)
        except Exception:
            log.exception("notification action %s failed", action)

    def _on_dismissed(self, key: str) -> None:
        """The user closed the notification of `key` without an action."""
        ident = self._shown.pop(key, None)
        if ident is not None:
            self._ids.pop(ident, None)
        if self._server not in CLICK_CLOSES:
            return
        self._dismissed.append(key)
        if self._gesture is None:
            loop = asyncio.get_running_loop()
            self._gesture = loop.call_later(DISMISS_GESTURE, self._gesture_over)

    def _gesture_over(self) -> None:
        keys, self._dismissed, self._gesture = self._dismissed, [], None
        if len(keys) == 1:  # one closed by a click: that is dunst's click on it
            try:
                self.on_action(keys[0], "open", None)
            except Exception:
                log.exception("notification action open failed")

    async def _server_name(self) -> str:
        """The notification server's name (GetServerInformation), "" if it cannot say."""
        backend = getattr(self._dn, "_backend", None)
        bus = getattr(backend, "bus", None)
        if bus is None:
            return ""
        try:
            from dbus_fast import Message

            reply = await asyncio.wait_for(
                bus.call(
                    Message(
                        destination="org.freedesktop.Notifications",
                        path="/org/freedesktop/Notifications",
                        interface="org.freedesktop.Notifications",
                        member="GetServerInformation",
                    )
                ),
                self.timeout,
            )
            return str(reply.body[0]) if reply is not None and reply.body else ""
        except Exception as exc:  # the name only tunes the click; without it, none is taken
            log.debug("notification server information: %s", exc)
            return ""

    def _dbus_ids(self) -> Mapping[str, int]:
        """desktop-notifier identifier -> D-Bus id, while desktop-notifier still knows it."""
        backend = getattr(self._dn, "_backend", None)
        table = getattr(backend, "_platform_to_interface_notification_identifier", None)
        inverse = getattr(table, "inverse", None)
        return inverse if isinstance(inverse, Mapping) else {}

    async def _close_acted(self, dbus_id: int) -> None:
        interface = getattr(getattr(self._dn, "_backend", None), "interface", None)
        close = getattr(interface, "call_close_notification", None)
        if close is not None:
            await self._bounded("close", close(dbus_id))

    def _play_chime(self) -> None:
        if not self._looked_up:
            self._looked_up = True
            self._player = next((p for p in PLAYERS if shutil.which(p[0])), None)
            if self._player is None:
                log.info("no sound player found (pw-play, paplay, aplay): the chime stays silent")
        if not self._player:
            return
        self.tasks.spawn(self._run_player((*self._player, str(SOUND_FILE))), name="chime")

    @staticmethod
    async def _run_player(cmd: tuple[str, ...]) -> None:
        with contextlib.suppress(OSError):
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
