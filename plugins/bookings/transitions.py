"""The one way a booking changes status, and the locking every booking write goes through.

:func:`move` checks the transition against :data:`ALLOWED`, writes the new status with its
history row, moves the catalogue's unit along (``catalog.api.set_unit_status``, in the same
transaction) and publishes the event it is given, so that a status, its history, its unit and
its event commit together or not at all.

:func:`locking` bounds every lock a write waits for by ``plugins.bookings.lock_timeout_ms``
(``lock_timeout`` local to the transaction); a lock not obtained in time (SQLSTATE 55P03) is a
503 ``booking-busy`` with ``Retry-After``, and nothing is changed: there is no unlocked path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from propmubi.actors import Actor
from propmubi.db import DatabaseError, Tx
from propmubi.errors import ProblemError
from propmubi_plugins.bookings import errors, store
from propmubi_plugins.bookings.events import HoldExpired
from propmubi_plugins.bookings.models import EXPIRING_STATUSES
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.catalog import api as catalog

#: The catalogue status a unit takes when its booking enters a status (none: it stays).
UNIT_STATUS = {"held": "held", "payment_pending": "held", "paid": "held",
               "confirmed": "booked", "expired": "available", "released": "available",
               "cancelled": "available"}
#: Every transition a booking may make (``None``: a new hold; held -> held: an extension).
ALLOWED = frozenset({
    (None, "held"), ("held", "held"), ("held", "payment_pending"), ("held", "released"),
    ("held", "expired"), ("payment_pending", "expired"), ("held", "paid"),
    ("payment_pending", "paid"), ("expired", "paid"), ("released", "paid"),
    ("paid", "confirmed"), ("confirmed", "cancelled"), ("cancelled", "refunded"),
})
#: Who expires holds whose time ran out (the sweeper, and a read or write that finds one).
EXPIRY = Actor.system("expire_holds")


@contextlib.asynccontextmanager
async def locking(ctx: Ctx, tx: Tx) -> AsyncIterator[None]:
    """Bound the lock waits of the block by ``lock_timeout_ms``; a timeout is
    :class:`~propmubi_plugins.bookings.errors.BookingBusy`. The caller's own ``lock_timeout``
    is put back after the block (in the caller's transaction, for the ``_in`` functions)."""
    before = await store.set_lock_timeout(tx, ctx.settings.lock_timeout_ms)
    try:
        yield
    except (DatabaseError, ProblemError) as exc:
        # After a failed statement the transaction may be aborted (then nothing is left to
        # undo), or usable again (a savepoint was rolled back): put the setting back if it is.
        with contextlib.suppress(DatabaseError):
            await store.restore_lock_timeout(tx, before)
        if errors.is_lock_timeout(exc):
            raise errors.busy(ctx) from None
        raise
    await store.restore_lock_timeout(tx, before)


def is_stale(row: dict[str, Any], now: dt.datetime) -> bool:
    """Whether a hold (or a pending payment) ran out of time and has not been expired yet."""
    return row["status"] in EXPIRING_STATUSES and row["expires_at"] <= now


async def move(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any], to: str, *,
               reason: str | None = None, note: str | None = None,
               changes: dict[str, Any] | None = None, event: Any = None) -> dict[str, Any]:
    """Move a locked booking ``row`` to status ``to``: the row (with ``changes``), its history
    row, its unit's catalogue status and ``event``, in ``tx``; the updated row.

    :raises ValueError: the transition is not one of :data:`ALLOWED` (a bug, not an input).
    """
    if (row["status"], to) not in ALLOWED:
        raise ValueError(f"a booking cannot go from {row['status']} to {to}")
    now = ctx.clock.now()
    updated = await store.update(tx, row["id"], to, now, changes or {})
    await store.add_history(tx, row["id"], row["status"], to, actor.ref, reason, note, now)
    unit_status = UNIT_STATUS.get(to)
    if unit_status is not None and to != row["status"]:
        await catalog.set_unit_status(ctx, tx, actor, row["unit_id"], unit_status)
    if event is not None:
        await ctx.publish(tx, event, actor=actor.ref)
    return updated


async def expire(ctx: Ctx, tx: Tx, row: dict[str, Any], reason: str) -> dict[str, Any]:
    """Expire a locked, stale booking (the unit becomes available); the updated row."""
    return await move(ctx, tx, EXPIRY, row, "expired", reason=reason, event=HoldExpired(
        booking_id=row["id"], unit_id=row["unit_id"], buyer_id=row["buyer_id"],
        from_status=row["status"]))


async def expire_many(ctx: Ctx, ids: list[Any], reason: str) -> int:
    """Expire the bookings among ``ids`` that are still stale, in one transaction, locking
    them in id order; how many were expired."""
    expired = 0
    async with ctx.db.transaction() as tx, locking(ctx, tx):
        now = ctx.clock.now()
        for row in await store.lock_many(tx, ids):
            if is_stale(row, now):
                await expire(ctx, tx, row, reason)
                expired += 1
    return expired
