"""Holds run out: the sweeper (``expire_holds``) and lazy expiry on every read and write. Time
is moved by setting ``expires_at`` in the past in the database; nothing sleeps."""

from __future__ import annotations

import uuid

from propmubi.types import Job
from propmubi_plugins import bookings
from propmubi_plugins.bookings import service
from tests.plugins.bookings.conftest import (
    BOOKINGS,
    history,
    hold,
    outbox,
    run_out,
    unit_status,
)
from tests.plugins.catalog.search_data import search


async def test_the_sweeper_expires_stale_holds_once(client, ctx, event_bus, buyer, make_user,
                                                    units):
    stale = await hold(client, buyer, units["A-101"])
    fresh = await hold(client, await make_user(), units["A-201"])
    await run_out(ctx, uuid.UUID(stale["id"]))
    assert await service.expire_holds(ctx) == 1
    assert await service.expire_holds(ctx) == 0  # a second run changes nothing
    rows = {str(r["id"]): r["status"] for r in await ctx.db.fetch(
        "SELECT id, status FROM bookings_bookings")}
    assert rows == {stale["id"]: "expired", fresh["id"]: "held"}
    assert await history(ctx, uuid.UUID(stale["id"])) == [(None, "held"), ("held", "expired")]
    (event,) = await outbox(ctx, "bookings.hold_expired")
    assert event["booking_id"] == stale["id"] and event["_actor"] == "system:expire_holds"
    assert await unit_status(client, units["A-101"]) == "available"
    changes = await outbox(ctx, "catalog.unit_status_changed")
    assert [(c["unit_id"], c["new_status"]) for c in changes] == [
        (units["A-101"], "held"), (units["A-201"], "held"), (units["A-101"], "available")]
    await event_bus.drain()
    found = await search(client, {"city": "Pune"})
    assert found["items"][0]["units_available"] == 1  # A-101 again; A-201 still held


async def test_the_job_runs_every_30_seconds():
    (job,) = bookings.propmubi_jobs()
    assert isinstance(job, Job)
    assert (job.name, job.every, job.run) == ("expire_holds", 30, service.expire_holds)


async def test_reading_a_stale_hold_expires_it(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    mine = await (await client.get(f"{BOOKINGS}/{booking['id']}", headers=buyer.headers)).json()
    assert mine["status"] == "expired"
    assert await unit_status(client, units["A-101"]) == "available"
    assert len(await outbox(ctx, "bookings.hold_expired")) == 1


async def test_listing_expires_my_stale_holds(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    page = await (await client.get(BOOKINGS, headers=buyer.headers)).json()
    assert [b["status"] for b in page["items"]] == ["expired"]
    assert await service.expire_holds(ctx) == 0


async def test_a_stale_hold_does_not_block_another_buyer(client, ctx, buyer, make_user, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    other = await hold(client, await make_user(), units["A-101"])
    assert other["status"] == "held"
    statuses = await ctx.db.fetch("SELECT id, status FROM bookings_bookings ORDER BY held_at")
    assert [r["status"] for r in statuses] == ["expired", "held"]
    assert await unit_status(client, units["A-101"]) == "held"


async def test_releasing_a_stale_hold_is_refused_and_keeps_the_expiry(client, ctx, buyer,
                                                                     units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    response = await client.delete(f"/api/v1/holds/{booking['id']}", headers=buyer.headers)
    assert response.status == 409
    assert (await response.json())["type"].endswith("/hold-expired")
    assert await history(ctx, uuid.UUID(booking["id"])) == [(None, "held"), ("held", "expired")]
    assert await outbox(ctx, "bookings.hold_released") == []


async def test_the_staff_list_expires_the_stale_holds_it_shows(client, ctx, buyer, staff, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    rows = await service.bookings_rows(ctx, staff.actor, status=None, after=None, limit=10,
                                       everyone=True)
    assert [r["status"] for r in rows] == ["expired"]
    assert await unit_status(client, units["A-101"]) == "available"
