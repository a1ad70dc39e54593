"""Showing the SMS window on the desktop: what opens the one-time URL, starting it, and
bringing a window that is already open to the front.

The order (issue 15): `window_command` from the config; else pywebview when it is
importable (the `[window]` extra), in a process of its own that reads the URL from its
standard input; else a Chromium-family browser as an app window (`--app=URL`) with a
profile of its own (`--user-data-dir` under the state dir: without one, a browser that is
already running takes the URL and the launched process exits at once); else the default
browser (`webbrowser.open`).

The URL carries a token, and other users can read command lines (`ps`); the token is
spent within a second, and the window refuses connections of other users anyway
(`glosmsd.desktop.window.peer`).

`glosms open` runs this, so it never imports asyncio (the import-linter contract "The CLI
path stays light"); the daemon runs it in a thread.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from glosmsd.core.errors import Unsupported

log = logging.getLogger(__name__)

#: Chromium-family browsers, by the names their packages install them under.
CHROMIUM_FAMILY: Final = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
    "brave-browser",
    "brave",
)
#: The same on macOS, where they live in app bundles.
MAC_APPS: Final = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    "/Applications/Brave Browser.app/Contents/MacOS/Brave Browser",
)
WINDOW_CLASS: Final = "glosmsd"
WINDOW_SIZE: Final = "1100,760"
WEBVIEW_MODULE: Final = "glosmsd.desktop.window.webview"

Kind = Literal["command", "webview", "chromium", "browser"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to show a URL: run `argv` (with `stdin` on its standard input), or hand the
    URL to the default browser (`kind` "browser", no argv)."""

    kind: Kind
    name: str
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None


@dataclass(frozen=True, slots=True)
class Launched:
    name: str
    pid: int | None


def has_webview() -> bool:
    return importlib.util.find_spec("webview") is not None


def _find_chromium(which: Callable[[str], str | None], platform: str) -> str | None:
    for name in CHROMIUM_FAMILY:
        found = which(name)
        if found:
            return found
    if platform == "darwin":
        for app in MAC_APPS:
            if os.path.exists(app):
                return app
    return None


def plan(
    url: str,
    *,
    command: Sequence[str] | None,
    profile: Path,
    which: Callable[[str], str | None] = shutil.which,
    webview: Callable[[], bool] = has_webview,
    platform: str = sys.platform,
    as_root: bool | None = None,
) -> Plan:
    """What `launch` will do for `url`, in the order the module docstring gives."""
    if command:
        words = list(command)
        if any("{url}" in w for w in words):
            argv = tuple(w.replace("{url}", url) for w in words)
        else:
            argv = (*words, url)
        return Plan("command", f"window_command ({Path(words[0]).name})", argv)
    if webview():
        argv = (sys.executable, "-m", WEBVIEW_MODULE, "--storage", str(profile / "webview"))
        return Plan("webview", "pywebview", argv, stdin=url.encode() + b"\n")
    browser = _find_chromium(which, platform)
    if browser is not None:
        argv_list = [
            browser,
            f"--app={url}",
            f"--user-data-dir={profile / 'chromium'}",
            f"--class={WINDOW_CLASS}",
            f"--window-size={WINDOW_SIZE}",
            "--no-first-run",
            "--no-default-browser-check",
        ]
        root = (os.geteuid() == 0) if as_root is None and hasattr(os, "geteuid") else as_root
        if root:
            # Chromium refuses to start as root without it; its sandbox needs a user.
            argv_list.append("--no-sandbox")
        return Plan("chromium", Path(browser).name, tuple(argv_list))
    return Plan("browser", "the default browser")


def launch(
    url: str,
    *,
    command: Sequence[str] | None,
    profile: Path,
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    webview: Callable[[], bool] = has_webview,
) -> Launched:
    """Show `url` in an app window; returns what was started. The window runs on its own:
    in a session of its own, so neither a Ctrl+C in the terminal nor the daemon stopping
    takes it down. Raises `Unsupported` when nothing can show it."""
    chosen = plan(url, command=command, profile=profile, which=which, webview=webview)
    if chosen.kind == "browser":
        if not webbrowser.open(url, new=1):
            raise Unsupported(
                "No browser found to show the SMS window. Install Chromium (or set "
                "window_command in config.toml), or open this link yourself within 60 s: "
                f"{url}"
            )
        return Launched(chosen.name, None)
    profile.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        proc = start_detached(chosen.argv, env, stdin=chosen.stdin is not None)
    except OSError as exc:
        raise Unsupported(
            f"Cannot start {chosen.name} ({chosen.argv[0]}: {exc.strerror or exc}). Check "
            "window_command in config.toml, or open the link yourself within 60 s: " + url
        ) from exc
    if chosen.stdin is not None and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(chosen.stdin)
        with contextlib.suppress(OSError):
            proc.stdin.close()
    log.info("window: started %s (pid %d)", chosen.name, proc.pid)
    return Launched(chosen.name, proc.pid)


def start_detached(
    argv: Sequence[str], env: Mapping[str, str] | None, *, stdin: bool = False
) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own with its output dropped (and a pipe to its
    standard input when `stdin`): a Ctrl+C in the terminal or the daemon stopping leaves
    it running."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=None if env is None else dict(env),
        start_new_session=True,
        close_fds=True,
    )


# ---------------------------------------------------------------------------- focusing


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_ours(cmdline: Sequence[str], profile: Path) -> bool:
    """Whether a process with this command line shows our window: the app window with our
    profile, or our pywebview process."""
    marker = f"--user-data-dir={profile / 'chromium'}"
    return marker in cmdline or (WEBVIEW_MODULE in cmdline and str(profile / "webview") in cmdline)


def raise_window(profile: Path, *, display: str | None = None) -> bool:
    """Bring the SMS window to the front on X11; False when there is none to find (another
    window_command, Wayland, another OS). The page is told to show the conversation either
    way, so this only decides whether the user sees it come forward."""
    display = display or os.environ.get("DISPLAY")
    if not display or not sys.platform.startswith("linux"):
        return False
    try:
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib import error as xerror
        from Xlib import protocol as xprotocol
    except ImportError:
        return False
    try:
        dpy = xdisplay.Display(display)
    except Exception as exc:  # Xlib raises its own and OSError subclasses alike
        log.info("window: cannot reach the display %s to raise the window: %s", display, exc)
        return False
    try:
        root = dpy.screen().root
        net_pid = dpy.intern_atom("_NET_WM_PID")
        active = dpy.intern_atom("_NET_ACTIVE_WINDOW")
        found = False
        for win in _client_windows(dpy, root):
            try:
                prop = win.get_full_property(net_pid, X.AnyPropertyType)
            except xerror.XError:
                continue
            if not prop or not prop.value:
                continue
            if not is_ours(_cmdline(int(prop.value[0])), profile):
                continue
            attrs = win.get_attributes()
            if attrs.map_state != X.IsViewable:
                continue
            # Through the window manager first (it decides what is in front), then
            # directly, for a bare X server without one.
            event = xprotocol.event.ClientMessage(
                window=win, client_type=active, data=(32, [2, X.CurrentTime, 0, 0, 0])
            )
            root.send_event(event, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
            win.configure(stack_mode=X.Above)
            with contextlib.suppress(xerror.XError):
                win.set_input_focus(X.RevertToParent, X.CurrentTime)
            found = True
        dpy.sync()
        return found
    finally:
        dpy.close()


def _client_windows(dpy: Any, root: Any) -> list[Any]:
    """Top-level application windows: the window manager's list when it keeps one, else
    the root's children and their children (a reparenting manager's frames)."""
    from Xlib import X

    prop = root.get_full_property(dpy.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
    if prop is not None and len(prop.value):
        return [dpy.create_resource_object("window", int(w)) for w in prop.value]
    out: list[Any] = []
    for child in root.query_tree().children:
        out.append(child)
        with contextlib.suppress(Exception):
            out.extend(child.query_tree().children)
    return out
