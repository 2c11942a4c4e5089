"""What the catalogue does when events arrive, as lists of handlers per event type: the search
cache forgets what an event made stale (``search/handlers.py``), the stored photos of deleted
projects and units are removed (``media/handlers.py``), a user who erased their account
stops being the manager of a builder (the builder, a company, stays), and a builder-role
user's KYC decisions (``auth.kyc_status_changed``) are recorded and move their builder's
verified badge, and a unit's new status recomputes its project's derived columns (needed when
another plugin set it: a hold does not lock the project's row).

The core runs the handlers of one event in the order listed, in the one transaction the bus
gives the catalogue's consumer group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.catalog import store
from propmubi_plugins.catalog.events import BuilderVerificationChanged
from propmubi_plugins.catalog.media import handlers as media
from propmubi_plugins.catalog.search import handlers as search
from propmubi_plugins.catalog.search.cache import invalidate_after_commit
from propmubi_plugins.catalog.units import store as units_store

Handler = Callable[[Tx, Delivery], Awaitable[Any]]


async def on_user_erased(tx: Tx, delivery: Delivery) -> None:
    """``auth.user_erased``: the builder profile loses its link to the person, and the
    catalogue forgets the person's KYC state."""
    await store.detach_owner(tx, delivery.event.user_id)
    await store.forget_builder_kyc(tx, delivery.event.user_id)


#: Who moves a badge when the owner's KYC decision does (``Actor.system("kyc").ref``).
KYC_ACTOR = "system:kyc"


async def on_kyc_status_changed(tx: Tx, delivery: Delivery) -> None:
    """``auth.kyc_status_changed`` of a builder KYC: keep the user's status (keyed by user id:
    a decision that comes before the builder profile still counts when it is created) and set
    the verified badge of the builder they manage: on when verified, off otherwise (rejected,
    or submitted again). An event older than the one held changes nothing. Only the user id,
    the role and the new status are read."""
    event = delivery.event
    if event.role != "builder":
        return
    if not await store.record_builder_kyc(tx, event.user_id, event.new_status,
                                          delivery.sequence):
        return
    verified = event.new_status == "verified"
    builder_id = await store.set_owner_verified(tx, event.user_id, verified)
    if builder_id is not None:
        await store.add_verification(tx, builder_id, verified, KYC_ACTOR, None)
        await delivery.ctx.publish(tx, BuilderVerificationChanged(
            builder_id=builder_id, verified=verified), actor=KYC_ACTOR)
        invalidate_after_commit(delivery.ctx, tx, None)  # its projects may be in any city


async def on_unit_status_changed(tx: Tx, delivery: Delivery) -> None:
    """``catalog.unit_status_changed``: recompute the project's derived columns (units
    available, price range) from its units. A status set by another plugin (a hold) leaves
    them to this handler rather than locking the project row in the buyer's transaction;
    recomputing from scratch makes a redelivery harmless."""
    await units_store.recompute_derived(tx, [delivery.event.project_id])


def handlers() -> Mapping[str, list[Handler]]:
    """Event type -> its handlers, in order."""
    return {
        "catalog.project_published": [search.on_published],
        "catalog.project_updated": [search.on_project_changed],
        "catalog.project_deleted": [search.on_deleted, media.on_project_deleted],
        "catalog.units_deleted": [media.on_units_deleted],
        "catalog.unit_status_changed": [on_unit_status_changed, search.on_project_changed],
        "catalog.price_changed": [search.on_project_changed],
        "auth.user_erased": [on_user_erased],
        "auth.kyc_status_changed": [on_kyc_status_changed],
    }
