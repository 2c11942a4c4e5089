"""The JSON API of holds and bookings, mounted under ``/api/v1``; the booking terms' routes are
``terms/routes.py``'s. Handlers are thin: the service decides who may do what.

Refusals are problem+json: 409 ``unit-unavailable``, ``hold-limit``, ``hold-expired``,
``extension-limit``, ``hold-ceiling``, ``booking-not-held``, ``booking-not-cancellable``;
503 ``booking-busy`` (with ``Retry-After``) when a booking stayed locked too long.
"""

from __future__ import annotations

from aiohttp import web

from propmubi.web.auth import signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.bookings import service, settlement
from propmubi_plugins.bookings.models import (
    BookingId,
    BookingOut,
    BookingPage,
    BookingQuery,
    CancelIn,
    HoldIn,
)
from propmubi_plugins.bookings.state import Ctx

routes = Routes(tags=["bookings"])

#: Any signed-in user may hold a unit and read their bookings.
ANYONE = ["*"]


@routes.post("/holds", body=HoldIn, response=BookingOut, status=201, roles=ANYONE,
             errors=[409, 503], rate_limit="30/minute", idempotent=True)
async def hold(request: web.Request, ctx: Ctx, body: HoldIn) -> BookingOut:
    """Hold a unit for a while (``plugins.bookings.hold_ttl_seconds``); 409
    ``unit-unavailable`` when someone else holds or booked it, ``hold-limit`` when you keep
    too many holds."""
    return await service.hold(ctx, signed_in(request), body)


@routes.post("/holds/{booking_id}/extend", params=BookingId, response=BookingOut,
             roles=ANYONE, errors=[404, 409, 503])
async def extend(request: web.Request, ctx: Ctx, params: BookingId) -> BookingOut:
    """Make my hold last longer (a bounded number of times, up to a ceiling); a refused
    extension (409) changes nothing."""
    return await service.extend(ctx, signed_in(request), params.booking_id)


@routes.delete("/holds/{booking_id}", params=BookingId, status=204, roles=ANYONE,
               errors=[404, 409, 503])
async def release(request: web.Request, ctx: Ctx, params: BookingId) -> None:
    """Let my hold go: the unit is available again."""
    await service.release(ctx, signed_in(request), params.booking_id)


@routes.get("/bookings", query=BookingQuery, response=BookingPage, roles=ANYONE,
            errors=[422])
async def list_bookings(request: web.Request, ctx: Ctx, query: BookingQuery) -> BookingPage:
    """My bookings, newest first (keyset pages: pass ``next_cursor`` back as ``cursor``)."""
    return await service.list_bookings(ctx, signed_in(request), query)


@routes.get("/bookings/{booking_id}", params=BookingId, response=BookingOut, roles=ANYONE,
            errors=[404])
async def get_booking(request: web.Request, ctx: Ctx, params: BookingId) -> BookingOut:
    """One of my bookings (staff: any)."""
    return await service.get_booking(ctx, signed_in(request), params.booking_id)


@routes.post("/bookings/{booking_id}/cancel", params=BookingId, body=CancelIn,
             response=BookingOut, roles=ANYONE, errors=[403, 404, 409, 503], idempotent=True)
async def cancel(request: web.Request, ctx: Ctx, params: BookingId, body: CancelIn
                 ) -> BookingOut:
    """Cancel my confirmed booking (admins: any): the project's cancellation terms give the
    fee and the refund (``fee_minor``, ``refund_minor``)."""
    return await settlement.cancel(ctx, signed_in(request), params.booking_id, body)
