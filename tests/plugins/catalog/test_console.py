"""The catalogue's console pages: the moderation queue, preview, publish and reject; project
pages with their unit grid; photo gallery management; builders; the dashboard card."""

from __future__ import annotations

import re
import uuid
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from propmubi.actors import Actor
from propmubi.testing import csrf_of, make_staff
from propmubi.testing import sign_in as console_sign_in
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.catalog import console
from propmubi_plugins.catalog.media import service as media
from propmubi_plugins.catalog.media.models import PhotoUpload
from propmubi_plugins.catalog.models import REASON_MAX
from tests.plugins.catalog.conftest import outbox, unit_body
from tests.plugins.catalog.media_helpers import encode, gradient, media_settings

HTML = {"Accept": "text/html"}


@pytest.fixture
def config_overrides(tmp_path: Path) -> dict[str, dict[str, Any]]:
    # Known auth keys, no rate limits, and photos stored under this test's tmp_path.
    return media_settings(tmp_path)


async def signed_in(client: Any, services: Any) -> uuid.UUID:
    """Sign a staff member in to the console; their staff id."""
    staff = await make_staff(services)
    response = await console_sign_in(client)
    assert response.status == 303
    return uuid.UUID(str(staff.id))


async def page(client: Any, path: str, status: int = 200) -> str:
    response = await client.get(path)
    body = await response.text()
    assert response.status == status, body
    return body


def queue_names(body: str) -> list[str]:
    return re.findall(r'<a href="/console/moderation/[0-9a-f-]+">([^<]+)</a>', body)


async def moderation(services: Any, project_id: uuid.UUID) -> tuple[str, str | None]:
    row = await services.db.fetchrow(
        "SELECT moderation, rejection_reason FROM catalog_projects WHERE id = %s", (project_id,))
    return row["moderation"], row["rejection_reason"]


async def test_queue_lists_projects_in_review_oldest_first(client, services, builder,
                                                           make_project):
    await make_project(builder, name="Draft Towers")
    first = await make_project(builder, moderation="in_review", name="First Heights")
    second = await make_project(builder, moderation="in_review", name="Second Park")
    await make_project(builder, moderation="published", name="Live Residency")
    await make_project(builder, moderation="rejected", name="Rejected Vista")
    await signed_in(client, services)
    body = await page(client, "/console/moderation")
    assert queue_names(body) == ["First Heights", "Second Park"]
    assert 'data-count="2"' in body and "Skyline Developers" in body
    assert f'href="/console/moderation/{first["id"]}"' in body
    assert f'href="/console/moderation/{second["id"]}"' in body
    # Navigation and a mangled page link.
    assert 'href="/console/moderation"' in body and ">Moderation<" in body
    assert (await client.get("/console/moderation", params={"cursor": "junk"})).status == 400


async def test_queue_pages_do_not_overlap(client, services, builder, make_project):
    for n in range(console.PAGE_SIZE + 2):
        await make_project(builder, moderation="in_review", towers={}, name=f"Project {n:02d}")
    await signed_in(client, services)
    first = await page(client, "/console/moderation")
    link = re.search(r'rel="next" href="([^"]+)"', first)
    assert link
    second = await page(client, unescape(link.group(1)))
    assert queue_names(first) == [f"Project {n:02d}" for n in range(console.PAGE_SIZE)]
    assert queue_names(second) == [f"Project {n:02d}" for n in range(console.PAGE_SIZE,
                                                                       console.PAGE_SIZE + 2)]


async def test_preview_shows_the_public_view_and_publish_publishes(client, services, builder,
                                                                   make_project):
    project = await make_project(builder, moderation="in_review")
    staff_id = await signed_in(client, services)
    body = await page(client, f"/console/moderation/{project['id']}")
    for text in ("Green Meadows", "Skyline Developers", "Baner, Pune", "Survey 12, Baner Road",
                 "18.559000, 73.786000", "https://www.openstreetmap.org/?mlat=18.559000",
                 "P52100012345", "Under construction", "gym, swimming pool",
                 "2 and 3 BHK homes", "₹85 L \N{EN DASH} ₹90 L",
                 "2 \N{MULTIPLICATION SIGN} 2BHK", "submitted"):
        assert text in body, text
    assert 'data-review="submitted"' in body
    response = await client.post(f"/console/moderation/{project['id']}/publish",
                                 data={"csrf_token": csrf_of(body)}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/console/projects/{project['id']}"
    assert await moderation(services, project["id"]) == ("published", None)
    events = await outbox(services, "catalog.project_published")
    assert [e["project_id"] for e in events] == [str(project["id"])]
    assert events[0]["_actor"] == f"staff:{staff_id}"
    after = await page(client, response.headers["Location"])
    assert "Project published." in after and 'data-moderation>Published<' in after
    # Publishing again is a conflict: a flash, no second event.
    response = await client.post(f"/console/moderation/{project['id']}/publish",
                                 data={"csrf_token": csrf_of(after)}, allow_redirects=False)
    assert response.status == 303
    again = await page(client, response.headers["Location"])
    assert "Nothing changed: cannot publish a project that is published" in again
    assert len(await outbox(services, "catalog.project_published")) == 1
    # The history names who did each step: the builder's user and the staff member.
    steps = re.findall(r'data-review="([a-z_]+)".*?<span data-actor>([^<]*)</span>', again, re.S)
    phone = await services.db.fetchval("SELECT phone FROM auth_users WHERE id = %s",
                                       (builder.id,))
    assert steps[-2:] in (
        [("submitted", phone), ("published", "Sam Staff")],
        [("published", "Sam Staff"), ("submitted", phone)]), steps
    assert f"staff:{staff_id}" not in again and f"user:{builder.id}" not in again
    assert await page(client, "/console/moderation")
    assert queue_names(await page(client, "/console/moderation")) == []


async def test_reject_needs_a_reason(client, services, builder, make_project):
    project = await make_project(builder, moderation="in_review")
    await signed_in(client, services)
    path = f"/console/moderation/{project['id']}"
    body = await page(client, path)
    before = await services.db.fetchval(
        "SELECT count(*) FROM catalog_project_reviews WHERE project_id = %s", (project["id"],))
    response = await client.post(path + "/reject", data={"csrf_token": csrf_of(body),
                                                          "reason": "   "})
    assert response.status == 422
    text = await response.text()
    assert "Give the reason for the rejection" in text and 'aria-invalid="true"' in text
    # The message is next to the field it is about.
    assert re.search(r'name="reason"[^>]*aria-describedby="reason-error"[^>]*>[^<]*</textarea>'
                     r'</p>\s*<p class="field-error" id="reason-error">Give the reason', text)
    assert await moderation(services, project["id"]) == ("in_review", None)
    assert await services.db.fetchval(
        "SELECT count(*) FROM catalog_project_reviews WHERE project_id = %s",
        (project["id"],)) == before
    # Too long: refused the same way, the typed text kept for correction.
    long_reason = "x" * (REASON_MAX + 1)
    response = await client.post(path + "/reject", data={"csrf_token": csrf_of(body),
                                                          "reason": long_reason})
    assert response.status == 422
    text = await response.text()
    assert (f'id="reason-error">At most {REASON_MAX} characters '
            f"(got {REASON_MAX + 1}).") in text
    assert long_reason in text
    assert await moderation(services, project["id"]) == ("in_review", None)
    assert all(e["moderation"] != "rejected"
               for e in await outbox(services, "catalog.project_updated"))
    response = await client.post(path + "/reject", allow_redirects=False, data={
        "csrf_token": csrf_of(body), "reason": "The RERA number does not match the site."})
    assert response.status == 303 and response.headers["Location"] == path
    assert await moderation(services, project["id"]) == (
        "rejected", "The RERA number does not match the site.")
    review = await services.db.fetchrow(
        "SELECT action, reason FROM catalog_project_reviews WHERE project_id = %s "
        "ORDER BY id DESC LIMIT 1", (project["id"],))
    assert review == {"action": "rejected", "reason": "The RERA number does not match the site."}
    after = await page(client, path)
    assert "Project rejected." in after and "not waiting for review" in after
    assert 'data-review="rejected"' in after


async def test_posts_need_the_csrf_token_and_pages_a_signed_in_staff(client, services, builder,
                                                                     make_project):
    project = await make_project(builder, moderation="in_review")
    for path in ("/console/moderation", f"/console/moderation/{project['id']}",
                 f"/console/projects/{project['id']}", "/console/builders",
                 f"/console/builders/{builder.builder_id}"):
        response = await client.get(path, headers=HTML, allow_redirects=False)
        assert response.status == 401, path  # the sign-in form, returning to the page
        assert f'name="next" value="{path}"' in await response.text()
    await signed_in(client, services)
    for action, data in (("publish", {}), ("reject", {"reason": "no"})):
        response = await client.post(f"/console/moderation/{project['id']}/{action}",
                                     data=data, allow_redirects=False)
        assert response.status == 403
    assert await moderation(services, project["id"]) == ("in_review", None)
    assert await outbox(services, "catalog.project_published") == []
    assert (await client.get("/console/projects/not-a-uuid")).status == 404
    assert (await client.get(f"/console/moderation/{uuid.uuid4()}")).status == 404


def grid_rows(body: str, tower: str) -> list[tuple[int, int, list[tuple[str, str]]]]:
    """``[(top floor, bottom floor, [(code, status), ...]), ...]`` of one tower's unit grid as
    its rows read, top first (a run of empty floors is one row)."""
    table = re.search(rf'<table class="unit-grid" data-tower="{tower}".*?</table>', body, re.S)
    assert table, body
    rows = []
    for top, low, cells in re.findall(
            r'<tr data-floor="(-?\d+)"(?: data-low="(-?\d+)")?>(.*?)</tr>', table.group(0), re.S):
        rows.append((int(top), int(low or top),
                     re.findall(r'data-unit="([^"]+)" data-status="([a-z]+)"', cells)))
    return rows


def grid(body: str, tower: str) -> dict[int, list[tuple[str, str]]]:
    """``{floor: [(code, status), ...]}`` of one tower's unit grid, top floor first."""
    return {floor: units for top, low, units in grid_rows(body, tower)
            for floor in range(top, low - 1, -1)}


async def test_unit_grid_shows_each_floor_top_first_with_statuses(client, services, builder,
                                                                  make_project):
    units = [("A", unit_body("A-101", floor=1)),
             ("A", unit_body("A-102", floor=1, status="held")),
             ("A", unit_body("A-301", floor=3, status="sold", unit_type="3BHK", bedrooms=3,
                             price_minor=1_25_00_000_00)),
             ("A", unit_body("A-G01", floor=0, status="blocked")),
             ("B", unit_body("B-201", floor=2, status="booked"))]
    project = await make_project(builder, towers={"A": 3, "B": 2}, units=units)
    await signed_in(client, services)
    body = await page(client, f"/console/projects/{project['id']}")
    tower_a = grid(body, "A")
    assert list(tower_a) == [3, 2, 1, 0]
    assert tower_a == {3: [("A-301", "sold")], 2: [], 1: [("A-101", "available"),
                                                          ("A-102", "held")],
                       0: [("A-G01", "blocked")]}
    assert grid(body, "B") == {2: [("B-201", "booked")], 1: []}
    # Not colour alone: each cell says its status in words; the legend names every colour.
    cell = re.search(r'data-unit="A-301".*?</li>', body, re.S).group(0)
    assert "A-301" in cell and "3BHK" in cell and "₹1.25 Cr" in cell and ">Sold<" in cell
    for status in ("available", "held", "booked", "sold", "blocked"):
        assert f'data-legend="{status}"' in body
    assert "Ground" in body and "Floor 3" in body
    assert re.search(r"data-count-held>1<", body)
    # Draft projects have pages too (any moderation state).
    assert 'data-moderation>Draft<' in body


async def test_unit_grid_collapses_runs_of_empty_floors(client, services, builder,
                                                         make_project):
    units = [("Tower A", unit_body("A-2001", floor=20)), ("Tower A", unit_body("A-1001", floor=10)),
             ("Tower A", unit_body("A-101", floor=1))]
    project = await make_project(builder, towers={"Tower A": 20, "B": 1}, units=units)
    await signed_in(client, services)
    body = await page(client, f"/console/projects/{project['id']}")
    assert grid_rows(body, "Tower A") == [
        (20, 20, [("A-2001", "available")]), (19, 11, []), (10, 10, [("A-1001", "available")]),
        (9, 2, []), (1, 1, [("A-101", "available")])]
    assert "Floors 19\N{EN DASH}11" in body and "Floors 9\N{EN DASH}2" in body
    # A tower named "Tower A" is not headed "Tower Tower A"; one named "B" is "Tower B".
    assert ">Tower A · 20 floors" in body and "Tower Tower" not in body
    assert ">Tower B · 1 floor · 0 units<" in body


async def test_builders_list_search_and_detail(client, services, builder, other_builder,
                                               make_project):
    await make_project(builder, moderation="published", name="Live One")
    await make_project(builder, moderation="in_review", name="Waiting One")
    await make_project(builder, name="Draft One")
    async with services.db.transaction() as tx:
        await tx.execute("UPDATE catalog_builders SET verified = true, "
                         "rera_promoter_id = 'PRM-123' WHERE id = %s", (builder.builder_id,))
    await signed_in(client, services)
    body = await page(client, "/console/builders")
    names = re.findall(r'<a href="/console/builders/[0-9a-f-]+">([^<]+)</a>', body)
    assert names == ["Harbour Homes", "Skyline Developers"]
    row = re.search(r"<tr>(?:(?!</tr>).)*Skyline Developers.*?</tr>", body, re.S).group(0)
    assert "PRM-123" in row and "verified" in row
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "1", "1", "0"]
    for query, expected in (("sky", ["Skyline Developers"]), ("HARB", ["Harbour Homes"]),
                            ("%", []), ("developers", [])):
        listed = await page(client, f"/console/builders?q={query.replace('%', '%25')}")
        assert re.findall(r'<a href="/console/builders/[0-9a-f-]+">([^<]+)</a>',
                          listed) == expected, query
    detail = await page(client, f"/console/builders/{builder.builder_id}")
    assert f'href="/console/users/{builder.id}"' in detail
    assert "PRM-123" in detail and "data-verified>yes<" in detail
    states = dict(re.findall(r'>([A-Za-z ]+ One)</a></td>.*?data-moderation="([a-z_]+)"',
                             detail, re.S))
    assert states == {"Live One": "published", "Waiting One": "in_review",
                      "Draft One": "draft"}
    assert (await client.get(f"/console/builders/{uuid.uuid4()}")).status == 404


def png(shade: int = 0) -> bytes:
    return encode(gradient((40 + shade, 30)), "PNG")


async def alt_texts(services: Any, project_id: uuid.UUID) -> list[str]:
    rows = await media.gallery(services.context("catalog"), Actor.system("test"),
                               project_id=project_id)
    assert [r["position"] for r in rows] == list(range(len(rows)))
    return [r["alt_text"] for r in rows]


def photo_form_error(body: str, photo_id: Any, field: str) -> str | None:
    """The message shown next to ``field`` in the form of one photo (None: no message)."""
    item = re.search(rf'<li data-photo="{photo_id}".*?</li>', body, re.S)
    assert item, body
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', item.group(0))
    return found.group(1) if found else None


async def test_gallery_alt_text_place_delete_and_upload(client, services, builder,
                                                        make_project):
    project = await make_project(builder)
    ctx = client.app[SERVICES].context("catalog")
    actor = Actor.user(Principal(subject=str(builder.id), roles=frozenset({"builder"})))
    access = await media.manage_access(ctx, actor, project_id=project["id"])
    photos = [await media.upload(ctx, actor, access, PhotoUpload(data=png(n), alt_text=alt))
              for n, alt in enumerate(("Lobby", "Pool", "Garden"))]
    await signed_in(client, services)
    path = f"/console/projects/{project['id']}"
    body = await page(client, path)
    assert re.findall(r'<img src="[^"]+" alt="([^"]+)"', body) == ["Lobby", "Pool", "Garden"]
    token = csrf_of(body)

    response = await client.post(f"{path}/photos/{photos[1]['id']}", allow_redirects=False,
                                 data={"csrf_token": token, "alt_text": "Rooftop pool at dusk",
                                       "position": "1"})
    assert response.status == 303 and response.headers["Location"] == path + "#photos"
    assert await alt_texts(services, project["id"]) == ["Rooftop pool at dusk", "Lobby",
                                                        "Garden"]
    assert "Photo updated." in await page(client, path)
    # A blank alternative text is refused (422) with the message next to its field; nothing
    # changes (test_a_refused_photo_form_changes_nothing has the details).
    response = await client.post(f"{path}/photos/{photos[0]['id']}",
                                 data={"csrf_token": token, "alt_text": "  "})
    assert response.status == 422
    assert photo_form_error(await response.text(), photos[0]["id"], "alt_text") == (
        "required: describe the photo for people who cannot see it")
    assert await alt_texts(services, project["id"]) == ["Rooftop pool at dusk", "Lobby",
                                                        "Garden"]
    response = await client.post(f"{path}/photos/{photos[0]['id']}/delete",
                                 data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert await alt_texts(services, project["id"]) == ["Rooftop pool at dusk", "Garden"]
    assert "Photo deleted." in await page(client, path)
    # Without the token: 403, nothing deleted.
    response = await client.post(f"{path}/photos/{photos[2]['id']}/delete",
                                 allow_redirects=False)
    assert response.status == 403
    assert len(await alt_texts(services, project["id"])) == 2

    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", png(9), filename="front.png", content_type="image/png")
    form.add_field("alt_text", "Front elevation")
    form.add_field("position", "1")
    response = await client.post(f"{path}/photos", data=form, allow_redirects=False)
    assert response.status == 303
    assert await alt_texts(services, project["id"]) == ["Front elevation",
                                                        "Rooftop pool at dusk", "Garden"]
    assert "Photo uploaded." in await page(client, path)
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", b"not an image", filename="x.png", content_type="image/png")
    form.add_field("alt_text", "Broken")
    response = await client.post(f"{path}/photos", data=form)
    assert "Not uploaded" in await response.text()
    assert len(await alt_texts(services, project["id"])) == 3
    # A photo of another project is not this page's.
    other = await make_project(builder)
    response = await client.post(f"/console/projects/{other['id']}/photos/{photos[2]['id']}",
                                 data={"csrf_token": token, "alt_text": "x"})
    assert response.status == 404


async def _gallery_page(client: Any, services: Any, builder: Any, make_project: Any
                        ) -> tuple[dict[str, Any], list[dict[str, Any]], str, str]:
    """A project with two photos, a signed-in staff member on its page: the project, the
    photos, the page's path and its CSRF token."""
    project = await make_project(builder)
    ctx = services.context("catalog")
    actor = Actor.user(Principal(subject=str(builder.id), roles=frozenset({"builder"})))
    access = await media.manage_access(ctx, actor, project_id=project["id"])
    photos = [await media.upload(ctx, actor, access, PhotoUpload(data=png(n), alt_text=alt))
              for n, alt in enumerate(("Lobby", "Pool"))]
    await signed_in(client, services)
    path = f"/console/projects/{project['id']}"
    return project, photos, path, csrf_of(await page(client, path))


async def test_a_refused_photo_form_changes_nothing(client, services, builder, make_project):
    project, photos, path, token = await _gallery_page(client, services, builder,
                                                       make_project)
    rows_before = await services.db.fetch(
        "SELECT id, alt_text, position, updated_at FROM catalog_media WHERE project_id = %s "
        "ORDER BY id", (project["id"],))
    events_before = await outbox(services, "catalog.project_updated")
    for data, field, message in (
            ({"alt_text": "  "}, "alt_text",
             "required: describe the photo for people who cannot see it"),
            ({}, "alt_text", "required: describe the photo for people who cannot see it"),
            ({"alt_text": "x" * 301}, "alt_text", "at most 300 characters, got 301"),
            ({"alt_text": "Lobby at night", "position": "0"}, "position",
             "a number from 1 to 100"),
            ({"alt_text": "Lobby at night", "position": "first"}, "position",
             "expected an integer, got string")):
        response = await client.post(f"{path}/photos/{photos[0]['id']}",
                                     data={"csrf_token": token, **data}, allow_redirects=False)
        assert response.status == 422, data
        text = await response.text()
        # The message is shown by the field of the photo whose form was posted, only there.
        assert photo_form_error(text, photos[0]["id"], field) == message, data
        assert photo_form_error(text, photos[1]["id"], field) is None
        other = "position" if field == "alt_text" else "alt_text"
        assert photo_form_error(text, photos[0]["id"], other) is None
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true" '
                         rf'aria-describedby="{field}-error"', text)
    assert await services.db.fetch(
        "SELECT id, alt_text, position, updated_at FROM catalog_media WHERE project_id = %s "
        "ORDER BY id", (project["id"],)) == rows_before
    assert await outbox(services, "catalog.project_updated") == events_before
    # The same form, valid: saved and redirected as before.
    response = await client.post(f"{path}/photos/{photos[0]['id']}", allow_redirects=False,
                                 data={"csrf_token": token, "alt_text": "Lobby at night",
                                       "position": "2"})
    assert response.status == 303 and response.headers["Location"] == path + "#photos"
    assert await alt_texts(services, project["id"]) == ["Pool", "Lobby at night"]


async def test_a_refused_upload_form_stores_nothing(client, services, builder, make_project,
                                                   tmp_path):
    project, _, path, token = await _gallery_page(client, services, builder, make_project)
    files_before = sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())
    events_before = await outbox(services, "catalog.project_updated")
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", png(11), filename="side.png", content_type="image/png")
    form.add_field("alt_text", "   ")
    form.add_field("position", "200")
    response = await client.post(f"{path}/photos", data=form, allow_redirects=False)
    assert response.status == 422
    upload_form = re.search(r'<form[^>]*action="[^"]*/photos" enctype.*?</form>',
                            await response.text(), re.S)
    assert upload_form
    assert ('<p class="field-error" id="alt_text-error">required: describe the photo for '
            'people who cannot see it</p>') in upload_form.group(0)
    assert ('<p class="field-error" id="position-error">a number from 1 to 100</p>'
            in upload_form.group(0))
    # No file at all: the message is by the file field.
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("alt_text", "Side elevation")
    response = await client.post(f"{path}/photos", data=form, allow_redirects=False)
    assert response.status == 422
    assert ('<p class="field-error" id="file-error">choose a photo to upload</p>'
            in await response.text())
    assert await alt_texts(services, project["id"]) == ["Lobby", "Pool"]
    assert sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file()) == files_before
    assert await outbox(services, "catalog.project_updated") == events_before


async def test_dashboard_card_counts_projects_waiting(client, services, builder, make_project):
    await make_project(builder, moderation="in_review", towers={})
    await make_project(builder, moderation="in_review", towers={})
    await make_project(builder, moderation="published", towers={})
    await services.db.execute("UPDATE catalog_projects SET submitted_at = now() - "
                              "interval '2 days 3 hours' WHERE moderation = 'in_review'")
    await signed_in(client, services)
    body = await page(client, "/console/")
    card = re.search(r"data-widget=.catalog-review.*?</section>", body, re.S)
    assert card, body
    assert re.search(r"data-count>2<", card.group(0))
    assert "data-oldest>2 d 3 h<" in card.group(0)
    assert 'href="/console/moderation"' in card.group(0)


def test_money_formats_lakh_crore_and_other_currencies():
    assert console.money(85_00_000_00) == "₹85 L"
    assert console.money(1_25_00_000_00) == "₹1.25 Cr"
    assert console.money(12_50_000_00, "INR") == "₹12.5 L"
    assert console.money(99_999_00) == "₹99,999"
    assert console.money(1_250_000, "USD") == "12,500.00 USD"
    assert console.money(None) == "—"
