"""Bulk unit import from CSV: all rows or none, with a per-row report."""

from __future__ import annotations

import io

from propmubi_plugins.catalog.units.csv_import import COLUMNS, MAX_ROWS
from tests.plugins.catalog.conftest import API, outbox, unit_body

HEADER = ",".join(COLUMNS)
GOOD = [
    "A,A-301,2BHK,2,710,990,3,E,8200000000,INR,available",
    "A,A-302,3BHK,3,1120.5,,3,,12500000000,,",
    "B,B-101,1BHK,1,450,620,1,NW,4500000000,INR,sold",
]


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


async def _post(client, project, user, text, content_type="text/csv"):
    return await client.post(f"{API}/projects/{project['id']}/units/import", data=text,
                             headers={**user.headers, "Content-Type": content_type})


async def _units(services):
    return await services.db.fetchval("SELECT count(*) FROM catalog_units")


async def test_good_file_imports_everything_in_one_go(client, services, builder, make_project):
    project = await make_project(builder, towers={"A": 10, "B": 5}, units=[])
    response = await _post(client, project, builder, csv(*GOOD))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["imported"] == 3
    assert (body["project"]["units_total"], body["project"]["units_available"],
            body["project"]["price_min"], body["project"]["price_max"],
            body["project"]["bedrooms"]) == (3, 2, 8_200_000_000, 12_500_000_000, [2, 3])
    unit = await services.db.fetchrow(
        "SELECT super_area_sqft, facing, currency, status FROM catalog_units "
        "WHERE code = 'A-302'")
    assert (unit["super_area_sqft"], unit["facing"], unit["status"]) == (None, None,
                                                                         "available")
    assert (await outbox(services, "catalog.project_updated"))[-1]["fields"] == ["units"]
    # Importing again: every code exists now; nothing more is imported.
    response = await _post(client, project, builder, csv(*GOOD))
    assert response.status == 422
    errors = (await response.json())["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(1, "code"), (2, "code"), (3, "code")]
    assert await _units(services) == 3


async def test_bad_rows_are_reported_and_nothing_is_imported(client, services, builder,
                                                             make_project):
    project = await make_project(builder, towers={"A": 10}, units=[])
    text = csv(
        GOOD[0],
        "A,A-302,3BHK,three,1120,1000,3,E,-5,INR,available",   # bedrooms, super, price
        "Z,Z-1,2BHK,2,700,900,1,E,100,INR,available",           # unknown tower
        "A,A-303,2BHK,2,700,900,11,E,100,INR,available",        # floor beyond the tower
        "A,A-301,2BHK,2,700,900,1,E,100,INR,available",         # duplicate of row 1
        "A,,2BHK,2,700,900,1,E,100,USD,available",              # code, currency
        "A,A-304,2BHK",                                          # short row
        "A,A-305,2BHK,2,700,900,1,UP,100,INR,reserved",         # facing, status
    )
    response = await _post(client, project, builder, text)
    assert response.status == 422
    problem = await response.json()
    found = [(e["row"], e["column"]) for e in problem["errors"]]
    # Every problem of every row at once: a row's bad cell does not hide its cross-checks.
    assert sorted(found) == sorted([
        (2, "bedrooms"), (2, "price_minor"), (2, "super_area_sqft"), (3, "tower"),
        (4, "floor"), (5, "code"), (6, "code"), (6, "currency"), (7, ""), (8, "facing"),
        (8, "status")])
    lines = {e["row"]: e["line"] for e in problem["errors"]}
    assert lines[2] == 3
    assert "nothing was imported" in problem["detail"]
    assert await _units(services) == 0
    # Super area below carpet area is checked when the rest of the row is right, too.
    response = await _post(client, project, builder, csv(
        "A,A-302,3BHK,3,1120,1000,3,E,500,INR,available"))
    assert [(e["row"], e["column"]) for e in (await response.json())["errors"]] == [
        (1, "super_area_sqft")]


async def test_one_row_reports_all_its_problems_at_once(client, services, builder,
                                                        make_project):
    project = await make_project(builder, towers={"A": 10}, units=[("A", unit_body("A-1"))])
    # A bad cell, a floor above the tower, a super area below the carpet area, a code the
    # tower has, and another currency: one answer names them all.
    response = await _post(client, project, builder, csv(
        "A,A-1,2BHK,-2,700,600,14,E,100,USD,available"))
    assert response.status == 422
    errors = {e["column"]: e["message"] for e in (await response.json())["errors"]}
    assert set(errors) == {"bedrooms", "floor", "super_area_sqft", "code", "currency"}
    assert "10 floors" in errors["floor"] and "already has" in errors["code"]
    # An unknown tower and a control character in a cell are reported with the rest.
    response = await _post(client, project, builder, csv(
        "Q,Q\x07-1,2BHK,2,700,600,1,E,100,INR,available"))
    errors = {e["column"]: e["message"] for e in (await response.json())["errors"]}
    assert set(errors) == {"tower", "code", "super_area_sqft"}
    assert "U+0007" in errors["code"]
    assert await _units(services) == 1


async def test_file_shape_errors(client, services, builder, make_project):
    project = await make_project(builder, towers={"A": 10}, units=[])
    cases = [
        ("", "empty"),
        (csv(GOOD[0], header="tower,code,unit_type"), "missing columns"),
        (csv(GOOD[0] + ",x", header=HEADER + ",colour"), "unknown columns"),
        (HEADER + "\n", "no rows"),
        (HEADER + "\n\n\n", "no rows"),
    ]
    for text, message in cases:
        response = await _post(client, project, builder, text)
        assert response.status == 422, (text, await response.text())
        assert message in (await response.json())["errors"][0]["message"]
    response = await _post(client, project, builder, b"\xff\xfe" + b"x" * 10)
    assert response.status == 422
    response = await _post(client, project, builder, csv(*GOOD), content_type="application/json")
    assert response.status == 415
    # Header in another order, with a BOM and CRLF line ends: fine.
    reordered = ",".join(reversed(COLUMNS))
    rows = [",".join(reversed(GOOD[0].split(",")))]
    text = "\ufeff" + "\r\n".join([reordered, *rows]) + "\r\n"
    response = await _post(client, project, builder, text.encode())
    assert response.status == 201, await response.text()


async def test_size_caps(client, services, builder, make_project):
    project = await make_project(builder, towers={"A": 200}, units=[])
    rows = [f"A,A-{i},2BHK,2,700,900,1,E,100,INR,available" for i in range(MAX_ROWS + 1)]
    response = await _post(client, project, builder, csv(*rows))
    assert response.status == 422
    assert "at most" in (await response.json())["errors"][0]["message"]
    huge = csv(*[f"A,A-{i},2BHK,2,700,900,1,E,100,INR,available{' ' * 300}"
                 for i in range(4000)])
    assert len(huge) > 1_048_576
    response = await _post(client, project, builder, io.BytesIO(huge.encode()))
    assert response.status == 413
    assert await _units(services) == 0


async def test_each_row_lists_its_problems_with_its_row_number(client, services, builder,
                                                               make_project):
    project = await make_project(builder, towers={"A": 10}, units=[("A", unit_body("A-1"))])
    response = await _post(client, project, builder, csv(
        GOOD[0],
        # A floor above the tower, a code the tower has, a price out of range.
        "A,A-1,2BHK,2,700,900,14,E,-5,INR,available",
        GOOD[1],
        # A price that is no number, a duplicate of the first row, a floor above the tower.
        "A,A-301,2BHK,2,700,900,12,E,lots,INR,available",
    ))
    assert response.status == 422
    problem = await response.json()
    found = sorted((e["row"], e["line"], e["column"]) for e in problem["errors"])
    assert found == [(2, 3, "code"), (2, 3, "floor"), (2, 3, "price_minor"),
                     (4, 5, "code"), (4, 5, "floor"), (4, 5, "price_minor")]
    assert {e["field"] for e in problem["errors"] if e["row"] == 2} == {
        "rows[2].code", "rows[2].floor", "rows[2].price_minor"}
    assert problem["detail"].startswith("6 problems in 2 rows")
    assert await _units(services) == 1
