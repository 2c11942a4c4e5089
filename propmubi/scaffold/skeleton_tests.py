"""The tests of a new plugin, as :class:`string.Template` texts (placeholders as in
:mod:`propmubi.scaffold.skeleton`). They pass as written, against real PostgreSQL and Redis,
and show the fixtures a plugin's tests use."""

from __future__ import annotations

__all__ = ["TEST_FILES"]

PACKAGE = '''\
"""Tests of the ${name} plugin."""
'''

CONFTEST = '''\
"""Fixtures of the ${name} plugin's tests.

propmubi.testing's fixtures (``services``, ``client``, ``event_bus``, ``config_overrides``,
...) come from tests/conftest.py.

The plugin is loaded explicitly (``extra_plugins``), so these tests run before it is
installed as an entry point too, and it runs alone (``plugins.enabled``): other plugins'
settings or state cannot break its tests. API callers are signed in by propmubi.testing's
``StandInAuth`` (the ``X-Test-Roles`` header): the plugin relies on the core's ``roles=``
check, not on the auth plugin. A plugin that later ``requires`` others adds them to
``plugins.enabled`` below.
"""

from __future__ import annotations

from typing import Any

import pytest

import propmubi_plugins.${name}
from propmubi.services import Services
from propmubi.testing import ROLES_HEADER, StandInAuth
from propmubi_plugins.${name}.state import Ctx

#: Headers of a staff member's API request.
STAFF = {ROLES_HEADER: "staff"}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.${name}, StandInAuth()]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["${name}", "stand_in_auth"]}}


@pytest.fixture
def ctx(services: Services) -> Ctx:
    """The plugin's started context, for calling its service directly."""
    return services.context("${name}")
'''

TEST_ROUTES = '''\
"""The plugin's API through the whole application (every middleware, real services)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.plugins.${name}.conftest import STAFF

ITEMS = "/api/v1/${name}/items"


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
'''

TEST_SERVICE = '''\
"""The service called directly, as jobs, event handlers, the CLI and other plugins call it."""

from __future__ import annotations

from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.errors import Forbidden, ValidationFailed
from propmubi.types import Principal
from propmubi_plugins.${name} import api, seed, service
from propmubi_plugins.${name}.models import ItemIn

SYSTEM = Actor.system("test")


async def published(ctx: Any) -> list[dict[str, Any]]:
    """The committed item_created events (payload and actor), oldest first."""
    return await ctx.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position",
        ("${name}.item_created",))


async def test_creating_publishes_the_event_with_the_item(ctx):
    item = await service.create_item(ctx, SYSTEM, ItemIn(title="From a job"))
    assert item.created_by == "system:test"
    assert await published(ctx) == [
        {"payload": {"item_id": str(item.id), "title": "From a job"}, "actor": "system:test"}]
    assert await api.item(ctx.db, item.id) == item


async def test_a_rolled_back_transaction_leaves_no_item_and_no_event(ctx):
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with ctx.db.transaction() as tx:
            item = await service.create_item_in(ctx, tx, SYSTEM, ItemIn(title="Gone"))
            assert await api.item(tx, item.id) == item  # visible inside the transaction
            raise Abandoned
    assert await api.item(ctx.db, item.id) is None
    assert await published(ctx) == []


async def test_only_staff_create(ctx):
    buyer = Actor.user(Principal("00000000-0000-0000-0000-000000000002", ["buyer"]))
    with pytest.raises(Forbidden):
        await service.create_item(ctx, buyer, ItemIn(title="Mine"))
    assert await published(ctx) == []


async def test_a_foreign_cursor_is_refused(ctx):
    with pytest.raises(ValidationFailed):
        await service.list_items(ctx, None, "not-a-cursor", None)


async def test_seeding_twice_adds_nothing(ctx):
    await seed.seed(ctx, 0.05)
    first = await service.list_items(ctx, None, None, 100)
    await seed.seed(ctx, 0.05)
    again = await service.list_items(ctx, None, None, 100)
    assert len(first.items) == 5 and again.items == first.items
'''

TEST_EVENTS = '''\
"""The plugin's event handler, driven by the real bus (``event_bus.drain()`` relays and
handles every committed event now)."""

from __future__ import annotations

from propmubi.actors import Actor
from propmubi.events import Delivery, Envelope
from propmubi_plugins.${name} import handlers, service
from propmubi_plugins.${name}.events import ItemCreated
from propmubi_plugins.${name}.models import ItemIn


async def test_the_handler_records_a_line_per_item(ctx, event_bus):
    item = await service.create_item(ctx, Actor.system("test"), ItemIn(title="Seen"))
    assert await service.recent_activity(ctx, None, 10) == []  # the worker has not run yet
    await event_bus.drain()
    (line,) = await service.recent_activity(ctx, None, 10)
    assert (line.item_id, line.line) == (item.id, "created “Seen”")


async def test_a_redelivered_event_has_no_second_effect(ctx, services, event_bus):
    await service.create_item(ctx, Actor.system("test"), ItemIn(title="Once"))
    await event_bus.drain()
    stream = services.keys.event_stream("${name}")
    ((_, fields),) = await services.redis.xrange(stream)
    await services.redis.xadd(stream, fields)  # the same event again, as after a crash
    await event_bus.drain()
    assert len(await service.recent_activity(ctx, None, 10)) == 1


async def test_the_handler_itself_changes_nothing_the_second_time(ctx):
    item = await service.create_item(ctx, Actor.system("test"), ItemIn(title="Twice"))
    row = await ctx.db.fetchrow("SELECT * FROM core_outbox WHERE aggregate_id = %s",
                                (str(item.id),))
    delivery = Delivery(envelope=Envelope.from_row(row),
                        event=ItemCreated(item_id=item.id, title=item.title),
                        ctx=ctx, stream_id="0-1")
    async with ctx.db.transaction() as tx:
        for handler in handlers.subscriptions()["${name}.item_created"]:
            await handler(tx, delivery)
            await handler(tx, delivery)
    assert len(await service.recent_activity(ctx, None, 10)) == 1
'''

TEST_CONSOLE = '''\
"""The console page: a signed-in staff member lists items and creates one with the form.

Staff accounts and sign-in are the core console's own (propmubi.testing's helpers).
"""

from __future__ import annotations

from typing import Any

from propmubi.testing import csrf_of, make_staff, sign_in

PAGE = "/console/${name}/items"


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
    row = await services.db.fetchrow("SELECT created_by FROM ${name}_items")
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
        "SELECT count(*) FROM ${name}_items")
'''

#: (path under the repository, template text) of every test file of a new plugin.
TEST_FILES: tuple[tuple[str, str], ...] = (
    ("tests/plugins/${name}/__init__.py", PACKAGE),
    ("tests/plugins/${name}/conftest.py", CONFTEST),
    ("tests/plugins/${name}/test_routes.py", TEST_ROUTES),
    ("tests/plugins/${name}/test_service.py", TEST_SERVICE),
    ("tests/plugins/${name}/test_events.py", TEST_EVENTS),
    ("tests/plugins/${name}/test_console.py", TEST_CONSOLE),
)
