"""Who may do what: 401 anonymous, 403 without the role or on others' public things, 404 on
others' unpublished things; staff and admins may do everything."""

from __future__ import annotations

from tests.plugins.catalog.conftest import API, PROJECT, unit_body


async def test_anonymous_and_buyers_cannot_create(client, buyer):
    for path, body in (("/builders", {"name": "X"}), ("/projects", PROJECT)):
        assert (await client.post(API + path, json=body)).status == 401
        assert (await client.post(API + path, json=body, headers=buyer.headers)).status == 403


async def test_builder_profiles(client, make_user, builder, staff):
    # One profile per user; the owner is always the caller.
    response = await client.post(f"{API}/builders", json={"name": "Again"},
                                 headers=builder.headers)
    assert response.status == 409
    newcomer = await make_user("builder")
    assert (await client.get(f"{API}/builders/me", headers=newcomer.headers)).status == 404
    # A project needs a builder profile first.
    assert (await client.post(f"{API}/projects", json=PROJECT,
                              headers=newcomer.headers)).status == 409
    response = await client.post(f"{API}/builders", json={"name": "Newcomer Homes",
                                                          "owner_user_id": str(staff.id)},
                                 headers=newcomer.headers)
    assert response.status == 403
    response = await client.post(f"{API}/builders", json={
        "name": "Newcomer Homes", "rera_promoter_id": "PRM/KA/RERA/1251/309",
        "website": "https://newcomer.example", "verified": True}, headers=newcomer.headers)
    assert response.status == 422  # verified is not settable
    response = await client.post(f"{API}/builders", json={
        "name": "Newcomer Homes", "rera_promoter_id": "PRM/KA/RERA/1251/309",
        "website": "https://newcomer.example"}, headers=newcomer.headers)
    assert response.status == 201
    created = await response.json()
    assert created["verified"] is True  # it follows the owner's (verified) KYC, not the body
    assert (await client.get(f"{API}/builders/{created['id']}")).status == 200
    response = await client.patch(f"{API}/builders/me", json={"description": "Since 1999",
                                                              "website": ""},
                                  headers=newcomer.headers)
    body = await response.json()
    assert (body["description"], body["website"]) == ("Since 1999", None)
    # Another builder cannot edit it; staff can; staff may create an unowned builder.
    response = await client.patch(f"{API}/builders/{created['id']}", json={"name": "Mine"},
                                  headers=builder.headers)
    assert response.status == 403
    response = await client.patch(f"{API}/builders/{created['id']}", json={"name": "Renamed"},
                                  headers=staff.headers)
    assert response.status == 200 and (await response.json())["name"] == "Renamed"
    response = await client.post(f"{API}/builders", json={"name": "Unclaimed Estates"},
                                 headers=staff.headers)
    assert response.status == 201


async def test_builder_cannot_touch_another_builders_projects(client, builder, other_builder,
                                                              make_project):
    draft = await make_project(builder)
    published = await make_project(builder, moderation="published")
    other = other_builder.headers
    for project, status in ((draft, 404), (published, 403)):
        pid = project["id"]
        tower = (await (await client.get(f"{API}/projects/{pid}/towers",
                                         headers=builder.headers)).json())[0]
        units = (await (await client.get(f"{API}/projects/{pid}/units",
                                         headers=builder.headers)).json())["items"]
        unit = units[0]
        # Reads: others' drafts do not exist; published ones are public.
        read_status = 404 if status == 404 else 200
        assert (await client.get(f"{API}/projects/{pid}", headers=other)).status == read_status
        assert (await client.get(f"{API}/projects/{pid}/towers",
                                 headers=other)).status == read_status
        assert (await client.get(f"{API}/units/{unit['id']}",
                                 headers=other)).status == read_status
        assert (await client.get(f"{API}/projects/{pid}/reviews", headers=other)).status == 404
        # Writes.
        calls = [
            client.patch(f"{API}/projects/{pid}", json={"description": "mine"}, headers=other),
            client.post(f"{API}/projects/{pid}/submit", headers=other),
            client.delete(f"{API}/projects/{pid}", headers=other),
            client.post(f"{API}/projects/{pid}/towers", json={"name": "Z", "floors": 3},
                        headers=other),
            client.patch(f"{API}/towers/{tower['id']}", json={"floors": 30}, headers=other),
            client.delete(f"{API}/towers/{tower['id']}", headers=other),
            client.post(f"{API}/towers/{tower['id']}/units", json=unit_body("Z-1"),
                        headers=other),
            client.patch(f"{API}/units/{unit['id']}", json={"price_minor": 1}, headers=other),
            client.patch(f"{API}/units/{unit['id']}/status", json={"status": "sold"},
                         headers=other),
            client.delete(f"{API}/units/{unit['id']}", headers=other),
            client.post(f"{API}/projects/{pid}/units/import", data="tower\n",
                        headers={**other, "Content-Type": "text/csv"}),
        ]
        for call in calls:
            response = await call
            assert response.status == status, (response.method, response.url,
                                               await response.text())
        # Nothing changed.
        again = await (await client.get(f"{API}/projects/{pid}",
                                        headers=builder.headers)).json()
        assert again["units_total"] == 2 and again["description"] == project["description"]


async def test_staff_and_admin_may_do_everything(client, builder, staff, admin, make_project):
    draft = await make_project(builder)
    pid = draft["id"]
    for user in (staff, admin):
        assert (await client.get(f"{API}/projects/{pid}", headers=user.headers)).status == 200
        response = await client.patch(f"{API}/projects/{pid}", json={"featured": True},
                                      headers=user.headers)
        assert response.status == 200
    # Builders cannot feature their own project.
    response = await client.patch(f"{API}/projects/{pid}", json={"featured": False},
                                  headers=builder.headers)
    assert response.status == 403
    # Staff create projects for a named builder.
    response = await client.post(f"{API}/projects", json={**PROJECT,
                                                          "builder_id": str(builder.builder_id)},
                                 headers=staff.headers)
    assert response.status == 201
    assert (await response.json())["builder"]["id"] == str(builder.builder_id)
    response = await client.post(f"{API}/projects", json=PROJECT, headers=staff.headers)
    assert response.status == 409  # staff must say for which builder


async def test_unauthenticated_writes_are_401(client, builder, make_project):
    project = await make_project(builder, moderation="published")
    pid = project["id"]
    for response in (await client.patch(f"{API}/projects/{pid}", json={}),
                     await client.post(f"{API}/projects/{pid}/submit"),
                     await client.delete(f"{API}/projects/{pid}"),
                     await client.post(f"{API}/projects/{pid}/publish"),
                     await client.get(f"{API}/builders/me/projects")):
        assert response.status == 401
    assert (await client.post(f"{API}/projects/{pid}/publish",
                              headers=builder.headers)).status == 403
    assert (await client.post(f"{API}/projects/{pid}/unpublish", json={"reason": "x"},
                              headers=builder.headers)).status == 403
