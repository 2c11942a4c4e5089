"""Holds and reads: take a hold on a unit, extend it, release it, read one's bookings, and the
sweeper that expires holds whose time ran out. Payments, cancellations and refunds are
``settlement.py``'s.

Each operation is ``verb(ctx, actor, <ids>, <input>)`` and opens its own transaction; the
sweeper's job is ``expire_holds(ctx)`` and acts as ``system:expire_holds``.

- **Holds never oversell.** A hold is a row in a live status, and the partial unique index
  ``bookings_bookings_live_unit`` admits one live booking per unit; the index's refusal
  (SQLSTATE 23505 on that index) is what answers 409 ``unit-unavailable`` when two buyers race.
  The checks before it (the unit in the catalogue, read in the transaction, on the primary)
  only give earlier, clearer answers.
- **Lazy expiry.** A hold whose ``expires_at`` passed is expired by whoever touches it first:
  the sweeper (:func:`expire_holds`, every 30 s), a read, a write, or a new hold of its unit.
  Extending or releasing a hold that ran out is refused (409 ``hold-expired``) after its
  expiry commits.
- **Who.** A buyer (any signed-in user) holds, extends and releases their own holds and reads
  their own bookings; staff read any booking. Another buyer's booking answers 404.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import DatabaseError, Tx
from propmubi.errors import (
    FieldError,
    Forbidden,
    NotFound,
    ProblemError,
    ValidationFailed,
)
from propmubi.ids import uuid7
from propmubi_plugins.bookings import errors, money, store
from propmubi_plugins.bookings.events import HoldExtended, HoldReleased, UnitHeld
from propmubi_plugins.bookings.models import (
    BookingOut,
    BookingPage,
    BookingQuery,
    HoldIn,
    booking_out,
)
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.terms import service as terms
from propmubi_plugins.bookings.transitions import expire, expire_many, is_stale, locking, move
from propmubi_plugins.catalog import api as catalog

#: Batches one sweeper run may expire before it leaves the rest to its next run.
SWEEP_BATCHES = 50


def may_see(actor: Actor | None, row: dict[str, Any]) -> bool:
    """Staff, and the booking's buyer."""
    return actor is not None and (actor.is_staff or actor.user_id == row["buyer_id"])


def _buyer(actor: Actor) -> uuid.UUID:
    if actor.user_id is None:
        raise Forbidden("holds are taken by signed-in buyers")
    return actor.user_id


# --------------------------------------------------------------------------------------------
# Holds
# --------------------------------------------------------------------------------------------


async def hold(ctx: Ctx, actor: Actor, data: HoldIn) -> BookingOut:
    """Hold a unit for ``hold_ttl_seconds``.

    :raises ValidationFailed: no such unit (``unit_id``).
    :raises HoldLimit: the buyer keeps ``max_active_holds`` holds already.
    :raises UnitUnavailable: the unit is held or booked, not for sale, or its project is not
        published.
    """
    buyer = _buyer(actor)
    async with ctx.db.transaction() as tx, locking(ctx, tx):
        now = ctx.clock.now()
        await store.lock_buyer(tx, buyer)
        unit = await catalog.unit(tx, data.unit_id)
        if unit is None:
            raise ValidationFailed([FieldError("body", "unit_id", "no such unit")])
        project = await catalog.project(tx, unit["project_id"])
        if project is None or project["moderation"] != "published":
            raise errors.UnitUnavailable("the unit's project is not open for bookings")
        if await store.active_holds(tx, buyer, now) >= ctx.settings.max_active_holds:
            raise errors.HoldLimit(f"you already hold {ctx.settings.max_active_holds} units; "
                                   "release or pay for one first")
        current = await store.live_on_unit(tx, data.unit_id)
        if current is not None:
            if not is_stale(current, now):
                raise errors.UnitUnavailable("another buyer holds or booked this unit")
            await expire(ctx, tx, current, "expired when the unit was held again")
            unit = await catalog.unit(tx, data.unit_id)
        if unit is None or unit["status"] != "available":
            raise errors.UnitUnavailable("the unit is not for sale at the moment")
        created = await _insert(ctx, tx, actor, buyer, unit, now)
    return booking_out(created)


async def _insert(ctx: Ctx, tx: Tx, actor: Actor, buyer: uuid.UUID, unit: dict[str, Any],
                  now: dt.datetime) -> dict[str, Any]:
    """Insert the hold, its history row, the unit's ``held`` status and ``unit_held``."""
    s = ctx.settings
    policy = await terms.effective(ctx, tx, unit["project_id"])
    price = unit["price_minor"]
    row = {"id": uuid7(), "unit_id": unit["id"], "project_id": unit["project_id"],
           "buyer_id": buyer, "status": "held", "price_minor": price,
           "currency": unit["currency"].strip(),
           "amount_due_minor": money.amount_due(price, policy["amount_kind"],
                                                policy["amount_minor"], policy["amount_bps"]),
           "rera_cap_minor": money.rera_cap(price),
           **{k: policy[k] for k in terms.POLICY},
           "held_at": now, "expires_at": now + dt.timedelta(seconds=s.hold_ttl_seconds),
           "ceiling_at": now + dt.timedelta(seconds=s.max_hold_seconds),
           "max_extensions": s.max_extensions, "updated_at": now}
    try:
        created = await store.insert(tx, row)
    except DatabaseError as exc:
        if errors.is_live_unit_violation(exc):
            raise errors.UnitUnavailable("another buyer holds or booked this unit") from None
        if errors.is_lock_timeout(exc):  # waiting on another buyer's hold of this unit
            raise errors.UnitUnavailable("another buyer is taking this unit",
                                         headers=errors.retry_after(ctx)) from None
        raise
    await store.add_history(tx, created["id"], None, "held", actor.ref, None, None, now)
    await catalog.set_unit_status(ctx, tx, actor, unit["id"], "held")
    await ctx.publish(tx, UnitHeld(
        booking_id=created["id"], unit_id=unit["id"], project_id=unit["project_id"],
        buyer_id=buyer, expires_at=created["expires_at"],
        amount_due_minor=created["amount_due_minor"], currency=created["currency"]),
        actor=actor.ref)
    return created


async def _own_hold(ctx: Ctx, tx: Tx, actor: Actor, booking_id: uuid.UUID
                    ) -> tuple[dict[str, Any], ProblemError | None]:
    """The actor's booking, locked, expired first if its time ran out; and the refusal of a
    hold change when it is no longer a hold."""
    row = await store.booking(tx, booking_id, lock=True)
    if row is None or not may_see(actor, row):
        raise NotFound(f"no booking {booking_id}")
    if actor.user_id != row["buyer_id"]:
        raise Forbidden("only the buyer changes their hold")
    if is_stale(row, ctx.clock.now()):
        row = await expire(ctx, tx, row, "expired on access")
    if row["status"] == "expired":
        return row, errors.ExpiredHold("the hold has expired")
    if row["status"] != "held":
        return row, errors.NotHeld(f"the booking is {row['status']}, not a hold")
    return row, None


async def extend(ctx: Ctx, actor: Actor, booking_id: uuid.UUID) -> BookingOut:
    """Move a hold's expiry ``extend_step_seconds`` later, at most ``max_extensions`` times
    and never past ``max_hold_seconds`` after it was taken. A refused extension changes
    nothing.

    :raises ExpiredHold, ExtensionLimit, HoldCeiling, NotHeld: (409) why not.
    """
    async with ctx.db.transaction() as tx, locking(ctx, tx):
        row, refusal = await _own_hold(ctx, tx, actor, booking_id)
        if refusal is None and row["extensions_used"] >= row["max_extensions"]:
            refusal = errors.ExtensionLimit(
                f"the hold was extended {row['extensions_used']} times, the most allowed")
        later = min(row["expires_at"] + dt.timedelta(seconds=ctx.settings.extend_step_seconds),
                    row["ceiling_at"])
        if refusal is None and later <= row["expires_at"]:
            refusal = errors.HoldCeiling("the hold already lasts as long as a hold may")
        if refusal is None:
            used = row["extensions_used"] + 1
            row = await move(ctx, tx, actor, row, "held", reason="extended", changes={
                "expires_at": later, "extensions_used": used}, event=HoldExtended(
                booking_id=row["id"], unit_id=row["unit_id"], buyer_id=row["buyer_id"],
                expires_at=later, extensions_left=row["max_extensions"] - used))
    if refusal is not None:
        raise refusal
    return booking_out(row)


async def release(ctx: Ctx, actor: Actor, booking_id: uuid.UUID) -> None:
    """Let a hold go: the unit is available again.

    :raises ExpiredHold, NotHeld: (409) it is no longer a hold.
    """
    async with ctx.db.transaction() as tx, locking(ctx, tx):
        row, refusal = await _own_hold(ctx, tx, actor, booking_id)
        if refusal is None:
            await move(ctx, tx, actor, row, "released", reason="released by the buyer",
                       event=HoldReleased(booking_id=row["id"], unit_id=row["unit_id"],
                                          buyer_id=row["buyer_id"]))
    if refusal is not None:
        raise refusal


# --------------------------------------------------------------------------------------------
# Reads and the sweeper
# --------------------------------------------------------------------------------------------


async def booking(ctx: Ctx, actor: Actor | None, booking_id: uuid.UUID) -> dict[str, Any]:
    """A booking row (its buyer, or staff), expired first if its time ran out.

    :raises NotFound: no such booking, or another buyer's.
    """
    row = await store.booking(ctx.db, booking_id)
    if row is None or not may_see(actor, row):
        raise NotFound(f"no booking {booking_id}")
    if is_stale(row, ctx.clock.now()):
        await expire_many(ctx, [booking_id], "expired on access")
        row = await store.booking(ctx.db, booking_id)
    return row  # type: ignore[return-value]  # bookings are never deleted


async def get_booking(ctx: Ctx, actor: Actor | None, booking_id: uuid.UUID) -> BookingOut:
    """:func:`booking` as the API shows it."""
    return booking_out(await booking(ctx, actor, booking_id))


def _position(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        return cursors.unpack_position(cursor)
    except ValueError:
        raise ValidationFailed([FieldError(
            "query", "cursor", "not a cursor from this list; start from the first page")]
        ) from None


async def bookings_rows(ctx: Ctx, actor: Actor, *, status: str | None,
                        after: tuple[dt.datetime, uuid.UUID] | None, limit: int,
                        everyone: bool = False) -> list[dict[str, Any]]:
    """Up to ``limit`` booking rows after a keyset position, newest first, optionally of one
    status: the actor's own (``everyone``: all bookings, for staff). Stale holds among them are
    expired first.

    :raises Forbidden: ``everyone`` for someone who is not staff.
    """
    if everyone and not actor.is_staff:
        raise Forbidden("only staff list every booking")
    buyer = None if everyone else actor.user_id
    if buyer is None and not everyone:
        return []
    rows = await store.page(ctx.db, buyer_id=buyer, status=status, after=after, limit=limit)
    now = ctx.clock.now()
    stale = [r["id"] for r in rows if is_stale(r, now)]
    if stale:
        await expire_many(ctx, stale, "expired on access")
        rows = await store.page(ctx.db, buyer_id=buyer, status=status, after=after,
                                limit=limit)
    return rows


async def list_bookings(ctx: Ctx, actor: Actor, query: BookingQuery) -> BookingPage:
    """The actor's bookings, newest first, a keyset page at a time (see
    :func:`bookings_rows`).

    :raises ValidationFailed: the cursor is not one this list handed out (422 naming
        ``cursor``).
    """
    after = _position(query.cursor)
    size = query.limit or ctx.settings.page_size
    rows = await bookings_rows(ctx, actor, status=query.status, after=after, limit=size + 1)
    items = [booking_out(r) for r in rows[:size]]
    more = len(rows) > size
    return BookingPage(items=items, next_cursor=cursors.pack_position(
        items[-1].held_at, items[-1].id) if more else None)


async def expire_holds(ctx: Ctx) -> int:
    """The sweeper (a job every 30 s): expire every hold whose time ran out, a batch per
    transaction; how many it expired. Running it again changes nothing more; a batch whose
    locks time out is left to the next run."""
    total = 0
    for _ in range(SWEEP_BATCHES):
        ids = await store.stale_ids(ctx.db, ctx.clock.now(), ctx.settings.sweep_batch)
        if not ids:
            break
        try:
            total += await expire_many(ctx, ids, "expired by the sweeper")
        except errors.BookingBusy:
            ctx.log.warning("expire_holds: a batch stayed locked; the next run retries it")
            break
    return total
