"""The bookings console: the list (by status) and a booking's page show names, not ids; admins
cancel with a reason (others may not); a refused form answers 422; holds about to expire; the
dashboard card."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

from propmubi.actors import Actor
from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings import api, console
from tests.plugins.bookings.conftest import history, hold, outbox, unit_status

PREFIX = "/console/bookings"


async def signed_in(client: Any, roles: tuple[str, ...] = ("staff",)) -> uuid.UUID:
    """Sign a console staff member with ``roles`` in; their staff id."""
    staff = await make_staff(client.app[SERVICES], roles=roles, name="Asha Rao")
    assert (await sign_in(client)).status == 303
    return uuid.UUID(str(staff.id))


async def page(client: Any, path: str, status: int = 200) -> str:
    response = await client.get(path)
    body = await response.text()
    assert response.status == status, body
    return body


def field_error(body: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', body)
    return unescape(found.group(1)) if found else None


async def phone_of(client: Any, user: Any) -> str:
    return await client.app[SERVICES].db.fetchval(
        "SELECT phone FROM auth_users WHERE id = %s", (user.id,))


async def confirmed(client: Any, buyer: Any, unit_id: str) -> str:
    """A booking of ``unit_id`` by ``buyer``, paid and confirmed; its id."""
    booking = await hold(client, buyer, unit_id)
    other = client.app[SERVICES].context("catalog")
    async with other.db.transaction() as tx:
        assert (await api.record_payment_in(
            other, tx, Actor.system("payments"), uuid.UUID(booking["id"]),
            payment_id=uuid.uuid4(), amount_minor=8_50_000_00, currency="INR")).confirmed
    return booking["id"]


async def test_the_list_shows_names_and_filters_by_status(client, buyer, make_user, units):
    held = await hold(client, buyer, units["A-101"])
    other = await make_user()
    await confirmed(client, other, units["A-201"])
    await signed_in(client)
    body = await page(client, PREFIX)
    assert f'href="{PREFIX}"' in body and ">Bookings<" in body  # the menu entry
    assert f'<a href="{PREFIX}/{held["id"]}">Green Meadows · A-101</a>' in body
    assert await phone_of(client, buyer) in body and await phone_of(client, other) in body
    assert held["id"] not in re.sub(r'href="[^"]*"', "", body)  # ids only in links
    assert "₹8,50,000.00" in body
    only = await page(client, f"{PREFIX}?status=confirmed")
    assert "A-201" in only and "A-101" not in only
    assert (await client.get(PREFIX, params={"cursor": "junk"})).status == 400


async def test_a_bookings_page_shows_its_history_by_name(client, buyer, units):
    booking_id = await confirmed(client, buyer, units["A-101"])
    await signed_in(client)
    body = await page(client, f"{PREFIX}/{booking_id}")
    assert "Booking of unit A-101" in body and "Green Meadows" in body
    assert f"data-buyer>{await phone_of(client, buyer)}<" in body
    assert "data-captured>₹8,50,000.00<" in body
    actors = re.findall(r"<span data-actor>([^<]*)</span>", body)
    assert actors == [await phone_of(client, buyer), "system (payments)",
                      "system (payments)"]
    assert re.findall(r'data-step="(\w+)"', body) == ["held", "paid", "confirmed"]
    assert "cancel-reason" not in body  # staff who are not admins see no cancel form
    await page(client, f"{PREFIX}/{uuid.uuid4()}", status=404)
    await page(client, f"{PREFIX}/not-an-id", status=404)


async def test_an_admin_cancels_with_a_reason(client, buyer, units):
    booking_id = await confirmed(client, buyer, units["A-101"])
    staff_id = await signed_in(client, roles=("admin",))
    path = f"{PREFIX}/{booking_id}"
    body = await page(client, path)
    assert '<label for="cancel-reason">Reason</label>' in body
    response = await client.post(f"{path}/cancel", allow_redirects=False, data={
        "csrf_token": csrf_of(body), "reason_code": "builder_request",
        "note": "The builder withdrew the tower."})
    assert response.status == 303 and response.headers["Location"] == path
    after = await page(client, path)
    assert "Booking cancelled: ₹8,50,000.00 to refund, fee ₹0.00." in after
    assert "The builder asked" in after and "The builder withdrew the tower." in after
    assert "Asha Rao" in after
    ctx = client.app[SERVICES].context("bookings")
    assert (await history(ctx, uuid.UUID(booking_id)))[-1] == ("confirmed", "cancelled")
    (event,) = await outbox(ctx, "bookings.booking_cancelled")
    assert event["_actor"] == f"staff:{staff_id}" and "note" not in event
    assert await unit_status(client, units["A-101"]) == "available"


async def test_an_empty_reason_is_refused_next_to_the_field(client, buyer, units):
    booking_id = await confirmed(client, buyer, units["A-101"])
    await signed_in(client, roles=("admin",))
    path = f"{PREFIX}/{booking_id}"
    body = await page(client, path)
    response = await client.post(f"{path}/cancel", data={
        "csrf_token": csrf_of(body), "reason_code": "", "note": "typed by hand"})
    assert response.status == 422
    refused = await response.text()
    assert field_error(refused, "reason_code") == "Choose why the booking is cancelled."
    assert ">typed by hand</textarea>" in refused  # what was typed is not lost
    ctx = client.app[SERVICES].context("bookings")
    assert (await api.booking(ctx.db, uuid.UUID(booking_id)))["status"] == "confirmed"


async def test_staff_who_are_not_admins_may_not_cancel(client, buyer, units):
    booking_id = await confirmed(client, buyer, units["A-101"])
    await signed_in(client)
    body = await page(client, f"{PREFIX}/{booking_id}")
    response = await client.post(f"{PREFIX}/{booking_id}/cancel", allow_redirects=False,
                                 data={"csrf_token": csrf_of(body),
                                       "reason_code": "other"})
    assert response.status == 403
    ctx = client.app[SERVICES].context("bookings")
    assert (await api.booking(ctx.db, uuid.UUID(booking_id)))["status"] == "confirmed"
    assert {(p.method, p.role) for p in console.pages() if p.path.endswith("/cancel")} == {
        ("POST", "admin")}


async def test_holds_about_to_expire(client, buyer, make_user, units):
    soon = await hold(client, buyer, units["A-101"])
    await hold(client, await make_user(), units["A-201"])
    ctx = client.app[SERVICES].context("bookings")
    await ctx.db.execute("UPDATE bookings_bookings SET expires_at = now() + interval "
                         "'2 minutes' WHERE id = %s", (uuid.UUID(soon["id"]),))
    await signed_in(client)
    body = await page(client, f"{PREFIX}/expiring")
    assert 'data-count="1"' in body
    assert f'{PREFIX}/{soon["id"]}' in body and "A-201" not in body


async def test_the_dashboard_card_counts_today(client, buyer, make_user, units):
    booking_id = await confirmed(client, buyer, units["A-101"])
    await hold(client, await make_user(), units["A-201"])
    await signed_in(client, roles=("admin",))
    body = await page(client, f"{PREFIX}/{booking_id}")
    await client.post(f"{PREFIX}/{booking_id}/cancel", allow_redirects=False,
                      data={"csrf_token": csrf_of(body), "reason_code": "other"})
    body = await page(client, "/console/")
    card = re.search(r"data-widget=.bookings-today.*?</section>", body, re.S)
    assert card, body
    assert "data-held>2<" in card.group(0)
    assert "data-confirmed>1<" in card.group(0) and "data-cancelled>1<" in card.group(0)
