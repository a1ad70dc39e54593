"""`glosms completion bash|zsh|fish`: the scripts, run by the real shells.

bash: the script is sourced in `bash --norc`, COMP_WORDS/COMP_CWORD are set and the
completion function is called, as bash's own completion machinery would. zsh: an
interactive `zsh -f` on a pseudo-terminal (zsh/zpty) loads the script with compinit and
is sent TAB; a `compadd` wrapper prints what it offers. fish: `complete -C`. Conversation
ids and numbers come from a real daemon (`glosms completion --list ...`), through the
`glosms` on PATH, as they would for a user.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.cli import glosms as cli
from glosmsd.cli.glosms.parser import COMMANDS
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import running_server

BIN = Path(sys.executable).parent
GLOSMS = BIN / "glosms"
ANN = "+15550001001"
BOB = "+15557654321"
CY = "+15553334444"


def glosms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GLOSMS), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def script(shell: str, tmp_path: Path) -> Path:
    proc = glosms("completion", shell)
    assert (proc.returncode, proc.stderr) == (0, "")
    names = {"bash": "glosms", "zsh": "_glosms", "fish": "glosms.fish"}
    path = tmp_path / shell / names[shell]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(proc.stdout)
    return path


def shell_env(daemon: DaemonProcess | None = None) -> dict[str, str]:
    """The user's shell: `glosms` on PATH, and the daemon's socket when there is one."""
    env = dict(daemon.env if daemon else os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    if daemon is None:
        env.pop("GLOSMSD_SOCKET", None)
    return env


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A daemon with two conversations: Bob Roe (a contact) and a bare number."""
    root = tmp_path_factory.mktemp("completion")
    with running_server(root) as srv:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        with srv.store() as st:
            st.add_contact("Bob Roe", [("mobile", BOB)])
        with DaemonProcess.start(root / "ann", srv, token) as ann:
            ann.wait_online()
            for to in (BOB, CY):
                ann.call("send", to=to, text="hi")
            yield ann


def conversation_ids(daemon: DaemonProcess) -> dict[str, str]:
    return {c["remote"]: str(c["id"]) for c in daemon.call("conversations")}


# --------------------------------------------------------------------------- the command


def test_the_list_is_quiet_without_a_daemon(tmp_path: Path) -> None:
    env = {**shell_env(), "GLOSMSD_SOCKET": str(tmp_path / "nobody")}
    proc = glosms("completion", "--list", "conversations", env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_the_list_names_conversations_and_numbers(daemon: DaemonProcess) -> None:
    ids = conversation_ids(daemon)
    env = shell_env(daemon)
    convs = glosms("completion", "--list", "conversations", env=env).stdout.splitlines()
    assert sorted(convs) == sorted([f"{ids[BOB]}\tBob Roe", f"{ids[CY]}\t{CY}"])
    numbers = glosms("completion", "--list", "numbers", env=env).stdout.splitlines()
    assert sorted(numbers) == sorted([f"{BOB}\tBob Roe", f"{CY}\t{CY}"])


def test_a_shell_must_be_named_and_known() -> None:
    proc = glosms("completion")
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stderr == "glosms: name a shell: glosms completion bash|zsh|fish\n"
    proc = glosms("completion", "tcsh")
    assert proc.returncode == cli.EXIT_USAGE
    assert "invalid choice: 'tcsh'" in proc.stderr
    help_text = glosms("completion", "--help").stdout
    assert (
        "  bash: glosms completion bash > ~/.local/share/bash-completion/completions/glosms\n"
        in (help_text)
    )
    assert "--list" not in help_text


def test_only_the_completion_command_loads_shtab() -> None:
    probe = (
        "import sys, io, contextlib, glosmsd.cli.glosms as c\n"
        "c.main(['count', 'hi'])\n"
        "before = 'shtab' in sys.modules\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    c.main(['completion', 'bash'])\n"
        "print(before, 'shtab' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False True"


# --------------------------------------------------------------------------- bash


def bash_complete(path: Path, line: str, env: dict[str, str], cwd: Path | None = None) -> list[str]:
    """What bash offers for `line` (completing its last word; a trailing space: a new one)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    program = (
        f"source {shlex.quote(str(path))}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={shlex.quote(line)}\n"
        "COMP_POINT=${#COMP_LINE}\n"
        "_shtab_glosms glosms\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_commands_and_their_options(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    env = shell_env()
    assert bash_complete(path, "glosms se", env) == ["send", "search"]
    assert set(bash_complete(path, "glosms ", env)) == {c.name for c in COMMANDS}
    assert bash_complete(path, "glosms send --j", env) == ["--json"]
    assert set(bash_complete(path, "glosms send --", env)) >= {
        "--json",
        "--pick",
        "--client-id",
        "--wait",
    }
    assert set(bash_complete(path, "glosms count --", env)) >= {"--files", "--bytes", "--no-mms"}
    assert set(bash_complete(path, "glosms -", env)) == {"-h", "--help", "--version", "--socket"}
    assert bash_complete(path, "glosms completion ", env) == ["bash", "zsh", "fish"]
    assert bash_complete(path, "glosms mark-read --", env) == ["--help", "--all", "--json"]


def test_bash_offers_files_to_attach_and_folders_to_export_to(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    work = tmp_path / "work"
    (work / "photos").mkdir(parents=True)
    (work / "photo.jpg").write_bytes(b"\xff\xd8")
    env = shell_env()
    assert sorted(bash_complete(path, f"glosms send {BOB} hi ph", env, work)) == [
        "photo.jpg",
        "photos",
    ]
    assert bash_complete(path, "glosms export ph", env, work) == ["photos"]


def test_bash_offers_the_daemons_conversations_and_numbers(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    path = script("bash", tmp_path)
    ids = conversation_ids(daemon)
    env = shell_env(daemon)
    assert sorted(bash_complete(path, "glosms read ", env)) == sorted([ids[BOB], ids[CY]])
    assert sorted(bash_complete(path, "glosms delete --conversation ", env)) == sorted(
        [ids[BOB], ids[CY]]
    )
    assert bash_complete(path, "glosms send +1555765", env) == [BOB]
    # Without a daemon there is simply nothing to offer, and no error on the terminal.
    assert bash_complete(path, "glosms read ", shell_env()) == []


# --------------------------------------------------------------------------- zsh

ZSH_CAPTURE = r"""
zmodload zsh/zpty || { print -u2 'zsh has no zsh/zpty module'; exit 3 }
zpty z zsh -f -i
zpty -w z "PROMPT=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "bindkey '^I' complete-word"
zpty -w z "null-line () { echo -E - \$'\\0' }"
zpty -w z "compprefuncs=( null-line )"
zpty -w z "comppostfuncs=( null-line exit )"
zpty -w z "zstyle ':completion:*' insert-tab false"
zpty -w z 'compadd () {
  [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]] && { builtin compadd "$@"; return $? }
  typeset -a __hits
  builtin compadd -A __hits "$@"
  [[ -n $__hits ]] || return
  print -l -- "MATCH:"${^__hits}
}'
zpty -w z "$2"$'\t'
integer seen=0
while zpty -r z line; do
  [[ $line == *$'\0'* ]] && { (( seen++ )) && break || continue }
  (( seen )) && [[ $line == MATCH:* ]] && print -r -- ${${line#MATCH:}%%[$'\r\n']*}
done
zpty -d z
"""


def need(program: str, package: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"needs {program} (apt-get install {package})")


def zsh_complete(path: Path, line: str, env: dict[str, str]) -> list[str]:
    """What zsh's completion system offers after typing `line` and TAB, in a real zsh."""
    capture = path.parent / "capture.zsh"
    capture.write_text(ZSH_CAPTURE)
    proc = subprocess.run(
        ["zsh", "-f", str(capture), str(path.parent), line],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_zsh_script_parses_and_completes(tmp_path: Path) -> None:
    need("zsh", "zsh")
    path = script("zsh", tmp_path)
    syntax = subprocess.run(
        ["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (syntax.returncode, syntax.stderr) == (0, "")
    env = shell_env()
    assert sorted(zsh_complete(path, "glosms se", env)) == ["search", "send"]
    assert zsh_complete(path, "glosms send --j", env) == ["--json"]
    assert sorted(zsh_complete(path, "glosms completion ", env)) == ["bash", "fish", "zsh"]


def test_zsh_offers_the_daemons_conversations(daemon: DaemonProcess, tmp_path: Path) -> None:
    need("zsh", "zsh")
    path = script("zsh", tmp_path)
    ids = conversation_ids(daemon)
    env = shell_env(daemon)
    assert sorted(zsh_complete(path, "glosms read ", env)) == sorted([ids[BOB], ids[CY]])
    assert zsh_complete(path, "glosms send +1555765", env) == [BOB]


# --------------------------------------------------------------------------- fish


def fish_complete(path: Path, line: str, env: dict[str, str]) -> list[str]:
    program = f"source {shlex.quote(str(path))}; complete -C {shlex.quote(line)}"
    proc = subprocess.run(
        ["fish", "--no-config", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout.splitlines()


def test_fish_script_parses_and_completes(tmp_path: Path) -> None:
    need("fish", "fish")
    path = script("fish", tmp_path)
    syntax = subprocess.run(
        ["fish", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (syntax.returncode, syntax.stderr) == (0, "")
    env = shell_env()
    assert fish_complete(path, "glosms se", env) == [
        "search\tsearch contacts, conversations and messages",
        "send\tsend an SMS, or an MMS with files",
    ]
    assert fish_complete(path, "glosms send --j", env) == ["--json\tprint the result as JSON"]


def test_fish_offers_the_daemons_conversations_by_name(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    need("fish", "fish")
    path = script("fish", tmp_path)
    ids = conversation_ids(daemon)
    env = shell_env(daemon)
    assert sorted(fish_complete(path, "glosms read ", env)) == sorted(
        [f"{ids[BOB]}\tBob Roe", f"{ids[CY]}\t{CY}"]
    )
