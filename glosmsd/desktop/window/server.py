"""The SMS window's HTTP + WebSocket adapter on 127.0.0.1: the page, its assets, the
attachments, and JSON-RPC over a WebSocket at `/rpc`.

One websockets server answers both: plain GETs through `process_request` (the page,
`/static/NAME`, `/files/SHA256`, the one-time URL's token swap) and the upgrade at `/rpc`,
whose messages go to a session of the daemon's socket server (`IpcServer.open_session`):
the same method table, validation, errors, built-ins and event replay as the Unix socket,
one JSON value per text frame. The checks are `access.Gate`'s (cookie or token, Host,
Origin, fetch site); on Linux the client's socket must also belong to this user
(`peer`), so another local user with the port and even a token gets nothing.

Assets are served by name from the files found under `static/` at start, never from a
path taken from the request; attachments only from the daemon's files dir, by sha256.
Message text never passes through here as HTML: the page puts it in with textContent.

It only moves bytes and checks requests; every use case is the service's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response

from glosmsd.core import filetypes, rpc
from glosmsd.core.errors import INVALID_REQUEST, RpcError, Unsupported
from glosmsd.daemon.ipc import IpcServer, IpcSession
from glosmsd.daemon.service import Service
from glosmsd.desktop.window import access, peer

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
#: The largest WebSocket message: files go in `send` as data: URIs, and photos are fitted
#: by the daemon, so a few big originals must fit (base64 adds a third).
MAX_FRAME: Final = 64 * 1024 * 1024
#: Calls of one page in flight at once: a slow `send` (photos being fitted) must not hold
#: up the counter, which calls `count` on every keystroke.
MAX_CALLS: Final = 8
#: The largest attachment served (the service refuses to read bigger sources too).
MAX_FILE: Final = 64 * 1024 * 1024
#: After answering "launch", later opens only focus for this long: the window is starting.
LAUNCH_GRACE: Final = 10.0
#: Types a browser may show in the window; anything else is a download.
INLINE_TYPES: Final = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp", "text/plain"}
)
INLINE_PREFIXES: Final = ("audio/", "video/")

CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".wav": "audio/x-wav",
    ".ogg": "audio/ogg",
    ".webmanifest": "application/manifest+json",
}

Action = Literal["launch", "focus", "none"]


@dataclass(frozen=True, slots=True)
class Opening:
    """What `open` decided: the one-time URL, and whether to launch a window or focus
    the one there is (`none`: only the URL was asked for)."""

    url: str
    action: Action
    conversation_id: int | None


@dataclass(frozen=True, slots=True)
class Asset:
    path: Path
    content_type: str


def default_static_dir() -> Path:
    return Path(str(resources.files("glosmsd.desktop.window") / "static"))


def find_assets(root: Path) -> dict[str, Asset]:
    """Every servable file under `root` by its name relative to it (`a/b.js`): regular
    files of a known type, no hidden names, no symlinks out."""
    assets: dict[str, Asset] = {}
    if not root.is_dir():
        return assets
    base = root.resolve()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        kind = CONTENT_TYPES.get(path.suffix.lower())
        real = path.resolve()
        if kind is None or not real.is_relative_to(base):
            continue
        assets[rel.as_posix()] = Asset(real, kind)
    return assets


@dataclass(eq=False)
class Page:
    """One connected page: its daemon session and the calls it has in flight."""

    conn: IpcSession
    calls: set[asyncio.Task[None]] = field(default_factory=set)
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CALLS))


class WindowServer:
    """Serves the SMS window on 127.0.0.1 (a free port, or `port`)."""

    def __init__(
        self,
        service: Service,
        *,
        port: int = 0,
        static_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        uid: int | None = None,
    ) -> None:
        self.service = service
        self.wanted_port = port
        self.static_dir = static_dir or default_static_dir()
        self.clock = clock
        self.uid = os.getuid() if uid is None else uid
        self.gate: access.Gate | None = None
        #: Why the window could not start, for `window.open` to say.
        self.failure: str | None = None
        self._sessions: IpcServer | None = None
        self._server: Server | None = None
        self._assets: dict[str, Asset] = {}
        self._pages: set[Page] = set()
        self._check_peers = False
        self._launching_until = 0.0
        self._show_on_connect: int | None = None
        self._counter = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, sessions: IpcServer) -> None:
        self._sessions = sessions
        self._assets = await asyncio.to_thread(find_assets, self.static_dir)
        if "index.html" not in self._assets:
            log.warning("window: no page under %s; / answers 503", self.static_dir)
        try:
            self._server = await serve(
                self._serve_rpc,
                HOST,
                self.wanted_port,
                process_request=self._process_request,
                process_response=self._process_response,
                server_header=None,
                compression=None,
                max_size=MAX_FRAME,
                ping_interval=20,
                ping_timeout=20,
            )
        except OSError as exc:
            where = f"port {self.wanted_port}" if self.wanted_port else "a free port"
            raise Unsupported(
                f"The SMS window cannot listen on 127.0.0.1 {where} ({exc.strerror or exc}). "
                "Set window_port in config.toml to a free port, or remove it to take any."
            ) from exc
        port = self.port
        self.gate = access.Gate(port, access.new_secret(), access.Tokens())
        self._check_peers = self._probe_peer_lookup(port)
        log.info("window: serving http://%s:%d/", HOST, port)

    def _probe_peer_lookup(self, port: int) -> bool:
        try:
            uid = peer.probe((HOST, port))
        except peer.LookupUnavailableError as exc:
            log.info("window: cannot tell which user connects (%s); token and cookie only", exc)
            return False
        if uid != self.uid:
            log.warning("window: the kernel says uid %d owns our socket, not %d", uid, self.uid)
            return False
        return True

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for page in list(self._pages):
            page.conn.drop("daemon shutting down")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 3)
        self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise Unsupported("The SMS window is not running.")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise Unsupported("The SMS window is not listening.")

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------------ opening

    def open(self, conversation_id: int | None, *, launch: bool = True) -> Opening:
        """A one-time URL at `conversation_id` (None: the list), and what to do with it.

        A connected page is told to show the conversation (`window.show`), and the caller
        should only bring its window to the front; so it is for a window that is still
        starting. Otherwise the caller launches one.
        """
        gate = self._gate()
        fragment = "/" if conversation_id is None else f"/c/{conversation_id}"
        url = gate.url(gate.tokens.mint(self.clock()), fragment)
        if not launch:
            return Opening(url, "none", conversation_id)
        if self._pages:
            self.show(conversation_id)
            return Opening(url, "focus", conversation_id)
        if self.clock() < self._launching_until:
            self._show_on_connect = conversation_id
            return Opening(url, "focus", conversation_id)
        self._launching_until = self.clock() + LAUNCH_GRACE
        self._show_on_connect = None
        return Opening(url, "launch", conversation_id)

    def launch_failed(self) -> None:
        """The launch `open` asked for did not happen: the next open launches again."""
        self._launching_until = 0.0

    def show(self, conversation_id: int | None) -> int:
        """Tell every connected page to show `conversation_id`; how many were told."""
        note = rpc.encode(rpc.notification("window.show", {"conversation": conversation_id}))
        for page in self._pages:
            page.conn.send(note)
        return len(self._pages)

    def _gate(self) -> access.Gate:
        if self.gate is None:
            raise Unsupported(self.failure or "The SMS window is not running.")
        return self.gate

    # ------------------------------------------------------------------ HTTP

    async def _process_request(self, conn: ServerConnection, request: WsRequest) -> Response | None:
        gate = self._gate()
        where = f"{request.path.split('?', 1)[0]} from {_addr(conn.remote_address)}"
        if self._check_peers and not self._same_user(conn):
            log.warning("window: refused %s: another user's connection", where)
            return _text(403, "This SMS window belongs to another user.")
        method = request.method
        req = access.HttpRequest(method, request.path, _headers(request.headers))
        verdict = gate.check(req, self.clock())
        if isinstance(verdict, access.Refuse):
            log.info("window: refused %s %s: %d %s", method, where, verdict.status, verdict.text)
            return _text(verdict.status, verdict.text)
        if isinstance(verdict, access.Swap):
            response = _text(303, "Signed in; go to /.\n")
            response.headers["Location"] = verdict.location
            response.headers["Set-Cookie"] = gate.set_cookie()
            return response
        head = method == "HEAD"
        if verdict.route == "rpc":
            return None  # the WebSocket handshake goes on
        if verdict.route == "file":
            return await self._file(verdict.name, head=head)
        return await self._asset(verdict.name, request.headers, head=head)

    def _same_user(self, conn: ServerConnection) -> bool:
        try:
            uid = peer.peer_uid(conn.local_address[:2], conn.remote_address[:2])
        except peer.LookupUnavailableError as exc:
            log.warning("window: peer lookup failed (%s); refusing", exc)
            return False
        return uid == self.uid

    def _process_response(
        self, _conn: ServerConnection, _request: WsRequest, response: Response
    ) -> None:
        """Every answer, websockets' own refusals included, carries the security headers."""
        headers = response.headers
        for name, value in access.BASE_HEADERS:
            if name not in headers:
                headers[name] = value
        if "Content-Security-Policy" not in headers:
            headers["Content-Security-Policy"] = access.CSP
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"

    async def _asset(self, name: str, headers: Headers, *, head: bool) -> Response:
        asset = self._assets.get(name)
        if asset is None:
            if name == "index.html":
                return _text(503, "The SMS window's page is not installed with this glosmsd.")
            return _text(404, "Not found.")
        try:
            body = await asyncio.to_thread(asset.path.read_bytes)
        except OSError as exc:
            log.warning("window: cannot read %s: %s", asset.path, exc)
            return _text(404, "Not found.")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        out = Headers()
        out["Content-Type"] = asset.content_type
        out["Cache-Control"] = "no-cache"  # revalidate: the page changes with glosmsd
        out["ETag"] = etag
        out["Content-Security-Policy"] = access.CSP
        if etag in (v.strip() for h in headers.get_all("If-None-Match") for v in h.split(",")):
            return _response(304, out, b"")
        return _response(200, out, b"" if head else body, length=len(body))

    async def _file(self, sha256: str, *, head: bool) -> Response:
        found = await self.service.local_file(sha256)
        if found is None:
            return _text(404, "This file is not downloaded yet.")
        path, name = found
        try:
            data = await asyncio.to_thread(_read_file, path)
        except OSError as exc:
            log.warning("window: cannot read file %s: %s", sha256, exc)
            return _text(404, "This file is not downloaded yet.")
        mime = filetypes.sniff(data) or "application/octet-stream"
        inline = mime in INLINE_TYPES or mime.startswith(INLINE_PREFIXES)
        out = Headers()
        if not inline:
            mime = "application/octet-stream"
        elif mime == "text/plain":
            mime = "text/plain; charset=utf-8"
        out["Content-Type"] = mime
        from glosmsd.daemon.media import safe_name  # loaded at the first file (issue 16)

        out["Content-Disposition"] = access.content_disposition(safe_name(name), inline=inline)
        out["Content-Security-Policy"] = access.FILES_CSP
        # Named by their content: the same URL is always the same bytes.
        out["Cache-Control"] = "private, max-age=31536000, immutable"
        return _response(200, out, b"" if head else data, length=len(data))

    # ------------------------------------------------------------------ the WebSocket

    async def _serve_rpc(self, ws: ServerConnection) -> None:
        sessions = self._sessions
        assert sessions is not None
        self._counter += 1
        conn = sessions.open_session(
            f"window #{self._counter}", max_line=MAX_FRAME, transport="websocket"
        )
        page = Page(conn)
        self._pages.add(page)
        self._launching_until = 0.0
        if self._show_on_connect is not None:
            # A later open came in while this window was starting: that one wins.
            self.show(self._show_on_connect)
            self._show_on_connect = None
        writer = asyncio.create_task(self._write(ws, conn), name=f"window-write-{self._counter}")
        log.info("window: page %s connected", conn.name)
        try:
            while conn.is_open():
                message = await ws.recv()
                await page.slots.acquire()
                task = asyncio.create_task(self._call(page, message))
                page.calls.add(task)
                task.add_done_callback(page.calls.discard)
        except ConnectionClosed:
            pass
        finally:
            self._pages.discard(page)
            for task in list(page.calls):
                task.cancel()
            sessions.close_session(conn)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, 5)
            writer.cancel()
            log.info("window: page %s gone (%s)", conn.name, conn.dropped or "closed")

    async def _call(self, page: Page, message: str | bytes) -> None:
        sessions = self._sessions
        assert sessions is not None
        try:
            if isinstance(message, bytes):
                err = RpcError(INVALID_REQUEST, "Send JSON-RPC as text frames (UTF-8 JSON).")
                await page.conn.reply(rpc.encode(rpc.error_reply(None, err.to_rpc())))
                return
            await sessions.handle(page.conn, message)
        finally:
            page.slots.release()

    async def _write(self, ws: ServerConnection, conn: IpcSession) -> None:
        try:
            while True:
                item = await conn.out.get()
                if item is None:
                    break
                await ws.send(item.removesuffix(b"\n"), text=True)
        except ConnectionClosed:
            pass
        finally:
            await ws.close()


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE bytes, never through a symlink."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
            raise OSError(f"{path.name}: not a regular file of at most {MAX_FILE} bytes")
        return fh.read(MAX_FILE + 1)


def _headers(headers: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers.raw_items():
        out.setdefault(name.lower(), []).append(value)
    return out


def _addr(address: Any) -> str:
    with contextlib.suppress(Exception):
        return f"{address[0]}:{address[1]}"
    return "?"


def _response(status: int, headers: Headers, body: bytes, *, length: int | None = None) -> Response:
    headers["Content-Length"] = str(len(body) if length is None else length)
    headers["Connection"] = "close"  # websockets answers one request per connection
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _text(status: int, text: str) -> Response:
    out = Headers()
    out["Content-Type"] = "text/plain; charset=utf-8"
    out["Cache-Control"] = "no-store"
    if status == 405:
        out["Allow"] = "GET, HEAD"
    body = (text.rstrip("\n") + "\n").encode()
    return _response(status, out, body)
