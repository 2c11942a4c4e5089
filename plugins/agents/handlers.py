"""What the agents plugin does when other plugins' events arrive (``propmubi_event_handlers``).

- ``auth.kyc_status_changed`` of an agent KYC: keep the user's status (keyed by user id, so
  a decision made before the profile exists still counts; an event older than the one held
  changes nothing) and recompute their agent's status, which may activate or suspend them.
- ``auth.user_erased``: forget the agent's personal data and suspend the profile.
- ``agents.registration_expiring`` (its own): tell the agent, through the notifications
  plugin (``notify.py``).

Each runs in the transaction that marks the event processed for this plugin; both are
idempotent (the KYC status is ordered by ``delivery.sequence``, erasure checks ``erased_at``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.agents import notify, service

Handler = Callable[[Tx, Delivery], Awaitable[None]]


async def on_kyc_status_changed(tx: Tx, delivery: Delivery) -> None:
    """Follow an agent-role user's KYC status (other roles are not ours)."""
    event = delivery.event
    if event.role != service.KYC_ROLE:
        return
    await service.record_kyc_in(delivery.ctx, tx, event.user_id, event.new_status,
                                delivery.sequence)


async def on_user_erased(tx: Tx, delivery: Delivery) -> None:
    """Anonymise and suspend the erased user's agent profile."""
    await service.erase_user_in(delivery.ctx, tx, delivery.event.user_id)


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"auth.kyc_status_changed": [on_kyc_status_changed],
            "auth.user_erased": [on_user_erased],
            "agents.registration_expiring": [notify.on_registration_expiring]}
