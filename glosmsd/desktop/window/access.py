"""Who may use the SMS window, and what every answer carries: the one-time tokens, the
session cookie, the Host, Origin and fetch-site checks, and the security headers.

The rules (Syncthing's GUI and Jupyter are the models; Transmission's CVE-2018-5702 is
what they prevent): every request needs the session cookie (256 random bits per daemon
start, HttpOnly, SameSite=Strict) or a one-time token from `window.open` (valid 60 s,
spent on first use, then swapped for the cookie and redirected to a URL without it);
without it, 401 and no data, for pages, files and the WebSocket alike. The Host header
must name this server by loopback address or `localhost` and its port (421 otherwise: DNS
rebinding). The WebSocket upgrade needs the cookie and an Origin equal to the origin the
page was served from (403 otherwise: cross-site WebSocket hijacking). A browser's
`Sec-Fetch-Site` other than same-origin or none is refused (403): the cookie is sent to
every port of 127.0.0.1, so a page of another local server is "same site". No CORS
header is ever sent.

It is pure: a request's facts go in (and `now`), a verdict comes out. It never reads a
socket, a clock or a file; the adapter (`glosmsd.desktop.window.server`) does that.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs

#: How long a one-time URL works, and how many may wait unused at once.
TOKEN_SECONDS: Final = 60.0
MAX_LIVE_TOKENS: Final = 64
#: The session cookie's random part: 32 bytes = 256 bits.
SECRET_BYTES: Final = 32

CSP: Final = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'"
)
#: Attachments come from strangers: even one served inline gets no script and no origin.
FILES_CSP: Final = CSP + "; sandbox"

#: Sent on every answer, refusals included. Deliberately no Access-Control-* header.
BASE_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
#: A static asset's name as the request gives it: path segments of safe characters.
_ASSET: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")

OPEN_AGAIN: Final = "Open the SMS window with `glosms open` (or from the tray icon)."


def cookie_name(port: int) -> str:
    """The session cookie's name. Browsers share cookies between every port of a host, so
    two daemons on 127.0.0.1 (a user's and the demo's) must not overwrite each other's."""
    return f"glosmsd_{port}"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Tokens:
    """One-time tokens: minted for `window.open`, each valid once for `TOKEN_SECONDS`.

    Only their SHA-256 digests are kept, oldest first; past `MAX_LIVE_TOKENS` unused ones,
    the oldest is dropped (a flood of `window.open` calls cannot grow memory).
    """

    def __init__(
        self,
        *,
        lifetime: float = TOKEN_SECONDS,
        max_live: int = MAX_LIVE_TOKENS,
        make: Callable[[], str] = new_secret,
    ) -> None:
        self.lifetime = lifetime
        self.max_live = max_live
        self._make = make
        self._live: OrderedDict[bytes, float] = OrderedDict()

    def mint(self, now: float) -> str:
        self._prune(now)
        token = self._make()
        self._live[_digest(token)] = now + self.lifetime
        while len(self._live) > self.max_live:
            self._live.popitem(last=False)
        return token

    def spend(self, token: str, now: float) -> bool:
        """True once for a live token; False for an unknown, spent or expired one."""
        self._prune(now)
        expires = self._live.pop(_digest(token), None)
        return expires is not None and now < expires

    def _prune(self, now: float) -> None:
        while self._live:
            digest, expires = next(iter(self._live.items()))
            if expires > now:
                return
            del self._live[digest]

    def __len__(self) -> int:
        return len(self._live)


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the checks need of one HTTP request (a page, an asset, a file, the upgrade)."""

    method: str
    target: str  # the request target as sent: path and query
    headers: Mapping[str, Sequence[str]]  # lower-case names -> every value sent

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> Sequence[str]:
        return self.headers.get(name.lower(), ())


Route = Literal["page", "static", "file", "rpc"]


@dataclass(frozen=True, slots=True)
class Refuse:
    status: int
    text: str


@dataclass(frozen=True, slots=True)
class Swap:
    """A good one-time token: set the session cookie and 303 to `location`."""

    location: str


@dataclass(frozen=True, slots=True)
class Allow:
    route: Route
    name: str = ""  # the asset name, or the file's sha256


Verdict = Refuse | Swap | Allow


@dataclass(slots=True)
class Gate:
    """The checks for one server: its port, its session secret and its tokens."""

    port: int
    secret: str
    tokens: Tokens

    @property
    def cookie(self) -> str:
        return cookie_name(self.port)

    def set_cookie(self) -> str:
        # No Max-Age: a session cookie, and the secret changes with each daemon start.
        return f"{self.cookie}={self.secret}; Path=/; HttpOnly; SameSite=Strict"

    def origins(self) -> tuple[str, ...]:
        return tuple(f"http://{name}:{self.port}" for name in LOOPBACK_NAMES)

    def url(self, token: str, fragment: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}/?token={token}#{fragment}"

    def check(self, req: HttpRequest, now: float) -> Verdict:
        """The verdict for `req`, in this order: Host (421), method (405), fetch site
        (403), the token swap, the cookie (401), the upgrade's Origin (403), the route."""
        host = self._host(req)
        if host is None:
            return Refuse(
                421,
                f"This server answers only to 127.0.0.1:{self.port} or localhost:{self.port}.",
            )
        if req.method not in ("GET", "HEAD"):
            return Refuse(405, "Only GET is served here.")
        site = req.header("sec-fetch-site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return Refuse(403, f"Requests from other sites are refused ({site}).")
        # Split by hand: urlsplit takes "//host/..." for a network location.
        path, _, raw_query = req.target.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        if path == "/" and "token" in query:
            tokens = query["token"]
            if len(tokens) == 1 and self.tokens.spend(tokens[0], now):
                return Swap("/")
            return Refuse(
                401,
                "This one-time link was used already or is older than "
                f"{self.tokens.lifetime:g} seconds. {OPEN_AGAIN}",
            )
        if not self._has_cookie(req):
            return Refuse(401, f"Not signed in. {OPEN_AGAIN}")
        if path == "/rpc":
            origin = req.header("origin")
            if origin is None or origin.lower() != f"http://{host}":
                return Refuse(403, "The WebSocket is only for the page this server serves.")
            return Allow("rpc")
        if path in ("/", "/index.html"):
            return Allow("page", "index.html")
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if _ASSET.fullmatch(name):
                return Allow("static", name)
        elif path.startswith("/files/"):
            sha = path.removeprefix("/files/")
            if _SHA256.fullmatch(sha):
                return Allow("file", sha)
        return Refuse(404, "Not found.")

    def _host(self, req: HttpRequest) -> str | None:
        """The Host header, lower-cased, when it names this server; else None."""
        hosts = req.all("host")
        if len(hosts) != 1:
            return None
        host = hosts[0].strip().lower()
        if host in (f"{name}:{self.port}" for name in LOOPBACK_NAMES):
            return host
        return None

    def _has_cookie(self, req: HttpRequest) -> bool:
        wanted = self.secret.encode()
        found = False
        for header in req.all("cookie"):
            for pair in header.split(";"):
                name, eq, value = pair.strip().partition("=")
                if eq and name == self.cookie:
                    # Compare every candidate in constant time; one good one is enough.
                    found |= hmac.compare_digest(value.strip().encode(), wanted)
        return found


def content_disposition(name: str, *, inline: bool) -> str:
    """`inline` or `attachment` with the (already safe) file name, RFC 6266 style: an ASCII
    fallback and the UTF-8 name percent-encoded."""
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
