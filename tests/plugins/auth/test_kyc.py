"""KYC of agents and builders through the API: the state machine, its events, roles and number
formats."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from propmubi.actors import Actor
from propmubi.console import accounts
from propmubi.errors import Forbidden, ValidationFailed
from propmubi_plugins.auth import store
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc import store as kyc_store
from propmubi_plugins.auth.kyc.models import Decision, RevealForm
from tests.plugins.auth.conftest import AUTH_SETTINGS, PHONE, auth_state, bearer, sign_in

PII_KEY = base64.b64encode(bytes(range(32))).decode()
PAN = "ABCDE1234F"
SUBMISSION = {"legal_name": "Asha Rao", "document_kind": "pan", "document_number": PAN}


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    return {**AUTH_SETTINGS, "pii_key_id": "k1", "pii_key": PII_KEY}


async def applicant(client: Any, services: Any, roles: tuple[str, ...] = ("agent",),
                    phone: str = PHONE) -> tuple[uuid.UUID, dict[str, str]]:
    """A signed-in user holding ``roles``: their id and Authorization header."""
    tokens = await sign_in(client, phone)
    user_id = uuid.UUID(tokens["user_id"])
    for role in roles:
        await store.grant_role(services.db, user_id, role)
    access, _ = auth_state(client).keyring.issue(str(user_id), ["buyer", *roles],
                                              tokens["session_id"])
    return user_id, bearer(access)


async def staff_id(services: Any) -> uuid.UUID:
    user = await accounts.create_staff(services.db, "rita@example.com", "Rita Reviewer",
                                       "correct horse battery", ["staff"])
    return uuid.UUID(str(user.id))


async def decide(services: Any, record_id: uuid.UUID, verified: bool, reason: str | None,
                 reviewer: uuid.UUID) -> dict[str, Any]:
    """A console reviewer's decision, through the service."""
    return await kyc.decide(services.context("auth"), Actor.staff(reviewer), record_id,
                            Decision(verified=verified, reason=reason))


async def reveal(services: Any, record_id: uuid.UUID, kind: str, reason: str,
                 reviewer: uuid.UUID, ip: str | None) -> uuid.UUID:
    """A console reviewer's reveal of a number, through the service."""
    return await kyc.reveal(services.context("auth"), Actor.staff(reviewer), record_id,
                            RevealForm(kind=kind, reason=reason), ip=ip)


async def export_user(services: Any, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's KYC for a data export (read by the system)."""
    return await kyc.export_user(services.context("auth"), Actor.system("test"), user_id)


async def put(client: Any, headers: dict[str, str], role: str = "agent", **changes: Any) -> Any:
    return await client.put(f"/api/v1/me/kyc/{role}", json={**SUBMISSION, **changes},
                            headers=headers)


async def events(services: Any) -> list[dict[str, Any]]:
    rows = await services.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = 'auth.kyc_status_changed' "
        "ORDER BY position")
    return [{**(r["payload"] if isinstance(r["payload"], dict) else orjson.loads(r["payload"])),
             "actor": r["actor"]} for r in rows]


async def test_every_legal_transition_publishes_one_event(client, services):
    user_id, headers = await applicant(client, services)
    reviewer = await staff_id(services)
    listed = await (await client.get("/api/v1/me/kyc", headers=headers)).json()
    assert [(r["role"], r["status"]) for r in listed] == [("agent", "not_started")]

    response = await put(client, headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "submitted"
    assert body["numbers"] == [{"kind": "pan", "masked": "XXXXXX234F"}]
    record_id = uuid.UUID(body["id"])

    await decide(services, record_id, False, "name does not match the PAN", reviewer)
    response = await put(client, headers, legal_name="Asha K Rao")
    assert (await response.json())["status"] == "resubmitted"
    await decide(services, record_id, False, "still blurry", reviewer)
    assert (await (await put(client, headers)).json())["status"] == "resubmitted"
    await decide(services, record_id, True, None, reviewer)

    listed = await (await client.get("/api/v1/me/kyc", headers=headers)).json()
    assert len(listed) == 1 and listed[0]["status"] == "verified"
    assert [(h["old_status"], h["new_status"]) for h in listed[0]["history"]] == [
        ("not_started", "submitted"), ("submitted", "rejected"), ("rejected", "resubmitted"),
        ("resubmitted", "rejected"), ("rejected", "resubmitted"), ("resubmitted", "verified")]
    assert PAN not in orjson.dumps(listed).decode()

    published = await events(services)
    assert [(e["old_status"], e["new_status"]) for e in published] == [
        (h["old_status"], h["new_status"]) for h in listed[0]["history"]]
    assert {e["user_id"] for e in published} == {str(user_id)}
    assert {e["role"] for e in published} == {"agent"}
    # A reason is free text about the person: the history keeps it, the event never does.
    assert all("reason" not in e for e in published)
    assert [h["reason"] for h in listed[0]["history"]] == [
        None, "name does not match the PAN", None, "still blurry", None, None]
    assert published[0]["actor"] == str(user_id)
    assert published[1]["actor"] == f"staff:{reviewer}"


async def test_submitted_to_verified_directly_and_builders(client, services):
    _, headers = await applicant(client, services, roles=("agent", "builder"))
    reviewer = await staff_id(services)
    response = await put(client, headers, role="builder", rera_number="prm/ka/rera/1251/446",
                         licence_number="TL-2024-0042")
    body = await response.json()
    assert response.status == 200, body
    assert sorted((n["kind"], n["masked"]) for n in body["numbers"]) == [
        # A RERA registration is public record (each state's RERA register lists it): in full.
        ("licence", "XXXXXXXX0042"), ("pan", "XXXXXX234F"), ("rera", "PRM/KA/RERA/1251/446")]
    await decide(services, uuid.UUID(body["id"]), True, None, reviewer)
    listed = await (await client.get("/api/v1/me/kyc", headers=headers)).json()
    assert [(r["role"], r["status"]) for r in listed] == [("agent", "not_started"),
                                                          ("builder", "verified")]


async def test_illegal_transitions_are_409(client, services):
    _, headers = await applicant(client, services)
    reviewer = await staff_id(services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    response = await put(client, headers)  # submitted -> submitted
    assert response.status == 409
    problem = await response.json()
    assert response.content_type == "application/problem+json"
    assert problem["type"].endswith("/kyc-illegal-transition")
    assert problem["status_now"] == "submitted"
    await decide(services, record_id, True, None, reviewer)
    assert (await put(client, headers)).status == 409  # verified is final
    for verified, reason in ((True, None), (False, "too late")):
        with pytest.raises(kyc.IllegalTransition):
            await decide(services, record_id, verified, reason, reviewer)
    assert len(await events(services)) == 2


async def test_rejection_needs_a_reason(client, services):
    _, headers = await applicant(client, services)
    reviewer = await staff_id(services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    for reason in (None, "", "   "):
        with pytest.raises(ValidationFailed) as caught:
            await decide(services, record_id, False, reason, reviewer)
        assert caught.value.status == 422
        assert caught.value.extra["errors"][0]["field"] == "reason"
    assert len(await events(services)) == 1


async def test_401_without_a_token_and_403_without_the_role(client, services):
    assert (await client.get("/api/v1/me/kyc")).status == 401
    assert (await client.put("/api/v1/me/kyc/agent", json=SUBMISSION)).status == 401
    tokens = await sign_in(client)  # a buyer only
    response = await client.put("/api/v1/me/kyc/agent", json=SUBMISSION,
                                headers=bearer(tokens))
    assert response.status == 403
    assert (await client.get("/api/v1/me/kyc", headers=bearer(tokens))).status == 403
    # An agent may not submit for the builder role.
    _, headers = await applicant(client, services, phone="+919812345679")
    response = await put(client, headers, role="builder", rera_number="A51800012345")
    assert response.status == 403
    assert "builder role" in (await response.json())["detail"]
    # A role revoked since the token was issued is refused at once.
    user_id, headers = await applicant(client, services, phone="+919812345670")
    await store.revoke_role(services.db, user_id, "agent")
    assert (await put(client, headers)).status == 403
    assert await events(services) == []


@pytest.mark.parametrize("changes, field", [
    ({"document_number": "ABCD1234F"}, "document_number"),
    ({"document_number": "abcde12345"}, "document_number"),
    ({"document_kind": "aadhaar", "document_number": "1234 5678 9012"}, "document_number"),
    ({"document_kind": "aadhaar", "document_number": "2234 5678 901"}, "document_number"),
    ({"document_kind": "passport"}, "document_kind"),
    ({"rera_number": "RERA"}, "rera_number"),
    ({"licence_number": "x!"}, "licence_number"),
    ({"legal_name": ""}, "legal_name"),
])
async def test_bad_numbers_are_422_naming_the_field(client, services, changes, field):
    _, headers = await applicant(client, services)
    response = await put(client, headers, **changes)
    assert response.status == 422, await response.text()
    problem = await response.json()
    assert response.content_type == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_records") == 0


async def test_builders_need_a_rera_number_and_bad_roles_are_422(client, services):
    _, headers = await applicant(client, services, roles=("builder",))
    response = await put(client, headers, role="builder")
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["rera_number"]
    response = await put(client, headers, role="staff")
    assert response.status == 422
    assert (await response.json())["errors"][0]["in"] == "path"


async def test_aadhaar_is_accepted_with_spaces_and_masked(client, services):
    _, headers = await applicant(client, services)
    response = await put(client, headers, document_kind="aadhaar",
                         document_number="2345 6789 0123")
    assert (await response.json())["numbers"] == [{"kind": "aadhaar", "masked": "XXXXXXXX0123"}]


async def test_export_and_erase(client, services):
    user_id, headers = await applicant(client, services)
    reviewer = await staff_id(services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    await decide(services, record_id, False, "Asha's PAN photo is blurry", reviewer)
    exported = await export_user(services, user_id)
    orjson.dumps(exported)  # JSON-serialisable as it is
    assert exported[0]["legal_name"] == "Asha Rao" and PAN not in str(exported)
    assert exported[0]["numbers"] == [{"kind": "pan", "masked": "XXXXXX234F"}]
    await reveal(services, record_id, "pan", "support ticket 12", reviewer, "10.0.0.1")

    async with services.db.transaction() as tx:
        await kyc.erase_user_in(services.context("auth"), tx, Actor.system("test"), user_id)
    erased = await export_user(services, user_id)
    assert erased[0]["legal_name"] is None and erased[0]["numbers"] == []
    assert erased[0]["status"] == "rejected"
    assert [(h["old_status"], h["new_status"], h["reason"]) for h in erased[0]["history"]] == [
        ("not_started", "submitted", None), ("submitted", "rejected", None)]
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_numbers") == 0
    audit = await services.db.fetchrow("SELECT user_id, kind, staff_id, reason, ip "
                                       "FROM auth_kyc_reveals")
    assert dict(audit) == {"user_id": user_id, "kind": "pan", "staff_id": reviewer,
                           "reason": "support ticket 12", "ip": "10.0.0.1"}


async def test_decisions_are_counted_once_by_the_consumer(client, services, event_bus):
    _, headers = await applicant(client, services)
    reviewer = await staff_id(services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    await decide(services, record_id, False, "blurry", reviewer)
    await put(client, headers)
    await decide(services, record_id, True, None, reviewer)
    await event_bus.drain()
    await event_bus.drain()  # nothing new: nothing counted twice
    rows = await services.db.fetch(
        "SELECT outcome, count FROM auth_kyc_daily_decisions ORDER BY outcome")
    assert [(r["outcome"], r["count"]) for r in rows] == [("rejected", 1), ("verified", 1)]


async def test_the_queue_query_uses_its_index(services):
    async with services.db.transaction() as tx:
        await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetch("EXPLAIN " + kyc_store.QUEUE,
                              {"after_at": "1970-01-01T00:00:00Z",
                               "after_id": uuid.UUID(int=0), "limit": 25})
    plan = "\n".join(r["QUERY PLAN"] for r in rows)
    assert "auth_kyc_records_queue_idx" in plan, plan


async def test_only_console_reviewers_decide_and_reveal(client, services):
    user_id, headers = await applicant(client, services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    ctx = services.context("auth")
    for actor in (Actor("user", str(user_id), {"agent", "admin"}), Actor.system("test")):
        with pytest.raises(Forbidden):
            await kyc.decide(ctx, actor, record_id, Decision(verified=True))
        with pytest.raises(Forbidden):
            await kyc.reveal(ctx, actor, record_id, RevealForm(kind="pan", reason="x"), ip=None)
    assert await services.db.fetchval("SELECT status FROM auth_kyc_records") == "submitted"
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_reveals") == 0
    assert len(await events(services)) == 1


async def test_a_reveal_from_an_address_that_is_no_ip_stores_null(client, services):
    _, headers = await applicant(client, services)
    record_id = uuid.UUID((await (await put(client, headers)).json())["id"])
    reviewer = await staff_id(services)
    await reveal(services, record_id, "pan", "ticket 1", reviewer, "unknown")
    await reveal(services, record_id, "pan", "ticket 2", reviewer, "2001:DB8::0:1")
    rows = await services.db.fetch("SELECT reason, ip FROM auth_kyc_reveals ORDER BY reason")
    assert [(r["reason"], r["ip"]) for r in rows] == [("ticket 1", None),
                                                     ("ticket 2", "2001:db8::1")]
