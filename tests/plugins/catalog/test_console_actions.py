"""What staff do from the catalogue's console without an API account: unpublish a project with
a reason, change a unit's status on its page, edit a builder and set its verified badge by
hand."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

from propmubi.testing import csrf_of
from propmubi_plugins.catalog import console
from propmubi_plugins.catalog.models import REASON_MAX
from tests.plugins.catalog.conftest import outbox, unit_body
from tests.plugins.catalog.test_console import moderation, page, signed_in


def field_error(body: str, field: str) -> str | None:
    """The message shown next to ``field`` (None: no message)."""
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', body)
    return unescape(found.group(1)) if found else None


async def reviews_of(services: Any, project_id: uuid.UUID) -> list[dict[str, Any]]:
    return await services.db.fetch(
        "SELECT action, reason, actor FROM catalog_project_reviews WHERE project_id = %s "
        "ORDER BY id", (project_id,))


async def outbox_size(services: Any) -> int:
    return await services.db.fetchval("SELECT count(*) FROM core_outbox")


# --------------------------------------------------------------------------------------------
# Unpublish
# --------------------------------------------------------------------------------------------


async def test_unpublish_takes_a_published_project_down_with_a_reason(client, services,
                                                                      builder, make_project):
    project = await make_project(builder, moderation="published")
    staff_id = await signed_in(client, services)
    path = f"/console/projects/{project['id']}"
    body = await page(client, path)
    assert 'action="/console/projects/{}/unpublish"'.format(project["id"]) in body
    assert '<label for="unpublish-reason">' in body
    reason = "The RERA registration was suspended.\nPlease upload the renewal."
    response = await client.post(path + "/unpublish", allow_redirects=False,
                                 data={"csrf_token": csrf_of(body), "reason": reason})
    assert response.status == 303 and response.headers["Location"] == path
    assert await moderation(services, project["id"]) == ("draft", reason)
    last = (await reviews_of(services, project["id"]))[-1]
    assert last == {"action": "unpublished", "reason": reason, "actor": f"staff:{staff_id}"}
    event = (await outbox(services, "catalog.project_updated"))[-1]
    assert event["project_id"] == str(project["id"])
    assert (event["moderation"], event["reason"], event["fields"]) == ("draft", reason,
                                                                       ["moderation"])
    assert event["_actor"] == f"staff:{staff_id}"
    after = await page(client, path)
    assert "Project unpublished: it is a draft again and no longer public." in after
    assert "data-moderation>Draft<" in after and "Unpublished because" in after
    assert 'data-review="unpublished"' in after
    # A draft has no Unpublish form.
    assert "/unpublish" not in after


async def test_unpublish_needs_a_reason(client, services, builder, make_project):
    project = await make_project(builder, moderation="published")
    await signed_in(client, services)
    path = f"/console/projects/{project['id']}"
    body = await page(client, path)
    reviews_before = await reviews_of(services, project["id"])
    events_before = await outbox_size(services)
    for reason, message in (
            ("   ", "Give the reason for taking the project down; the builder reads it."),
            (None, "Give the reason for taking the project down; the builder reads it."),
            ("x" * (REASON_MAX + 1),
             f"At most {REASON_MAX} characters (got {REASON_MAX + 1})."),
            ("bad\x07bell", "The reason must not contain control characters "
                            "(U+0007 at character 4).")):
        data = {"csrf_token": csrf_of(body)}
        if reason is not None:
            data["reason"] = reason
        response = await client.post(path + "/unpublish", data=data, allow_redirects=False)
        assert response.status == 422, reason
        text = await response.text()
        assert field_error(text, "reason") == message, reason
        # The message is next to the field it is about, the typed text kept for correction.
        form = re.search(r'<form method="post" action="[^"]+/unpublish">.*?</form>', text,
                         re.S).group(0)
        assert re.search(r'id="unpublish-reason" name="reason"[^>]*aria-invalid="true" '
                         r'aria-describedby="reason-error"', form)
        assert 'id="reason-error"' in form
        if reason and reason.strip() and "\x07" not in reason:
            assert reason in form
    assert await moderation(services, project["id"]) == ("published", None)
    assert await reviews_of(services, project["id"]) == reviews_before
    assert await outbox_size(services) == events_before


async def test_unpublish_of_a_project_not_published_changes_nothing(client, services, builder,
                                                                    make_project):
    draft = await make_project(builder)
    waiting = await make_project(builder, moderation="in_review")
    await signed_in(client, services)
    for project, state in ((draft, "draft"), (waiting, "in_review")):
        path = f"/console/projects/{project['id']}"
        body = await page(client, path)
        assert "/unpublish" not in body  # no form: a stale page or a script posts it
        reviews_before = await reviews_of(services, project["id"])
        events_before = await outbox_size(services)
        response = await client.post(path + "/unpublish", allow_redirects=False, data={
            "csrf_token": csrf_of(body), "reason": "Taking it down."})
        assert response.status == 303 and response.headers["Location"] == path
        after = await page(client, path)
        assert (f"Nothing changed: cannot unpublish a project that is {state} "
                "(only from published).") in after
        assert await moderation(services, project["id"]) == (state, None)
        assert await reviews_of(services, project["id"]) == reviews_before
        assert await outbox_size(services) == events_before


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


async def unit_id_of(services: Any, project_id: uuid.UUID, code: str) -> uuid.UUID:
    return await services.db.fetchval(
        "SELECT id FROM catalog_units WHERE project_id = %s AND code = %s", (project_id, code))


async def unit_status(services: Any, unit_id: uuid.UUID) -> str:
    return await services.db.fetchval("SELECT status FROM catalog_units WHERE id = %s",
                                      (unit_id,))


async def test_unit_page_changes_the_status_and_the_grid_shows_it(client, services, builder,
                                                                  make_project):
    units = [("Orchid Wing", unit_body("OW-101", floor=1)),
             ("Orchid Wing", unit_body("OW-G01", floor=0, status="held", unit_type="3BHK",
                                       bedrooms=3, price_minor=1_25_00_000_00))]
    project = await make_project(builder, moderation="published", towers={"Orchid Wing": 4},
                                 units=units)
    unit_id = await unit_id_of(services, project["id"], "OW-G01")
    staff_id = await signed_in(client, services)
    project_path = f"/console/projects/{project['id']}"
    body = await page(client, project_path)
    # Each unit's cell in the grid links its page.
    cell = re.search(r'<li class="unit-held" data-unit="OW-G01".*?</li>', body, re.S).group(0)
    assert f'<a href="/console/units/{unit_id}">OW-G01</a>' in cell
    unit_path = f"/console/units/{unit_id}"
    body = await page(client, unit_path)
    for text in ("<h1>Unit OW-G01</h1>", "Green Meadows", "Skyline Developers",
                 "data-tower>Tower Orchid Wing<", "data-floor>Ground<",
                 "data-type>3BHK · 3 bedrooms<", "data-price>₹1.25 Cr<",
                 'data-status="held">Held<', '<label for="unit-status">New status</label>',
                 '<option value="held" selected>Held (now)</option>',
                 "720.5 sq ft", "1,010 sq ft"):
        assert text in body, text
    assert str(unit_id) not in re.sub(r'(href|action)="[^"]*"', "", body)  # names, not ids
    response = await client.post(unit_path + "/status", allow_redirects=False,
                                 data={"csrf_token": csrf_of(body), "status": "sold"})
    assert response.status == 303
    assert response.headers["Location"] == project_path + "#units-heading"
    assert await unit_status(services, unit_id) == "sold"
    events = await outbox(services, "catalog.unit_status_changed")
    assert [(e["unit_id"], e["old_status"], e["new_status"], e["_actor"]) for e in events] == [
        (str(unit_id), "held", "sold", f"staff:{staff_id}")]
    after = await page(client, project_path)
    assert "Unit OW-G01 is now Sold." in after
    assert 'data-unit="OW-G01" data-status="sold"' in after
    assert re.search(r"data-count-sold>1<", after)
    # The same status again: nothing to do, said so; no event.
    response = await client.post(unit_path + "/status", allow_redirects=False,
                                 data={"csrf_token": csrf_of(after), "status": "sold"})
    assert response.status == 303 and response.headers["Location"] == unit_path
    assert "Nothing changed: unit OW-G01 is already Sold." in await page(client, unit_path)
    assert len(await outbox(services, "catalog.unit_status_changed")) == 1


async def test_unit_status_form_refuses_an_unknown_status(client, services, builder,
                                                          make_project):
    project = await make_project(builder)
    unit_id = await unit_id_of(services, project["id"], "A-101")
    await signed_in(client, services)
    path = f"/console/units/{unit_id}"
    body = await page(client, path)
    row_before = await services.db.fetchrow("SELECT * FROM catalog_units WHERE id = %s",
                                            (unit_id,))
    events_before = await outbox_size(services)
    for data, message in (({"status": "demolished"}, "'status' must be in"),
                          ({}, "required field missing")):
        response = await client.post(path + "/status", allow_redirects=False,
                                     data={"csrf_token": csrf_of(body), **data})
        assert response.status == 422, data
        text = await response.text()
        assert (field_error(text, "status") or "").startswith(message), text
        assert re.search(r'id="unit-status" name="status"[^>]*aria-invalid="true" '
                         r'aria-describedby="status-error"', text)
    assert await services.db.fetchrow("SELECT * FROM catalog_units WHERE id = %s",
                                      (unit_id,)) == row_before
    assert await outbox_size(services) == events_before
    assert (await client.get(f"/console/units/{uuid.uuid4()}")).status == 404
    assert (await client.get("/console/units/not-a-uuid")).status == 404


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


async def builder_row(services: Any, builder_id: uuid.UUID) -> dict[str, Any]:
    return await services.db.fetchrow(
        "SELECT name, rera_promoter_id, website, description, verified, updated_at "
        "FROM catalog_builders WHERE id = %s", (builder_id,))


async def test_builder_edit_saves_every_field(client, services, builder):
    await services.db.execute(
        "UPDATE catalog_builders SET website = 'https://skyline.example', "
        "rera_promoter_id = 'PRM-1' WHERE id = %s", (builder.builder_id,))
    await signed_in(client, services)
    path = f"/console/builders/{builder.builder_id}"
    body = await page(client, path)
    for label in ('<label for="builder-name">Name</label>',
                  '<label for="builder-rera">RERA promoter id</label>',
                  '<label for="builder-website">Website</label>',
                  '<label for="builder-description">Description</label>'):
        assert label in body, label
    assert 'value="https://skyline.example"' in body
    response = await client.post(path + "/edit", allow_redirects=False, data={
        "csrf_token": csrf_of(body), "name": "  Skyline Realty  ",
        "rera_promoter_id": "PRM-PUNE-0042", "website": "",
        "description": "Homes in Pune since 1998.\nFamily owned."})
    assert response.status == 303 and response.headers["Location"] == path
    row = await builder_row(services, builder.builder_id)
    assert (row["name"], row["rera_promoter_id"], row["website"], row["description"]) == (
        "Skyline Realty", "PRM-PUNE-0042", None, "Homes in Pune since 1998.\nFamily owned.")
    after = await page(client, path)
    assert "Builder profile saved." in after and "<h1>Skyline Realty" in after
    assert "PRM-PUNE-0042" in after


async def test_builder_edit_refuses_bad_fields_and_writes_nothing(client, services, builder):
    await signed_in(client, services)
    path = f"/console/builders/{builder.builder_id}"
    body = await page(client, path)
    before = await builder_row(services, builder.builder_id)
    response = await client.post(path + "/edit", allow_redirects=False, data={
        "csrf_token": csrf_of(body), "name": "   ", "rera_promoter_id": "!!",
        "website": "ftp://skyline.example", "description": "fine"})
    assert response.status == 422
    text = await response.text()
    assert field_error(text, "name") == "Give the builder's name."
    assert field_error(text, "rera_promoter_id").startswith("3 to 60 letters, digits")
    assert field_error(text, "website") == ("A web address starting with http:// or https://, "
                                            "or nothing.")
    assert field_error(text, "description") is None
    for field, ident in (("name", "builder-name"), ("rera_promoter_id", "builder-rera"),
                         ("website", "builder-website")):
        assert re.search(rf'id="{ident}" name="{field}"[^>]*aria-invalid="true" '
                         rf'aria-describedby="{field}-error"', text), field
    assert 'value="ftp://skyline.example"' in text  # what was typed, to correct
    # Too long, and a control character in the one-line name.
    response = await client.post(path + "/edit", data={
        "csrf_token": csrf_of(body), "name": "Sky\tline", "description": "x" * 5001})
    assert response.status == 422
    text = await response.text()
    assert field_error(text, "name") == ("The builder's name must be one line, without line "
                                         "breaks or tabs (U+0009 at character 4).")
    assert field_error(text, "description") == "At most 5000 characters (got 5001)."
    assert await builder_row(services, builder.builder_id) == before


async def test_staff_remove_and_set_the_verified_badge_with_a_reason(client, services,
                                                                     builder):
    # The builder's KYC is verified (the fixture), so its badge is on.
    staff_id = await signed_in(client, services)
    path = f"/console/builders/{builder.builder_id}"
    body = await page(client, path)
    assert "data-verified>yes<" in body and "✔ verified" in body
    assert f'action="{path}/unverify"' in body and "Remove verification" in body
    assert '<label for="verification-reason">' in body
    events_before = await outbox_size(services)
    # A reason is required.
    for reason in ("  ", None):
        data = {"csrf_token": csrf_of(body)} | ({} if reason is None else {"reason": reason})
        response = await client.post(path + "/unverify", data=data)
        assert response.status == 422
        text = await response.text()
        assert field_error(text, "reason") == ("Give the reason for changing the badge; it is "
                                               "kept in its history with your name.")
        assert re.search(r'id="verification-reason" name="reason"[^>]*aria-invalid="true" '
                         r'aria-describedby="reason-error"', text)
    assert (await builder_row(services, builder.builder_id))["verified"] is True

    reason = "The promoter's RERA registration lapsed in March."
    response = await client.post(path + "/unverify", allow_redirects=False,
                                 data={"csrf_token": csrf_of(body), "reason": reason})
    assert response.status == 303 and response.headers["Location"] == path
    assert (await builder_row(services, builder.builder_id))["verified"] is False
    # Kept in the builder's verification history with the staff member and the reason, and
    # published (without the reason) for the plugins that follow trust.
    history = await services.db.fetch(
        "SELECT verified, actor, reason FROM catalog_builder_verifications "
        "WHERE builder_id = %s ORDER BY at DESC, id DESC", (builder.builder_id,))
    assert history[0] == {"verified": False, "actor": f"staff:{staff_id}", "reason": reason}
    events = await outbox(services, "catalog.builder_verification_changed")
    assert [(e["builder_id"], e["verified"], e["_actor"]) for e in events][-1] == (
        str(builder.builder_id), False, f"staff:{staff_id}")
    assert reason not in str(events)
    assert await outbox_size(services) == events_before + 1
    after = await page(client, path)
    assert "Verification removed." in after
    assert "✔ verified" not in after and "data-verified>no<" in after
    assert f'action="{path}/verify"' in after and "Mark verified" in after
    # A stale form: already not verified, nothing changes.
    response = await client.post(path + "/unverify", allow_redirects=False,
                                 data={"csrf_token": csrf_of(after), "reason": reason})
    assert response.status == 303
    assert "Nothing changed: the builder is already not verified." in await page(client, path)

    response = await client.post(path + "/verify", allow_redirects=False, data={
        "csrf_token": csrf_of(after), "reason": "Renewal checked on the MahaRERA site."})
    assert response.status == 303
    assert (await builder_row(services, builder.builder_id))["verified"] is True
    final = await page(client, path)
    assert "Builder marked verified." in final
    assert "✔ verified" in final and "data-verified>yes<" in final
    # The history names who changed the badge and why, newest first.
    changes = re.findall(r'data-verification="(on|off)">[^<]*</span></td>\s*<td>([^<]*)</td>\s*'
                         r'<td>([^<]*)</td>', final)
    assert [(on, by, unescape(why)) for on, by, why in changes[:2]] == [
        ("on", "Sam Staff", "Renewal checked on the MahaRERA site."),
        ("off", "Sam Staff", reason)], changes
    assert (await client.post(f"/console/builders/{uuid.uuid4()}/verify", data={
        "csrf_token": csrf_of(final), "reason": "x"})).status == 404


# --------------------------------------------------------------------------------------------
# Who may
# --------------------------------------------------------------------------------------------


def test_every_action_is_a_staff_page():
    """Staff (not only admins) do these, as the catalogue's rules say (staff may do
    everything); the console shell lets admins pass every role check."""
    registered = {(p.method, p.path): p for p in console.pages()}
    for path in ("/projects/{id}/unpublish", "/units/{id}/status", "/builders/{id}/edit",
                 "/builders/{id}/verify", "/builders/{id}/unverify"):
        assert registered[("POST", path)].role == "staff", path
    assert registered[("GET", "/units/{id}")].role == "staff"


async def test_signed_out_or_without_the_token_nothing_changes(client, services, builder,
                                                               make_project):
    project = await make_project(builder, moderation="published")
    unit_id = await unit_id_of(services, project["id"], "A-101")
    response = await client.get(f"/console/units/{unit_id}", headers={"Accept": "text/html"},
                                allow_redirects=False)
    assert response.status == 401
    posts = ((f"/console/projects/{project['id']}/unpublish", {"reason": "down"}),
             (f"/console/units/{unit_id}/status", {"status": "sold"}),
             (f"/console/builders/{builder.builder_id}/edit", {"name": "Other"}),
             (f"/console/builders/{builder.builder_id}/unverify", {"reason": "no"}))
    for path, data in posts:
        response = await client.post(path, data=data, allow_redirects=False)
        assert response.status in (401, 403), path
    await signed_in(client, services)
    for path, data in posts:  # signed in, without the CSRF token
        response = await client.post(path, data=data, allow_redirects=False)
        assert response.status == 403, path
    assert await moderation(services, project["id"]) == ("published", None)
    assert await unit_status(services, unit_id) == "available"
    row = await builder_row(services, builder.builder_id)
    assert (row["name"], row["verified"]) == ("Skyline Developers", True)
