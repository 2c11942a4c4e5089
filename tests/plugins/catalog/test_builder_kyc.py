"""Builders verify their identity before working: the catalogue follows the auth plugin's
``auth.kyc_status_changed`` events (through the real bus) to gate builders' writes and to set
the verified badge."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.console import accounts
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc.models import Decision
from propmubi_plugins.catalog import store
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.catalog.conftest import API, PROJECT, User, complete_project

KYC = {"legal_name": "Asha Rao", "document_kind": "pan", "document_number": "ABCDE1234F",
       "rera_number": "P52100012345"}


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    key = base64.b64encode(bytes(range(32))).decode()
    return {"plugins": {"settings": {"auth": {**AUTH_SETTINGS, "pii_key_id": "k1",
                                              "pii_key": key}}},
            "ratelimit": {"enabled": False}}


@pytest.fixture
async def reviewer(services: Any) -> Actor:
    staff = await accounts.create_staff(services.db, "rita@example.com", "Rita Reviewer",
                                        "correct horse battery", ["staff"])
    return Actor.staff(uuid.UUID(str(staff.id)))


async def submit_kyc(client: Any, user: User) -> uuid.UUID:
    response = await client.put(f"{API}/me/kyc/builder", json=KYC, headers=user.headers)
    assert response.status == 200, await response.text()
    return uuid.UUID((await response.json())["id"])


async def decide(services: Any, reviewer: Actor, record_id: uuid.UUID, verified: bool) -> None:
    await kyc.decide(services.context("auth"), reviewer, record_id,
                     Decision(verified=verified, reason=None if verified else "blurry PAN"))


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_builder_works_only_once_kyc_is_verified(client, services, event_bus, make_user,
                                                       reviewer):
    user = await make_user("builder", kyc=None)
    # The profile can be prepared before; it is not verified.
    body = await problem(await client.post(f"{API}/builders", json={"name": "Newcomer Homes"},
                                           headers=user.headers), 201)
    assert body["verified"] is False

    refused = await problem(await client.post(f"{API}/projects", json=PROJECT,
                                              headers=user.headers), 403)
    assert refused["type"].endswith("/kyc-required")
    assert refused["kyc_status"] == "not_started"
    assert "/me/kyc/builder" in refused["detail"]

    record = await submit_kyc(client, user)
    await event_bus.drain()
    refused = await problem(await client.post(f"{API}/projects", json=PROJECT,
                                              headers=user.headers), 403)
    assert refused["kyc_status"] == "submitted" and "waiting for review" in refused["detail"]

    await decide(services, reviewer, record, True)
    await event_bus.drain()
    me = await (await client.get(f"{API}/builders/me", headers=user.headers)).json()
    assert me["verified"] is True
    # The badge's change is in the builder's history and published, by the KYC decision.
    assert await services.db.fetch(
        "SELECT verified, actor, reason FROM catalog_builder_verifications "
        "WHERE builder_id = %s", (uuid.UUID(body["id"]),)) == [
            {"verified": True, "actor": "system:kyc", "reason": None}]
    changed = await services.db.fetch(
        "SELECT payload, actor FROM core_outbox "
        "WHERE type = 'catalog.builder_verification_changed'")
    assert [(r["payload"]["builder_id"], r["payload"]["verified"], r["actor"])
            for r in changed] == [(body["id"], True, "system:kyc")]
    created = await problem(await client.post(f"{API}/projects", json=PROJECT,
                                              headers=user.headers), 201)
    assert created["builder"]["verified"] is True
    await complete_project(client, user, created["id"])
    submitted = await problem(await client.post(f"{API}/projects/{created['id']}/submit",
                                                headers=user.headers), 200)
    assert submitted["moderation"] == "in_review"


async def test_rejected_kyc_unsets_the_badge_and_keeps_the_gate(
        client, services, event_bus, make_user, staff, reviewer):
    user = await make_user("builder", kyc=None)
    builder = await problem(await client.post(f"{API}/builders", json={"name": "Harbour"},
                                              headers=user.headers), 201)
    # Staff are not gated: they create a project for the unverified builder.
    project = await problem(await client.post(
        f"{API}/projects", json={**PROJECT, "builder_id": builder["id"]},
        headers=staff.headers), 201)
    record = await submit_kyc(client, user)
    await decide(services, reviewer, record, False)
    await event_bus.drain()
    assert await store.builder_kyc(services.db, user.id) == "rejected"
    me = await (await client.get(f"{API}/builders/me", headers=user.headers)).json()
    assert me["verified"] is False

    # Every write of the builder is refused, saying what to do; reads still work.
    for method, path, body in (
            ("PATCH", f"/projects/{project['id']}", {"description": "New"}),
            ("POST", f"/projects/{project['id']}/towers", {"name": "A", "floors": 3}),
            ("POST", f"/projects/{project['id']}/submit", None),
            ("DELETE", f"/projects/{project['id']}", None)):
        refused = await problem(await client.request(method, f"{API}{path}", json=body,
                                                     headers=user.headers), 403)
        assert refused["type"].endswith("/kyc-required"), path
        assert refused["kyc_status"] == "rejected" and "submit it again" in refused["detail"]
    assert (await client.get(f"{API}/projects/{project['id']}",
                             headers=user.headers)).status == 200
    response = await client.patch(f"{API}/projects/{project['id']}",
                                  json={"description": "Staff fixed it"}, headers=staff.headers)
    assert response.status == 200


async def test_a_decision_before_the_profile_still_counts(client, services, event_bus,
                                                          make_user, reviewer):
    user = await make_user("builder", kyc=None)
    await decide(services, reviewer, await submit_kyc(client, user), True)
    await event_bus.drain()
    body = await problem(await client.post(f"{API}/builders", json={"name": "Early Homes"},
                                           headers=user.headers), 201)
    assert body["verified"] is True
    assert (await client.post(f"{API}/projects", json=PROJECT,
                              headers=user.headers)).status == 201


async def test_an_older_kyc_event_changes_nothing(services):
    user_id = uuid.uuid4()
    async with services.db.transaction() as tx:
        assert await store.record_builder_kyc(tx, user_id, "verified", 4)
        assert not await store.record_builder_kyc(tx, user_id, "submitted", 2)
        assert not await store.record_builder_kyc(tx, user_id, "verified", 4)
    assert await store.builder_kyc(services.db, user_id) == "verified"


class TestGateOff:
    """``plugins.catalog.require_builder_kyc = false`` (a development setup without reviews)."""

    @pytest.fixture
    def config_overrides(self) -> dict[str, dict[str, Any]]:
        return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS),
                                         "catalog": {"require_builder_kyc": False}}},
                "ratelimit": {"enabled": False}}

    async def test_an_unverified_builder_may_work(self, client, make_user):
        user = await make_user("builder", kyc=None)
        assert (await client.post(f"{API}/builders", json={"name": "Dev Homes"},
                                  headers=user.headers)).status == 201
        assert (await client.post(f"{API}/projects", json=PROJECT,
                                  headers=user.headers)).status == 201
