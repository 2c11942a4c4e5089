"""What the auth plugin does when KYC events reach it."""

from __future__ import annotations

import datetime as dt

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.auth.kyc import store
from propmubi_plugins.auth.kyc.service import DECISIONS


async def count_decision(tx: Tx, delivery: Delivery) -> None:
    """``auth.kyc_status_changed``: count a verification or rejection on its (UTC) day for the
    "KYC decisions today" dashboard card (other transitions are not decisions). The core
    records the event as handled in ``tx``, so a redelivery counts nothing twice."""
    new_status = delivery.event.new_status
    if new_status in DECISIONS:
        day = delivery.envelope.occurred_at.astimezone(dt.UTC).date()
        await store.count_decision(tx, day, new_status)
