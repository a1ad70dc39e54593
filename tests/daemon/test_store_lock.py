"""One daemon per data dir (issue 12 item 5): a second daemon with another
`GLOSMSD_SOCKET` started on the same store, and a message it queued stayed `[sending]`
in the first. Two real daemon processes, one data dir, two sockets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from glosmsd.system import datalock
from tests.support.daemonproc import DaemonProcess
from tests.support.ipcworld import ANN, BOB_MOBILE, seed, wait_seeded
from tests.support.serverproc import ROOT, running_server


def second_daemon(first: DaemonProcess, socket: Path, *extra: str) -> subprocess.Popen[str]:
    """Another daemon on `first`'s data dir (its XDG dirs), listening on `socket`."""
    env = {**first.env, "GLOSMSD_SOCKET": str(socket)}
    cmd = [
        sys.executable,
        "-m",
        "glosmsd.cli.glosmsd",
        "--server",
        first.server.url,
        "--token-file",
        str(first.token_file),
        "--device-id",
        first.home.name,
        "--headless",
        *extra,
    ]
    socket.parent.mkdir(mode=0o700, exist_ok=True)
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_daemon_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token) as first:
            wait_seeded(first)
            other = tmp_path / "ann" / "run2" / "socket"
            proc = second_daemon(first, other)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode != 0, out + err
            assert "glosmsd is already running" in err
            assert str(first.socket) in err, "it names the daemon to stop"
            assert f"pid {first.proc.pid}" in err  # type: ignore[union-attr]
            assert "--replace" in err
            assert "Traceback" not in err
            assert not other.exists(), "the second one never bound its socket"
            # The first is untouched and still owns its outbox.
            sent = first.call("send", to=BOB_MOBILE, text="only one daemon here")
            mid = sent["message"]["id"]

            def delivered() -> bool:
                msgs = first.call("messages", conversation=BOB_MOBILE)["messages"]
                return any(m["id"] == mid and m["state"] == "sent" for m in msgs)

            first.wait_until(delivered, 20, "the send to be delivered by the one daemon")
            assert first.call("number")["number"] == ANN


def test_replace_takes_over_a_daemon_on_another_socket(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token) as first:
            wait_seeded(first)
            other = tmp_path / "ann" / "run2" / "socket"
            proc = second_daemon(first, other, "--replace")
            try:
                assert first.proc is not None
                assert first.proc.wait(30) == 0, first.log()
                first.wait_until(
                    lambda: other.exists() or proc.poll() is not None, 20, "the new daemon's socket"
                )
                assert proc.poll() is None, proc.communicate(timeout=5)
                holder = datalock.read_holder(first.home / "data" / "glosmsd")
                assert holder.pid == proc.pid
                assert holder.socket == str(other)
            finally:
                proc.terminate()
                proc.communicate(timeout=30)


def test_the_lock_goes_with_the_process_even_on_sigkill(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        token = seed(srv)
        with DaemonProcess.start(tmp_path / "ann", srv, token) as first:
            wait_seeded(first)
            first.kill()
            first.spawn()  # no stale lock: the kernel dropped it with the process
            assert first.call("number")["number"] == ANN
