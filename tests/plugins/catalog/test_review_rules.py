"""What a review needs and what it freezes: submitting checks that a project is complete and
its texts are clean (one 422 listing everything), and a project in review cannot be changed
by its builder (409 naming what is locked) so that staff publish what they reviewed."""

from __future__ import annotations

import aiohttp
import pytest

from tests.plugins.catalog.conftest import API, PROJECT, tiny_jpeg, unit_body

CSV = ("tower,code,unit_type,bedrooms,carpet_area_sqft,super_area_sqft,floor,facing,"
       "price_minor,currency,status\nA,A-301,2BHK,2,700,900,3,E,8000000000,INR,available\n")


def photo_form() -> aiohttp.FormData:
    body = aiohttp.FormData(default_to_multipart=True)
    body.add_field("file", tiny_jpeg(), filename="p.jpg", content_type="image/jpeg")
    body.add_field("alt_text", "The lobby")
    return body


async def test_a_project_in_review_is_frozen_for_its_builder(client, services, builder, staff,
                                                             make_project):
    project = await make_project(builder, moderation="in_review")
    pid = project["id"]
    unit = await services.db.fetchrow("SELECT id, tower_id FROM catalog_units "
                                      "WHERE project_id = %s LIMIT 1", (pid,))
    photo = await services.db.fetchval("SELECT id FROM catalog_media WHERE project_id = %s",
                                       (pid,))
    h = builder.headers
    attempts = [
        (client.patch(f"{API}/projects/{pid}", json={"name": "Other", "description": "New"},
                      headers=h), ["description", "name"]),
        (client.post(f"{API}/projects/{pid}/towers", json={"name": "B", "floors": 4},
                     headers=h), ["towers"]),
        (client.patch(f"{API}/towers/{unit['tower_id']}", json={"floors": 12}, headers=h),
         ["towers"]),
        (client.delete(f"{API}/towers/{unit['tower_id']}", headers=h), ["towers"]),
        (client.post(f"{API}/towers/{unit['tower_id']}/units", json=unit_body("A-901"),
                     headers=h), ["units"]),
        (client.patch(f"{API}/units/{unit['id']}", json={"price_minor": 1}, headers=h),
         ["units"]),
        (client.patch(f"{API}/units/{unit['id']}/status", json={"status": "sold"}, headers=h),
         ["units"]),
        (client.delete(f"{API}/units/{unit['id']}", headers=h), ["units"]),
        (client.post(f"{API}/projects/{pid}/units/import", data=CSV,
                     headers={**h, "Content-Type": "text/csv"}), ["units"]),
        (client.post(f"{API}/projects/{pid}/photos", data=photo_form(), headers=h), ["photos"]),
        (client.patch(f"{API}/photos/{photo}", json={"alt_text": "Other"}, headers=h),
         ["photos"]),
        (client.delete(f"{API}/photos/{photo}", headers=h), ["photos"]),
    ]
    for request, fields in attempts:
        response = await request
        assert response.status == 409, (fields, await response.text())
        body = await response.json()
        assert body["fields"] == fields and body["moderation"] == "in_review"
    after = await services.db.fetchrow(
        "SELECT name, description, units_total, (SELECT count(*) FROM catalog_towers t "
        "WHERE t.project_id = p.id) AS towers, (SELECT count(*) FROM catalog_media m "
        "WHERE m.project_id = p.id) AS photos FROM catalog_projects p WHERE id = %s", (pid,))
    assert dict(after) == {"name": project["name"], "description": project["description"],
                           "units_total": 2, "towers": 1, "photos": 1}

    # Unchanged values are no change, so no conflict; staff may still correct the project.
    response = await client.patch(f"{API}/projects/{pid}", json={"name": project["name"]},
                                  headers=h)
    assert response.status == 200
    response = await client.patch(f"{API}/projects/{pid}", json={"description": "Fixed"},
                                  headers=staff.headers)
    assert response.status == 200
    # Rejected, it is the builder's again.
    response = await client.post(f"{API}/projects/{pid}/reject", json={"reason": "photos"},
                                 headers=staff.headers)
    assert response.status == 200
    response = await client.patch(f"{API}/projects/{pid}", json={"description": "Better"},
                                  headers=h)
    assert response.status == 200


async def test_submitting_lists_everything_missing(client, services, builder, make_project):
    project = await make_project(builder, towers={}, photos=False)
    # Text written before the control-character rule (straight into the table).
    await services.db.execute("UPDATE catalog_projects SET name = 'Green\x07Meadows', "
                              "description = 'Line one\r\nline\ttwo' WHERE id = %s",
                              (project["id"],))
    response = await client.post(f"{API}/projects/{project['id']}/submit",
                                 headers=builder.headers)
    assert response.status == 422
    body = await response.json()
    assert [e["field"] for e in body["errors"]] == ["towers", "units", "photos", "name"]
    assert "U+0007" in body["errors"][3]["message"]
    assert "not ready for review" in body["detail"]
    moderation = await services.db.fetchval(
        "SELECT moderation FROM catalog_projects WHERE id = %s", (project["id"],))
    assert moderation == "draft"


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("name", "Green\x00Meadows", False), ("name", "Green\x1bMeadows", False),
    ("name", "Green\u0085Meadows", False), ("name", "Green\x7fMeadows", False),
    ("name", "Green\nMeadows", False), ("name", "Green\tMeadows", False),
    ("city", "Pu\rne", False), ("locality", "Ba\x0cner", False),
    ("description", "Two lines\nwith\ttabs\r\nand CRLF", True),
    ("description", "A bell\x07", False), ("description", "A lone\rreturn", False),
    ("address", "Survey 12\nBaner Road", True), ("address", "Survey\x0012", False),
])
async def test_control_characters_in_project_texts(client, services, builder, field, value,
                                                   ok):
    response = await client.post(f"{API}/projects", json={**PROJECT, field: value},
                                 headers=builder.headers)
    if ok:
        assert response.status == 201, await response.text()
        return
    assert response.status == 422, await response.text()
    assert [e["field"] for e in (await response.json())["errors"]] == [field]
    assert await services.db.fetchval("SELECT count(*) FROM catalog_projects") == 0


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/builders/me", {"name": "Sky\x1bline"}, "name"),
    ("/builders/me", {"website": "https://x.example/\x01"}, "website"),
    ("/towers", {"name": "Tower\nA", "floors": 3}, "name"),
    ("/units", unit_body("A-\x02"), "code"),
    ("/units", unit_body("A-999", unit_type="2BHK\u009b"), "unit_type"),  # a new code
])
async def test_control_characters_everywhere(client, builder, make_project, path, body, field):
    project = await make_project(builder)
    tower = (await (await client.get(f"{API}/projects/{project['id']}/towers",
                                     headers=builder.headers)).json())[0]
    url = {"/builders/me": f"{API}/builders/me",
           "/towers": f"{API}/projects/{project['id']}/towers",
           "/units": f"{API}/towers/{tower['id']}/units"}[path]
    send = client.patch if path == "/builders/me" else client.post
    response = await send(url, json=body, headers=builder.headers)
    assert response.status == 422, await response.text()
    assert [e["field"] for e in (await response.json())["errors"]] == [field]


async def test_control_characters_in_reasons_and_search(client, builder, staff, make_project):
    project = await make_project(builder, moderation="in_review")
    response = await client.post(f"{API}/projects/{project['id']}/reject",
                                 json={"reason": "Blurry\x1b[31m photos"}, headers=staff.headers)
    assert response.status == 422
    response = await client.post(f"{API}/projects/{project['id']}/reject",
                                 json={"reason": "Blurry photos.\nPlease upload\tagain."},
                                 headers=staff.headers)
    assert response.status == 200
    response = await client.get(f"{API}/projects/search", params={"q": "green\x1b"})
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "q"
