"""Tests for glosmsd/desktop/window/access.py: the window's checks, without a socket.

Every refusal the issue names is decided here (the adapter only carries the verdict to the
wire, which tests/desktop/window/test_server.py checks against a real daemon): a spent or
expired token, no cookie, a wrong Host (421), an Origin other than the page's on the
upgrade (403), a request from another site.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from glosmsd.desktop.window import access
from glosmsd.desktop.window.access import Allow, Gate, HttpRequest, Refuse, Swap, Tokens

PORT = 40123
SECRET = "s3cr3t-" + "x" * 36
HOST = f"127.0.0.1:{PORT}"
ORIGIN = f"http://{HOST}"


def gate(tokens: Tokens | None = None) -> Gate:
    return Gate(PORT, SECRET, tokens or Tokens())


def req(
    target: str = "/",
    *,
    method: str = "GET",
    host: str | None = HOST,
    cookie: str | None = f"glosmsd_{PORT}={SECRET}",
    origin: str | None = None,
    site: str | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> HttpRequest:
    headers: dict[str, list[str]] = {}
    for name, value in (
        ("host", host),
        ("cookie", cookie),
        ("origin", origin),
        ("sec-fetch-site", site),
    ):
        if value is not None:
            headers[name] = [value]
    for name, values in (extra or {}).items():
        headers[name] = list(values)
    return HttpRequest(method, target, headers)


# ---------------------------------------------------------------------------- tokens


def test_a_token_works_once_and_only_for_its_60_seconds() -> None:
    tokens = Tokens()
    t = tokens.mint(now=100.0)
    assert tokens.spend(t, now=159.9)
    assert not tokens.spend(t, now=160.0)  # spent
    late = tokens.mint(now=200.0)
    assert not tokens.spend(late, now=260.0)  # expired at exactly 60 s
    assert not tokens.spend("never-minted", now=200.0)
    assert len(tokens) == 0


def test_tokens_are_256_random_bits_and_only_digests_are_kept() -> None:
    tokens = Tokens()
    minted = {tokens.mint(now=0.0) for _ in range(50)}
    assert len(minted) == 50
    assert all(len(t) == 43 for t in minted)  # 32 bytes, url-safe base64
    kept = repr(vars(tokens))
    assert not any(t in kept for t in minted)


def test_unused_tokens_are_bounded() -> None:
    tokens = Tokens(max_live=3)
    first = tokens.mint(now=0.0)
    for _ in range(3):
        tokens.mint(now=0.0)
    assert len(tokens) == 3
    assert not tokens.spend(first, now=1.0)  # the oldest made room


@given(st.lists(st.sampled_from(["mint", "spend-new", "spend-old", "wait"]), max_size=40))
def test_no_token_is_ever_spent_twice(ops: list[str]) -> None:
    tokens = Tokens(lifetime=10.0)
    now = 0.0
    minted: list[str] = []
    spent: set[str] = set()
    for op in ops:
        if op == "mint":
            minted.append(tokens.mint(now))
        elif op == "wait":
            now += 4.0
        elif minted:
            t = minted[-1] if op == "spend-new" else minted[0]
            if tokens.spend(t, now):
                assert t not in spent
                spent.add(t)


# ---------------------------------------------------------------------------- the gate


def test_the_one_time_url_swaps_for_the_cookie_and_goes_to_a_url_without_it() -> None:
    g = gate()
    token = g.tokens.mint(now=0.0)
    url = g.url(token, "/c/7")
    assert url == f"http://127.0.0.1:{PORT}/?token={token}#/c/7"
    target = url.removeprefix(f"http://127.0.0.1:{PORT}").split("#")[0]
    assert g.check(req(target, cookie=None), now=1.0) == Swap("/")
    again = g.check(req(target, cookie=None), now=2.0)
    assert isinstance(again, Refuse)
    assert again.status == 401
    assert "used already" in again.text
    assert "glosms open" in again.text


def test_an_expired_token_is_refused_with_what_to_do() -> None:
    g = gate()
    token = g.tokens.mint(now=0.0)
    verdict = g.check(req(f"/?token={token}", cookie=None), now=61.0)
    assert verdict == Refuse(
        401,
        "This one-time link was used already or is older than 60 seconds. " + access.OPEN_AGAIN,
    )


def test_a_token_counts_only_alone_and_only_on_the_page() -> None:
    g = gate()
    t1, t2 = g.tokens.mint(now=0.0), g.tokens.mint(now=0.0)
    two = g.check(req(f"/?token={t1}&token={t2}", cookie=None), now=1.0)
    assert isinstance(two, Refuse)
    assert two.status == 401
    elsewhere = g.check(req(f"/files/{'a' * 64}?token={t1}", cookie=None), now=1.0)
    assert isinstance(elsewhere, Refuse)
    assert elsewhere.status == 401


@pytest.mark.parametrize(
    "target", ["/", "/index.html", "/static/app.js", f"/files/{'0' * 64}", "/rpc", "/nope"]
)
def test_without_the_cookie_everything_is_401(target: str) -> None:
    for cookie in (None, f"glosmsd_{PORT}=wrong", f"glosmsd_1={SECRET}", f"other={SECRET}"):
        verdict = gate().check(req(target, cookie=cookie, origin=ORIGIN), now=0.0)
        assert verdict == Refuse(401, "Not signed in. " + access.OPEN_AGAIN), (target, cookie)


def test_the_cookie_is_found_among_others_and_in_any_cookie_header() -> None:
    g = gate()
    mixed = f"a=1; glosmsd_{PORT}=nope; glosmsd_{PORT}={SECRET}; b=2"
    assert g.check(req(cookie=mixed), now=0.0) == Allow("page", "index.html")
    split = req(cookie=None, extra={"cookie": ["a=1", f"glosmsd_{PORT}={SECRET}"]})
    assert g.check(split, now=0.0) == Allow("page", "index.html")


def test_the_session_cookie_is_httponly_samesite_strict_per_port() -> None:
    assert gate().set_cookie() == f"glosmsd_{PORT}={SECRET}; Path=/; HttpOnly; SameSite=Strict"
    assert access.cookie_name(PORT) != access.cookie_name(PORT + 1)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "evil.example",
        f"evil.example:{PORT}",
        f"127.0.0.1:{PORT + 1}",
        "127.0.0.1",
        f"127.0.0.2:{PORT}",
        f"[::1]:{PORT}",
        f"0.0.0.0:{PORT}",
        f"localhost.evil.example:{PORT}",
    ],
)
def test_a_host_that_is_not_this_server_is_421(host: str | None) -> None:
    verdict = gate().check(req(host=host), now=0.0)
    assert isinstance(verdict, Refuse)
    assert verdict.status == 421


def test_two_host_headers_are_421_and_localhost_is_fine() -> None:
    g = gate()
    two = req(host=None, extra={"host": [HOST, "evil.example"]})
    assert isinstance(g.check(two, now=0.0), Refuse)
    assert g.check(req(host=f"LocalHost:{PORT}"), now=0.0) == Allow("page", "index.html")


def test_the_upgrade_needs_the_origin_the_page_was_served_from() -> None:
    g = gate()
    assert g.check(req("/rpc", origin=ORIGIN), now=0.0) == Allow("rpc")
    via_name = req("/rpc", host=f"localhost:{PORT}", origin=f"http://localhost:{PORT}")
    assert g.check(via_name, now=0.0) == Allow("rpc")
    for origin in (
        None,
        "null",
        "http://evil.example",
        f"http://127.0.0.1:{PORT + 1}",  # another local server: same site, other origin
        f"https://{HOST}",
        f"http://localhost:{PORT}",  # the page was served as 127.0.0.1
    ):
        verdict = g.check(req("/rpc", origin=origin), now=0.0)
        assert isinstance(verdict, Refuse), origin
        assert verdict.status == 403, origin


@pytest.mark.parametrize("site", ["same-site", "cross-site", "CROSS-SITE"])
def test_requests_from_other_sites_are_403_even_with_the_cookie(site: str) -> None:
    for target in ("/", "/rpc", f"/files/{'a' * 64}", "/?token=x"):
        verdict = gate().check(req(target, origin=ORIGIN, site=site), now=0.0)
        assert isinstance(verdict, Refuse), target
        assert verdict.status == 403, target


def test_same_origin_and_user_typed_requests_pass() -> None:
    for site in ("same-origin", "none"):
        assert gate().check(req(site=site), now=0.0) == Allow("page", "index.html")


def test_only_get_and_head() -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        verdict = gate().check(req(method=method), now=0.0)
        assert verdict == Refuse(405, "Only GET is served here."), method
    assert gate().check(req(method="HEAD"), now=0.0) == Allow("page", "index.html")


@pytest.mark.parametrize(
    ("target", "verdict"),
    [
        ("/static/app.js", Allow("static", "app.js")),
        ("/static/icons/send.svg", Allow("static", "icons/send.svg")),
        (f"/files/{'ab' * 32}", Allow("file", "ab" * 32)),
        (f"/files/{'AB' * 32}", Refuse(404, "Not found.")),
        ("/files/abc", Refuse(404, "Not found.")),
        (f"/files/{'ab' * 32}/x", Refuse(404, "Not found.")),
        ("/static/../access.py", Refuse(404, "Not found.")),
        ("/static/%2e%2e/access.py", Refuse(404, "Not found.")),
        ("/static/.hidden", Refuse(404, "Not found.")),
        ("/static//etc/passwd", Refuse(404, "Not found.")),
        ("/static/a\\b", Refuse(404, "Not found.")),
        ("/etc/passwd", Refuse(404, "Not found.")),
        ("//evil.example/", Refuse(404, "Not found.")),
    ],
)
def test_routes_take_names_never_paths(target: str, verdict: access.Verdict) -> None:
    assert gate().check(req(target), now=0.0) == verdict


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
@example("/static/../../etc/passwd")
@example("/static/a/../../b")
def test_an_asset_name_never_leaves_static(tail: str) -> None:
    verdict = gate().check(req("/static/" + tail), now=0.0)
    if isinstance(verdict, Allow) and verdict.route == "static":
        parts = verdict.name.split("/")
        assert all(p and not p.startswith(".") for p in parts)
        assert "\\" not in verdict.name


def test_the_checks_come_in_order_host_first() -> None:
    g = gate()
    token = g.tokens.mint(now=0.0)
    # A wrong Host is refused before a token could be spent through it.
    bad = g.check(req(f"/?token={token}", host="evil.example", cookie=None), now=1.0)
    assert isinstance(bad, Refuse)
    assert bad.status == 421
    assert g.check(req(f"/?token={token}", cookie=None), now=1.0) == Swap("/")


def test_content_disposition_keeps_the_name_readable_and_safe() -> None:
    assert access.content_disposition("plan.pdf", inline=False) == (
        "attachment; filename=\"plan.pdf\"; filename*=UTF-8''plan.pdf"
    )
    value = access.content_disposition('Ünïcode "q".png', inline=True)
    assert value.startswith('inline; filename="_n_code _q_.png"; ')
    assert value.endswith("filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22q%22.png")
    assert "\r" not in access.content_disposition("a\r\nSet-Cookie: x", inline=True)


def test_no_header_the_window_sends_is_a_cors_header() -> None:
    names = [n.lower() for n, _v in access.BASE_HEADERS]
    assert not [n for n in names if n.startswith("access-control-")]
    assert ("x-content-type-options", "nosniff") in [(n.lower(), v) for n, v in access.BASE_HEADERS]
    assert access.CSP == (
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'"
    )
    assert access.FILES_CSP.endswith("; sandbox")


def test_many_origins_and_hosts_combine_as_the_rules_say() -> None:
    hosts = [HOST, f"localhost:{PORT}", "evil.example"]
    origins = [None, ORIGIN, f"http://localhost:{PORT}", "http://evil.example"]
    for host, origin in itertools.product(hosts, origins):
        verdict = gate().check(req("/rpc", host=host, origin=origin), now=0.0)
        if host == "evil.example":
            assert isinstance(verdict, Refuse)
            assert verdict.status == 421
        elif origin == f"http://{host}":
            assert verdict == Allow("rpc")
        else:
            assert isinstance(verdict, Refuse)
            assert verdict.status == 403
