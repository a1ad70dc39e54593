"""`glosmsd/cli/autostart.py` and `packaging/`: every file is checked by the tool its platform
trusts (systemd-analyze, desktop-file-validate, GLib's launcher, plistlib and plutil,
PowerShell's parser where there is one), the committed copies match the renderers, and
install/remove put the files where desktops look for them and take them away again.

Tools that are missing make their test skip with the package that brings them.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glosmsd.cli import autostart
from glosmsd.cli.autostart import Places, Programs
from glosmsd.core.errors import Unsupported
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ROOT

PACKAGING = ROOT / "packaging"
BIN = Path(sys.executable).parent
GLOSMSD = BIN / "glosmsd"
GLOSMS = BIN / "glosms"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"needs {tool} (apt-get install {package})")
    return path


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user with no systemd manager reachable: systemctl --user works on files only."""
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        XDG_DATA_HOME=str(tmp_path / "home" / ".local" / "share"),
        XDG_RUNTIME_DIR=str(runtime),
    )
    return env


@pytest.fixture
def places(user_env: dict[str, str]) -> Places:
    return Places.for_user(user_env, Path(user_env["HOME"]))


@pytest.fixture
def programs() -> Programs:
    assert GLOSMSD.is_file(), "the test venv has no glosmsd console script"
    return Programs(daemon=(str(GLOSMSD),), cli=(str(GLOSMS),), icon="glosmsd")


# --------------------------------------------------------------------------- packaging/


def test_packaging_dir_is_what_the_module_renders() -> None:
    stale = autostart.stale_packaging(PACKAGING)
    assert not stale, f"packaging/ is out of date ({stale}); run: {autostart.REGENERATE}"
    assert sorted(p.name for p in PACKAGING.iterdir()) == sorted(autostart.packaging_files())


def test_write_regenerates_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "packaging"
    done = run(sys.executable, "-m", "glosmsd.cli.autostart", "--write", out)
    assert done.returncode == 0, done.stderr
    for committed in PACKAGING.iterdir():
        assert (out / committed.name).read_bytes() == committed.read_bytes(), committed.name
    check = run(sys.executable, "-m", "glosmsd.cli.autostart", "--check", PACKAGING)
    assert check.returncode == 0, check.stderr
    (out / autostart.UNIT_NAME).write_text("[Unit]\n")
    (out / "leftover.service").write_text("[Unit]\n")
    check = run(sys.executable, "-m", "glosmsd.cli.autostart", "--check", out)
    assert check.returncode == 1
    assert f"{autostart.UNIT_NAME}, leftover.service" in check.stderr
    assert autostart.REGENERATE in check.stderr


def test_the_readme_names_every_packaging_file() -> None:
    text = (PACKAGING / autostart.README_NAME).read_text()
    for name in autostart.packaging_files():
        if name != autostart.README_NAME:
            assert f"`{name}`" in text


# --------------------------------------------------------------------------- systemd


def _verify(unit: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(need("systemd-analyze", "systemd"), "verify", "--user", unit, env=env)


def _unit_sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes="#;")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_systemd_unit_passes_systemd_analyze_verify(
    tmp_path: Path, user_env: dict[str, str]
) -> None:
    # The committed unit runs /usr/bin/glosmsd, which verify wants to exist: check it with
    # this venv's glosmsd in its place, and nothing else changed.
    committed = (PACKAGING / autostart.UNIT_NAME).read_text()
    assert f"ExecStart={autostart.PACKAGED_DAEMON_LINUX}\n" in committed
    unit = tmp_path / autostart.UNIT_NAME
    unit.write_text(committed.replace(autostart.PACKAGED_DAEMON_LINUX, str(GLOSMSD)))
    done = _verify(unit, user_env)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")

    # verify does look: a unit whose program is missing fails it.
    missing = tmp_path / "missing" / "glosmsd"
    unit.write_text(committed.replace(autostart.PACKAGED_DAEMON_LINUX, str(missing)))
    done = _verify(unit, user_env)
    assert done.returncode != 0
    assert "is not executable" in done.stderr


def test_systemd_unit_ties_to_the_graphical_session_and_restarts_on_failure() -> None:
    unit = _unit_sections((PACKAGING / autostart.UNIT_NAME).read_text())
    assert unit["Unit"]["PartOf"] == "graphical-session.target"
    assert unit["Unit"]["After"] == "graphical-session.target"
    assert unit["Install"]["WantedBy"] == "graphical-session.target"
    assert unit["Service"]["Type"] == "exec"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartPreventExitStatus"] == str(autostart.EXIT_NO_RETRY)


def test_the_exit_code_the_unit_does_not_restart_on_is_the_daemons_config_error(
    tmp_path: Path,
) -> None:
    """A restart loop on a bad config would spam the journal: the codes must agree."""
    done = run(GLOSMSD, "--headless", "--config", tmp_path / "missing.toml")
    assert done.returncode == autostart.EXIT_NO_RETRY
    assert "missing.toml: no such file" in done.stderr


def test_systemd_exec_quotes_paths_and_arguments(tmp_path: Path, user_env: dict[str, str]) -> None:
    odd = tmp_path / "with space 100%"
    odd.mkdir()
    program = odd / "glosmsd"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    line = autostart.systemd_exec([str(program), "--device-id", "a b$HOME%"])
    path = str(program).replace("%", "%%")  # no $$ in the path: systemd expands no $ there
    assert line == f'"{path}" --device-id "a b$$HOME%%"'
    unit = tmp_path / autostart.UNIT_NAME
    unit.write_text(autostart.render_systemd_unit([str(program), "--device-id", "a b$HOME%"]))
    done = _verify(unit, user_env)
    assert (done.returncode, done.stderr) == (0, "")
    with pytest.raises(ValueError, match="quotes"):
        autostart.systemd_exec([str(tmp_path / 'say "hi"')])
    with pytest.raises(ValueError, match="argument"):
        autostart.systemd_exec([str(program), "two\nlines"])


# --------------------------------------------------------------------------- desktop entries


@pytest.mark.parametrize("name", [autostart.AUTOSTART_NAME, autostart.LAUNCHER_NAME])
def test_desktop_entries_pass_desktop_file_validate(name: str, tmp_path: Path) -> None:
    tool = need("desktop-file-validate", "desktop-file-utils")
    done = run(tool, PACKAGING / name)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    # The per-user copies carry absolute paths and the bundled icon's file.
    me = Programs.this_installation()
    text = (
        autostart.render_autostart_entry(me.daemon, me.icon)
        if name == autostart.AUTOSTART_NAME
        else autostart.render_compose_entry(me.cli, me.icon)
    )
    (tmp_path / name).write_text(text)
    done = run(tool, tmp_path / name)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    # ...and a broken entry is caught, so this check can fail.
    (tmp_path / name).write_text(text.replace("Type=Application\n", ""))
    assert run(tool, tmp_path / name).returncode != 0


def test_desktop_entries_start_the_right_commands() -> None:
    def entry(name: str) -> configparser.SectionProxy:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string((PACKAGING / name).read_text())
        return parser["Desktop Entry"]

    daemon, launcher = entry(autostart.AUTOSTART_NAME), entry(autostart.LAUNCHER_NAME)
    assert daemon["Exec"] == "glosmsd"
    assert daemon["X-GNOME-Autostart-enabled"] == "true"
    assert daemon["NoDisplay"] == "true"
    assert launcher["Exec"] == "glosms compose"
    assert launcher["Name"] == "Send SMS"
    assert "NoDisplay" not in launcher


def test_desktop_exec_round_trips_through_glib(tmp_path: Path) -> None:
    """GLib's own launcher (gio launch) must hand the program exactly our argv."""
    gio = need("gio", "libglib2.0-bin")
    odd = tmp_path / 'dir with "quotes" $dollar \\back'
    odd.mkdir()
    out = tmp_path / "argv"
    program = odd / "record"
    program.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{out}.tmp"\n'
        f'mv "{out}.tmp" "{out}"\n'
    )
    program.chmod(0o755)
    argv = ["plain", "two words", "100%", "$HOME", "back\\slash", 'q"uote', "it's", "a;b", "ü"]
    entry = tmp_path / "t.desktop"
    entry.write_text(autostart.render_compose_entry([str(program), *argv], "glosmsd"))
    done = run(gio, "launch", entry)
    assert done.returncode == 0, done.stderr
    DaemonProcess.wait_until(out.exists, 20, "the launched program to write its argv")
    assert out.read_text().splitlines() == [*argv, "compose"]


def test_desktop_exec_refuses_control_characters() -> None:
    with pytest.raises(ValueError, match="argument"):
        autostart.desktop_exec(["glosmsd", "a\tb"])
    assert autostart.desktop_exec(["/opt/my apps/glosms", "compose"]) == (
        '"/opt/my apps/glosms" compose'
    )


# --------------------------------------------------------------------------- launchd


def test_launchd_plist_parses_and_keeps_the_daemon_alive(tmp_path: Path) -> None:
    data = (PACKAGING / autostart.PLIST_NAME).read_bytes()
    agent = plistlib.loads(data)
    assert agent["Label"] == autostart.LAUNCHD_LABEL
    assert agent["ProgramArguments"] == [autostart.PACKAGED_DAEMON_MACOS]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["LimitLoadToSessionType"] == "Aqua"
    assert f"{agent['Label']}.plist" == autostart.PLIST_NAME
    odd = ["/Users/a b/.local/bin/glosmsd", "--device-id", "<mac & co>"]
    assert plistlib.loads(autostart.render_launchd_plist(odd).encode())["ProgramArguments"] == odd
    plutil = shutil.which("plutil")
    if plutil is not None:  # macOS only
        (tmp_path / "agent.plist").write_bytes(data)
        done = run(plutil, "-lint", tmp_path / "agent.plist")
        assert done.returncode == 0, done.stdout


# --------------------------------------------------------------------------- Windows


def _outside_strings(script: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", re.sub(r"(?m)#.*$", "", script))


def test_windows_script_makes_a_startup_shortcut_to_glosmsd(tmp_path: Path) -> None:
    script = (PACKAGING / autostart.WINDOWS_SCRIPT_NAME).read_text()
    assert "param([switch]$Remove)" in script
    assert "[Environment]::GetFolderPath('Startup')" in script
    assert "Join-Path $startup 'glosmsd.lnk'" in script
    assert "Get-Command -Name 'glosmsd' -CommandType Application" in script
    assert "$link.TargetPath = $command.Source" in script
    assert "$link.Save()" in script
    code = _outside_strings(script)
    for a, b in ("{}", "()", "[]"):
        assert code.count(a) == code.count(b), f"unbalanced {a}{b}"
    # "$name:" in a double-quoted string reads as a drive-qualified variable in PowerShell.
    for quoted in re.findall(r'"[^"]*"', script):
        assert not re.search(r"\$[A-Za-z_]\w*:", quoted.replace("$env:", "")), quoted
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is not None:
        (tmp_path / "s.ps1").write_text(script)
        parse = (
            "$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
            f"'{tmp_path / 's.ps1'}', [ref]$null, [ref]$e); $e.Count"
        )
        done = run(pwsh, "-NoProfile", "-Command", parse)
        assert done.stdout.strip() == "0", done.stdout + done.stderr


# --------------------------------------------------------------------------- this user


def test_programs_of_this_installation_are_the_venvs_scripts() -> None:
    me = Programs.this_installation()
    assert me.daemon == (str(GLOSMSD),)
    assert me.cli == (str(GLOSMS),)
    assert Path(me.icon).is_file()
    assert Path(me.icon).name == "glosmsd.png"


def test_places_follow_the_xdg_variables() -> None:
    home = Path("/home/ann")
    absolute = Places.for_user({"XDG_CONFIG_HOME": "/cfg", "XDG_DATA_HOME": "/data"}, home)
    assert absolute.autostart_entry == Path("/cfg/autostart/glosmsd.desktop")
    assert absolute.systemd_unit == Path("/cfg/systemd/user/glosmsd.service")
    assert absolute.launcher == Path("/data/applications/glosms-compose.desktop")
    # The spec says a relative value is invalid and must be ignored.
    relative = Places.for_user({"XDG_CONFIG_HOME": "cfg"}, home)
    assert relative.autostart_entry == home / ".config/autostart/glosmsd.desktop"
    assert relative.launcher == home / ".local/share/applications/glosms-compose.desktop"
    assert relative.launch_agent == home / "Library/LaunchAgents/com.glosmsd.daemon.plist"


def test_default_method_per_platform() -> None:
    assert autostart.default_method("darwin", systemd_session=False) == "launchd"
    assert autostart.default_method("linux", systemd_session=True) == "systemd"
    assert autostart.default_method("linux", systemd_session=False) == "xdg"
    with pytest.raises(Unsupported, match=autostart.WINDOWS_SCRIPT_NAME):
        autostart.default_method("win32", systemd_session=False)


def test_xdg_install_and_remove(places: Places, programs: Programs) -> None:
    done = autostart.install("xdg", places=places, programs=programs)
    assert done.files == (places.autostart_entry, places.launcher)
    assert str(places.autostart_entry) in done.line
    assert places.autostart_entry.read_text() == autostart.render_autostart_entry(
        programs.daemon, programs.icon
    )
    assert places.launcher.read_text() == autostart.render_compose_entry(
        programs.cli, programs.icon
    )
    assert places.autostart_entry.stat().st_mode & 0o777 == 0o644
    assert autostart.installed(places) == [places.autostart_entry, places.launcher]
    assert not list(places.autostart_entry.parent.glob(".*.tmp"))
    assert autostart.remove(places) == [places.autostart_entry, places.launcher]
    assert autostart.installed(places) == []
    assert autostart.remove(places) == []


@pytest.fixture
def systemctl() -> str:
    return need("systemctl", "systemd")


def test_systemd_install_enables_the_unit_and_replaces_the_xdg_entry(
    places: Places, programs: Programs, user_env: dict[str, str], systemctl: str
) -> None:
    # No user manager runs here (tests/cli/test_setup.py shows that refused); the unit's
    # placement and enabling are what this test is about.
    def running(_env: object) -> bool:
        return True

    autostart.install("xdg", places=places, programs=programs, env=user_env)
    done = autostart.install(
        "systemd", places=places, programs=programs, env=user_env, manager=running
    )
    assert done.files == (places.systemd_unit, places.launcher)
    assert not places.autostart_entry.exists(), "two methods would start two daemons"
    unit = places.systemd_unit.read_text()
    assert f"ExecStart={GLOSMSD}\n" in unit
    wants = places.systemd_unit.parent / "graphical-session.target.wants" / autostart.UNIT_NAME
    assert wants.resolve() == places.systemd_unit.resolve()
    state = run(systemctl, "--user", "is-enabled", autostart.UNIT_NAME, env=user_env)
    assert state.stdout.strip() == "enabled", state.stderr

    # Back to xdg: the unit is disabled and gone, the entry is back.
    autostart.install("xdg", places=places, programs=programs, env=user_env)
    assert not places.systemd_unit.exists()
    assert not wants.is_symlink()
    assert places.autostart_entry.exists()
    autostart.install("systemd", places=places, programs=programs, env=user_env, manager=running)
    assert autostart.remove(places, user_env) == [places.systemd_unit, places.launcher]
    assert not wants.is_symlink()
    state = run(systemctl, "--user", "is-enabled", autostart.UNIT_NAME, env=user_env)
    assert state.returncode != 0


def test_launchd_install_writes_the_agent(places: Places, programs: Programs) -> None:
    done = autostart.install("launchd", places=places, programs=programs)
    assert done.files == (places.launch_agent,)
    agent = plistlib.loads(places.launch_agent.read_bytes())
    assert agent["ProgramArguments"] == [str(GLOSMSD)]
    assert autostart.remove(places) == [places.launch_agent]
    assert not places.launch_agent.exists()


def test_module_command_line_installs_and_removes(user_env: dict[str, str]) -> None:
    cmd = (sys.executable, "-m", "glosmsd.cli.autostart")
    env = {**user_env, "PYTHONPATH": str(ROOT)}
    placed = Places.for_user(user_env, Path(user_env["HOME"]))
    assert run(*cmd, "--status", env=env).stdout == "glosmsd does not start at login\n"
    done = run(*cmd, "--install", "xdg", env=env)
    assert done.returncode == 0, done.stderr
    assert "will start with your desktop session" in done.stdout
    assert run(*cmd, "--status", env=env).stdout.splitlines() == [
        str(placed.autostart_entry),
        str(placed.launcher),
    ]
    done = run(*cmd, "--remove", env=env)
    assert done.stdout.splitlines() == [
        f"removed {placed.autostart_entry}",
        f"removed {placed.launcher}",
    ]
    assert run(*cmd, "--remove", env=env).stdout == "nothing to remove\n"
