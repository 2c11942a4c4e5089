"""Projects through moderation: draft -> in_review -> published / rejected -> resubmitted,
with every step recorded and published as an event in its transaction."""

from __future__ import annotations

import pytest

from propmubi import cursors
from tests.plugins.catalog.conftest import API, PROJECT, complete_project, outbox


async def test_draft_review_reject_resubmit_publish(client, services, builder, staff):
    response = await client.post(f"{API}/projects", json=PROJECT, headers=builder.headers)
    assert response.status == 201, await response.text()
    project = await response.json()
    pid = project["id"]
    assert project["moderation"] == "draft"
    assert project["builder"]["id"] == str(builder.builder_id)
    assert project["slug"].startswith("green-meadows-baner-")
    assert project["amenities"] == ["gym", "swimming_pool"]
    assert project["possession_date"] == "2028-06-30"

    # Public (and other callers) cannot see a draft; the owner can, by id and by slug.
    assert (await client.get(f"{API}/projects/{pid}")).status == 404
    assert (await client.get(f"{API}/projects/{project['slug']}")).status == 404
    assert (await client.get(f"{API}/projects/{project['slug']}",
                             headers=builder.headers)).status == 200

    # Only staff publish; a draft cannot be published before review.
    assert (await client.post(f"{API}/projects/{pid}/publish",
                              headers=builder.headers)).status == 403
    assert (await client.post(f"{API}/projects/{pid}/publish",
                              headers=staff.headers)).status == 409

    # Review needs a complete project; a 422 says everything that is missing at once.
    response = await client.post(f"{API}/projects/{pid}/submit", headers=builder.headers)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == [
        "towers", "units", "photos"]
    await complete_project(client, builder, pid)

    response = await client.post(f"{API}/projects/{pid}/submit", headers=builder.headers)
    assert response.status == 200
    assert (await response.json())["moderation"] == "in_review"
    assert (await client.post(f"{API}/projects/{pid}/submit",
                              headers=builder.headers)).status == 409

    # A rejection needs a reason.
    response = await client.post(f"{API}/projects/{pid}/reject", json={},
                                 headers=staff.headers)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "reason"
    response = await client.post(f"{API}/projects/{pid}/reject",
                                 json={"reason": "RERA number does not match"},
                                 headers=staff.headers)
    assert response.status == 200
    body = await response.json()
    assert body["moderation"] == "rejected"
    assert body["rejection_reason"] == "RERA number does not match"

    # The builder fixes it and resubmits; staff publish.
    response = await client.patch(f"{API}/projects/{pid}", json={"rera_number": "P52100099999"},
                                  headers=builder.headers)
    assert response.status == 200 and (await response.json())["moderation"] == "rejected"
    assert (await client.post(f"{API}/projects/{pid}/submit",
                              headers=builder.headers)).status == 200
    response = await client.post(f"{API}/projects/{pid}/publish", headers=staff.headers)
    assert response.status == 200
    body = await response.json()
    assert body["moderation"] == "published" and body["published_at"]
    assert body["rejection_reason"] is None

    # Now public, by id and slug.
    assert (await client.get(f"{API}/projects/{pid}")).status == 200
    assert (await client.get(f"{API}/projects/{project['slug']}")).status == 200

    response = await client.get(f"{API}/projects/{pid}/reviews", headers=builder.headers)
    steps = [(r["action"], r["reason"]) for r in await response.json()]
    assert steps == [("submitted", None), ("rejected", "RERA number does not match"),
                     ("submitted", None), ("published", None)]
    actors = {r["actor"] for r in await (await client.get(
        f"{API}/projects/{pid}/reviews", headers=staff.headers)).json()}
    assert actors == {f"user:{builder.id}", f"user:{staff.id}"}

    created = await outbox(services, "catalog.project_created")
    assert created == [{"project_id": pid, "builder_id": str(builder.builder_id),
                        "name": "Green Meadows", "city": "Pune",
                        "_actor": f"user:{builder.id}"}]
    updates = await outbox(services, "catalog.project_updated")
    assert [(u["fields"], u["moderation"], u["reason"]) for u in updates] == [
        (["towers"], "draft", None), (["units"], "draft", None), (["photos"], "draft", None),
        (["moderation"], "in_review", None),
        (["moderation"], "rejected", "RERA number does not match"),
        (["rera_number"], "rejected", None),
        (["moderation"], "in_review", None)]
    published = await outbox(services, "catalog.project_published")
    assert published == [{"project_id": pid, "builder_id": str(builder.builder_id),
                          "city": "Pune", "_actor": f"user:{staff.id}"}]


async def test_published_project_edits_stay_public(client, services, builder, staff,
                                                   make_project):
    project = await make_project(builder, moderation="published")
    pid = str(project["id"])
    response = await client.patch(f"{API}/projects/{pid}",
                                  json={"description": "Now with a clubhouse",
                                        "amenities": ["gym", "clubhouse"]},
                                  headers=builder.headers)
    assert response.status == 200
    assert (await response.json())["moderation"] == "published"
    public = await (await client.get(f"{API}/projects/{pid}")).json()
    assert public["description"] == "Now with a clubhouse"
    assert (await outbox(services, "catalog.project_updated"))[-1]["fields"] == [
        "amenities", "description"]

    # The approved identity of the listing is staff-only once published.
    response = await client.patch(f"{API}/projects/{pid}", json={"name": "Other", "lat": 10},
                                  headers=builder.headers)
    assert response.status == 409
    assert (await response.json())["fields"] == ["name", "lat"]
    response = await client.patch(f"{API}/projects/{pid}", json={"name": "Green Meadows II"},
                                  headers=staff.headers)
    assert response.status == 200

    # Unchanged values are no change (no event).
    count = len(await outbox(services, "catalog.project_updated"))
    response = await client.patch(f"{API}/projects/{pid}", json={"city": "Pune"},
                                  headers=staff.headers)
    assert response.status == 200
    assert len(await outbox(services, "catalog.project_updated")) == count


async def test_unpublish_and_delete(client, services, builder, staff, make_project):
    project = await make_project(builder, moderation="published")
    pid = str(project["id"])
    # A builder cannot delete a live listing.
    assert (await client.delete(f"{API}/projects/{pid}", headers=builder.headers)).status == 409
    response = await client.post(f"{API}/projects/{pid}/unpublish",
                                 json={"reason": "complaint under review"},
                                 headers=staff.headers)
    assert response.status == 200
    assert (await response.json())["moderation"] == "draft"
    assert (await client.get(f"{API}/projects/{pid}")).status == 404
    last = (await outbox(services, "catalog.project_updated"))[-1]
    assert (last["moderation"], last["reason"]) == ("draft", "complaint under review")
    reviews = await (await client.get(f"{API}/projects/{pid}/reviews",
                                      headers=builder.headers)).json()
    assert reviews[-1]["action"] == "unpublished"

    assert (await client.delete(f"{API}/projects/{pid}", headers=builder.headers)).status == 204
    assert (await client.get(f"{API}/projects/{pid}", headers=builder.headers)).status == 404
    assert await services.db.fetchval(
        "SELECT count(*) FROM catalog_units WHERE project_id = %s", (project["id"],)) == 0
    deleted = await outbox(services, "catalog.project_deleted")
    assert deleted == [{"project_id": pid, "builder_id": str(builder.builder_id),
                        "_actor": f"user:{builder.id}"}]


async def test_staff_delete_published_project(client, builder, staff, make_project):
    project = await make_project(builder, moderation="published")
    response = await client.delete(f"{API}/projects/{project['id']}", headers=staff.headers)
    assert response.status == 204


async def test_my_projects_keyset_pages(client, builder, other_builder, make_project):
    made = [await make_project(builder, towers={}, name=f"Project {i}") for i in range(5)]
    await make_project(other_builder, towers={})
    seen, cursor = [], None
    while True:
        url = f"{API}/builders/me/projects?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=builder.headers)).json()
        seen += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["name"] for p in reversed(made)]
    response = await client.get(f"{API}/builders/me/projects?cursor=garbage",
                                headers=builder.headers)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "cursor"
    page = await (await client.get(f"{API}/builders/me/projects?moderation=published",
                                   headers=builder.headers)).json()
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                "2026-01-01T00:00:00+20:00"])
async def test_a_hand_made_cursor_of_any_offset_is_never_a_server_error(client, builder, at):
    # Python parses offsets up to ±23:59 that PostgreSQL refuses, and near year 1 or 9999 an
    # offset may leave Python's calendar once the instant is moved to UTC.
    cursor = cursors.pack([at, "0190a8b4-0000-7000-8000-000000000000"])
    response = await client.get(f"{API}/builders/me/projects", params={"cursor": cursor},
                                headers=builder.headers)
    assert response.status in (200, 422), await response.text()
