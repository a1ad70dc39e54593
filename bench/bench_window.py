"""Benchmark of the SMS window's page in Debian's Chromium, each figure beside a floor
measured in the same browser in the same run.

- usable with 2,000 conversations: from navigation start to the page's `glosms-ready`
  mark (connected, subscribed, the user's details and the list shown); floor: the same
  browser loading a static page of the same 2,000 items with the same stylesheet, to its
  load event (served from 127.0.0.1 by a bare http.server).
- opening a conversation of 10,000 messages: from setting `#/c/ID` to the frame that
  paints its newest message (paged: the newest 50 only); floor: the same 50 bubbles as
  static markup put into the same log, to the frame that paints them.
- arrival to on-screen: a message written into the server's database (as its carrier
  does) until its bubble is in the open conversation's DOM; floor: the same message's
  `event` on the daemon's Unix socket, measured for the same messages.

A real server process, a real daemon, real Chromium (headless). Run:
`.venv/bin/python -m bench.bench_window`. `run()` returns the figures as a dict.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from glosmsd.client.ipc import Client
from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ServerProcess, running_server
from tests.support.windowpage import CHROMIUM, bulk_messages

ANN = "+15550001001"
LONG = "+15557651111"
CONVERSATIONS = 2_000
MESSAGES = 10_000
LOADS = 5
OPENS = 5
ARRIVALS = 20
STATIC = Path(__file__).resolve().parents[1] / "glosmsd" / "desktop" / "window" / "static"


def _remote(i: int) -> str:
    return f"+1555{3000000 + i:07d}"


def _fill(srv: ServerProcess) -> None:
    now = time.time()
    convs = (
        (_remote(i), "in", f"Hello number {i}, see you at the station", now - 86400 - i * 60.0)
        for i in range(CONVERSATIONS - 1)
    )
    bulk_messages(srv, convs)
    start = now - MESSAGES * 30.0
    long = (
        (LONG, "in" if i % 3 else "out", f"Long talk message {i}", start + i * 30.0)
        for i in range(MESSAGES)
    )
    bulk_messages(srv, long)


def _synced(daemon: DaemonProcess) -> bool:
    convs = daemon.call("conversations", limit=1)
    total = 0
    offset = 0
    while True:
        page = daemon.call("conversations", limit=500, offset=offset)
        total += len(page)
        if len(page) < 500:
            break
        offset += 500
    return bool(convs) and convs[0]["remote"] == LONG and total >= CONVERSATIONS


def _static_list() -> str:
    now = time.time()
    items = "\n".join(
        f'<div role="option" class="conv" aria-label="{html.escape(_remote(i))}">'
        '<span class="avatar">NN</span><span class="conv-main"><span class="conv-top">'
        f'<span class="conv-title">{html.escape(_remote(i))}</span>'
        f'<span class="conv-time">{time.strftime("%b %d", time.localtime(now - 86400))}</span>'
        '</span><span class="conv-bottom"><span class="conv-preview">'
        f"Hello number {i}, see you at the station</span></span></span></div>"
        for i in range(CONVERSATIONS)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SMS</title>'
        '<link rel="stylesheet" href="/style.css"></head><body><div class="app">'
        '<aside class="side"><div class="convlist" role="listbox" aria-label="Conversations">'
        f"{items}</div></aside><main class=pane></main></div></body></html>"
    )


@contextlib.contextmanager
def _static_server(folder: Path) -> Iterator[str]:
    (folder / "list.html").write_text(_static_list())
    (folder / "style.css").write_bytes((STATIC / "style.css").read_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _ready_ms(page: Page, origin: str) -> float:
    page.goto("about:blank")
    page.goto(f"{origin}/#/")
    page.wait_for_selector("html[data-ready='1']", state="attached", timeout=60_000)
    return float(page.evaluate("performance.getEntriesByName('glosms-ready')[0].startTime"))


def _static_ms(page: Page, url: str) -> float:
    page.goto("about:blank")
    page.goto(url, wait_until="load")
    return float(
        page.evaluate(
            "new Promise((r) => requestAnimationFrame(() => setTimeout(() => "
            "r(performance.getEntriesByType('navigation')[0].loadEventEnd), 0)))"
        )
    )


OPEN_JS = """async ({id, newest}) => {
  location.hash = '#/';
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  location.hash = '#/c/' + id;
  return await new Promise((resolve) => {
    const check = () => {
      const found = [...document.querySelectorAll('#messages .msg .text')]
        .some((e) => e.textContent === newest);
      if (found) requestAnimationFrame(() => resolve(performance.now() - t0));
      else requestAnimationFrame(check);
    };
    check();
  });
}"""

STATIC_JS = """async () => {
  const log = document.getElementById('messages');
  const markup = [...log.querySelectorAll('.msg')].map((e) => e.outerHTML).join('');
  location.hash = '#/';
  await new Promise((r) => setTimeout(r, 50));
  document.getElementById('open').hidden = false;
  document.getElementById('empty').hidden = true;
  const t0 = performance.now();
  log.innerHTML = markup;
  log.scrollTop = log.scrollHeight;
  return await new Promise((r) => requestAnimationFrame(() => r(performance.now() - t0)));
}"""

WATCH_JS = """() => {
  window.__seen = {};
  new MutationObserver((list) => {
    for (const m of list) for (const n of m.addedNodes) {
      if (n.nodeType === 1 && n.classList.contains('msg')) {
        const t = n.querySelector('.text');
        if (t) window.__seen[t.textContent] = performance.timeOrigin + performance.now();
      }
    }
  }).observe(document.getElementById('messages'), {childList: true});
}"""


def _arrivals(
    srv: ServerProcess, daemon: DaemonProcess, page: Page
) -> tuple[list[float], list[float]]:
    page.evaluate(WATCH_JS)
    dom: list[float] = []
    sock: list[float] = []
    with Client(daemon.socket, timeout=20) as watcher:
        watcher.call("subscribe")
        events = watcher.events()
        for i in range(ARRIVALS + 2):
            text = f"arrival probe {i}"
            start = time.time()
            with srv.store() as st:
                st.receive(LONG, ANN, text)
            for event in events:
                data = event.get("data") or {}
                if event.get("kind") == "message" and data.get("message", {}).get("text") == text:
                    at_socket = time.time()
                    break
            page.wait_for_function("(t) => window.__seen[t]", arg=text, timeout=20_000)
            at_dom = float(page.evaluate("(t) => window.__seen[t]", text)) / 1000.0
            if i >= 2:  # the first two warm the paths up
                sock.append((at_socket - start) * 1000.0)
                dom.append((at_dom - start) * 1000.0)
    return dom, sock


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="glosmsd-bench-window-") as tmp:
        root = Path(tmp)
        with running_server(root) as srv:
            token = srv.add_extension("1001", "Ann Lee", ANN)
            _fill(srv)
            with DaemonProcess.start(root / "ann", srv, token) as daemon:
                daemon.wait_online()
                daemon.wait_until(lambda: _synced(daemon), 120, "the daemon's sync")
                long_id = daemon.call("messages", conversation=LONG, limit=1)["conversation"]["id"]
                url = daemon.call("window.open", launch=False)["url"]
                origin = url.split("/?", 1)[0]
                static = root / "static"
                static.mkdir()
                with _static_server(static) as static_origin, sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = ctx.new_page()
                    page.goto(url)  # spends the token: the context has the cookie now
                    page.wait_for_selector("html[data-ready='1']", state="attached")
                    ready = [_ready_ms(page, origin) for _ in range(LOADS)]
                    static_list = f"{static_origin}/list.html"
                    floor_list = [_static_ms(page, static_list) for _ in range(LOADS)]
                    _ready_ms(page, origin)
                    newest = f"Long talk message {MESSAGES - 1}"
                    opens = [
                        float(page.evaluate(OPEN_JS, {"id": long_id, "newest": newest}))
                        for _ in range(OPENS)
                    ]
                    in_dom = page.locator("#messages .msg").count()
                    floor_open = [float(page.evaluate(STATIC_JS)) for _ in range(OPENS)]
                    page.goto(f"{origin}/#/c/{long_id}")
                    page.wait_for_selector("html[data-ready='1']", state="attached")
                    dom, sock = _arrivals(srv, daemon, page)
                    browser.close()
    return {
        "usable_ms": statistics.median(ready),
        "usable_floor_ms": statistics.median(floor_list),
        "open_ms": statistics.median(opens),
        "open_floor_ms": statistics.median(floor_open),
        "open_in_dom": in_dom,
        "arrival_ms": statistics.median(dom),
        "arrival_max_ms": max(dom),
        "arrival_socket_ms": statistics.median(sock),
        "samples": {"loads": ready, "static": floor_list, "opens": opens, "arrivals": dom},
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
