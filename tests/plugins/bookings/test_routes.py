"""The plugin's API through the whole application (every middleware, real services)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.plugins.bookings.conftest import STAFF

ITEMS = "/api/v1/bookings/items"


async def create(client: Any, title: str, note: str = "") -> dict[str, Any]:
    response = await client.post(ITEMS, json={"title": title, "note": note}, headers=STAFF)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_staff_create_and_anyone_reads(client):
    item = await create(client, "First", "a note")
    assert item["title"] == "First" and item["note"] == "a note"
    assert item["created_by"].startswith("user:")
    response = await client.get(f"{ITEMS}/{item['id']}")
    assert response.status == 200
    assert await response.json() == item


async def test_the_list_is_newest_first_a_page_at_a_time(client):
    ids = [(await create(client, f"Item {n}"))["id"] for n in range(3)]
    first = await (await client.get(ITEMS, params={"limit": "2"})).json()
    assert [i["id"] for i in first["items"]] == [ids[2], ids[1]]
    assert first["next_cursor"]
    response = await client.get(ITEMS, params={"limit": "2", "cursor": first["next_cursor"]})
    second = await response.json()
    assert [i["id"] for i in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_an_unknown_item_is_a_404_problem(client):
    response = await client.get(f"{ITEMS}/{uuid.uuid4()}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_bad_input_is_a_422_naming_every_field(client):
    response = await client.post(ITEMS, json={"title": " ", "note": "x" * 2001},
                                 headers=STAFF)
    assert response.status == 422
    problem = await response.json()
    assert {(e["field"], e["message"]) for e in problem["errors"]} == {
        ("title", "Give the item a title."), ("note", "At most 2000 characters (got 2001).")}
    response = await client.get(ITEMS, params={"limit": "0"})
    assert response.status == 422


async def test_creating_needs_a_staff_token(client):
    response = await client.post(ITEMS, json={"title": "Nope"})
    assert response.status == 401
    response = await client.post(ITEMS, json={"title": "Nope"},
                                 headers={"X-Test-Roles": "buyer"})
    assert response.status == 403
    assert (await (await client.get(ITEMS)).json())["items"] == []
