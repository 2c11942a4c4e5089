"""Holds through the whole application: take, refuse, limit, extend, release; who may see a
booking; bad input."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.plugins.bookings.conftest import BOOKINGS, HOLDS, history, hold, outbox, unit_status


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def test_a_buyer_holds_an_available_unit(client, ctx, buyer, units, project):
    before = dt.datetime.now(dt.UTC)
    booking = await hold(client, buyer, units["A-101"])
    assert booking["status"] == "held"
    assert booking["unit_id"] == units["A-101"]
    assert booking["project_id"] == str(project["id"])
    assert booking["buyer_id"] == str(buyer.id)
    assert booking["price_minor"] == 85_00_000_00 and booking["currency"] == "INR"
    # The default terms: 10 % of the price, which is also RERA's cap.
    assert booking["amount_due_minor"] == 8_50_000_00 == booking["rera_cap_minor"]
    assert booking["extensions_left"] == 2 and booking["captured_minor"] == 0
    ttl = at(booking["expires_at"]) - before
    assert dt.timedelta(minutes=14) < ttl <= dt.timedelta(minutes=15, seconds=5)
    assert at(booking["hold_ceiling_at"]) - at(booking["held_at"]) == dt.timedelta(minutes=45)
    assert await unit_status(client, units["A-101"]) == "held"
    assert await history(ctx, uuid.UUID(booking["id"])) == [(None, "held")]
    (event,) = await outbox(ctx, "bookings.unit_held")
    assert event["booking_id"] == booking["id"] and event["_actor"] == f"user:{buyer.id}"
    assert event["amount_due_minor"] == 8_50_000_00


async def test_a_second_buyer_is_refused_409_unit_unavailable(client, buyer, make_user, units):
    await hold(client, buyer, units["A-101"])
    other = await make_user()
    problem = await hold(client, other, units["A-101"], status=409)
    assert problem["type"].endswith("/unit-unavailable")
    # The same buyer cannot hold it twice either.
    assert (await hold(client, buyer, units["A-101"], status=409))["type"].endswith(
        "/unit-unavailable")


async def test_units_not_for_sale_or_unpublished_are_unavailable(client, buyer, builder,
                                                                 make_project, units):
    response = await client.patch(f"/api/v1/units/{units['A-201']}/status",
                                  json={"status": "blocked"}, headers=builder.headers)
    assert response.status == 200
    assert (await hold(client, buyer, units["A-201"], 409))["type"].endswith(
        "/unit-unavailable")
    draft = await make_project(builder, name="Quiet Draft")
    response = await client.get(f"/api/v1/projects/{draft['id']}/units",
                                headers=builder.headers)
    draft_unit = (await response.json())["items"][0]["id"]
    assert (await hold(client, buyer, draft_unit, 409))["type"].endswith("/unit-unavailable")


async def test_a_buyer_keeps_at_most_three_holds(client, buyer, builder, make_project, units):
    other = await make_project(builder, moderation="published", name="Second Park", units=[
        ("A", {"code": c, "unit_type": "1BHK", "bedrooms": 1, "carpet_area_sqft": 400,
               "floor": 1, "price_minor": 40_00_000_00}) for c in ("B-1", "B-2")])
    response = await client.get(f"/api/v1/projects/{other['id']}/units")
    more = [u["id"] for u in (await response.json())["items"]]
    for unit_id in (units["A-101"], units["A-201"], more[0]):
        await hold(client, buyer, unit_id)
    problem = await hold(client, buyer, more[1], 409)
    assert problem["type"].endswith("/hold-limit")
    assert await unit_status(client, more[1]) == "available"


async def test_extensions_are_bounded_and_a_refusal_changes_nothing(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    url = f"{HOLDS}/{booking['id']}/extend"
    first = await (await client.post(url, headers=buyer.headers)).json()
    assert at(first["expires_at"]) - at(booking["expires_at"]) == dt.timedelta(minutes=15)
    assert first["extensions_left"] == 1
    second = await (await client.post(url, headers=buyer.headers)).json()
    assert second["expires_at"] == second["hold_ceiling_at"]  # 15 + 15 + 15 minutes
    assert second["extensions_left"] == 0
    response = await client.post(url, headers=buyer.headers)
    assert response.status == 409
    assert (await response.json())["type"].endswith("/extension-limit")
    now = await (await client.get(f"{BOOKINGS}/{booking['id']}", headers=buyer.headers)).json()
    assert now["expires_at"] == second["expires_at"] and now["extensions_left"] == 0
    assert len(await outbox(ctx, "bookings.hold_extended")) == 2


async def test_an_extension_never_passes_the_ceiling(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    # The hold already reaches its ceiling (as if taken 30 minutes ago with a short TTL).
    await ctx.db.execute("UPDATE bookings_bookings SET ceiling_at = expires_at WHERE id = %s",
                         (uuid.UUID(booking["id"]),))
    response = await client.post(f"{HOLDS}/{booking['id']}/extend", headers=buyer.headers)
    assert response.status == 409
    assert (await response.json())["type"].endswith("/hold-ceiling")
    row = await ctx.db.fetchrow("SELECT expires_at, extensions_used FROM bookings_bookings")
    assert row["expires_at"] == at(booking["expires_at"]) and row["extensions_used"] == 0
    # Close to the ceiling, an extension stops at it.
    await ctx.db.execute("UPDATE bookings_bookings SET ceiling_at = expires_at + interval "
                         "'5 minutes' WHERE id = %s", (uuid.UUID(booking["id"]),))
    extended = await (await client.post(f"{HOLDS}/{booking['id']}/extend",
                                        headers=buyer.headers)).json()
    assert at(extended["expires_at"]) - at(booking["expires_at"]) == dt.timedelta(minutes=5)


async def test_an_expired_hold_cannot_be_extended(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await ctx.db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 second'")
    response = await client.post(f"{HOLDS}/{booking['id']}/extend", headers=buyer.headers)
    assert response.status == 409
    assert (await response.json())["type"].endswith("/hold-expired")
    # The expiry found on the way was kept (the refusal came after it committed).
    assert await history(ctx, uuid.UUID(booking["id"])) == [(None, "held"), ("held", "expired")]
    assert await unit_status(client, units["A-101"]) == "available"


async def test_release_frees_the_unit(client, ctx, buyer, make_user, units):
    booking = await hold(client, buyer, units["A-101"])
    response = await client.delete(f"{HOLDS}/{booking['id']}", headers=buyer.headers)
    assert response.status == 204
    assert await unit_status(client, units["A-101"]) == "available"
    mine = await (await client.get(f"{BOOKINGS}/{booking['id']}", headers=buyer.headers)).json()
    assert mine["status"] == "released"
    assert [e["booking_id"] for e in await outbox(ctx, "bookings.hold_released")] == [
        booking["id"]]
    await hold(client, await make_user(), units["A-101"])  # someone else may take it now
    response = await client.delete(f"{HOLDS}/{booking['id']}", headers=buyer.headers)
    assert response.status == 409
    assert (await response.json())["type"].endswith("/booking-not-held")


async def test_signing_in_is_required(client, units):
    response = await client.post(HOLDS, json={"unit_id": units["A-101"]})
    assert response.status == 401
    assert (await client.get(BOOKINGS)).status == 401


async def test_bad_input_is_a_422_naming_unit_id(client, buyer):
    for body in ({}, {"unit_id": "not-a-uuid"}, {"unit_id": str(uuid.uuid4())}):
        response = await client.post(HOLDS, json=body, headers=buyer.headers)
        assert response.status == 422, body
        assert [e["field"] for e in (await response.json())["errors"]] == ["unit_id"]


async def test_another_buyers_booking_is_404(client, buyer, make_user, staff, units):
    booking = await hold(client, buyer, units["A-101"])
    stranger = await make_user()
    for method, path in (("GET", f"{BOOKINGS}/{booking['id']}"),
                         ("POST", f"{HOLDS}/{booking['id']}/extend"),
                         ("DELETE", f"{HOLDS}/{booking['id']}")):
        response = await client.request(method, path, headers=stranger.headers)
        assert response.status == 404, path
        assert response.content_type == "application/problem+json"
    response = await client.get(f"{BOOKINGS}/{booking['id']}", headers=staff.headers)
    assert response.status == 200  # staff read any booking


@pytest.mark.parametrize("limit", [1, 2])
async def test_my_bookings_are_listed_newest_first_a_page_at_a_time(client, buyer, make_user,
                                                                    units, limit):
    first = await hold(client, buyer, units["A-101"])
    second = await hold(client, buyer, units["A-201"])
    await client.delete(f"{HOLDS}/{first['id']}", headers=buyer.headers)
    seen, cursor = [], None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = await (await client.get(BOOKINGS, params=params, headers=buyer.headers)).json()
        seen += [b["id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [second["id"], first["id"]]
    released = await (await client.get(BOOKINGS, params={"status": "released"},
                                       headers=buyer.headers)).json()
    assert [b["id"] for b in released["items"]] == [first["id"]]
    other = await make_user()
    assert (await (await client.get(BOOKINGS, headers=other.headers)).json())["items"] == []
    response = await client.get(BOOKINGS, params={"cursor": "junk"}, headers=buyer.headers)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "cursor"
