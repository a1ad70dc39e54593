"""Run README.md's command examples like a user at a shell, and compare what they print.

`parse(text)` finds the fenced blocks and the `<!-- readme-test: MODE [NAME] -->` marker
right before each; `Example` is one `$ command` with the lines the README shows under it.
`Shell` runs examples with `bash -c` in one working directory and environment, so a block
reads like a terminal session: pipes, `>`, `~` and `$XDG_RUNTIME_DIR` work as they do for
a user. It keeps what the README says in a form the test can compare:

- What a command prints is its stdout and stderr together (what a terminal shows), and
  it must exit 0: an example that shows a failure says so itself (`... || echo "exit $?"`).
- A command ending in ` &` is started in the background (a server, a daemon): the test
  waits until it has printed the lines shown (what it prints later is not compared),
  leaves it running for the next commands, and at the end stops it with SIGTERM and
  expects exit 0.
- `Shell.starts` runs a command that only ends when stopped (Ctrl+C): it waits for the
  lines shown, sends SIGTERM (what systemd, launchd or a session logout sends) and
  expects exit 0.
- A fixed `127.0.0.1:PORT` in a command is rewritten to a free port chosen for this run
  (the same one wherever the README repeats it), so a busy 8765 on the machine, or two
  runs side by side, never fail the test, and the README still shows a real-looking port.

Output is compared after `normalize`, which says line by line what is not compared.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"<!--\s*readme-test:\s*([\w-]+)(?:\s+([\w-]+))?\s*-->")
FENCE = re.compile(r"^```([\w-]*)\s*$")
MODES = ("daemon", "desktop", "firstrun", "session", "starts")
RUN_TIMEOUT = 30.0
WAIT_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Example:
    """One `$ command` (continued on the next line after a trailing backslash)."""

    command: str
    expected: str
    line: int

    @property
    def background(self) -> bool:
        return self.command.rstrip().endswith(" &")

    @property
    def foreground_command(self) -> str:
        return self.command.rstrip().removesuffix("&").rstrip()


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced block: its language, the marker before it (mode and name) and examples."""

    lang: str
    mode: str  # "plain" (no marker) or one of MODES
    name: str
    line: int
    body: tuple[str, ...]
    examples: tuple[Example, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.mode}-L{self.line}"


def parse(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the marker line right before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    previous = ""
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marker = MARKER.fullmatch(previous)
        mode, name = ("plain", "") if marker is None else (marker[1], marker[2] or "main")
        body = tuple(lines[i + 1 : end])
        blocks.append(Block(opening[1], mode, name, i + 1, body, tuple(_examples(body, i + 2))))
        previous = ""
        i = end + 1
    return blocks


def _examples(body: Iterable[str], first_line: int) -> list[Example]:
    found: list[Example] = []
    command: list[str] = []
    output: list[str] = []
    start = 0

    def flush() -> None:
        if command:
            found.append(Example("\n".join(command), "\n".join(output), start))

    continued = False
    for n, line in enumerate(body, first_line):
        if continued:
            command.append(line)
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            flush()
            command, output, start = [line[2:]], [], n
            continued = line.endswith("\\")
        elif command:
            output.append(line)
    flush()
    return found


# --------------------------------------------------------------------------- comparing

#: Applied to both the README's text and the real output, in this order.
VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    # Ports of local servers: the test picks free ones, the demo's server a random one.
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d{1,5}\b"), r"\1:<port>"),
    # Clock times as glosms shows them (`10:01` today, `Mon 10:01` this week), with the
    # padding before them, which depends on the form.
    (re.compile(r" *\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?\d{1,2}:\d{2}\b"), " <time>"),
    # Dates (older messages, program versions' build dates).
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    # Login tokens: 32 random bytes, URL-safe base64.
    (re.compile(r"(?<![\w-])[A-Za-z0-9_-]{43}(?![\w-])"), "<token>"),
)


def normalize(text: str, places: Mapping[str, str] = {}) -> str:
    """`text` with what legitimately differs between runs made equal.

    `places` maps this run's paths (and similar) to what the README shows instead, e.g.
    the test's home directory to `~` and its runtime directory to `/run/user/1000`;
    longer keys first, so a runtime dir inside the home stays itself. Then each pattern
    of `VOLATILE` is replaced. Trailing newlines are dropped.
    """
    for real in sorted(places, key=len, reverse=True):
        text = text.replace(real, places[real])
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


def pattern_of(expected: str) -> re.Pattern[str]:
    """The README's output as a pattern: `...` stands for any text (as in doctest)."""
    parts = normalize(expected).split("...")
    return re.compile(".*?".join(re.escape(p) for p in parts), re.S)


def matches(expected: str, actual: str, places: Mapping[str, str]) -> bool:
    return pattern_of(expected).fullmatch(normalize(actual, places)) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- running


class Background:
    """A process started from the README; its output is collected by a reader thread."""

    def __init__(self, example: Example, proc: subprocess.Popen[bytes]) -> None:
        self.example = example
        self.proc = proc
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    def output(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode(errors="replace")

    def settle(self) -> str:
        """After the process ended: all it printed (the reader stops at EOF, or when the
        pipe stays quiet for a moment because a child of it still holds it open)."""
        self._reader.join(5)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()
        return self.output()

    def lines_so_far(self) -> str:
        """Only complete lines: a half-written line never counts as printed."""
        text = self.output()
        return text[: text.rfind("\n") + 1]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        self.settle()
        return code


class ExampleError(AssertionError):
    pass


class Shell:
    """Examples run one after the other in `cwd` with `env`, as a user would type them.

    `exact`: compare output as it is, without `normalize` (for stateless commands).
    `ports`: README port -> real port, for a server the test started (others get free ports).
    """

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        places: Mapping[str, str],
        *,
        exact: bool = False,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self.cwd = cwd
        self.exact = exact
        self.env = dict(env)
        self.places = dict(places)
        self.ports: dict[str, int] = dict(ports or {})
        self.running: list[Background] = []

    # -- the command as run

    def real_command(self, command: str) -> str:
        """`command` with each fixed local port replaced by this run's free port."""

        def swap(m: re.Match[str]) -> str:
            port = self.ports.setdefault(m[2], free_port())
            return f"{m[1]}:{port}"

        return re.sub(r"\b(127\.0\.0\.1|localhost):(\d{2,5})\b", swap, command)

    def _fail(self, example: Example, why: str, output: str) -> ExampleError:
        return ExampleError(
            f"README.md line {example.line}: $ {example.command}\n{why}\n"
            f"--- README shows:\n{example.expected}\n--- it printed:\n{output}"
        )

    # -- the three ways of running

    def run(self, example: Example) -> None:
        """Run to completion: exit 0 and the README's output."""
        if example.background:
            self.background(example)
            return
        # Not subprocess.run: it reads until every writer of the pipe is gone, and a
        # clipboard tool (xclip) forks a child that keeps holding it after copying.
        bg = self._spawn(example, exec_=False)
        try:
            code = bg.proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            bg.stop()
            raise self._fail(
                example, f"still running after {RUN_TIMEOUT:g} s", bg.output()
            ) from None
        output = bg.settle()
        if code != 0:
            raise self._fail(example, f"exit code {code}, not 0", output)
        if self.exact:
            if output.rstrip("\n") != example.expected.rstrip("\n"):
                raise self._fail(example, "the output differs", output)
        elif not matches(example.expected, output, self.places):
            shown = normalize(output, self.places)
            raise self._fail(example, "the output differs (after normalize)", shown)

    def _spawn(self, example: Example, *, exec_: bool = True) -> Background:
        command = self.real_command(example.foreground_command)
        proc = subprocess.Popen(
            ["bash", "-c", ("exec " if exec_ else "") + command],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl+C would not reach it either
        )
        return Background(example, proc)

    def _printed(self, bg: Background, pattern: re.Pattern[str]) -> bool:
        """Have the lines shown been printed, as its first lines (more may follow)?"""
        lines = bg.lines_so_far().splitlines(keepends=True)
        return any(
            pattern.fullmatch(normalize("".join(lines[:n]), self.places))
            for n in range(len(lines) + 1)
        )

    def _wait_for_lines(self, bg: Background) -> None:
        pattern = pattern_of(bg.example.expected)
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            if self._printed(bg, pattern):
                return
            if bg.proc.poll() is not None:
                time.sleep(0.1)  # let the reader take the last words
                if self._printed(bg, pattern):
                    return
                why = f"it exited with {bg.proc.returncode} before printing that"
                raise self._fail(bg.example, why, bg.output())
            if time.monotonic() > deadline:
                bg.stop()
                why = f"not printed within {WAIT_TIMEOUT:g} s"
                raise self._fail(bg.example, why, bg.output())
            time.sleep(0.02)

    def background(self, example: Example) -> None:
        """`command &`: start it, wait for its lines, keep it running until `close`."""
        bg = self._spawn(example)
        self.running.append(bg)
        self._wait_for_lines(bg)

    def starts(self, example: Example) -> None:
        """A command that runs until stopped: its lines, then SIGTERM and exit 0."""
        bg = self._spawn(example)
        try:
            self._wait_for_lines(bg)
        finally:
            code = bg.stop()
        if code != 0:
            raise self._fail(example, f"SIGTERM made it exit with {code}, not 0", bg.output())

    def close(self) -> None:
        """Stop what runs in the background, newest first; each must exit 0."""
        problems = []
        while self.running:
            bg = self.running.pop()
            code = bg.stop()
            if code != 0:
                problems.append(f"$ {bg.example.command}\nexited with {code}:\n{bg.output()}")
        if problems:
            raise ExampleError("\n\n".join(problems))
