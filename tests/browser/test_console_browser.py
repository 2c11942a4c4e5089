"""The staff console in a real headless browser: the sign-in form, the session cookie, CSRF,
sign-out and roles, as a person at a keyboard meets them. Saves screenshots of the sign-in page,
the dashboard and the staff list to docs/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from propmubi.console.sessions import COOKIE_NAME
from tests.browser.conftest import Account, Console

# The browser is started once, on the session's event loop: the tests run there too.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def session_cookie(browser: Any) -> dict[str, Any] | None:
    cookies = [c for c in await browser.cookies() if c["name"] == COOKIE_NAME]
    assert len(cookies) <= 1, cookies
    return cookies[0] if cookies else None


async def sign_in(page: Any, console: Console, account: Account) -> None:
    """Fill and submit the sign-in form the browser is on; wait for the next page."""
    await page.fill("#email", account.email)
    await page.fill("#password", account.password)
    async with page.expect_navigation():
        await page.click("form[action='/console/login'] button[type=submit]")


async def nav_labels(page: Any) -> list[str]:
    return [text.strip() for text in await page.locator("nav.console-nav > a").all_inner_texts()]


async def test_sign_in_through_the_form_opens_the_dashboard(page, browser, console, screenshots):
    response = await page.goto(console.at("/console/"))
    # Signed out, the dashboard's address answers 401 with the sign-in form, which returns
    # to the dashboard.
    assert response.status == 401
    assert page.url == console.at("/console/")
    assert await page.title() == "Sign in · Propmubi"
    assert await page.locator("nav.console-nav").count() == 0
    await page.fill("#email", console.staff.email)
    await page.screenshot(path=screenshots / "console-login.png", full_page=True)

    await page.fill("#password", console.staff.password)
    async with page.expect_navigation() as navigation:
        await page.press("#password", "Enter")  # submitting as people do
    assert (await navigation.value).status == 200
    assert page.url == console.at("/console/")
    assert await page.inner_text("h1") == "Dashboard"
    labels = await nav_labels(page)
    assert labels[0] == "Dashboard" and "Staff" not in labels  # Staff is for admins
    assert await page.get_attribute("nav.console-nav > a", "aria-current") == "page"
    assert await page.inner_text("nav.console-nav .who") == f"{console.staff.name}\nSign out"
    assert await page.inner_text("p.flash") == f"Signed in as {console.staff.name}."
    plugins = await page.locator("section.card", has_text="Plugins").locator(
        "tbody td:first-child").all_inner_texts()
    assert {"console", "reference"} <= set(plugins)
    await page.screenshot(path=screenshots / "console-dashboard.png", full_page=True)

    await page.reload()  # the flash is shown once
    assert await page.locator("p.flash").count() == 0
    assert await page.inner_text("h1") == "Dashboard"


async def test_wrong_password_stays_on_the_form(page, console):
    await page.goto(console.at("/console/login"))
    await page.fill("#email", console.staff.email)
    await page.fill("#password", "not the password")
    async with page.expect_navigation() as navigation:
        await page.click("button[type=submit]")
    assert (await navigation.value).status == 401
    assert await page.inner_text("[role=alert]") == "Wrong e-mail address or password."
    assert await page.input_value("#email") == console.staff.email
    assert await page.input_value("#password") == ""


async def test_the_session_cookie_changes_at_sign_in(page, browser, console):
    assert await session_cookie(browser) is None
    await page.goto(console.at("/console/login"))
    before = await session_cookie(browser)
    assert before is not None  # the pre-login session that carries the form's CSRF token
    assert before["httpOnly"] is True and before["sameSite"] == "Lax"
    assert before["path"] == "/console"
    await sign_in(page, console, console.staff)
    assert page.url == console.at("/console/")
    after = await session_cookie(browser)
    assert after is not None and after["value"] != before["value"]
    assert after["httpOnly"] is True and after["sameSite"] == "Lax"
    # Scripts cannot read it.
    assert COOKIE_NAME not in await page.evaluate("document.cookie")


POST_LOGOUT = """async (headers) => {
    const response = await fetch("/console/logout", {
        method: "POST", headers: headers, body: "csrf_token=" + (headers["X-Forged"] || ""),
        redirect: "manual", credentials: "same-origin"});
    return response.status;
}"""


async def test_a_post_without_the_csrf_token_is_refused(page, browser, console):
    await page.goto(console.at("/console/login"))
    await sign_in(page, console, console.staff)
    cookie = await session_cookie(browser)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # Same-origin script, the session cookie sent along, but no token / a wrong one.
    assert await page.evaluate(POST_LOGOUT, form) == 403
    assert await page.evaluate(POST_LOGOUT, {**form, "X-Forged": "forged"}) == 403
    # The same without the browser's page: the context's request API shares its cookies.
    response = await browser.request.post(console.at("/console/logout"), form={},
                                          max_redirects=0)
    assert response.status == 403
    # Still signed in, with the same session.
    response = await page.goto(console.at("/console/"))
    assert response.status == 200 and page.url == console.at("/console/")
    assert await page.inner_text("h1") == "Dashboard"
    assert (await session_cookie(browser))["value"] == cookie["value"]


async def test_sign_out_through_the_button(page, browser, console):
    await page.goto(console.at("/console/login"))
    await sign_in(page, console, console.staff)
    signed_in = await session_cookie(browser)
    async with page.expect_navigation():
        await page.click("nav.console-nav button:has-text('Sign out')")
    assert page.url == console.at("/console/login")
    assert await page.inner_text("p.flash") == "You are signed out."
    assert await page.locator("nav.console-nav").count() == 0
    assert (await session_cookie(browser))["value"] != signed_in["value"]

    response = await page.goto(console.at("/console/"))
    assert response.status == 401
    assert page.url == console.at("/console/")
    assert await page.inner_text("h1") == "Sign in"
    # The old session cookie is dead server-side too.
    await browser.clear_cookies()
    await browser.add_cookies([{**signed_in}])
    response = await page.goto(console.at("/console/"))
    assert response.status == 401 and await page.inner_text("h1") == "Sign in"


async def test_staff_gets_403_on_the_staff_list_and_an_admin_sees_it(
        page, browser, console, screenshots: Path):
    await page.goto(console.at("/console/login"))
    await sign_in(page, console, console.staff)
    response = await page.goto(console.at("/console/staff"))
    assert response.status == 403
    assert "needs the admin role" in await page.inner_text("main")
    await page.click("nav.console-nav button:has-text('Sign out')")
    await page.wait_for_url(console.at("/console/login"))

    # Signed out, the staff list shows the sign-in form; signing in opens the list.
    response = await page.goto(console.at("/console/staff"))
    assert response.status == 401 and page.url == console.at("/console/staff")
    await sign_in(page, console, console.admin)
    assert page.url == console.at("/console/staff")
    labels = await nav_labels(page)
    assert labels[0] == "Dashboard" and labels[-1] == "Staff"
    assert await page.get_attribute("nav.console-nav > a:has-text('Staff')",
                                    "aria-current") == "page"
    assert await page.inner_text("h1") == "Staff"
    headings = [h.strip() for h in await page.locator("main table thead th").all_inner_texts()]
    assert headings == ["E-mail", "Name", "Roles", "Last sign-in", "State"]
    rows = {}
    for row in await page.locator("main table tbody tr").all():
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        rows[cells[0]] = cells
    assert set(rows) == {console.staff.email, console.admin.email}
    assert rows[console.admin.email][1:3] == [console.admin.name, "admin"]
    assert rows[console.staff.email][1:3] == [console.staff.name, "staff"]
    assert rows[console.staff.email][4] == rows[console.admin.email][4] == "active"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", rows[console.admin.email][3])
    await page.screenshot(path=screenshots / "console-staff.png", full_page=True)
