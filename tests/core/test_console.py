"""The staff console shell: sign-in, sessions, CSRF, lockout, timeouts, roles, navigation."""

from __future__ import annotations

import asyncio
import html
import re
import time
from typing import Any

import pytest
from aiohttp import web

from propmubi.config import Config, load_config
from propmubi.console import store
from propmubi.console.middleware import safe_next
from propmubi.console.sessions import COOKIE_NAME, Session, set_cookie
from propmubi.testing import STAFF_PASSWORD as PASSWORD
from propmubi.testing import csrf_of, make_staff, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def cookie(client: Any) -> str | None:
    for morsel in client.session.cookie_jar:
        if morsel.key == COOKIE_NAME:
            return morsel.value
    return None


async def login_page(client: Any, path: str = "/console/login") -> tuple[Any, str]:
    resp = await client.get(path)
    body = await resp.text()
    assert resp.status == 200, body
    return resp, body


async def test_sign_in_rotates_the_session_and_opens_the_dashboard(client, services):
    await make_staff(services)
    resp, body = await login_page(client)
    assert 'type="password"' in body
    before = cookie(client)
    assert before
    resp = await sign_in(client, email="SAM@Example.com", token=csrf_of(body))
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/"
    after = cookie(client)
    assert after and after != before  # a planted pre-login cookie is worthless afterwards
    resp = await client.get("/console/")
    body = await resp.text()
    assert resp.status == 200
    assert "<h1>Dashboard</h1>" in body and "Sam Staff" in body
    assert "Signed in as Sam Staff." in body
    assert "Event bus" in body and "<td>reference</td>" in body and "<td>console</td>" in body
    assert resp.headers["Cache-Control"] == "no-store"
    body = await (await client.get("/console/")).text()
    assert "Signed in as" not in body  # a flash shows once
    row = await store.by_email(services.db, "sam@example.com")
    assert row["last_login_at"] is not None
    # The old pre-login id no longer names a session.
    client.session.cookie_jar.clear()
    resp = await client.get("/console/", headers={"Cookie": f"{COOKIE_NAME}={before}"})
    assert resp.status == 401


async def test_cookie_flags_and_security_headers(client, services):
    await make_staff(services)
    resp, _ = await login_page(client)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    resp = await sign_in(client)
    set_cookies = resp.headers.getall("Set-Cookie")
    assert len(set_cookies) == 1
    text = set_cookies[0].lower()
    assert text.startswith(f"{COOKIE_NAME}=")
    for flag in ("httponly", "samesite=lax", "path=/console"):
        assert flag in text, text
    assert "secure" not in text  # the test environment runs over plain http
    base = load_config(environ={}, use_default_path=False)
    for environment, secure in (("production", True), ("development", False)):
        response = web.Response()
        session = Session(sid="abc", csrf="x", created_at=0, last_seen=0)
        set_cookie(response, session, base.evolve(app={"environment": environment}))
        assert bool(response.cookies[COOKIE_NAME]["secure"]) is secure


async def test_wrong_password_and_unknown_address_look_the_same(client, services):
    await make_staff(services)
    _, page = await login_page(client)
    token = csrf_of(page)
    wrong = await sign_in(client, password="not the password", token=token)
    unknown = await sign_in(client, email="nobody@example.com", token=token)
    assert wrong.status == unknown.status == 401
    wrong_body = (await wrong.text()).replace("sam@example.com", "EMAIL")
    unknown_body = (await unknown.text()).replace("nobody@example.com", "EMAIL")
    assert wrong_body == unknown_body
    assert "Wrong e-mail address or password." in wrong_body
    assert "Set-Cookie" not in wrong.headers


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {}


lockout = pytest.mark.parametrize("config_overrides", [
    {"console": {"max_failures": 3, "max_failures_per_ip": 5, "lockout_base": 1.0,
                 "lockout_max": 2.0}}])


@lockout
async def test_lockout_after_failures_with_back_off(client, services):
    await make_staff(services)
    _, page = await login_page(client)
    token = csrf_of(page)
    for _ in range(3):
        assert (await sign_in(client, password="nope", token=token)).status == 401
    locked = await sign_in(client, token=token)  # even the right password
    assert locked.status == 429
    assert "Too many failed sign-ins" in await locked.text()
    assert int(locked.headers["Retry-After"]) >= 1
    key = services.keys.console_lock("email", "sam@example.com")
    left = await services.redis.pttl(key)  # -2: already over, on a machine stalled for 1 s
    assert left == -2 or 0 < left <= 1000

    async def fail_and_read_the_lock() -> tuple[int, float]:
        # The lock is set during the request, before its password check: however slow the
        # machine, it has run down by at most the request's own time when we read it.
        started = time.monotonic()
        assert (await sign_in(client, password="nope", token=token)).status == 401
        left = await services.redis.pttl(key)
        return left, (time.monotonic() - started) * 1000

    await asyncio.sleep(1.1)
    # The fourth failure doubles the lock (2 s); the cap (lockout_max) bounds the fifth.
    left, spent = await fail_and_read_the_lock()
    assert 2000 - spent <= left <= 2000
    await asyncio.sleep(2.1)
    left, spent = await fail_and_read_the_lock()
    assert 2000 - spent <= left <= 2000
    await asyncio.sleep(2.1)
    ok = await sign_in(client, token=token)
    assert ok.status == 303
    # A success takes back only its own attempt: the failures stay counted for the window.
    assert await services.redis.get(services.keys.console_failures("email",
                                                                   "sam@example.com")) == "5"


@pytest.mark.parametrize("config_overrides", [{"console": {"max_failures": 5}}])
async def test_parallel_sign_ins_are_counted_before_the_password_is_checked(client, services):
    # 40 sign-ins at once, one with the right password: every one is counted before its
    # password is checked, so at most max_failures of them reach the check (401 or 303);
    # the rest are refused as locked (429), and the right one cannot reset the count for
    # the others.
    await make_staff(services)
    _, page = await login_page(client)
    token = csrf_of(page)
    passwords = [f"wrong guess {n}" for n in range(39)]
    passwords.insert(20, PASSWORD)
    answers = await asyncio.gather(*(sign_in(client, password=p, token=token)
                                     for p in passwords))
    statuses = [a.status for a in answers]
    assert set(statuses) <= {303, 401, 429}, statuses
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(401) + statuses.count(303) <= 6, statuses
    assert statuses.count(429) >= 34, statuses
    # Nor can it afterwards: the window still holds the failures, so later guesses add up
    # to at most max_failures in all. (If the right password was among the checked ones, this
    # client is signed in and its form token is spent: guess from a fresh client session.)
    client.session.cookie_jar.clear()
    _, page = await login_page(client)
    token = csrf_of(page)
    for n in range(5):
        statuses.append((await sign_in(client, password=f"later {n}", token=token)).status)
    assert statuses.count(401) <= 5, statuses
    assert statuses[-1] == 429


@lockout
async def test_unknown_addresses_and_clients_are_locked_out_too(client, services):
    await make_staff(services)
    _, page = await login_page(client)
    token = csrf_of(page)
    for _ in range(3):
        await sign_in(client, email="ghost@example.com", password="x", token=token)
    assert (await sign_in(client, email="ghost@example.com", token=token)).status == 429
    # Five failures from one client lock the client out, whatever address it tries next.
    for n in range(2):
        await sign_in(client, email=f"other{n}@example.com", password="x", token=token)
    assert (await sign_in(client, token=token)).status == 429


async def test_posts_without_a_valid_csrf_token_are_refused(client, services):
    await make_staff(services)
    await login_page(client)
    resp = await client.post("/console/login", data={"email": "sam@example.com",
                                                     "password": PASSWORD})
    assert resp.status == 403
    assert resp.content_type == "text/html"
    assert "expired or did not come from this site" in await resp.text()
    assert (await sign_in(client, token="forged")).status == 403
    assert (await sign_in(client)).status == 303
    for data in ({}, {"csrf_token": "forged"}):
        resp = await client.post("/console/logout", data=data)
        assert resp.status == 403
    assert (await client.get("/console/")).status == 200  # still signed in


async def test_sign_out_ends_the_server_session(client, services):
    await make_staff(services)
    await sign_in(client)
    old = cookie(client)
    page = await (await client.get("/console/")).text()
    assert 'action="/console/logout"' in page
    resp = await client.post("/console/logout", data={"csrf_token": csrf_of(page)},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    assert cookie(client) != old
    assert "You are signed out." in await (await client.get("/console/login")).text()
    client.session.cookie_jar.clear()
    jar = {"Cookie": f"{COOKIE_NAME}={old}"}
    assert (await client.get("/console/", headers=jar)).status == 401
    resp = await client.get("/console/", headers={**jar, **HTML}, allow_redirects=False)
    assert resp.status == 401
    assert 'name="next" value="/console/"' in await resp.text()


@pytest.mark.parametrize("config_overrides", [{"console": {"idle_timeout": 1.0}}])
async def test_idle_timeout_slides(client, services):
    await make_staff(services)
    await sign_in(client)
    for _ in range(4):  # 1.6 s in all, never 1 s idle
        await asyncio.sleep(0.4)
        assert (await client.get("/console/")).status == 200
    await asyncio.sleep(1.2)
    assert (await client.get("/console/")).status == 401


@pytest.mark.parametrize("config_overrides", [{"console": {"absolute_timeout": 1.5}}])
async def test_absolute_timeout(client, services):
    await make_staff(services)
    await sign_in(client)
    assert (await client.get("/console/")).status == 200
    await asyncio.sleep(0.8)
    assert (await client.get("/console/")).status == 200
    await asyncio.sleep(0.8)  # busy all along, but 1.6 s after sign-in
    assert (await client.get("/console/")).status == 401


async def test_roles_and_navigation(client, services):
    await make_staff(services)
    await make_staff(services, "ada@example.com", "Ada Admin", ("admin",))
    await sign_in(client)
    body = await (await client.get("/console/")).text()
    nav = re.search(r'<nav class="console-nav".*?</nav>', body, re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav)
    # Installed plugins add their pages too; the shell's and the reference plugin's are these.
    assert links[0] == ("/console/", "Dashboard")
    assert ("/console/reference/notes", "Notes") in links
    assert ("/console/staff", "Staff") not in links  # admins only
    assert 'href="/console/" aria-current="page"' in nav
    resp = await client.get("/console/staff")
    assert resp.status == 403
    text = await resp.text()
    assert "needs the admin role" in text and "Sam Staff" in text  # the layout, menu and all
    notes = await (await client.get("/console/reference/notes")).text()
    assert '<a href="/console/reference/notes" aria-current="page">Notes</a>' in notes

    client.session.cookie_jar.clear()
    await sign_in(client, email="ada@example.com")
    body = await (await client.get("/console/")).text()
    assert ">Staff</a>" in body
    resp = await client.get("/console/staff")
    text = await resp.text()
    assert resp.status == 200
    assert "<td>sam@example.com</td>" in text and "<td>admin</td>" in text


async def test_disabled_accounts_are_signed_out(client, services):
    await make_staff(services)
    await sign_in(client)
    assert (await client.get("/console/")).status == 200
    await store.disable(services.db, "sam@example.com")
    assert (await client.get("/console/")).status == 401
    assert (await sign_in(client)).status == 401


def sign_in_form(body: str) -> dict[str, str]:
    """The action and hidden fields of the sign-in form in a page."""
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', body, re.S)
    assert form, body
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                             form.group(2)))
    return {"action": form.group(1), **{k: html.unescape(v) for k, v in fields.items()}}


@pytest.mark.parametrize("headers", [HTML, {}], ids=["browser", "script"])
async def test_signed_out_gets_401_with_the_sign_in_form(client, services, headers):
    await make_staff(services)
    resp = await client.get("/console/reference/notes?page=2", headers=headers,
                            allow_redirects=False)
    body = await resp.text()
    # No redirect: the page's own address answers 401 with the form, which needs no script.
    assert resp.status == 401, body
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Sign in to open this page." in body and 'type="password"' in body
    assert "<script" not in body
    form = sign_in_form(body)
    assert form["action"] == "/console/login"
    assert form["next"] == "/console/reference/notes?page=2"
    # The form works as it is: its CSRF token and next bring the browser back to the page.
    resp = await sign_in(client, token=form["csrf_token"], next_path=form["next"])
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/reference/notes?page=2"
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/"


async def test_the_dashboard_answers_401_with_the_form_when_signed_out(client):
    resp = await client.get("/console/", headers=HTML, allow_redirects=False)
    assert resp.status == 401
    assert sign_in_form(await resp.text())["next"] == "/console/"


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/console/", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "/api/v1/openapi.json", "/console/login", "/console\r\nX: y",
    "http:/console/", "/consoleX",
])
def test_unsafe_next_targets_are_refused(target):
    assert safe_next(target) == "/console/"


def test_safe_next_targets_pass():
    for target in ("/console/", "/console/reference/notes?page=2", "/console"):
        assert safe_next(target) == target


async def test_open_redirects_are_refused_end_to_end(client, services):
    await make_staff(services)
    _, body = await login_page(client, "/console/login?next=https://evil.example/")
    assert 'name="next" value="/console/"' in body
    resp = await sign_in(client, next_path="//evil.example/")
    assert resp.headers["Location"] == "/console/"
    client.session.cookie_jar.clear()
    resp = await sign_in(client, next_path="/console/reference/notes")
    assert resp.headers["Location"] == "/console/reference/notes"
    # Signed in, the form goes straight on, safely too.
    resp = await client.get("/console/login?next=//evil.example", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/"


async def test_the_test_identity_header_still_works_without_a_session(client):
    resp = await client.get("/console/reference/notes", headers={"X-Test-Staff-Role": "staff"})
    assert resp.status == 200


def test_console_settings_are_validated():
    from propmubi.config import ConfigError

    with pytest.raises(ConfigError, match=r"console\.idle_timeout"):
        load_config(environ={"PROPMUBI_CONSOLE__IDLE_TIMEOUT": "0"}, use_default_path=False)
    config = load_config(environ={"PROPMUBI_CONSOLE__MAX_FAILURES": "9"},
                         use_default_path=False)
    assert isinstance(config, Config) and config.console.max_failures == 9
