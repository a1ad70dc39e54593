"""The reliability contract under abuse: crashes, restarts and a frozen server.

Real processes only: the reference server and a daemon, each killed, restarted or
frozen (SIGSTOP) while sends go in through the daemon's socket.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ServerProcess, running_server

ANN = "+15550001001"
BOB = "+15557654321"


def server_texts(srv: ServerProcess, number: str) -> Counter[str]:
    msgs: list[dict[str, Any]] = json.loads(srv.admin("messages", "--number", number, "--json"))
    return Counter(m["text"] for m in msgs if m["direction"] == "out")


class Sender(threading.Thread):
    """Sends `chaos N` with client id `chaos-N` as fast as the daemon answers."""

    def __init__(self, daemon: DaemonProcess) -> None:
        super().__init__(daemon=True)
        self.daemon_proc = daemon
        self.accepted: list[str] = []
        self.tried = 0
        self.refused = 0
        self.last_error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            text = f"chaos {n}"
            self.tried = n
            try:
                with self.daemon_proc.client(timeout=10) as c:
                    reply = c.call("send", {"to": BOB, "text": text, "client_id": f"chaos-{n}"})
            except Exception as exc:  # the daemon is down or died mid-call: not accepted
                self.refused += 1
                self.last_error = exc
                self.stop.wait(0.02)  # pace the retries; spinning would starve the restart
                continue
            assert reply["message"]["text"] == text
            self.accepted.append(text)

    def sends_more(self, count: int, timeout: float = 30.0) -> None:
        """Return once `count` more sends were accepted."""
        goal = len(self.accepted) + count
        DaemonProcess.wait_until(
            lambda: len(self.accepted) >= goal,
            timeout,
            f"{count} more accepted sends ({len(self.accepted)} accepted, {self.refused} "
            f"refused, last error {self.last_error!r})\n{self.daemon_proc.log()[-1500:]}",
        )


@pytest.mark.timeout(120)
def test_every_accepted_send_reaches_the_server_exactly_once(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        with DaemonProcess.start(tmp_path / "ann", srv, token, "--ping-interval", "1") as ann:
            ann.wait_online()
            sender = Sender(ann)
            sender.start()
            try:
                for step in ("kill", "server", "kill", "kill", "server", "both", "kill"):
                    sender.sends_more(40)
                    if step in ("kill", "both"):
                        ann.kill()  # SIGKILL: a crash, mid-send most likely
                    if step in ("server", "both"):
                        srv.restart()
                    if step in ("kill", "both"):
                        ann.spawn()
                sender.sends_more(40)
            finally:
                sender.stop.set()
                sender.join(30)
            accepted = sender.accepted
            assert len(accepted) > 50, (len(accepted), sender.refused)

            def all_there() -> bool:
                texts = server_texts(srv, ANN)
                return all(texts[t] >= 1 for t in accepted)

            ann.wait_until(all_there, 40, "every accepted send on the server")
            ann.wait_until(lambda: ann.call("status")["outbox"] == 0, 20, "an empty outbox")
            texts = server_texts(srv, ANN)
            assert [t for t, n in texts.items() if n > 1] == []  # none twice
            assert set(accepted) <= set(texts)  # none lost
            # Nothing the daemon did not accept shows up under another name either.
            assert all(t.startswith("chaos ") for t in texts)


def test_a_frozen_server_is_noticed_within_two_pings_and_the_link_resumes(
    tmp_path: Path,
) -> None:
    interval = 0.5
    with running_server(tmp_path) as srv:
        token = srv.add_extension("1001", "Ann Lee", ANN)
        with DaemonProcess.start(
            tmp_path / "ann", srv, token, "--ping-interval", str(interval)
        ) as ann:
            ann.wait_online()
            srv.sigstop()
            try:

                def offline() -> dict[str, Any]:
                    status: dict[str, Any] = ann.call("status")
                    return {} if status["link"]["online"] else status

                status = ann.wait_until(offline, 10, "the daemon to notice the frozen server")
                # A stopped server never closes its side: the keepalive noticed it.
                assert status is not None
                assert status["link"]["detail"], status
                assert status["link"]["line"].startswith(("Offline", "Connecting")), status
                queued = ann.call("send", to=BOB, text="written while frozen")["message"]
                assert queued["state"] == "sending"
            finally:
                srv.sigcont()
            ann.wait_online(20)

            def sent() -> bool:
                msg = ann.call("messages", conversation=BOB)["messages"][0]
                return bool(msg["state"] == "sent")

            ann.wait_until(sent, 20, "the queued send to go out after SIGCONT")
            assert server_texts(srv, ANN) == Counter({"written while frozen": 1})
