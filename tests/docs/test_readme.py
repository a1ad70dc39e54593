"""Every command example in README.md runs, and prints what the README says it prints.

The README is a user guide, so its commands are written as a user types them: plain
`glosms`, `glosmsd`, `glosmsd-server` (the test puts the venv's bin directory first on
PATH), `~` and `$XDG_RUNTIME_DIR` in paths. Each `$ command` runs with `bash -c`; what it
prints is stdout and stderr together, and it must exit 0 (an example of a failure shows
the exit code itself: `... || echo "exit $?"`). How a ```console block runs depends on
the HTML comment right before it (tests/support/readmeshell.py has the details):

- no marker: a command that needs nothing running (`glosms count`, `--version`). Run
  from the repository root with the real environment; the output must be exactly the
  README's.
- `<!-- readme-test: daemon -->`: a fresh reference server seeded with the demo company
  (`seed-demo`, as `glosmsd --demo` does, plus its welcome text) and a real headless
  daemon reading `~/.config/glosmsd/config.toml` (tests/support/readmeworld.py). The commands
  run from the repository root in that user's environment (HOME, XDG_RUNTIME_DIR,
  GLOSMSD_SOCKET), one block per server and daemon. The README's server port, 8765,
  stands for that server's port, in commands too.
- `<!-- readme-test: desktop -->`: the same on a private desktop (Xvfb, trayer, dunst,
  xclip) with the daemon's tray; skipped, with the reason, where those are missing.
- `<!-- readme-test: firstrun -->`: the same server, but a user who never ran glosmsd:
  no config, nothing running, and the token the administrator sent in
  `~/Downloads/sms-token.txt`. All firstrun blocks run in order as one test (setup
  writes the config that later blocks use).
- `<!-- readme-test: session NAME -->` and `<!-- readme-test: starts NAME -->`: the
  blocks with the same NAME run in README order as one test, in a new empty home
  directory (the working directory, as in a new terminal), nothing else running. Admin
  commands create `server.db` there for real; `command &` starts a server or daemon in
  the background until the session ends; in a `starts` block each command runs until
  stopped (`glosmsd --demo`, `glosmsd-server ... --listen 127.0.0.1:8765`): the test
  waits for the lines shown, sends SIGTERM and expects exit 0. A fixed port such as 8765
  is rewritten to a free one for the run (a CI machine may have 8765 taken, and port 0
  would make a poor example); the README keeps showing 8765.

Output is compared after normalizing (tests/support/readmeshell.py `normalize`): this run's home
becomes `~`, its runtime directory `/run/user/1000`, the test desktop's display `:0`;
then, on both sides, ports of 127.0.0.1/localhost become `<port>`, clock times (`10:01`,
`Mon 10:01`, with the padding before them) `<time>`, dates `<date>`, login tokens
`<token>`; `...` in the README's output matches any text, as in doctest, for what
depends on the machine or the moment (the notification server's version, the sound
player found, OpenSSL's wording of a certificate error, the daemon's log lines before
"link: Online"). For a background command only the lines shown must have been printed
(more may follow).

Not run: the commands in ```sh blocks, each in `NOT_RUN` with the reason
(`test_sh_blocks_are_only_the_listed_ones` fails on any other ```sh command):
`make demo` (builds .venv, then runs `glosmsd --demo`, which the demo session runs),
`make test` (the whole suite, this test included), `pipx install .` and `pip install .`
(from the network into the user's environment; tests/test_wheel.py builds the wheel and
installs it into a fresh venv instead), `systemctl --user enable --now glosmsd.service`
and `journalctl --user -u glosmsd` (need a systemd user session and change it), and
`sh ipc/examples/hotkeys/gnome.sh` (changes the GNOME settings of whoever runs it).
```toml and other blocks are file contents, not commands.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from glosmsd.desktop.notify import PLAYERS
from tests.support.readmeshell import MODES, Block, Example, Shell, matches, normalize, parse
from tests.support.readmeworld import World, demo_world, firstrun_world, user_env, user_places

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BLOCKS = parse((ROOT / "README.md").read_text())

#: ```sh commands the test does not run, and why (each is checked against the README).
NOT_RUN = {
    "make demo": "it runs `glosmsd --demo` (the demo session runs that) after building .venv",
    "make test": "it runs the whole suite, this test included",
    "pipx install .": "installs for the user from the network; tests/test_wheel.py builds the "
    "wheel and installs it into a fresh venv instead, and runs the installed commands",
    "pip install .": "the same: tests/test_wheel.py does it in a fresh venv",
    "systemctl --user enable --now glosmsd.service": "changes the user's login session",
    "journalctl --user -u glosmsd": "needs a systemd user session, which CI has not",
    "sh ipc/examples/hotkeys/gnome.sh": "changes the GNOME settings of whoever runs it",
}


def _console(mode: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == "console" and b.mode == mode]


def _plain_examples() -> list[Example]:
    return [e for b in _console("plain") for e in b.examples]


def _sessions() -> dict[str, list[Block]]:
    found: dict[str, list[Block]] = {}
    for b in BLOCKS:
        if b.lang == "console" and b.mode in ("session", "starts"):
            found.setdefault(b.name, []).append(b)
    return found


PLAIN = _plain_examples()
SESSIONS = _sessions()


# --------------------------------------------------------------------------- the README's shape


def test_readme_has_examples_of_every_kind() -> None:
    assert len(PLAIN) >= 3
    for mode in MODES:
        assert any(b.examples for b in _console(mode)), f"no {mode} block"


def test_every_marker_is_known_and_before_a_console_block() -> None:
    for b in BLOCKS:
        if b.mode != "plain":
            assert b.mode in MODES, f"line {b.line}: unknown readme-test mode {b.mode!r}"
            assert b.lang == "console", f"line {b.line}: a marker before a ```{b.lang} block"


def test_commands_are_only_in_console_and_sh_blocks() -> None:
    for b in BLOCKS:
        if b.lang == "console":
            assert b.examples, f"line {b.line}: a ```console block without a `$ ` command"
        elif b.lang != "sh":
            assert not b.examples, f"line {b.line}: `$ ` commands in a ```{b.lang} block"


def _sh_commands() -> list[str]:
    commands = []
    for b in BLOCKS:
        if b.lang == "sh":
            for line in b.body:
                command = line.split("  #", 1)[0].strip()
                if command and not command.startswith("#"):
                    commands.append(command)
    return commands


def test_sh_blocks_are_only_the_listed_ones() -> None:
    """A ```sh block is a command no test runs: only the few listed, and all of them used."""
    shown = _sh_commands()
    assert sorted(set(shown)) == sorted(NOT_RUN), "update NOT_RUN (and say why it cannot run)"


def test_commands_are_written_as_a_user_types_them() -> None:
    for b in BLOCKS:
        for e in b.examples:
            assert ".venv/bin/" not in e.command, f"line {e.line}: write plain `glosms`"


def test_long_running_servers_name_their_port() -> None:
    """Without --listen the server takes 8765 itself, which the test cannot move."""
    for blocks in SESSIONS.values():
        for b in blocks:
            for e in b.examples:
                starts = b.mode == "starts" or e.background
                if starts and e.command.startswith("glosmsd-server") and " admin " not in e.command:
                    assert "--listen" in e.command, f"line {e.line}: give --listen"


def test_normalize_says_what_is_not_compared() -> None:
    places = {"/tmp/x/home/run": "/run/user/1000", "/tmp/x/home": "~"}
    real = (
        "   1   Mon 09:05  Bob\n#3          10:09 → hi\nws://127.0.0.1:40277/v1\n"
        "2026-11-25 /tmp/x/home/run/glosmsd/socket /tmp/x/home/Documents\n"
        "vau_MdK3zESaMX7pcB9nDwHlseXOXEg14XXRmBpqWa4\n"
    )
    shown = (
        "   1       10:01  Bob\n#3    Tue 10:01 → hi\nws://127.0.0.1:8765/v1\n"
        "2024-05-01 /run/user/1000/glosmsd/socket ~/Documents\n"
        "2f-Z5BAkm_eypSIwdpPtLhOvJMhUmKHykhb15v58PIM"
    )
    assert matches(shown, real, places)
    assert not matches(shown.replace("Bob", "Bo"), real, places)
    assert matches("dunst ... on the bus", "dunst 1.9.0 (2022-06-27) on the bus", {})
    assert normalize("sha 75920cdc9f130577b19f6deb8b3df3709f661dc1a92c41529fe3da8a0db170f6") == (
        "sha 75920cdc9f130577b19f6deb8b3df3709f661dc1a92c41529fe3da8a0db170f6"
    )


# --------------------------------------------------------------------------- running them


@pytest.mark.parametrize("example", PLAIN, ids=[e.command for e in PLAIN])
def test_readme_example(example: Example) -> None:
    """Stateless examples: the README's output exactly, from the repository root."""
    env = {**os.environ, "PATH": os.pathsep.join((str(BIN), os.environ.get("PATH", "")))}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="80")
    Shell(ROOT, env, {}, exact=True).run(example)


#: Programs some examples use besides glosmsd's own, and the package that has them.
TOOLS = {"openssl": "openssl", "socat": "socat", "xclip": "xclip"}


def _run_blocks(shell: Shell, blocks: list[Block]) -> None:
    for b in blocks:
        for e in b.examples:
            for tool, package in TOOLS.items():
                if re.search(rf"(^|[|;&(]\s*){tool}\b", e.command) and not shutil.which(tool):
                    pytest.skip(f"README.md line {e.line} needs {tool} (apt-get install {package})")
    try:
        for b in blocks:
            for e in b.examples:
                if b.mode == "starts":
                    shell.starts(e)
                else:
                    shell.run(e)
    finally:
        shell.close()


DAEMON = _console("daemon")
DESKTOP = _console("desktop")


def _shell(world: World) -> Shell:
    return Shell(ROOT, world.env, world.places, ports=world.ports)


@pytest.mark.parametrize("block", DAEMON, ids=[b.id for b in DAEMON])
def test_readme_daemon_block(block: Block, tmp_path: Path) -> None:
    with demo_world(tmp_path) as world:
        _run_blocks(_shell(world), [block])


@pytest.mark.desktop
@pytest.mark.parametrize("block", DESKTOP, ids=[b.id for b in DESKTOP])
def test_readme_desktop_block(block: Block, tmp_path: Path) -> None:
    # The doctor's block shows `ok sound`, true only where a player for the chime exists
    # (as the doctor's own desktop test, which skips there too; issue 12 item 22).
    if any(line.startswith("ok       sound") for line in block.body) and not any(
        shutil.which(p[0]) for p in PLAYERS
    ):
        pytest.skip("needs a sound player for the chime (apt-get install alsa-utils)")
    with demo_world(tmp_path, desktop=True) as world:
        _run_blocks(_shell(world), [block])


def test_readme_first_run(tmp_path: Path) -> None:
    """The first-run blocks, in order, for one user who has never run glosmsd."""
    with firstrun_world(tmp_path) as world:
        _run_blocks(_shell(world), _console("firstrun"))


@pytest.mark.parametrize("name", sorted(SESSIONS), ids=sorted(SESSIONS))
def test_readme_session(name: str, tmp_path: Path) -> None:
    """Blocks sharing a session run in order in the user's home, as in one terminal."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    _run_blocks(Shell(home, user_env(home, BIN), user_places(home)), SESSIONS[name])
