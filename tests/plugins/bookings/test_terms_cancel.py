"""Booking terms of a project (read by anyone, set by its builder or staff) and cancellation
through the API with its fee and refund."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings import api
from tests.plugins.bookings.conftest import (
    API,
    BOOKINGS,
    history,
    hold,
    outbox,
    unit_status,
)

TERMS = {"amount_kind": "fixed", "amount_minor": 2_00_000_00, "free_cancel_hours": 24,
         "fee_fixed_minor": 25_000_00, "fee_bps": 10}


def terms_url(project: dict[str, Any]) -> str:
    return f"{API}/projects/{project['id']}/booking-terms"


async def confirm(client: Any, booking_id: str) -> None:
    """Record a captured payment of the booking's amount, as the payments plugin would."""
    other = client.app[SERVICES].context("catalog")
    row = await api.booking(other.db, uuid.UUID(booking_id))
    async with other.db.transaction() as tx:
        outcome = await api.record_payment_in(
            other, tx, Actor.system("payments"), row["id"], payment_id=uuid.uuid4(),
            amount_minor=row["amount_due_minor"], currency="INR")
    assert outcome.confirmed


async def test_anyone_reads_the_default_terms_of_a_published_project(client, project):
    response = await client.get(terms_url(project))
    assert response.status == 200
    assert await response.json() == {
        "project_id": str(project["id"]), "amount_kind": "percent", "amount_minor": None,
        "amount_bps": 1000, "free_cancel_hours": 48, "fee_fixed_minor": 10_000_00,
        "fee_bps": 200, "currency": "INR", "default": True, "updated_at": None}


async def test_the_builder_sets_terms_and_holds_follow_them(client, builder, buyer, project,
                                                           units):
    response = await client.put(terms_url(project), json=TERMS, headers=builder.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["default"] is False and body["amount_minor"] == 2_00_000_00
    assert (await (await client.get(terms_url(project))).json())["amount_kind"] == "fixed"
    booking = await hold(client, buyer, units["A-101"])
    assert booking["amount_due_minor"] == 2_00_000_00
    assert booking["rera_cap_minor"] == 8_50_000_00


async def test_other_builders_may_not_set_terms(client, other_builder, buyer, staff, project):
    response = await client.put(terms_url(project), json=TERMS, headers=other_builder.headers)
    assert response.status == 403
    response = await client.put(terms_url(project), json=TERMS, headers=buyer.headers)
    assert response.status == 403  # not a builder at all: the route's roles
    response = await client.put(terms_url(project), json=TERMS, headers=staff.headers)
    assert response.status == 200


async def test_terms_are_checked_field_by_field(client, builder, project):
    bad = {"amount_kind": "percent", "amount_minor": 5, "amount_bps": 1500,
           "free_cancel_hours": -1, "fee_fixed_minor": 0, "fee_bps": 20000}
    response = await client.put(terms_url(project), json=bad, headers=builder.headers)
    assert response.status == 422
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {"amount_minor", "amount_bps", "free_cancel_hours", "fee_bps"}


async def test_unpublished_and_unknown_projects_have_no_public_terms(client, builder,
                                                                    make_project):
    draft = await make_project(builder, name="Still Drafting")
    assert (await client.get(terms_url(draft))).status == 404
    assert (await client.get(terms_url(draft), headers=builder.headers)).status == 200
    assert (await client.get(f"{API}/projects/{uuid.uuid4()}/booking-terms")).status == 404


async def test_a_buyer_cancels_within_the_free_window_and_gets_everything_back(
        client, ctx, event_bus, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await confirm(client, booking["id"])
    assert await unit_status(client, units["A-101"]) == "booked"
    response = await client.post(f"{BOOKINGS}/{booking['id']}/cancel", headers=buyer.headers,
                                 json={"reason_code": "changed_mind", "note": "Found another"})
    assert response.status == 200, await response.text()
    cancelled = await response.json()
    assert cancelled["status"] == "cancelled"
    assert (cancelled["fee_minor"], cancelled["refund_minor"]) == (0, 8_50_000_00)
    assert await unit_status(client, units["A-101"]) == "available"
    (event,) = await outbox(ctx, "bookings.booking_cancelled")
    assert event == {"booking_id": booking["id"], "unit_id": units["A-101"],
                     "buyer_id": str(buyer.id), "refund_minor": 8_50_000_00, "fee_minor": 0,
                     "currency": "INR", "_actor": f"user:{buyer.id}"}  # no note, no reason
    assert (await history(ctx, uuid.UUID(booking["id"])))[-1] == ("confirmed", "cancelled")
    await event_bus.drain()


async def test_after_the_free_window_the_fee_is_kept(client, ctx, builder, buyer, project,
                                                     units):
    await client.put(terms_url(project), json=TERMS, headers=builder.headers)
    booking = await hold(client, buyer, units["A-101"])
    await confirm(client, booking["id"])
    await ctx.db.execute("UPDATE bookings_bookings SET confirmed_at = confirmed_at - interval "
                         "'25 hours'")
    response = await client.post(f"{BOOKINGS}/{booking['id']}/cancel", headers=buyer.headers,
                                 json={"reason_code": "financing_refused"})
    cancelled = await response.json()
    # max(25,000 rupees, 0.1 % of the 85 lakh price = 8,500 rupees) = 25,000 rupees.
    assert (cancelled["fee_minor"], cancelled["refund_minor"]) == (25_000_00, 1_75_000_00)


async def test_who_may_cancel(client, buyer, make_user, staff, admin, units):
    booking = await hold(client, buyer, units["A-101"])
    url = f"{BOOKINGS}/{booking['id']}/cancel"
    body = {"reason_code": "buyer_request"}
    response = await client.post(url, json=body, headers=buyer.headers)
    assert response.status == 409  # a hold is not a confirmed booking
    assert (await response.json())["type"].endswith("/booking-not-cancellable")
    await confirm(client, booking["id"])
    assert (await client.post(url, json=body, headers=(await make_user()).headers)).status == 404
    assert (await client.post(url, json=body, headers=staff.headers)).status == 403
    response = await client.post(url, json={"reason_code": "nope"}, headers=admin.headers)
    assert response.status == 422
    assert (await client.post(url, json=body, headers=admin.headers)).status == 200
