"""Console pages name the people behind ``<kind>:<id>`` references: auth resolves users, the
console resolves staff, and anything unknown gets a readable fallback, never an error."""

from __future__ import annotations

import uuid

from propmubi.actors import Actor
from propmubi.console.names import actor_names
from propmubi.ids import uuid7
from propmubi.testing import make_staff
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth import privacy, store


async def test_users_staff_and_the_system_by_name(client, services):
    staff = await make_staff(services, name="Rita Reviewer")
    async with services.db.transaction() as tx:
        named, _ = await store.upsert_user(tx, uuid7(), "+919800000001")
        await store.set_name(tx, named, "Asha Rao")
        phone_only, _ = await store.upsert_user(tx, uuid7(), "+919800000002")
        erased, _ = await store.upsert_user(tx, uuid7(), "+919800000003")
    await privacy.erase(client.app[SERVICES].context("auth"), Actor.system("test"), erased)
    refs = [f"user:{named}", f"user:{phone_only}", f"user:{erased}", f"staff:{staff.id}",
            f"user:{uuid.uuid4()}", f"staff:{uuid.uuid4()}", "user:not-a-uuid", "system:seed",
            "system:system", "robot:7", None, ""]
    names = await actor_names(client.app, refs)
    assert names == {
        f"user:{named}": "Asha Rao", f"user:{phone_only}": "+919800000002",
        f"user:{erased}": "erased user", f"staff:{staff.id}": "Rita Reviewer",
        **{ref: "unknown user" for ref in refs[4:7] if ref and ref.startswith("user:")},
        refs[5]: "unknown staff member", "system:seed": "system (seed)",
        "system:system": "system", "robot:7": "robot:7"}
