"""The KYC review queue in the console: queue, approve, reject, reveal (audited), CSRF,
sign-in, and the dashboard cards."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import pytest

from propmubi.console import accounts
from tests.plugins.auth.test_kyc import (  # noqa: F401 - the fixture is used by name
    PAN,
    applicant,
    auth_settings,
    decide,
    export_user,
    put,
    reveal,
)

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def csrf_of(body: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert match, body
    return unescape(match.group(1))


async def console_sign_in(client: Any, services: Any, roles: tuple[str, ...] = ("staff",)
                          ) -> uuid.UUID:
    user = await accounts.create_staff(services.db, "rita@example.com", "Rita Reviewer",
                                       PASSWORD, list(roles))
    body = await (await client.get("/console/login")).text()
    response = await client.post("/console/login", allow_redirects=False, data={
        "csrf_token": csrf_of(body), "email": "rita@example.com", "password": PASSWORD})
    assert response.status == 303
    return uuid.UUID(str(user.id))


async def pending_record(client: Any, services: Any, phone: str = "+919812345678") -> str:
    _, headers = await applicant(client, services, phone=phone)
    return (await (await put(client, headers)).json())["id"]


async def form_post(client: Any, path: str, page: str, **data: str) -> Any:
    """POST a form of ``page`` (whose CSRF token it carries) without following redirects."""
    body = await (await client.get(page)).text()
    return await client.post(path, data={"csrf_token": csrf_of(body), **data},
                             allow_redirects=False)


async def test_queue_lists_pending_oldest_first_and_approve(client, services):
    first = await pending_record(client, services)
    second = await pending_record(client, services, phone="+919812345679")
    await console_sign_in(client, services)
    response = await client.get("/console/kyc")
    body = await response.text()
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    assert body.index(f"/console/kyc/{first}") < body.index(f"/console/kyc/{second}")
    assert "2 pending" in body and PAN not in body

    page = f"/console/kyc/{first}"
    detail = await (await client.get(page)).text()
    assert "XXXXXX234F" in detail and PAN not in detail
    response = await form_post(client, f"{page}/approve", page)
    assert response.status == 303 and response.headers["Location"] == page
    detail = await (await client.get(page)).text()
    assert "KYC verified." in detail  # the flash, once
    assert 'data-status>verified<' in detail and "Rita Reviewer" in detail
    queue = await (await client.get("/console/kyc")).text()
    assert f"/console/kyc/{first}" not in queue and "1 pending" in queue
    # Approving twice changes nothing and says why.
    response = await form_post(client, f"{page}/approve", page)
    assert response.status == 303
    assert "cannot become verified" in await (await client.get(page)).text()
    row = await services.db.fetchrow("SELECT status, decided_by FROM auth_kyc_records "
                                     "WHERE id = %s", (uuid.UUID(first),))
    assert row["status"] == "verified" and row["decided_by"] is not None


async def test_reject_needs_a_reason(client, services):
    record_id = await pending_record(client, services)
    await console_sign_in(client, services)
    page = f"/console/kyc/{record_id}"
    response = await form_post(client, f"{page}/reject", page, reason="  ")
    assert response.status == 422
    assert "a rejection needs a reason" in await response.text()
    response = await form_post(client, f"{page}/reject", page, reason="PAN photo unreadable")
    assert response.status == 303
    detail = await (await client.get(page)).text()
    assert "KYC rejected." in detail and "PAN photo unreadable" in detail
    history = await export_user(services, uuid.UUID(
        str(await services.db.fetchval("SELECT user_id FROM auth_kyc_records"))))
    assert history[0]["history"][-1]["reason"] == "PAN photo unreadable"


async def test_reveal_is_audited_and_shows_the_full_number(client, services):
    record_id = await pending_record(client, services)
    staff = await console_sign_in(client, services)
    page = f"/console/kyc/{record_id}"
    response = await form_post(client, f"{page}/reveal", page, kind="pan", reason="")
    assert response.status == 422
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_reveals") == 0

    response = await form_post(client, f"{page}/reveal", page, kind="pan",
                               reason="caller verification, ticket 881")
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith("/console/kyc/reveals/")
    revealed = await client.get(location)
    body = await revealed.text()
    assert revealed.status == 200 and PAN in body
    assert revealed.headers["Cache-Control"] == "no-store"
    audit = await services.db.fetchrow("SELECT record_id, kind, staff_id, reason, ip "
                                       "FROM auth_kyc_reveals")
    assert audit["record_id"] == uuid.UUID(record_id) and audit["kind"] == "pan"
    assert audit["staff_id"] == staff and audit["reason"] == "caller verification, ticket 881"
    assert audit["ip"]
    # The audit shows on the record; the record itself still masks the number.
    detail = await (await client.get(page)).text()
    assert "caller verification, ticket 881" in detail and PAN not in detail


async def test_reveal_page_is_only_for_its_staff_member(client, services):
    record_id = await pending_record(client, services)
    staff = await console_sign_in(client, services)
    reveal_id = await reveal(services, uuid.UUID(record_id), "pan", "check", staff, None)
    other = await accounts.create_staff(services.db, "otto@example.com", "Otto", PASSWORD,
                                        ["staff"])
    mine = await client.get(f"/console/kyc/reveals/{reveal_id}")
    assert mine.status == 200
    theirs = await reveal(services, uuid.UUID(record_id), "pan", "check",
                          uuid.UUID(str(other.id)), None)
    response = await client.get(f"/console/kyc/reveals/{theirs}")
    assert response.status == 404 and PAN not in await response.text()


async def test_posts_without_csrf_are_403(client, services):
    record_id = await pending_record(client, services)
    await console_sign_in(client, services)
    for action in ("approve", "reject", "reveal"):
        response = await client.post(f"/console/kyc/{record_id}/{action}",
                                     data={"reason": "x", "kind": "pan"},
                                     allow_redirects=False)
        assert response.status == 403
    assert await services.db.fetchval("SELECT status FROM auth_kyc_records") == "submitted"
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_reveals") == 0


@pytest.mark.parametrize("path", ["/console/kyc",  # a fixed id: every xdist worker collects alike
                                  "/console/kyc/0190b1d2-0000-7000-8000-000000000001"])
async def test_signed_out_browsers_get_the_sign_in_form(client, path):
    response = await client.get(path, headers=HTML, allow_redirects=False)
    assert response.status == 401
    assert f'name="next" value="{path}"' in await response.text()


async def test_dashboard_cards(client, services, event_bus):
    record_id = await pending_record(client, services)
    staff = await console_sign_in(client, services)
    body = await (await client.get("/console/")).text()
    assert re.search(r'data-widget="auth-kyc-pending".*?data-count>1<', body, re.S)
    await decide(services, uuid.UUID(record_id), True, None, staff)
    await event_bus.drain()
    body = await (await client.get("/console/")).text()
    assert re.search(r'data-widget="auth-kyc-decisions".*?data-verified>1<', body, re.S)
    assert re.search(r'data-widget="auth-kyc-pending".*?data-count>0<', body, re.S)


def field_error(body: str, field: str) -> str | None:
    """The message shown under the refused ``field`` (``<p class="field-error">``), if any."""
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', body)
    return unescape(match.group(1)) if match else None


async def decisions_and_events(services: Any) -> tuple[int, int]:
    return (await services.db.fetchval("SELECT count(*) FROM auth_kyc_transitions"),
            await services.db.fetchval("SELECT count(*) FROM core_outbox "
                                       "WHERE type = 'auth.kyc_status_changed'"))


@pytest.mark.parametrize("reason, message", [
    ("   ", "a rejection needs a reason"),
    ("x" * 1001, "at most 1000 characters"),
])
async def test_a_refused_rejection_shows_the_message_next_to_its_field(client, services, reason,
                                                                       message):
    record_id = await pending_record(client, services)
    await console_sign_in(client, services)
    before = await decisions_and_events(services)
    page = f"/console/kyc/{record_id}"
    response = await form_post(client, f"{page}/reject", page, reason=reason)
    assert response.status == 422
    body = await response.text()
    assert field_error(body, "reason") == message
    # Right under the rejection's reason box, which points to it; nowhere else.
    assert re.search(r'<input id="reject-reason"[^>]*aria-invalid="true" '
                     r'aria-describedby="reason-error"></p>\s*<p class="field-error" '
                     r'id="reason-error">', body), body
    assert body.count('class="field-error"') == 1
    assert 'data-status>submitted<' in body
    assert await services.db.fetchrow("SELECT status, reason, decided_by FROM auth_kyc_records"
                                      ) == {"status": "submitted", "reason": None,
                                            "decided_by": None}
    assert await decisions_and_events(services) == before


@pytest.mark.parametrize("data, field, message", [
    ({"kind": "pan", "reason": "  "}, "reason", "say why you need the number"),
    ({"kind": "pan", "reason": "x" * 501}, "reason", "at most 500 characters"),
    ({"kind": "passport", "reason": "ticket 12"}, "kind",
     "not a kind of number: pan, aadhaar, rera, licence"),
    ({"reason": "ticket 12"}, "kind", "required field missing"),
])
async def test_a_refused_reveal_shows_the_message_next_to_its_number(client, services, data,
                                                                     field, message):
    record_id = await pending_record(client, services)
    await console_sign_in(client, services)
    page = f"/console/kyc/{record_id}"
    response = await form_post(client, f"{page}/reveal", page, **data)
    assert response.status == 422
    body = await response.text()
    assert field_error(body, field) == message
    assert body.count('class="field-error"') == 1 and PAN not in body
    if field == "reason":  # under the PAN's reveal box, which points to it
        assert re.search(r'<input id="reveal-pan"[^>]*aria-invalid="true" '
                         r'aria-describedby="reason-error">\s*<button type="submit">Reveal'
                         r'</button>\s*</form><p class="field-error" id="reason-error">',
                         body), body
    assert await services.db.fetchval("SELECT count(*) FROM auth_kyc_reveals") == 0
    assert await services.db.fetchval("SELECT status FROM auth_kyc_records") == "submitted"


async def test_a_rera_registration_is_shown_in_full_without_a_reveal_form(client, services):
    _, headers = await applicant(client, services, roles=("builder",))
    record = (await (await put(client, headers, role="builder",
                               rera_number="P52100012345")).json())["id"]
    await console_sign_in(client, services)
    detail = await (await client.get(f"/console/kyc/{record}")).text()
    rows = dict(re.findall(r"<tr>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", detail))
    assert rows["RERA registration"] == "P52100012345"  # public record, not masked
    assert rows["PAN"] == "XXXXXX234F"
    assert 'name="kind" value="rera"' not in detail and 'name="kind" value="pan"' in detail
    assert "public record: shown in full" in detail
    # The applicant's account by name (their phone until they give one), linked.
    assert re.search(r'<a href="/console/users/[0-9a-f-]+" data-account>\+91', detail), detail
