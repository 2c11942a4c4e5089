"""axe-core over every console page, with seeded data, in the real headless browser: no page
may have a serious or critical accessibility violation (contrast, names, labels, headers...).

axe-core comes from the ``axe-playwright-python`` package (the ``test`` extra), which ships
``axe.min.js``: nothing is fetched while the tests run. The script is evaluated in the page
through the DevTools protocol, which the console's Content-Security-Policy does not block.
A failure lists each violation readably: the page, the rule, its impact, and each offending
element with axe's summary of what is wrong.
"""

from __future__ import annotations

import base64
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import propmubi_plugins.auth
from propmubi.actors import Actor
from propmubi.config import Config
from propmubi.ids import uuid7
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet
from propmubi_plugins.agents import seed as agents_seed
from propmubi_plugins.bookings import service as bookings
from propmubi_plugins.bookings.models import HoldIn
from propmubi_plugins.catalog import api as catalog_api
from propmubi_plugins.catalog import service as catalog
from propmubi_plugins.catalog.units import models as units_models
from propmubi_plugins.catalog.units import service as units_service
from propmubi_plugins.crm import service as crm_service
from propmubi_plugins.notifications import api as notifications_api
from propmubi_plugins.notifications import seed as notifications_seed
from propmubi_plugins.notifications.models import NotifyIn
from propmubi_plugins.payments import processing, sandbox_flow
from propmubi_plugins.payments import service as payments
from propmubi_plugins.payments.models import RefundIn
from tests.browser.conftest import Console
from tests.browser.test_catalog_browser import projects
from tests.browser.test_console_browser import sign_in
from tests.browser.test_kyc_browser import applicants

pytestmark = pytest.mark.asyncio(loop_scope="session")

PII_KEY = base64.b64encode(bytes(range(32))).decode()
#: The impacts that fail the test (axe's others are "moderate" and "minor"), and the rules
#: that fail it whatever their impact.
BLOCKING = ("serious", "critical")
ALWAYS = ("empty-table-header",)


@pytest.fixture
def config_overrides(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {"storage": {"local_dir": str(tmp_path / "media")},
            "plugins": {"settings": {"auth": {"pii_key_id": "k1", "pii_key": PII_KEY}}}}


@pytest.fixture
def extra_plugins(extra_plugins: list[Any]) -> list[Any]:
    return [*extra_plugins, propmubi_plugins.auth]


def axe_source() -> str:
    """axe-core's script, as shipped in the axe-playwright-python wheel."""
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text("utf-8")


async def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds in the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(source)
    results = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"]
            if v.get("impact") in BLOCKING or v["id"] in ALWAYS]


def describe(found: dict[str, list[dict[str, Any]]]) -> str:
    """Violations by page, one line per rule and one per offending element."""
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"]:
                target = " ".join(str(t) for t in node.get("target", []))
                summary = " ".join((node.get("failureSummary") or "").split())
                lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


class Audit:
    """Visits pages and keeps what axe-core says about each."""

    def __init__(self, page: Any, console: Console) -> None:
        self.page = page
        self.console = console
        self.source = axe_source()
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.visited: list[str] = []

    async def check(self, name: str) -> None:
        """Audit the page the browser is on, as ``name``."""
        self.visited.append(name)
        violations = await axe_violations(self.page, self.source)
        if violations:
            self.found[name] = violations

    async def visit(self, path: str, status: int = 200, name: str | None = None) -> None:
        response = await self.page.goto(self.console.at(path))
        assert response.status == status, (path, response.status)
        await self.check(name or path)


async def seed(migrated: Config, plugins: PluginSet) -> dict[str, uuid.UUID]:
    """Projects with towers, units and photos (one in review, one published); KYC
    applicants; their ids."""
    async with open_services(migrated, plugins) as services:
        in_review, second = await projects(services)
        await catalog.publish_project(services.context("catalog"), Actor.staff(uuid7()),
                                      second)
        unit_id = await services.db.fetchval(
            "SELECT id FROM catalog_units WHERE project_id = %s ORDER BY code LIMIT 1",
            (in_review,))
        kyc_ids = await applicants(services, ["Asha Rao", "Vikram Iyer"])
        user_id = await services.db.fetchval(
            "SELECT user_id FROM auth_kyc_records WHERE id = %s", (kyc_ids[0],))
        # A live session: the user page then lists it with its Revoke button.
        await services.db.execute(
            "INSERT INTO auth_sessions (id, user_id, device) VALUES (%s, %s, 'Pixel 8')",
            (uuid.uuid4(), user_id))
        builder_id = await services.db.fetchval(
            "SELECT builder_id FROM catalog_projects WHERE id = %s", (in_review,))
        booking_id, intent_id = await paid_booking(services, second, user_id)
        people = await advisors_leads_and_messages(services, second, user_id)
    return {"project": in_review, "kyc": kyc_ids[0], "user": user_id, "builder": builder_id,
            "published": second, "unit": unit_id, "booking": booking_id, "intent": intent_id,
            **people}


async def advisors_leads_and_messages(services: Any, project_id: uuid.UUID,
                                      buyer_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The demo agents and message templates (the plugins' seeds), a lead on the published
    project and a message to the buyer; the ids of an agent, a template, a delivery and the
    lead."""
    seed = Actor.system("seed")
    await agents_seed.seed(services.context("agents"), 0.0)
    await notifications_seed.seed(services.context("notifications"), 0.0)
    await notifications_api.notify(services.context("notifications"), seed, NotifyIn(
        type="booking_confirmed", user_id=buyer_id, phone="+919812300077",
        variables={"unit": "C-401", "project": "Green Meadows"}))
    crm = services.context("crm")
    project = await catalog_api.project(services.db, project_id)
    assert project is not None
    async with services.db.transaction() as tx:
        await crm_service.ingest_in(crm, tx, seed, {
            "name": "Meera Nair", "source": "website", "email": None,
            "message": "Is a site visit possible this weekend?"}, "+919812300078", project,
            user_id=None, partner=None)
    first = "SELECT id FROM {} ORDER BY id LIMIT 1"
    ids = {name: await services.db.fetchval(first.format(table)) for name, table in (
        ("agent", "agents_agents"), ("template", "notifications_templates"),
        ("delivery", "notifications_deliveries"), ("lead", "crm_leads"))}
    # A second message whose fate is unknown (as after an SMTP relay dropped the connection
    # once it had the message), for the page's decision form.
    await notifications_api.notify(services.context("notifications"), seed, NotifyIn(
        type="booking_confirmed", user_id=buyer_id, phone="+919812300077",
        variables={"unit": "C-402", "project": "Green Meadows"}, dedupe_key="unknown"))
    ids["unknown_delivery"] = await services.db.fetchval(
        "UPDATE notifications_deliveries SET status = 'unknown', provider = 'console_sms',"
        " attempts = 1, reason = 'the connection dropped after the message was handed over'"
        " WHERE id <> %s RETURNING id", (ids["delivery"],))
    return ids


async def paid_booking(services: Any, project_id: uuid.UUID, buyer_id: uuid.UUID
                       ) -> tuple[uuid.UUID, uuid.UUID]:
    """A booking of the published project, paid through the sandbox and partly refunded; the
    booking's and the payment's ids."""
    staff = Actor.staff(uuid7())
    tower = await units_service.create_tower(services.context("catalog"), staff, project_id,
                                             units_models.TowerIn(name="C", floors=4))
    unit = await units_service.create_unit(
        services.context("catalog"), staff, tower["id"], units_models.UnitIn(
            code="C-401", unit_type="2BHK", bedrooms=2, carpet_area_sqft=700, floor=4,
            price_minor=85_00_000_00))
    unit_id = unit["id"]
    buyer = Actor("user", str(buyer_id), frozenset({"buyer"}))
    pay = services.context("payments")
    booking = await bookings.hold(services.context("bookings"), buyer, HoldIn(unit_id=unit_id))
    intent = await payments.create_intent(pay, buyer, booking.id)
    await sandbox_flow.complete(pay, intent.id, "captured", time.time())
    for row_id in await services.db.fetch("SELECT id FROM payments_events"):
        async with services.db.transaction() as tx:
            await processing.apply_event_in(pay, tx, row_id["id"])
    await payments.request_refund(pay, Actor.system("seed"), intent.id,
                                  RefundIn(amount_minor=500_00, reason="goodwill"), "seed-1")
    return booking.id, intent.id


async def test_every_console_page_passes_axe(page: Any, console: Console, migrated: Config,
                                             plugins: PluginSet) -> None:
    ids = await seed(migrated, plugins)
    audit = Audit(page, console)

    # Signed out: the sign-in page, the 401 form in place of a page, a wrong password.
    await audit.visit("/console/login")
    await audit.visit("/console/", status=401, name="401 sign-in form")
    await page.fill("#email", console.staff.email)
    await page.fill("#password", "not the password")
    async with page.expect_navigation():
        await page.click("form[action='/console/login'] button[type=submit]")
    await audit.check("failed sign-in")

    # A staff member: every page of the menu and the pages behind it.
    await page.goto(console.at("/console/login"))
    await sign_in(page, console, console.staff)
    await audit.check("dashboard (with a flash)")
    project, builder = ids["project"], ids["builder"]
    for path in ("/console/", "/console/users", f"/console/users/{ids['user']}",
                 "/console/users?q=Asha", "/console/kyc", f"/console/kyc/{ids['kyc']}",
                 "/console/moderation", f"/console/moderation/{project}",
                 "/console/builders", f"/console/builders/{builder}",
                 f"/console/projects/{project}", f"/console/units/{ids['unit']}",
                 "/console/reference/notes", "/console/bookings",
                 "/console/bookings?status=confirmed", "/console/bookings/expiring",
                 f"/console/bookings/{ids['booking']}", "/console/payments",
                 f"/console/payments/{ids['intent']}", "/console/payments/refunds",
                 "/console/payments/reconciliation", "/console/agents",
                 "/console/agents?status=pending", "/console/agents/expiring",
                 "/console/agents/new",
                 "/console/notifications", "/console/notifications/templates",
                 "/console/notifications/outbox", "/console/crm/leads",
                 f"/console/agents/{ids['agent']}", f"/console/crm/leads/{ids['lead']}",
                 f"/console/notifications/messages/{ids['delivery']}",
                 f"/console/notifications/messages/{ids['unknown_delivery']}",
                 f"/console/notifications/templates/{ids['template']}",
                 "/console/crm/unassigned", "/console/crm/breaches", "/console/crm/visits"):
        await audit.visit(path)
    await audit.visit(f"/console/projects/{ids['published']}",
                      name="published project (Unpublish form)")

    # A number revealed (its own page), and forms refused with their messages (422).
    await page.goto(console.at(f"/console/kyc/{ids['kyc']}"))
    await page.fill("#reveal-pan", "checking the PAN against the register")
    async with page.expect_navigation():
        await page.click("form[action$='/reveal'] button[type=submit]")
    assert "/console/kyc/reveals/" in page.url
    await audit.check("revealed number")
    async def refused(field: str, submit: str, name: str) -> None:
        """Submit the form of ``submit`` with ``field`` left empty (the browser's own check
        taken off): a 422 page showing the message, audited as ``name``."""
        await page.eval_on_selector(field, "e => e.removeAttribute('required')")
        async with page.expect_navigation() as navigation:
            await page.click(submit)
        assert (await navigation.value).status == 422
        await audit.check(name)

    await page.goto(console.at(f"/console/moderation/{project}"))
    await refused("#reject-reason", "button[value=reject]", "refused rejection (422)")
    await page.goto(console.at(f"/console/projects/{ids['published']}"))
    await refused("#unpublish-reason", "form[action$='/unpublish'] button[type=submit]",
                  "refused unpublication (422)")
    await page.goto(console.at(f"/console/builders/{builder}"))
    await page.fill("#builder-name", "")
    await page.fill("#builder-website", "ftp://skyline.example")
    await refused("#builder-name", "form[action$='/edit'] button[type=submit]",
                  "refused builder edit (422)")
    await refused("#verification-reason", "form[action$='verify'] button[type=submit]",
                  "refused verification (422)")
    await page.goto(console.at("/console/agents/new"))
    for box, value in (("#display_name", "Ravi Deshpande"), ("#number", "A51800054321"),
                       ("#valid_from", "2025-01-01"), ("#valid_until", "2024-12-31")):
        await page.fill(box, value)
    await page.eval_on_selector("#email", "e => e.type = 'text'")  # past the browser's check
    await page.fill("#email", "not an address")
    await refused("#user_phone", "form[action$='/agents/new'] button[type=submit]",
                  "refused new agent (422)")
    await page.goto(console.at(f"/console/notifications/messages/{ids['unknown_delivery']}"))
    await refused("#note", "form[action$='/decision'] button[type=submit]",
                  "refused decision (422)")

    # Error pages.
    await audit.visit("/console/staff", status=403, name="403 page")
    await audit.visit("/console/no-such-page", status=404, name="404 page")
    await audit.visit(f"/console/projects/{uuid.uuid4()}", status=404, name="404 project")
    await audit.visit("/console/builders?cursor=junk", status=400, name="400 broken link")

    # An admin: the staff list.
    await page.click("nav.console-nav button:has-text('Sign out')")
    await page.wait_for_url(console.at("/console/login"))
    await audit.check("signed out (with a flash)")
    await page.goto(console.at("/console/staff"))
    await sign_in(page, console, console.admin)
    await audit.check("/console/staff")

    assert not audit.found, ("axe-core found violations (serious, critical, empty headers):\n"
                             + describe(audit.found))
    # Every GET page a plugin registers was opened above (a new page must be added here).
    opened = {name.split("?")[0] for name in audit.visited}
    for _, pages in plugins.call("propmubi_console_pages"):
        for registered in pages:
            if registered.method != "GET" or registered.path in ("", "/kyc/reveals/{reveal_id}"):
                continue  # the bare prefix only redirects; the reveal page is opened above
            pattern = "/console" + registered.path
            assert any(_matches(pattern, path) for path in opened), (
                f"{pattern} is not audited: add it to this test")


def _matches(pattern: str, path: str) -> bool:
    """Whether ``path`` is an instance of the route ``pattern`` (``{id}`` matches a part)."""
    want, got = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(got) and all(
        w.startswith("{") or w == g for w, g in zip(want, got, strict=True))
