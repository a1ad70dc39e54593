"""Starting glosmsd at login: the files each desktop wants, and putting them in place.

The renderers return file text: the systemd user unit, the XDG autostart entry, the
"Send SMS" launcher for the quick-send popup (`glosms compose`), the macOS launchd agent
and the Windows startup script. `packaging/` holds them rendered with a distribution's
paths (`python -m glosmsd.cli.autostart --write packaging/` regenerates it, and a test fails
when it is stale), so there is one copy of each text: this module.

`install()` writes the same text with this installation's absolute paths for the current
user (`glosmsd setup` offers it), `remove()` takes it away again. On Linux the XDG
autostart entry is the default: every XDG desktop runs it, and a systemd-managed session
turns it into a unit by itself; the systemd unit (restart on crash) is chosen when the
user manager runs the graphical session, or when asked for.

Rendering is pure. Only `install`, `remove`, `write_packaging` and `main` touch files, and
only `_systemctl` and `_launchctl` run programs. This module must never start or stop the
daemon, talk to the server, or import anything heavy (it runs on the CLI's path).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from glosmsd.core.errors import GlosmsdError, Unsupported
from glosmsd.system.atomicwrite import write_atomic

UNIT_NAME: Final = "glosmsd.service"
AUTOSTART_NAME: Final = "glosmsd.desktop"
LAUNCHER_NAME: Final = "glosms-compose.desktop"
LAUNCHD_LABEL: Final = "com.glosmsd.daemon"
PLIST_NAME: Final = f"{LAUNCHD_LABEL}.plist"
WINDOWS_SCRIPT_NAME: Final = "glosmsd-startup.ps1"
README_NAME: Final = "README.md"

#: glosmsd's exit code for a start that cannot succeed by trying again (bad config,
#: another glosmsd already running): `daemon_cli.run_async`. Restarting on it only loops.
EXIT_NO_RETRY: Final = 2

#: Where a distribution puts the programs: systemd and launchd want absolute paths.
PACKAGED_DAEMON_LINUX: Final = "/usr/bin/glosmsd"
PACKAGED_DAEMON_MACOS: Final = "/usr/local/bin/glosmsd"

DESCRIPTION: Final = "SMS and MMS from your phone extension on the desktop"
REGENERATE: Final = "python -m glosmsd.cli.autostart --write packaging/"

Method = Literal["xdg", "systemd", "launchd"]
METHODS: Final[tuple[Method, ...]] = get_args(Method)


# --------------------------------------------------------------------------- quoting


def desktop_exec(argv: Sequence[str]) -> str:
    """`argv` as the value of a desktop entry's `Exec=` key (Desktop Entry spec 1.5).

    An argument with a reserved character is double-quoted, with `"`, backquote, `$` and
    backslash escaped inside; `%` is doubled (field codes); then the value gets the
    string escaping every key has, so each backslash is written twice.
    """
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    words = []
    for arg in argv:
        if not arg or any(ord(c) < 0x20 or c == "\x7f" for c in arg):
            raise ValueError(f"cannot start a program with the argument {arg!r}")
        word = arg.replace("%", "%%")
        if any(c in reserved for c in arg):
            inner = "".join("\\" + c if c in '"`$\\' else c for c in word)
            word = f'"{inner}"'
        words.append(word.replace("\\", "\\\\"))
    return " ".join(words)


def systemd_exec(argv: Sequence[str]) -> str:
    """`argv` as an `ExecStart=` line: quoted where needed, `%` doubled (specifiers).

    `$` is doubled in the arguments only: systemd expands variables there, not in the
    program's path, and it refuses a path with quotes or backslashes at all.
    """
    words = []
    for i, arg in enumerate(argv):
        if not arg or any(ord(c) < 0x20 or c == "\x7f" for c in arg):
            raise ValueError(f"cannot start a program with the argument {arg!r}")
        if i == 0 and any(c in "\"'\\" for c in arg):
            raise ValueError(f"systemd cannot start a program at {arg!r} (quotes, backslash)")
        word = arg.replace("%", "%%")
        if i > 0:
            word = word.replace("$", "$$")
        if any(c.isspace() or c in "\"'\\;" for c in arg):
            word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
        words.append(word)
    return " ".join(words)


# --------------------------------------------------------------------------- renderers


def render_systemd_unit(daemon: Sequence[str]) -> str:
    """The systemd user unit that runs `daemon` with the graphical session."""
    return f"""\
# glosmsd as a systemd user service: it starts with your graphical session (the tray icon
# and notifications need it), stops with it, and restarts after a crash. Log lines go to
# the journal: journalctl --user -u glosmsd
#   systemctl --user enable --now glosmsd.service
# Generated from glosmsd/cli/autostart.py: edit that, then run
#   {REGENERATE}

[Unit]
Description=glosmsd: {DESCRIPTION}
PartOf=graphical-session.target
After=graphical-session.target
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
# exec: a missing or broken program fails the start instead of looking started.
Type=exec
ExecStart={systemd_exec(daemon)}
Restart=on-failure
RestartSec=5
# Exit {EXIT_NO_RETRY}: a bad config, or another glosmsd runs already. Restarting won't help.
RestartPreventExitStatus={EXIT_NO_RETRY}
TimeoutStopSec=20

[Install]
# Without a desktop (a server): systemctl --user add-wants default.target glosmsd.service
WantedBy=graphical-session.target
"""


def render_autostart_entry(daemon: Sequence[str], icon: str) -> str:
    """The XDG autostart entry (`~/.config/autostart`, `/etc/xdg/autostart`)."""
    return f"""\
[Desktop Entry]
Type=Application
Name=glosmsd
GenericName=SMS daemon
Comment=Your extension's SMS and MMS: unread count in the tray, notifications
Exec={desktop_exec(daemon)}
Icon={icon}
Terminal=false
NoDisplay=true
StartupNotify=false
X-GNOME-Autostart-enabled=true
X-KDE-autostart-after=panel
"""


def render_compose_entry(cli: Sequence[str], icon: str) -> str:
    """The "Send SMS" application launcher: the quick-send popup, for menus and hotkeys."""
    return f"""\
[Desktop Entry]
Type=Application
Name=Send SMS
GenericName=Quick SMS
Comment=Send an SMS or MMS from your extension's number (needs glosmsd running)
Exec={desktop_exec([*cli, "compose"])}
Icon={icon}
Terminal=false
Categories=Network;InstantMessaging;
Keywords=SMS;MMS;text;message;glosmsd;
StartupNotify=false
"""


def render_launchd_plist(daemon: Sequence[str]) -> str:
    """The macOS launch agent: runs `daemon` in the user's GUI session, again after a crash.

    launchd cannot skip one exit code, so a start that keeps failing is slowed down by
    `ThrottleInterval` instead (the daemon's log file in the state dir says why).
    """
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(daemon),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
        "ThrottleInterval": 30,
    }
    return plistlib.dumps(agent, sort_keys=False).decode("utf-8")


def render_windows_script() -> str:
    """PowerShell that puts (or with -Remove takes away) a Startup-folder shortcut."""
    return f"""\
# glosmsd: start the glosmsd daemon when you log in to Windows.
#
#   powershell -ExecutionPolicy Bypass -File {WINDOWS_SCRIPT_NAME}          # add it
#   powershell -ExecutionPolicy Bypass -File {WINDOWS_SCRIPT_NAME} -Remove  # take it away
#
# It puts a shortcut to glosmsd (the one on PATH, e.g. from pipx) in your Startup folder.
# Generated from glosmsd/cli/autostart.py: edit that, then run
#   {REGENERATE}
[CmdletBinding()]
param([switch]$Remove)

$ErrorActionPreference = 'Stop'
$startup = [Environment]::GetFolderPath('Startup')
$shortcut = Join-Path $startup 'glosmsd.lnk'

if ($Remove) {{
    if (Test-Path -LiteralPath $shortcut) {{
        Remove-Item -LiteralPath $shortcut
        Write-Output "Removed ${{shortcut}}; glosmsd no longer starts when you log in."
    }} else {{
        Write-Output "Nothing to remove (no ${{shortcut}})."
    }}
    exit 0
}}

$command = Get-Command -Name 'glosmsd' -CommandType Application -ErrorAction SilentlyContinue |
    Select-Object -First 1
if (-not $command) {{
    [Console]::Error.WriteLine('glosmsd is not on PATH: install it first, then run this again.')
    exit 1
}}
$shell = New-Object -ComObject WScript.Shell
$link = $shell.CreateShortcut($shortcut)
$link.TargetPath = $command.Source
$link.WorkingDirectory = $env:USERPROFILE
$link.WindowStyle = 7  # minimized: glosmsd is a console program
$link.Description = 'glosmsd: {DESCRIPTION}'
$link.Save()
Write-Output "glosmsd will start when you log in (${{shortcut}} starts $($command.Source))."
"""


def render_packaging_readme() -> str:
    """What each file in `packaging/` is for and where it goes."""
    rows = (
        (
            UNIT_NAME,
            "systemd user unit: starts with the graphical session, restarts after a crash, "
            "logs to the journal",
            "`/usr/lib/systemd/user/`, or `~/.config/systemd/user/`",
        ),
        (
            AUTOSTART_NAME,
            "XDG autostart entry (GNOME, KDE, Xfce, Cinnamon, MATE, LXQt)",
            "`/etc/xdg/autostart/`, or `~/.config/autostart/`",
        ),
        (
            LAUNCHER_NAME,
            '"Send SMS" launcher: the quick-send popup (`glosms compose`), for a hotkey',
            "`/usr/share/applications/`, or `~/.local/share/applications/`",
        ),
        (
            PLIST_NAME,
            "macOS launch agent",
            f"`~/Library/LaunchAgents/`, then `launchctl bootstrap gui/$(id -u) "
            f"~/Library/LaunchAgents/{PLIST_NAME}`",
        ),
        (
            WINDOWS_SCRIPT_NAME,
            "Windows: adds a Startup-folder shortcut (`-Remove` takes it away)",
            "run it once",
        ),
    )
    table = "\n".join(f"| `{name}` | {what} | {where} |" for name, what, where in rows)
    return f"""\
# Packaging: starting glosmsd at login

Generated from `glosmsd/cli/autostart.py` by `{REGENERATE}`. A test
fails when they are out of date: change the module, then regenerate.

For one user, `glosmsd setup` (or `glosmsd setup --autostart [xdg|systemd|launchd]`)
writes the right one with the paths of the running installation, and
`glosmsd setup --remove-autostart` takes it away. The files here are for distributions and
for installing by hand; they expect `glosmsd` in `{PACKAGED_DAEMON_LINUX}` (systemd),
`{PACKAGED_DAEMON_MACOS}` (launchd) or on `PATH` (desktop entries).

| file | what it is | where it goes |
| --- | --- | --- |
{table}

Use either the autostart entry or the unit, not both: two would start two daemons, and the
second one stops at once ("glosmsd is already running"). On a systemd desktop the
autostart entry already runs as a unit (`systemd-xdg-autostart-generator`); the unit adds
restart after a crash. To enable the unit:

```sh
systemctl --user enable --now {UNIT_NAME}              # one user
systemctl --global enable {UNIT_NAME}                  # every user (as root)
systemctl --user add-wants default.target {UNIT_NAME}  # no desktop: run headless
```

The unit needs the session's `DISPLAY`/`WAYLAND_DISPLAY` and `DBUS_SESSION_BUS_ADDRESS` in
the user manager, which GNOME and KDE import themselves; elsewhere run
`dbus-update-activation-environment --systemd DISPLAY WAYLAND_DISPLAY` at session start.
It does not restart after exit code {EXIT_NO_RETRY} (a bad config, or a second daemon): that
would only fail again.

The icon named `glosmsd` is `glosmsd/assets/glosmsd.png` (128x128): install it as
`/usr/share/icons/hicolor/128x128/apps/glosmsd.png`.
"""


def packaging_files() -> dict[str, str]:
    """Every file of `packaging/`, by name, rendered with a distribution's paths."""
    return {
        UNIT_NAME: render_systemd_unit([PACKAGED_DAEMON_LINUX]),
        AUTOSTART_NAME: render_autostart_entry(["glosmsd"], "glosmsd"),
        LAUNCHER_NAME: render_compose_entry(["glosms"], "glosmsd"),
        PLIST_NAME: render_launchd_plist([PACKAGED_DAEMON_MACOS]),
        WINDOWS_SCRIPT_NAME: render_windows_script(),
        README_NAME: render_packaging_readme(),
    }


def stale_packaging(directory: Path) -> list[str]:
    """Names in `directory` that differ from the rendering, are missing, or are extra."""
    want = packaging_files()
    have = {p.name for p in directory.iterdir() if p.is_file()} if directory.is_dir() else set()
    stale = sorted(have - set(want))
    for name, text in want.items():
        path = directory / name
        if name not in have or path.read_text("utf-8") != text:
            stale.append(name)
    return sorted(stale)


def write_packaging(directory: Path) -> list[Path]:
    """Write every packaging file into `directory`; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in packaging_files().items():
        path = directory / name
        write_atomic(path, text, mode=0o644)
        written.append(path)
    return written


# --------------------------------------------------------------------------- this user


@dataclass(frozen=True, slots=True)
class Programs:
    """How the files start this installation: argv of the daemon and of the CLI, the icon."""

    daemon: tuple[str, ...]
    cli: tuple[str, ...]
    icon: str

    @classmethod
    def this_installation(cls) -> Programs:
        """The console scripts beside the running interpreter (a venv, pipx), else on PATH.

        Without either (a source checkout), `python -m` of the same interpreter.
        """
        bindir = Path(sys.executable).parent

        def find(script: str, module: str) -> tuple[str, ...]:
            beside = bindir / script
            if beside.is_file() and os.access(beside, os.X_OK):
                return (str(beside),)
            found = shutil.which(script)
            if found:
                return (str(Path(found).absolute()),)
            return (sys.executable, "-m", module)

        icon = Path(__file__).resolve().parents[1] / "assets" / "glosmsd.png"
        return cls(
            daemon=find("glosmsd", "glosmsd.cli.glosmsd"),
            cli=find("glosms", "glosmsd.cli.glosms"),
            icon=str(icon) if icon.is_file() else "glosmsd",
        )


@dataclass(frozen=True, slots=True)
class Places:
    """Where the current user's files go."""

    autostart_entry: Path
    systemd_unit: Path
    launcher: Path
    launch_agent: Path

    @classmethod
    def for_user(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> Places:
        """From `XDG_CONFIG_HOME` / `XDG_DATA_HOME` (when absolute, as the spec says)."""
        env = os.environ if env is None else env
        home = Path.home() if home is None else home

        def xdg(var: str, default: Path) -> Path:
            value = env.get(var, "")
            return Path(value) if os.path.isabs(value) else default

        config = xdg("XDG_CONFIG_HOME", home / ".config")
        data = xdg("XDG_DATA_HOME", home / ".local" / "share")
        return cls(
            autostart_entry=config / "autostart" / AUTOSTART_NAME,
            systemd_unit=config / "systemd" / "user" / UNIT_NAME,
            launcher=data / "applications" / LAUNCHER_NAME,
            launch_agent=home / "Library" / "LaunchAgents" / PLIST_NAME,
        )

    def all(self) -> tuple[Path, ...]:
        return (self.autostart_entry, self.systemd_unit, self.launcher, self.launch_agent)


@dataclass(frozen=True, slots=True)
class Installed:
    """What `install` did: the method, the files written, and a line for the user."""

    method: Method
    files: tuple[Path, ...]
    line: str


def default_method(platform: str, *, systemd_session: bool) -> Method:
    """The method for `platform` (a `sys.platform` value).

    `systemd_session`: the user's systemd manager runs the graphical session, so
    `graphical-session.target` is reached at login and the unit will start.
    """
    if platform == "darwin":
        return "launchd"
    if platform == "win32":
        raise Unsupported(
            f"on Windows, run packaging/{WINDOWS_SCRIPT_NAME} from glosmsd's source to start "
            "glosmsd at login"
        )
    return "systemd" if systemd_session else "xdg"


def detect_method(env: Mapping[str, str] | None = None) -> Method:
    """`default_method` for this machine, asking systemd whether it runs the session."""
    session = False
    if sys.platform not in ("darwin", "win32") and shutil.which("systemctl"):
        done = _systemctl(["is-active", "graphical-session.target"], env)
        session = done.returncode == 0 and done.stdout.strip() == "active"
    return default_method(sys.platform, systemd_session=session)


def user_manager_running(env: Mapping[str, str] | None = None) -> bool:
    """Whether a systemd user manager runs for this user (`systemctl --user
    is-system-running` says anything but offline): without one a unit never starts."""
    if shutil.which("systemctl") is None:
        return False
    state = _systemctl(["is-system-running"], env).stdout.strip()
    return state not in ("", "offline", "unknown")


def install(
    method: Method,
    *,
    places: Places | None = None,
    programs: Programs | None = None,
    env: Mapping[str, str] | None = None,
    manager: Callable[[Mapping[str, str] | None], bool] = user_manager_running,
) -> Installed:
    """Make glosmsd start at login for this user, with `method`.

    On Linux the "Send SMS" launcher is installed too, and the other Linux method is
    removed, so that one login never starts two daemons. The systemd method needs a user
    manager (`manager(env)`): without one the unit would be enabled and never start.
    """
    places = places or Places.for_user(env)
    programs = programs or Programs.this_installation()
    if method == "launchd":
        _write(places.launch_agent, render_launchd_plist(programs.daemon))
        return Installed(
            method,
            (places.launch_agent,),
            f"glosmsd will start when you log in ({places.launch_agent}).",
        )
    launcher = render_compose_entry(programs.cli, programs.icon)
    if method == "xdg":
        _disable_unit(places, env)
        _write(places.autostart_entry, render_autostart_entry(programs.daemon, programs.icon))
        _write(places.launcher, launcher)
        return Installed(
            method,
            (places.autostart_entry, places.launcher),
            f"glosmsd will start with your desktop session ({places.autostart_entry}).",
        )
    if shutil.which("systemctl") is None:
        raise Unsupported("systemctl is not installed here: use the xdg autostart entry instead")
    if not manager(env):
        # Issue 12 item 14: it reported success and advised `systemctl --user restart`.
        raise Unsupported(
            "no systemd user manager runs for you here (systemctl --user is offline), so a "
            "systemd unit would never start: use the desktop's autostart entry instead "
            "(glosmsd setup --autostart xdg)"
        )
    try:
        unit = render_systemd_unit(programs.daemon)
    except ValueError as exc:
        raise Unsupported(f"{exc}: use the xdg autostart entry instead") from None
    _write(places.systemd_unit, unit)
    done = _systemctl(["enable", UNIT_NAME], env)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise GlosmsdError(
            f"wrote {places.systemd_unit}, but `systemctl --user enable {UNIT_NAME}` failed "
            f"({why}): run it yourself in your desktop session"
        )
    _unlink(places.autostart_entry)
    _write(places.launcher, launcher)
    return Installed(
        method,
        (places.systemd_unit, places.launcher),
        f"glosmsd will start with your graphical session (systemd user unit {UNIT_NAME}; "
        f"journalctl --user -u glosmsd shows its log).",
    )


def remove(places: Places | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """Undo `install`, whichever method it used; returns the files removed."""
    places = places or Places.for_user(env)
    removed = []
    if places.systemd_unit.exists():
        _disable_unit(places, env)
        removed.append(places.systemd_unit)
    if places.launch_agent.exists():
        if shutil.which("launchctl"):
            _launchctl(["bootout", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"])
        _unlink(places.launch_agent)
        removed.append(places.launch_agent)
    for path in (places.autostart_entry, places.launcher):
        if path.exists():
            _unlink(path)
            removed.append(path)
    return removed


def installed(places: Places | None = None) -> list[Path]:
    """The autostart files of this user that exist now."""
    places = places or Places.for_user()
    return [p for p in places.all() if p.exists()]


# --------------------------------------------------------------------------- I/O


def _write(path: Path, text: str) -> None:
    """Write `text` atomically (a desktop never sees half a file), mode 0644."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, mode=0o644)
    except OSError as exc:
        raise GlosmsdError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise GlosmsdError(f"cannot remove {path}: {exc.strerror or exc}") from exc


def _disable_unit(places: Places, env: Mapping[str, str] | None) -> None:
    if not places.systemd_unit.exists():
        return
    if shutil.which("systemctl"):
        _systemctl(["disable", UNIT_NAME], env)
    _unlink(places.systemd_unit)


def _systemctl(
    args: Sequence[str], env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["systemctl", "--user", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["systemctl"], 1, "", str(exc))


def _launchctl(args: Sequence[str]) -> None:
    # Best effort: the agent's file is removed all the same.
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["launchctl", *args], capture_output=True, timeout=30, check=False)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m glosmsd.cli.autostart",
        description="glosmsd's autostart files: regenerate packaging/, or install them for "
        "this user (glosmsd setup does that too).",
    )
    do = p.add_mutually_exclusive_group(required=True)
    do.add_argument("--write", metavar="DIR", type=Path, help="(re)write the packaging files")
    do.add_argument("--check", metavar="DIR", type=Path, help="exit 1 if DIR is out of date")
    do.add_argument(
        "--install",
        nargs="?",
        const="auto",
        choices=("auto", *METHODS),
        help="start glosmsd at login for this user (default: the usual way here)",
    )
    do.add_argument("--remove", action="store_true", help="undo --install")
    do.add_argument("--status", action="store_true", help="list this user's autostart files")
    args = p.parse_args(argv)
    try:
        if args.write is not None:
            for path in write_packaging(args.write):
                print(path)
        elif args.check is not None:
            stale = stale_packaging(args.check)
            if stale:
                print(
                    f"{args.check}: out of date: {', '.join(stale)} (run: {REGENERATE})",
                    file=sys.stderr,
                )
                return 1
        elif args.install is not None:
            method = detect_method() if args.install == "auto" else args.install
            print(install(method).line)
        elif args.remove:
            removed = remove()
            print("\n".join(f"removed {p}" for p in removed) or "nothing to remove")
        else:
            print("\n".join(str(p) for p in installed()) or "glosmsd does not start at login")
    except GlosmsdError as exc:
        print(f"glosmsd: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
