"""What other plugins may ask the CRM (declare ``requires=("crm",)`` and add the
import-contract line): typed queries in the caller's database or transaction."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.db import Database, Tx
from propmubi_plugins.crm import store

__all__ = ["agent_of_user", "lead"]


async def lead(q: Database | Tx, lead_id: uuid.UUID) -> dict[str, Any] | None:
    """A lead: project_id, unit_id, stage, agent_id, agent_user_id, created_at, closed_at,
    sla_* columns (the buyer's name and phone too: personal data, show it only to staff
    and the lead's advisor)."""
    return await store.lead(q, lead_id)


async def agent_of_user(q: Database | Tx, user_id: uuid.UUID) -> uuid.UUID | None:
    """The agent id the CRM knows for a user (None: not an advisor)."""
    row = await store.agent_of_user(q, user_id)
    return row["agent_id"] if row else None
