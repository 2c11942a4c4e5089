"""The catalogue's moderation in a real headless browser: staff open the queue, preview a
project, publish it and read its unit grid. Saves docs/screenshots/console-moderation-queue.png
and docs/screenshots/console-project-units.png."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from propmubi.actors import Actor
from propmubi.config import Config
from propmubi.ids import uuid7
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet
from propmubi_plugins.catalog import models, service
from propmubi_plugins.catalog.media import service as media
from propmubi_plugins.catalog.media.models import PhotoUpload
from propmubi_plugins.catalog.units import models as units_models
from propmubi_plugins.catalog.units import service as units_service
from tests.browser.conftest import Console
from tests.browser.test_console_browser import sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATUSES = ("available", "available", "held", "booked", "sold", "available", "blocked")


@pytest.fixture
def config_overrides(tmp_path: Path) -> dict[str, dict[str, Any]]:
    # Photos of this test under its own folder, for the served app and the test alike.
    return {"storage": {"local_dir": str(tmp_path / "media")}}


def photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 400), colour).save(out, "JPEG", quality=80)
    return out.getvalue()


async def projects(services: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """Two projects in review (built through the service, as the API does); the first has
    two towers of units in every status and two photos."""
    staff = Actor.staff(uuid7())
    ctx = services.context("catalog")
    builder = await service.create_builder(ctx, staff, models.BuilderIn(
        name="Skyline Developers", rera_promoter_id="PRM-PUNE-0042"))
    ids = []
    for name, locality in (("Green Meadows", "Baner"), ("Riverside Greens", "Kharadi")):
        project = await service.create_project(ctx, staff, models.ProjectIn(
            name=name, city="Pune", locality=locality, address=f"Survey 12, {locality} Road",
            lat=18.559, lng=73.786, rera_number="P52100012345", status="under_construction",
            possession_date=dt.date(2028, 6, 30), amenities=["gym", "swimming_pool", "lift"],
            description="2 and 3 BHK homes near the hills.", builder_id=builder["id"]))
        ids.append(project["id"])
    first = ids[0]
    n = 0
    for tower_name, floors in (("A", 5), ("B", 3)):
        tower = await units_service.create_tower(
            ctx, staff, first, units_models.TowerIn(name=tower_name, floors=floors))
        for floor in range(floors, 0, -1):
            for door in (1, 2, 3):
                bedrooms = 3 if door == 3 else 2
                await units_service.create_unit(ctx, staff, tower["id"], units_models.UnitIn(
                    code=f"{tower_name}-{floor}0{door}", unit_type=f"{bedrooms}BHK",
                    bedrooms=bedrooms, carpet_area_sqft=650 + 150 * bedrooms, floor=floor,
                    price_minor=(70 + 5 * floor + 30 * (bedrooms - 2)) * 1_00_000_00,
                    status=STATUSES[n % len(STATUSES)]))
                n += 1
    access = await media.manage_access(ctx, staff, project_id=first)
    for colour, alt in (((46, 125, 50), "Landscaped garden"), ((30, 79, 216), "Pool deck")):
        await media.upload(ctx, staff, access, PhotoUpload(data=photo(colour), alt_text=alt))
    for project_id in ids:
        await service.submit_project(ctx, staff, project_id)
    return ids[0], ids[1]


async def test_staff_preview_publish_and_read_the_unit_grid(
        page: Any, console: Console, migrated: Config, plugins: PluginSet, screenshots: Path):
    async with open_services(migrated, plugins) as services:
        first, second = await projects(services)

    await page.goto(console.at("/console/moderation"))
    await sign_in(page, console, console.staff)
    assert page.url == console.at("/console/moderation")
    assert await page.inner_text("h1") == "Moderation"
    rows = await page.locator("main table tbody tr").all_inner_texts()
    assert [r.split("\t")[0].strip() for r in rows] == ["Green Meadows", "Riverside Greens"]
    await page.screenshot(path=screenshots / "console-moderation-queue.png", full_page=True)

    async with page.expect_navigation():
        await page.click("text=Green Meadows")
    assert page.url == console.at(f"/console/moderation/{first}")
    main = await page.inner_text("main")
    assert "Skyline Developers" in main and "OpenStreetMap" in main
    assert "₹75 L" in main  # the cheapest unit for sale: a 2BHK on floor 1
    assert await page.locator("img[alt='Pool deck']").count() == 1
    # Reject without a reason: the browser's own check keeps the form from posting.
    await page.click("button:has-text('Reject')")
    assert page.url == console.at(f"/console/moderation/{first}")
    async with page.expect_navigation():
        await page.click("button:has-text('Publish')")
    assert page.url == console.at(f"/console/projects/{first}")
    assert await page.inner_text("p.flash") == "Project published."
    assert await page.inner_text("[data-moderation]") == "Published"

    grid = page.locator("table.unit-grid[data-tower='A']")
    floors = await grid.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.floor)")
    assert floors == ["5", "4", "3", "2", "1"]
    cell = grid.locator("li[data-unit='A-503']")
    assert await cell.get_attribute("data-status") == "held"
    assert "Held" in await cell.text_content()
    await page.locator("#units-heading").scroll_into_view_if_needed()
    await page.screenshot(path=screenshots / "console-project-units.png", full_page=True)

    await page.goto(console.at("/console/moderation"))
    rows = await page.locator("main table tbody tr").all_inner_texts()
    assert [r.split("\t")[0].strip() for r in rows] == ["Riverside Greens"]
    assert str(second) in await page.locator("main table a").first.get_attribute("href")
