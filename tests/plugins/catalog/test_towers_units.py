"""Towers and units: validation against the tower and project, derived project columns after
every unit change, price and status events."""

from __future__ import annotations

import pytest

from tests.plugins.catalog.conftest import API, outbox, unit_body


async def _tower(client, project, user):
    towers = await (await client.get(f"{API}/projects/{project['id']}/towers",
                                     headers=user.headers)).json()
    return towers[0]


async def _project(client, project, user):
    return await (await client.get(f"{API}/projects/{project['id']}",
                                   headers=user.headers)).json()


async def test_derived_columns_follow_every_unit_change(client, services, builder,
                                                        make_project):
    project = await make_project(builder, units=[])
    assert (project["price_min"], project["units_total"], list(project["bedrooms"])) == (
        None, 0, [])
    tower = await _tower(client, project, builder)
    made = []
    for code, bedrooms, price, status in (("A-101", 2, 80_00_000_00, "available"),
                                          ("A-102", 3, 1_20_00_000_00, "available"),
                                          ("A-103", 4, 2_00_00_000_00, "sold")):
        response = await client.post(f"{API}/towers/{tower['id']}/units", json=unit_body(
            code, bedrooms=bedrooms, price_minor=price, status=status,
            carpet_area_sqft=500 + bedrooms * 100, super_area_sqft=None),
            headers=builder.headers)
        assert response.status == 201, await response.text()
        made.append(await response.json())
    current = await _project(client, project, builder)
    # The sold unit counts in the total, not in the price range or bedrooms.
    assert (current["price_min"], current["price_max"], current["bedrooms"],
            current["units_total"], current["units_available"]) == (
        80_00_000_00, 1_20_00_000_00, [2, 3], 3, 2)

    response = await client.patch(f"{API}/units/{made[0]['id']}/status",
                                  json={"status": "held"}, headers=builder.headers)
    assert response.status == 200
    response = await client.patch(f"{API}/units/{made[1]['id']}",
                                  json={"price_minor": 1_10_00_000_00},
                                  headers=builder.headers)
    assert response.status == 200
    current = await _project(client, project, builder)
    assert (current["price_max"], current["units_available"]) == (1_10_00_000_00, 1)

    assert (await client.delete(f"{API}/units/{made[0]['id']}",
                                headers=builder.headers)).status == 204
    current = await _project(client, project, builder)
    assert (current["price_min"], current["bedrooms"], current["units_total"]) == (
        1_10_00_000_00, [3], 2)

    statuses = await outbox(services, "catalog.unit_status_changed")
    assert statuses == [{"project_id": str(project["id"]), "unit_id": made[0]["id"],
                         "old_status": "available", "new_status": "held",
                         "_actor": f"user:{builder.id}"}]
    prices = await outbox(services, "catalog.price_changed")
    assert prices == [{"project_id": str(project["id"]), "unit_id": made[1]["id"],
                       "old_price_minor": 1_20_00_000_00, "new_price_minor": 1_10_00_000_00,
                       "currency": "INR", "_actor": f"user:{builder.id}"}]

    # Deleting the tower takes its units; the project follows.
    assert (await client.delete(f"{API}/towers/{tower['id']}",
                                headers=builder.headers)).status == 204
    current = await _project(client, project, builder)
    assert (current["price_min"], current["units_total"]) == (None, 0)

    # One event per deletion, naming every unit that went (the media consumer needs them).
    deleted = await outbox(services, "catalog.units_deleted")
    actor = f"user:{builder.id}"
    assert deleted[0] == {"project_id": str(project["id"]), "unit_ids": [made[0]["id"]],
                          "tower_id": None, "_actor": actor}
    assert deleted[1].pop("unit_ids") in ([made[1]["id"], made[2]["id"]],
                                          [made[2]["id"], made[1]["id"]])
    assert deleted[1:] == [{"project_id": str(project["id"]), "tower_id": tower["id"],
                            "_actor": actor}]

    # An empty tower's deletion deletes no unit and says nothing of units.
    response = await client.post(f"{API}/projects/{project['id']}/towers",
                                 json={"name": "B", "floors": 4}, headers=builder.headers)
    assert response.status == 201, await response.text()
    empty = await response.json()
    assert (await client.delete(f"{API}/towers/{empty['id']}",
                                headers=builder.headers)).status == 204
    assert len(await outbox(services, "catalog.units_deleted")) == 2


@pytest.mark.parametrize(("changes", "field"), [
    ({"floor": 11}, "floor"), ({"floor": -6}, "floor"), ({"price_minor": -5}, "price_minor"),
    ({"price_minor": 0}, "price_minor"), ({"price_minor": 1.5}, "price_minor"),
    ({"super_area_sqft": 500}, "super_area_sqft"), ({"carpet_area_sqft": 0}, "carpet_area_sqft"),
    ({"bedrooms": 21}, "bedrooms"), ({"facing": "up"}, "facing"), ({"status": "gone"}, "status"),
    ({"currency": "USD"}, "currency"), ({"currency": "inr"}, "currency"), ({"code": ""}, "code"),
    ({"unit_type": None}, "unit_type"),
])
async def test_bad_units_are_422_and_write_nothing(client, services, builder, make_project,
                                                   changes, field):
    project = await make_project(builder, units=[])
    tower = await _tower(client, project, builder)
    response = await client.post(f"{API}/towers/{tower['id']}/units",
                                 json=unit_body(**changes), headers=builder.headers)
    assert response.status == 422, await response.text()
    assert field in {e["field"] for e in (await response.json())["errors"]}
    assert await services.db.fetchval("SELECT count(*) FROM catalog_units") == 0


async def test_unit_patch_rules(client, services, builder, make_project):
    project = await make_project(builder)
    units = (await (await client.get(f"{API}/projects/{project['id']}/units",
                                     headers=builder.headers)).json())["items"]
    unit = units[0]
    for body, field in (({"super_area_sqft": 100}, "super_area_sqft"),
                        ({"floor": 99}, "floor")):
        response = await client.patch(f"{API}/units/{unit['id']}", json=body,
                                      headers=builder.headers)
        assert response.status == 422
        assert [e["field"] for e in (await response.json())["errors"]] == [field]
    # A code already used in the tower is a conflict.
    response = await client.patch(f"{API}/units/{unit['id']}", json={"code": units[1]["code"]},
                                  headers=builder.headers)
    assert response.status == 409
    response = await client.post(f"{API}/towers/{unit['tower_id']}/units",
                                 json=unit_body(units[1]["code"]), headers=builder.headers)
    assert response.status == 409
    # Several changes at once: each event once.
    response = await client.patch(f"{API}/units/{unit['id']}", json={
        "price_minor": 99_00_000_00, "status": "booked", "facing": "N"},
        headers=builder.headers)
    assert response.status == 200
    body = await response.json()
    assert (body["price_minor"], body["status"], body["facing"]) == (99_00_000_00, "booked", "N")
    assert len(await outbox(services, "catalog.price_changed")) == 1
    assert len(await outbox(services, "catalog.unit_status_changed")) == 1


async def test_towers(client, builder, make_project):
    project = await make_project(builder)
    pid = project["id"]
    response = await client.post(f"{API}/projects/{pid}/towers", json={"name": "A", "floors": 5},
                                 headers=builder.headers)
    assert response.status == 409
    for body, field in (({"name": "B", "floors": 0}, "floors"),
                        ({"name": "B", "floors": 201}, "floors"), ({"floors": 3}, "name")):
        response = await client.post(f"{API}/projects/{pid}/towers", json=body,
                                     headers=builder.headers)
        assert response.status == 422
        assert field in {e["field"] for e in (await response.json())["errors"]}
    tower = await _tower(client, project, builder)
    assert tower["units"] == 2
    # Not below a floor that has units (A-201 is on floor 2).
    response = await client.patch(f"{API}/towers/{tower['id']}", json={"floors": 1},
                                  headers=builder.headers)
    assert response.status == 422
    response = await client.patch(f"{API}/towers/{tower['id']}", json={"floors": 2,
                                                                       "name": "Tower A"},
                                  headers=builder.headers)
    assert response.status == 200
    assert (await response.json())["name"] == "Tower A"


async def test_unit_list_pages_and_public_visibility(client, builder, make_project):
    units = [("A", unit_body(f"A-{i}")) for i in range(5)]
    project = await make_project(builder, moderation="published", units=units)
    seen, cursor = [], None
    while True:
        url = f"{API}/projects/{project['id']}/units?limit=2" + (
            f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url)).json()
        seen += [u["code"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"A-{i}" for i in range(5)] and len(seen) == 5
    sold = await (await client.get(f"{API}/projects/{project['id']}/units?status=sold")).json()
    assert sold["items"] == []


async def _errors(response) -> dict[str, str]:
    assert response.status == 422, await response.text()
    problem = await response.json()
    fields = [e["field"] for e in problem["errors"]]
    assert len(fields) == len(set(fields)), fields  # each problem once
    assert {e["in"] for e in problem["errors"]} == {"body"}
    return {e["field"]: e["message"] for e in problem["errors"]}


async def _unit_rows(services, project):
    return await services.db.fetch(
        "SELECT code, floor, price_minor, super_area_sqft, bedrooms FROM catalog_units "
        "WHERE project_id = %s ORDER BY code", (project["id"],))


async def test_a_new_unit_reports_every_problem_at_once(client, services, builder,
                                                        make_project):
    project = await make_project(builder, units=[("A", unit_body("A-101"))])
    tower = await _tower(client, project, builder)
    before = await _unit_rows(services, project)
    url = f"{API}/towers/{tower['id']}/units"
    # A floor above the 10-floor tower, a code the tower has, a price out of range: the body's
    # own problem does not hide those found against the tower and its units.
    response = await client.post(url, json=unit_body("A-101", floor=14, price_minor=-5),
                                 headers=builder.headers)
    errors = await _errors(response)
    assert set(errors) == {"floor", "code", "price_minor"}
    assert "10 floors" in errors["floor"] and "already has a unit 'A-101'" in errors["code"]
    # Type errors too, with a currency that is not the project's and a super area below the
    # carpet area (both valid on their own), and an unknown field.
    response = await client.post(url, json=unit_body(
        " A-101 ", floor=11, price_minor="lots", bedrooms=[2], currency="USD",
        carpet_area_sqft=700, super_area_sqft=650, colour="blue"), headers=builder.headers)
    errors = await _errors(response)
    assert set(errors) == {"floor", "code", "price_minor", "bedrooms", "currency",
                           "super_area_sqft", "colour"}
    assert "prices are in INR" in errors["currency"]
    # The fields' own problems only, when the others are right (a bad floor is not also
    # compared with the tower).
    response = await client.post(url, json=unit_body("A-102", floor=500, bedrooms=-1),
                                 headers=builder.headers)
    assert set(await _errors(response)) == {"floor", "bedrooms"}
    assert await _unit_rows(services, project) == before  # nothing written
    # A code in use is a conflict when nothing else is wrong; the right unit goes in.
    response = await client.post(url, json=unit_body("A-101"), headers=builder.headers)
    assert response.status == 409
    assert (await response.json())["field"] == "code"
    response = await client.post(url, json=unit_body("A-102"), headers=builder.headers)
    assert response.status == 201, await response.text()


async def test_a_unit_change_reports_every_problem_at_once(client, services, builder,
                                                           make_project):
    project = await make_project(builder)  # A-101 (floor 1) and A-201 (floor 2), tower of 10
    units = (await (await client.get(f"{API}/projects/{project['id']}/units",
                                     headers=builder.headers)).json())["items"]
    unit, other = units
    before = await _unit_rows(services, project)
    url = f"{API}/units/{unit['id']}"
    response = await client.patch(url, json={
        "floor": 99, "price_minor": 0, "code": other["code"], "super_area_sqft": 100},
        headers=builder.headers)
    errors = await _errors(response)
    assert set(errors) == {"floor", "price_minor", "code", "super_area_sqft"}
    assert "10 floors" in errors["floor"] and "carpet area" in errors["super_area_sqft"]
    response = await client.patch(url, json={"bedrooms": "two", "floor": 11, "facing": "up"},
                                  headers=builder.headers)
    assert set(await _errors(response)) == {"bedrooms", "floor", "facing"}
    # A carpet area the body gets wrong is not compared with the super area.
    response = await client.patch(url, json={"carpet_area_sqft": -1,
                                             "super_area_sqft": 800}, headers=builder.headers)
    assert set(await _errors(response)) == {"carpet_area_sqft"}
    assert await _unit_rows(services, project) == before  # nothing written
    # Its own code is no conflict; another's alone is.
    response = await client.patch(url, json={"code": unit["code"], "bedrooms": 3},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()
    response = await client.patch(url, json={"code": other["code"]}, headers=builder.headers)
    assert response.status == 409


async def test_a_tower_write_reports_every_problem_at_once(client, services, builder,
                                                           make_project):
    project = await make_project(builder, towers={"A": 10, "B": 5})  # units on A's floor 2
    url = f"{API}/projects/{project['id']}/towers"
    response = await client.post(url, json={"name": "A", "floors": 0}, headers=builder.headers)
    errors = await _errors(response)
    assert set(errors) == {"name", "floors"} and "already has a tower" in errors["name"]
    towers = {t["name"]: t for t in await (await client.get(
        url, headers=builder.headers)).json()}
    tower_url = f"{API}/towers/{towers['A']['id']}"
    response = await client.patch(tower_url, json={"name": "B", "floors": 1},
                                  headers=builder.headers)
    errors = await _errors(response)
    assert set(errors) == {"name", "floors"} and "on floor 2" in errors["floors"]
    response = await client.patch(tower_url, json={"name": " ", "floors": 1},
                                  headers=builder.headers)
    assert set(await _errors(response)) == {"name", "floors"}
    rows = await services.db.fetch("SELECT name, floors FROM catalog_towers "
                                   "WHERE project_id = %s ORDER BY name", (project["id"],))
    assert [(r["name"], r["floors"]) for r in rows] == [("A", 10), ("B", 5)]
    # Its own name is no conflict.
    response = await client.patch(tower_url, json={"name": "A", "floors": 3},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()
