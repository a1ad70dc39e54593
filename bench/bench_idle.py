"""Idle cost of the daemon with and without the tray, and how fast the badge reacts.

    .venv/bin/python -m bench.bench_idle            # 60 s idle windows
    .venv/bin/python -m bench.bench_idle --seconds 10

Floors measured in the same run: a bare `python -c "import time; time.sleep(N)"` and an
idle asyncio loop. The daemons run against a real reference server (keepalive pings every
20 s); the tray daemon runs on Xvfb with trayer and dunst on a private bus. CPU seconds
come from /proc (utime + stime over the idle window), RSS from /proc/PID/status.

Reaction: from the moment the daemon publishes the new message on its socket (a
subscriber sees the `message` event) to the moment the tray icon's window name (its
tooltip, set together with the badge) changes, seen as an X PropertyNotify.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from glosmsd.ipc_client import Client
from tests.daemonproc import DaemonProcess
from tests.desktop import DesktopEnv, TrayDaemon, wait_until
from tests.serverproc import running_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle(pid: int, seconds: float) -> tuple[float, float]:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before, rss_mb(pid)


def floor(code: str, seconds: float) -> tuple[float, float]:
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)  # let the interpreter finish starting
        return idle(proc.pid, seconds)
    finally:
        proc.kill()
        proc.wait()


def reaction(
    desk: DesktopEnv, daemon: DaemonProcess, srv_store: object, rounds: int
) -> list[float]:
    import Xlib.display
    import Xlib.X

    wid = int(desk.tray_icon())
    display = Xlib.display.Display(desk.display)
    window = display.create_resource_object("window", wid)
    window.change_attributes(event_mask=Xlib.X.PropertyChangeMask)
    display.sync()
    wm_name = display.intern_atom("WM_NAME")
    results: list[float] = []
    for i in range(rounds):
        seen = threading.Event()
        arrived: list[float] = []

        def listen(seen: threading.Event = seen, arrived: list[float] = arrived) -> None:
            with Client(daemon.socket, timeout=10) as c:
                c.call("subscribe", None)
                seen.set()
                for ev in c.events():
                    if ev.get("kind") == "message":
                        arrived.append(time.monotonic())
                        return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        seen.wait(5)
        with srv_store() as st:  # type: ignore[operator]
            st.receive("+15557654321", "+15550001001", f"ping {i}", [])
        changed = None
        deadline = time.monotonic() + 5
        while changed is None and time.monotonic() < deadline:
            while display.pending_events():
                ev = display.next_event()
                if ev.type == Xlib.X.PropertyNotify and ev.atom == wm_name:
                    changed = time.monotonic()
            if changed is None:
                time.sleep(0.001)
        t.join(5)
        if changed is not None and arrived:
            results.append((changed - arrived[0]) * 1000)
        daemon.call("mark_read")
        wait_until(lambda: "no unread" in desk.window_name(str(wid)), 10, "the badge to clear")
        while display.pending_events():
            display.next_event()
    display.close()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--rounds", type=int, default=10, help="badge reaction samples")
    args = p.parse_args()
    n = args.seconds
    rows: list[tuple[str, float, float]] = []
    rows.append(("floor: python time.sleep", *floor(f"import time; time.sleep({n + 5})", n)))
    rows.append(
        (
            "floor: idle asyncio loop",
            *floor(f"import asyncio; asyncio.run(asyncio.sleep({n + 5}))", n),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with running_server(root) as srv, DesktopEnv.start(root / "desk") as desk:
            token = srv.add_extension("1001", "Ann Lee", "+15550001001")
            srv.admin("add-contact", "Bob Roe", "--number", "mobile=+15557654321")
            with DaemonProcess.start(root / "headless", srv, token) as plain:
                plain.wait_online()
                time.sleep(1)
                assert plain.proc is not None
                rows.append(("glosmsd --headless", *idle(plain.proc.pid, n)))
            token2 = srv.admin("token", "1001").strip().split()[-1]
            with TrayDaemon.start_on(desk, root / "tray", srv, token2) as tray:
                tray.wait_online()
                desk.tray_icon()
                time.sleep(1)
                assert tray.proc is not None
                rows.append(("glosmsd with tray (xorg/trayer)", *idle(tray.proc.pid, n)))
                samples = reaction(desk, tray, srv.store, args.rounds)
    print(f"idle window: {n:.0f} s (keepalive ping every 20 s)")
    print(f"{'process':<34}{'CPU s':>10}{'CPU %':>9}{'RSS MB':>9}")
    for name, cpu, rss in rows:
        print(f"{name:<34}{cpu:>10.3f}{cpu / n * 100:>8.2f}%{rss:>9.1f}")
    if samples:
        print(
            f"badge reaction after arrival: median {statistics.median(samples):.1f} ms, "
            f"max {max(samples):.1f} ms over {len(samples)} messages (target < 100 ms)"
        )
    else:
        print("badge reaction: no samples")


if __name__ == "__main__":
    main()
