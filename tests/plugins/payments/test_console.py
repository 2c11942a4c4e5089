"""The payments console: staff read payments with names, an admin refunds (the form refuses
what the API refuses, 422 with the message at the field), the sandbox buttons act as the
provider would, and the reconciliation page lists the day's lines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.payments import reconcile
from tests.plugins.payments.conftest import booking_of, open_intent, pay_ctx


async def _console(client: Any, roles: tuple[str, ...], email: str) -> None:
    await make_staff(client.app[SERVICES], email=email, name="Meera Admin", roles=roles)
    assert (await sign_in(client, email=email)).status == 303


async def _form(client: Any, page: str, data: dict[str, str]) -> Any:
    """Post a form of ``page`` to ``data["_action"]`` with the page's CSRF token."""
    token = csrf_of(await (await client.get(page)).text())
    action = data.pop("_action")
    return await client.post(action, data={"csrf_token": token, **data},
                             allow_redirects=False)


async def test_an_admin_pays_and_refunds_from_the_console(
        client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await _console(client, ("admin",), "meera@example.com")
    page = f"/console/payments/{intent['id']}"
    body = await (await client.get(page)).text()
    assert "Sandbox" in body and "Pay (captured)" in body

    resp = await _form(client, page, {"_action": page + "/sandbox", "outcome": "captured"})
    assert resp.status == 303
    await event_bus.drain()
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"

    listing = await (await client.get("/console/payments")).text()
    assert "captured" in listing and "confirmed" in listing
    body = await (await client.get(page)).text()
    assert "payment.captured" in body and "captured: booking confirmed" in body

    too_much = str(intent["amount_minor"] + 1)
    resp = await _form(client, page, {"_action": page + "/refunds", "amount_minor": too_much,
                                      "reason": "goodwill", "key": "k-1"})
    assert resp.status == 422
    text = await resp.text()
    assert 'id="amount_minor-error"' in text and "can still be refunded" in text
    resp = await _form(client, page, {"_action": page + "/refunds", "amount_minor": "5000",
                                      "reason": "goodwill", "key": "k-2"})
    assert resp.status == 303
    # The same form posted twice (a double click) refunds once.
    resp = await _form(client, page, {"_action": page + "/refunds", "amount_minor": "5000",
                                      "reason": "goodwill", "key": "k-2"})
    assert resp.status == 303
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT count(*) FROM payments_refunds") == 1
    await event_bus.drain()
    refunds = await (await client.get("/console/payments/refunds")).text()
    assert "₹50.00" in refunds and "Meera Admin" in refunds
    dashboard = await (await client.get("/console/")).text()
    assert "Payments today" in dashboard


async def test_staff_may_not_refund(client: Any, buyer: Any, hold: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await _console(client, ("staff",), "sam@example.com")
    page = f"/console/payments/{intent['id']}"
    resp = await _form(client, page, {"_action": page + "/refunds", "amount_minor": "1",
                                      "reason": "goodwill"})
    assert resp.status == 403


async def test_reconciliation_page(client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    await _console(client, ("staff",), "sam@example.com")
    body = await (await client.get("/console/payments/reconciliation")).text()
    assert "No settlement lines" in body
    resp = await client.get("/console/payments/reconciliation?day=junk")
    assert resp.status == 400
    resp = await client.get("/console/payments?status=junk")
    assert resp.status == 400
    report = await reconcile.settle(pay_ctx(client), dt.date(2026, 12, 1))
    assert report.lines == 0  # the sandbox settles nothing
