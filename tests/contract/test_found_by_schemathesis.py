"""What the contract run found, pinned one by one on the live server."""

from __future__ import annotations

import aiohttp
import pytest

from tests.contract.conftest import LiveServer

pytestmark = pytest.mark.slow


async def _call(server: LiveServer, method: str, path: str, json: object = None
                ) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession() as session, session.request(
            method, server.base_url + path, json=json, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_an_area_too_small_to_store_is_refused_not_a_server_error(live_server):
    # numeric(9,2) rounds 0.001 sq ft to 0.00, which the table's CHECK (> 0) refused: a 500.
    status, tower = await _call(live_server, "POST", f"/projects/{live_server.project_id}/towers",
                                {"name": "Tiny", "floors": 3})
    assert status == 201, tower
    unit = {"code": "T-1", "unit_type": "1BHK", "bedrooms": 1, "floor": 1,
            "price_minor": 100_000}
    status, problem = await _call(live_server, "POST", f"/towers/{tower['id']}/units",
                                  {**unit, "carpet_area_sqft": 0.001})
    assert status == 422, problem
    assert [e["field"] for e in problem["errors"]] == ["carpet_area_sqft"]
    status, created = await _call(live_server, "POST", f"/towers/{tower['id']}/units",
                                  {**unit, "carpet_area_sqft": 0.01})
    assert status == 201, created


async def test_an_integer_written_as_17_0_is_taken(live_server):
    # JSON Schema's "integer" includes 17.0; the server refused it (422) though documented.
    status, tower = await _call(live_server, "POST", f"/projects/{live_server.project_id}/towers",
                                {"name": "Whole", "floors": 17.0})
    assert status == 201, tower
    assert tower["floors"] == 17


async def test_a_project_is_read_by_id_or_slug_on_the_one_path_template(live_server):
    status, by_id = await _call(live_server, "GET", f"/projects/{live_server.project_id}")
    assert status == 200, by_id
    status, by_slug = await _call(live_server, "GET", f"/projects/{by_id['slug']}")
    assert (status, by_slug["id"]) == (200, by_id["id"])
    status, problem = await _call(live_server, "GET", "/projects/" + "x" * 201)
    assert status == 422 and problem["errors"][0]["field"] == "id", problem
