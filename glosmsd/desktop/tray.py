"""The tray icon and its menu: the only importer of pystray.

Threads (STYLE.md section 2): `Tray.run()` owns the main thread (pystray wants it). The
asyncio side hands it immutable `TrayState` snapshots with `show()`, which only puts the
snapshot on a queue and writes a byte to a wake-up pipe, so the event loop never waits on
the tray. On xorg the tray's own loop applies the newest snapshot; on other backends a
small feeder thread does, through pystray's setters. Menu clicks come back as `MenuCommand`
values through the `on_command` callback, which the daemon binds to
`loop.call_soon_threadsafe`. No lock is shared with the event loop.

Backends: with a pystray backend that has menus (appindicator, gtk, win32, darwin) the
menu is a pystray menu. The xorg backend (what plain X11 trays such as trayer get) has no
menu and some bugs in 0.19.5; `_xorg_icon_class` fixes them (the icon is redrawn in place
instead of re-docked, drawn at the tray's real size, clicks are handled, it docks when a
tray appears later) and a click posts the same menu as a small Tk popup menu in a process
of its own (`glosmsd.desktop.menu`: no Tk in the daemon).

One owner for the X connection (issue 12 item 2): on xorg every call on pystray's Xlib
display runs on the tray's thread. pystray's own setup thread used to dock and draw the
icon through that display while the tray's thread drew on it too, and one start in nine
hung for good (the main thread in `query_tree()` waiting on the display lock, the setup
thread waiting on pystray's queue). Here the setup thread does nothing on xorg; the
tray's thread docks, draws and applies every snapshot itself.

The menu's content is the pure `build_menu(state)`, tested without a display. This module
never touches the store, the link or the socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from glosmsd.desktop.icon import Look, draw_icon, flatten
from glosmsd.desktop.menu import MenuCommand, MenuEntry, chosen, menu_position, request

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MenuCommand",
    "MenuEntry",
    "PrefItem",
    "Tray",
    "TrayState",
    "build_menu",
    "menu_position",
]

log = logging.getLogger(__name__)

APP_NAME: Final = "glosmsd"
MENU_CONVERSATIONS: Final = 10
DEFAULT_PANEL: Final = (48, 48, 48)
#: The X client message `glosmsd doctor` sends the icon's window, and the property the
#: tray's thread answers on (the doctor's proof that the tray is not hung).
PING_ATOM: Final = "_GLOSMSD_PING"
PONG_ATOM: Final = "_GLOSMSD_PONG"
#: How long the tray may take to take the icon before it is asked again.
DOCK_RETRY: Final = 1.0
#: How long a menu process may take to end once it answered or was told to.
MENU_EXIT_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True)
class PrefItem:
    key: str
    label: str
    checked: bool
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TrayState:
    """Everything the tray shows, as one immutable snapshot."""

    unread: int = 0
    look: Look = Look.OFFLINE
    tooltip: str = "glosmsd: starting"
    number: str | None = None
    sharers: tuple[str, ...] = ()
    conversations: tuple[tuple[int, str, int, str], ...] = ()  # (id, title, unread, number)
    prefs: tuple[PrefItem, ...] = ()


SEPARATOR: Final = MenuEntry(separator=True)


def build_menu(state: TrayState) -> tuple[MenuEntry, ...]:
    """The tray menu for a state, top to bottom."""
    entries: list[MenuEntry] = []
    if state.number:
        entries.append(
            MenuEntry(
                f"My number: {state.number} (click to copy)",
                MenuCommand("copy_number", state.number),
                key="y",
            )
        )
    else:
        entries.append(MenuEntry("No SMS number assigned", enabled=False))
    if state.sharers:
        entries.append(MenuEntry("Multiple users share this number", enabled=False))
        entries.extend(MenuEntry(f"    {name}", enabled=False) for name in state.sharers)
    entries.append(SEPARATOR)
    if state.conversations:
        shown = state.conversations[:MENU_CONVERSATIONS]
        titles = [title for _cid, title, _count, _number in shown]
        for cid, title, count, number in shown:
            # Two numbers of one contact are two lines: tell them apart by the number.
            label = f"{title} · {number}" if titles.count(title) > 1 and number != title else title
            entries.append(MenuEntry(f"{label} ({count})", MenuCommand("open", cid)))
        extra = len(state.conversations) - MENU_CONVERSATIONS
        if extra > 0:
            entries.append(MenuEntry(f"… and {extra} more", MenuCommand("compose"), enabled=True))
    else:
        entries.append(MenuEntry("No unread messages", enabled=False))
    entries.append(
        MenuEntry(
            "Mark all as read", MenuCommand("mark_all_read"), enabled=state.unread > 0, key="M"
        )
    )
    entries.append(MenuEntry("New message…", MenuCommand("compose"), key="w"))
    entries.append(SEPARATOR)
    entries.extend(
        MenuEntry(p.label, MenuCommand("toggle_pref", p.key), enabled=p.enabled, checked=p.checked)
        for p in state.prefs
    )
    entries.append(SEPARATOR)
    entries.append(MenuEntry("Quit", MenuCommand("quit"), key="Q"))
    return tuple(entries)


def menu_labels(entries: tuple[MenuEntry, ...]) -> list[str]:
    return ["-" if e.separator else e.label for e in entries]


def render(state: TrayState, size: int) -> Image.Image:
    return draw_icon(size, state.unread, state.look)


# --------------------------------------------------------------------------- the tray


class Tray:
    """`Tray(on_command).run()` on the main thread; `show(state)` and `stop()` from anywhere."""

    def __init__(self, on_command: Callable[[MenuCommand], None]) -> None:
        self.on_command = on_command
        self._states: queue.SimpleQueue[TrayState | None] = queue.SimpleQueue()
        self._state = TrayState()
        self._icon: Any = None
        self._shown_title: str | None = None
        self._stopping = False
        self._menu: tuple[subprocess.Popen[bytes], tuple[MenuEntry, ...]] | None = None
        self.backend = ""
        # The xorg loop sleeps in select() on the X socket and this pipe: show() wakes it.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def show(self, state: TrayState) -> None:
        """Hand the tray a new snapshot; never blocks."""
        self._states.put(state)
        self._wake()

    def stop(self) -> None:
        """Leave `run()`; safe from any thread, also before or after run()."""
        self._stopping = True
        self._states.put(None)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    def take(self) -> TrayState | None:
        """The newest snapshot queued (None: stop), or the current one if none is queued."""
        # Empty the pipe first, then the queue: a show() in between leaves its byte in the
        # pipe (one spare wake-up). The other order lost it: the queue was drained, show()
        # queued a state and wrote its byte, and reading the pipe then swallowed that byte,
        # so the loop slept with a snapshot waiting (the tray stuck at "starting").
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._wake_r, 4096)
        state: TrayState | None = self._state
        while not self._states.empty():
            newer = self._states.get()
            state = None if newer is None or state is None else newer
        return state

    @property
    def state(self) -> TrayState:
        return self._state

    def _pick(self, command: MenuCommand) -> None:
        try:
            self.on_command(command)
        except Exception:
            log.exception("tray command %s failed", command.kind)

    def run(self) -> None:
        """Run the tray until `stop()`; raises ImportError/OSError if no tray can run."""
        import pystray

        self.backend = pystray.Icon.__module__.rsplit(".", 1)[-1].lstrip("_")
        if self.backend == "xorg":
            cls = _xorg_icon_class(pystray.Icon)
            icon = cls(APP_NAME, render(self._state, 64), self._state.tooltip)
            icon.tray = self
        else:
            icon = pystray.Icon(
                APP_NAME,
                render(self._state, 64),
                self._state.tooltip,
                menu=pystray.Menu(lambda: self._pystray_items(pystray)),
            )
        self._icon = icon
        feeder = threading.Thread(target=self._feed, name="tray-feeder", daemon=True)

        def setup(ic: Any) -> None:
            ic.visible = True
            feeder.start()

        if self._stopping:
            return
        log.info("tray: pystray backend %s", self.backend)
        # On xorg the tray's own thread shows the icon (XorgIcon._run): pystray's setup
        # thread must not touch the X connection.
        icon.run(_nothing if self.backend == "xorg" else setup)

    def _pystray_items(self, pystray: Any) -> tuple[Any, ...]:
        def item(entry: MenuEntry) -> Any:
            if entry.separator:
                return pystray.Menu.SEPARATOR
            command = entry.command
            return pystray.MenuItem(
                entry.label,
                (lambda _icon, _item: self._pick(command)) if command else None,
                enabled=entry.enabled and command is not None,
                checked=(lambda _item: bool(entry.checked)) if entry.checked is not None else None,
            )

        return tuple(item(e) for e in build_menu(self._state))

    def _feed(self) -> None:
        """Apply the newest snapshot to pystray (this thread may wait on the tray's thread)."""
        while True:
            state = self._states.get()
            while not self._states.empty():  # only the newest matters
                newer = self._states.get()
                state = newer if state is not None and newer is not None else None
            if state is None:
                self._stop_icon()
                return
            try:
                self._apply(state)
            except Exception:
                log.exception("tray update failed")

    def apply(self, state: TrayState) -> None:
        """On the xorg thread: show `state` now."""
        self._apply(state)

    def _apply(self, state: TrayState) -> None:
        icon = self._icon
        old, self._state = self._state, state
        if (old.unread, old.look) != (state.unread, state.look) or not getattr(
            icon, "_drawn", True
        ):
            icon.icon = render(state, 64)
        if old.tooltip != state.tooltip:
            icon.title = state.tooltip
        if self.backend == "xorg" and icon.visible and self._shown_title != state.tooltip:
            # pystray keeps a title set before the icon is visible without writing it to the
            # window: the tooltip stayed "starting" when the first snapshot beat setup().
            icon._update_title()
            self._shown_title = state.tooltip
        if self.backend != "xorg":
            icon.update_menu()

    @property
    def wake_fd(self) -> int:
        return self._wake_r

    def _stop_icon(self) -> None:
        icon = self._icon
        if icon is None:
            return
        if self.backend == "xorg":
            icon.stop_soon()
        else:
            icon.stop()

    # -- called on the xorg thread

    def clicked(self, icon: tuple[int, int, int, int]) -> None:
        """The icon at (x, y, w, h) on the screen was clicked: post the menu by it (a
        click while it is up closes it)."""
        if self._menu is not None:
            self.close_menu()
            return
        entries = build_menu(self._state)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "glosmsd.desktop.menu"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("the tray menu could not be shown: %s", exc)
            return
        log.info("tray menu: %s", " | ".join(menu_labels(entries)))
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(request(entries, icon))
        with contextlib.suppress(OSError):
            proc.stdin.close()
        self._menu = (proc, entries)

    @property
    def menu_fd(self) -> int | None:
        """The open menu's answer pipe, while a menu is up."""
        if self._menu is None:
            return None
        out = self._menu[0].stdout
        return out.fileno() if out is not None else None

    def menu_answered(self) -> None:
        """The menu process wrote its answer (or closed): run what was chosen."""
        if self._menu is None:
            return
        proc, entries = self._menu
        self._menu = None
        assert proc.stdout is not None
        try:
            answer = proc.stdout.read()
        except OSError:
            answer = b""
        proc.stdout.close()
        try:
            proc.wait(MENU_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode:
            log.warning("the tray menu ended with status %s", proc.returncode)
        command = chosen(entries, answer)
        if command is not None:
            self._pick(command)

    def close_menu(self) -> None:
        if self._menu is None:
            return
        proc, _entries = self._menu
        self._menu = None
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(MENU_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _nothing(_icon: Any) -> None:
    return None


def _ignore(_event: Any) -> None:
    return None


def _xorg_icon_class(base: Any) -> Any:
    """pystray's xorg Icon with its 0.19.5 bugs worked around (see the module docstring)."""
    # Long on purpose (issue 14): the body is one class, whose base (pystray's backend
    # class) exists only once pystray has chosen its backend at run time, so it can only
    # be defined in here; each of its methods is short.
    import Xlib.X
    import Xlib.Xatom

    class XorgIcon(base):  # type: ignore[misc]
        tray: Tray
        _icon_data: Any
        _systray_manager: Any

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # pystray never asks for button events, so clicks were never delivered.
            self._window.change_attributes(
                event_mask=Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask
            )
            self._panel: tuple[int, int, int] | None = None
            # Late requests for a window that is already gone are expected at shutdown.
            self._display.set_error_handler(lambda err, *_a: log.debug("tray: X error %s", err))
            env = os.environ.get("GLOSMSD_TRAY_BG", "")
            if env.startswith("#") and len(env) == 7:
                self._panel = (int(env[1:3], 16), int(env[3:5], 16), int(env[5:7], 16))
            # A tray host that starts (or restarts) after us announces itself with a
            # MANAGER message on the root window: dock then (upstream never did, so an icon
            # started before its tray, or after a crashed run, never docked).
            self._manager = self._display.intern_atom("MANAGER")
            self._ping = self._display.intern_atom(PING_ATOM)
            self._pong = self._display.intern_atom(PONG_ATOM)
            self._display.screen().root.change_attributes(event_mask=Xlib.X.StructureNotifyMask)
            upstream = self._message_handlers[Xlib.X.ClientMessage]

            def on_client_message(event: Any) -> None:
                if event.client_type == self._manager:
                    if not self._systray_manager:
                        log.info("tray: a system tray appeared; docking")
                        self._update_icon()
                elif event.client_type == self._ping:
                    self._answer_ping(event)
                else:
                    upstream(event)

            self._message_handlers[Xlib.X.ClientMessage] = on_client_message
            self._message_handlers[Xlib.X.ReparentNotify] = self._on_reparent
            self._dock_asked: float | None = None  # when the dock request went, until docked

        def _run(self) -> None:
            # Upstream marks itself ready before it records its thread, so the setup
            # thread's first update can fail on the missing `_thread` (a silent race).
            # Everything on the display happens on this thread from here on: showing the
            # icon too (pystray's setup thread did that, racing this one).
            self._thread = threading.current_thread()
            self._mark_ready()
            self.visible = True
            self._mainloop()

        def _show(self) -> None:
            try:
                self._assert_docked()
            except AssertionError:
                log.warning("tray: no system tray to dock into yet; docking when one starts")

        def _on_destroy_notify(self, event: Any) -> None:
            manager = self._systray_manager
            if manager is None or event.window.id != manager.id:
                return
            self._systray_manager = None
            log.warning("tray: the system tray went away; docking when one starts")
            with contextlib.suppress(AssertionError):
                self._assert_docked()

        def _dock_window(self) -> None:
            super()._dock_window()
            if self._systray_manager:
                self._dock_asked = time.monotonic()

        def _on_reparent(self, event: Any) -> None:
            if event.window != self._window:
                return
            if event.parent != self._display.screen().root:
                self._dock_asked = None  # the tray took the icon
            elif self._systray_manager and self._dock_asked is None:
                # Taken and handed back (trayer did that when it found the previous run's
                # icon gone under the same window id): ask again shortly.
                log.info("tray: the system tray let go of the icon")
                self._dock_asked = time.monotonic()

        def dock_timeout(self) -> float | None:
            """Seconds until the dock request is asked again (None: nothing pending)."""
            if self._dock_asked is None:
                return None
            return max(0.0, self._dock_asked + DOCK_RETRY - time.monotonic())

        def dock_again(self) -> None:
            # A tray can drop a request: trayer ignored one for a window id it still had
            # from the previous run (X hands a new client the same ids), and the icon stayed
            # undocked for good (1 start in 10).
            log.info("tray: the system tray did not take the icon; asking again")
            self._systray_manager = None
            self._dock_asked = None
            self._update_icon()

        def _answer_ping(self, event: Any) -> None:
            """`glosmsd doctor` asks whether this thread is alive: answer on the window."""
            serial = int(event.data[1][0])
            self._window.change_property(self._pong, Xlib.Xatom.CARDINAL, 32, [serial])
            self._display.flush()

        def _update_icon(self) -> None:
            # Upstream re-docks on every update (the icon jumps and can end up 1 px wide):
            # dock only when not docked, otherwise redraw in place.
            if not self._systray_manager:
                try:
                    self._assert_docked()
                except AssertionError:
                    log.warning("tray: no system tray to dock into yet")
                    return
            self._icon_data = None
            self._draw()
            self._icon_valid = True

        def _assert_icon_data(self, width: int, height: int) -> None:
            if self._icon_data and self._icon_data.size == (width, height):
                return
            size = max(8, min(width, height))
            image = render(self.tray.state, size)
            panel = self._panel or self._panel_colour()
            from PIL import Image

            canvas = Image.new("RGB", (width, height), panel)
            canvas.paste(flatten(image, panel), ((width - size) // 2, (height - size) // 2))
            self._icon_data = canvas
            self._icon_data.tostring = self._icon_data.tobytes

        def _panel_colour(self) -> tuple[int, int, int]:
            """The tray's background colour, sampled from the window we are docked in."""
            try:
                parent = self._window.query_tree().parent
                geo = self._window.get_geometry()
                raw = parent.get_image(geo.x, geo.y, 1, 1, Xlib.X.ZPixmap, 0xFFFFFFFF)
                b, g, r = raw.data[0], raw.data[1], raw.data[2]
                return (r, g, b)
            except Exception:
                return DEFAULT_PANEL

        def _on_button_press(self, event: Any) -> None:
            self.tray.clicked(self._screen_rect(event))

        def _screen_rect(self, event: Any) -> tuple[int, int, int, int]:
            """The icon's rectangle on the screen (the click point if X cannot say)."""
            try:
                geo = self._window.get_geometry()
                root = self._display.screen().root
                at = root.translate_coords(self._window, 0, 0)
                return int(at.x), int(at.y), int(geo.width), int(geo.height)
            except Exception:
                return int(event.root_x), int(event.root_y), 1, 1

        def _mainloop(self) -> None:
            # Upstream blocks in next_event() and takes updates from other threads through
            # a request/reply hand-off that could hang for good; here updates arrive on a
            # pipe and are applied on this thread, and stopping never waits on anyone.
            display = self._display
            tray = self.tray
            try:
                while True:
                    while display.pending_events():
                        event = display.next_event()
                        if event.type == Xlib.X.DestroyNotify and event.window == self._window:
                            return
                        self._message_handlers.get(event.type, _ignore)(event)
                    fds = [display.fileno(), tray.wake_fd]
                    menu = tray.menu_fd
                    if menu is not None:
                        fds.append(menu)
                    wait = self.dock_timeout()
                    ready, _w, _x = select.select(fds, [], [], wait)
                    if not ready and wait is not None:
                        self.dock_again()
                        continue
                    if menu is not None and menu in ready:
                        tray.menu_answered()
                    if tray.wake_fd in ready:
                        state = tray.take()
                        if state is None:
                            tray.close_menu()
                            self.stop_soon()
                            continue
                        tray.apply(state)
                        display.flush()
            except Exception:
                log.exception("tray: the X event loop failed")

        def stop_soon(self) -> None:
            """Ask the X thread to end without waiting for it (upstream stop() can deadlock)."""
            try:
                self._window.destroy()
                self._display.flush()
            except Exception:
                log.debug("tray already stopped", exc_info=True)

    return XorgIcon
