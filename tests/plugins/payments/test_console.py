"""The console page: a signed-in staff member lists items and creates one with the form.

Staff accounts and sign-in are the core console's own (propmubi.testing's helpers).
"""

from __future__ import annotations

from typing import Any

from propmubi.testing import csrf_of, make_staff, sign_in

PAGE = "/console/payments/items"


async def open_page(client: Any, services: Any) -> str:
    """Sign a staff member in, open the page; its form's CSRF token."""
    await make_staff(services)
    assert (await sign_in(client)).status == 303
    response = await client.get(PAGE)
    body = await response.text()
    assert response.status == 200, body
    assert f'href="{PAGE}"' in body  # the menu entry
    return csrf_of(body)


async def test_staff_create_an_item_with_the_form(client, services):
    token = await open_page(client, services)
    response = await client.post(PAGE, allow_redirects=False, data={
        "csrf_token": token, "title": "From the console", "note": "typed by hand"})
    assert response.status == 303
    assert response.headers["Location"] == PAGE
    body = await (await client.get(PAGE)).text()
    assert "Created “From the console”." in body
    assert "<td>From the console</td>" in body and "<td>typed by hand</td>" in body
    row = await services.db.fetchrow("SELECT created_by FROM payments_items")
    assert row["created_by"].startswith("staff:")


async def test_an_empty_title_is_refused_next_to_the_field(client, services):
    token = await open_page(client, services)
    response = await client.post(PAGE, data={"csrf_token": token, "title": "  ",
                                             "note": "kept"})
    assert response.status == 422
    body = await response.text()
    assert '<p class="field-error" id="title-error">Give the item a title.</p>' in body
    assert ">kept</textarea>" in body  # what was typed is not lost
    assert not await services.db.fetchval(
        "SELECT count(*) FROM payments_items")
