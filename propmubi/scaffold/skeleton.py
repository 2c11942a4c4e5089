"""The files of a new plugin, as :class:`string.Template` texts (``${name}`` is the plugin's
name, ``${Name}`` its class-name form, ``${NAME}`` its environment-variable form, ``${title}``
its human form). Each file's docstring says what belongs in it: the skeleton is the guide's
examples, runnable. Keep it in step with docs/plugins.md.
"""

from __future__ import annotations

__all__ = ["PLUGIN_FILES"]

INIT = '''\
"""The ${name} plugin: titled items, their API, console page and event.

This file is the plugin's face: hook implementations only, each with a one-line docstring
that says what it contributes. The work lives in the modules named in docs/plugins.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.${name} import console, events, handlers, routes, seed, state
from propmubi_plugins.${name}.settings import ${Name}Settings
from propmubi_plugins.${name}.state import Ctx


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; it requires no other plugin."""
    return PluginInfo(name="${name}", version="0.1.0",
                      description="${title} items")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.${name}]``: the page size of its lists."""
    return ${Name}Settings


@hookimpl
def propmubi_migrations() -> Path:
    """The plugin's tables: its items, and the activity log."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """``/${name}/items``: list and read (anyone), create (staff)."""
    return routes.routes


@hookimpl
def propmubi_event_types() -> list[type]:
    """``${name}.item_created``."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``${name}.item_created``: add the item's line to the activity log."""
    return handlers.subscriptions()


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """The items page (list, create form, activity) and its menu entry."""
    return console.pages()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/${name}/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """Build this process's state (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: Ctx) -> Any:
    """Release it (``state.stop``)."""
    return functools.partial(state.stop, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo items, created through the service (safe to run twice)."""
    return seed.seed(ctx, scale)
'''

SETTINGS = '''\
"""The plugin's settings: its ``[plugins.${name}]`` table.

One attrs class, every field with a default. The core reads the table (propmubi.toml,
credential files, variables ``PROPMUBI_PLUGINS__${NAME}__<KEY>``),
structures it into this class once at start, and hands the result to every part of the
plugin as ``ctx.settings``. A bad value stops the process with a message naming the key
(``plugins.${name}.<key>``). Mark secrets with ``metadata={"secret": True}``
so that ``propmubi config`` hides them.
"""

from __future__ import annotations

import attrs
from attrs import validators as v


@attrs.frozen
class ${Name}Settings:
    """How the ${name} plugin behaves."""

    #: Items per page when a caller asks for no particular number.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
'''

STATE = '''\
"""The plugin's per-process state, and ``Ctx``: the typed context every module annotates.

``propmubi_startup`` hands ``start`` to the core, which stores its result as ``ctx.state``
for the life of the process (web, worker, scheduler or a CLI command) and calls ``stop`` at
the end. Keep here what a process opens once and shares between requests: clients, pools,
semaphores, a provider picked by a setting (``ctx.provider(...)``). Never in module globals:
two applications in one process (the tests) would share it.
"""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi.context import PluginContext
from propmubi_plugins.${name}.settings import ${Name}Settings


@attrs.define(eq=False)
class ${Name}State:
    """What one process of the plugin holds.

    :ivar started_at: when this process started the plugin (the console page shows it).
    """

    started_at: dt.datetime


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[${Name}Settings, ${Name}State]


async def start(ctx: Ctx) -> ${Name}State:
    """Build this process's state (there is nothing to open yet)."""
    return ${Name}State(started_at=ctx.clock.now())


async def stop(ctx: Ctx) -> None:
    """Release what :func:`start` opened (nothing yet)."""
'''

MODELS = '''\
"""The attrs classes of the plugin's API and console: validated inputs, queries, answers.

An input class checks every field where it enters (a route's body or query, a console form
read with ``read_form``, a CLI command), so the service never sees a bad value; the messages
are written for whoever typed the value, and every bad field is reported at once. Output
classes are what the API returns (and what the OpenAPI document describes).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

#: Longest title and note.
TITLE_MAX = 200
NOTE_MAX = 2000


def _title(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError("Give the item a title.")
    if len(value) > TITLE_MAX:
        raise ValueError(f"At most {TITLE_MAX} characters (got {len(value)}).")


def _note(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if len(value) > NOTE_MAX:
        raise ValueError(f"At most {NOTE_MAX} characters (got {len(value)}).")


@attrs.frozen
class ItemIn:
    """A new item: the POST body, and the console's create form."""

    # An empty text box is an absent field: the default lets the validator say what is wrong.
    title: str = attrs.field(default="", validator=_title,
                             metadata={"description": "What the item is called."})
    note: str = attrs.field(default="", validator=_note)


@attrs.frozen
class ItemOut:
    """An item as the API shows it."""

    id: uuid.UUID
    title: str
    note: str
    #: Who created it: ``user:<id>``, ``staff:<id>`` or ``system:<part>``.
    created_by: str
    created_at: dt.datetime


@attrs.frozen
class ItemPage:
    """A page of items, newest first; ``next_cursor`` asks for the next one."""

    items: list[ItemOut]
    next_cursor: str | None


@attrs.frozen
class ListQuery:
    """Keyset pagination: pass a page's ``next_cursor`` as ``cursor`` for the next page."""

    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class ItemId:
    """The ``{item_id}`` of a path."""

    item_id: uuid.UUID


@attrs.frozen
class ActivityLine:
    """One line of the activity log that the event handler keeps."""

    item_id: uuid.UUID
    line: str
    recorded_at: dt.datetime
'''

EVENTS = '''\
"""The events the plugin publishes: its part of the event catalog (``propmubi events catalog``).

Each is a frozen attrs class declared with ``@event("<plugin>.<past_tense>", version=...,
aggregate=...)`` and registered through ``propmubi_event_types``. An event says what happened,
with the ids and the few facts subscribers need; publish it with ``ctx.publish(tx, event,
actor=actor.ref)`` inside the transaction that made the change, so it exists if and only if
the change committed. Bump ``version`` when a field changes meaning.
"""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("${name}.item_created", version=1, aggregate="item_id")
@attrs.frozen
class ItemCreated:
    """An item was created."""

    item_id: uuid.UUID
    title: str


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (ItemCreated,)
'''

HANDLERS = '''\
"""What the plugin does when events arrive (``propmubi_event_handlers``).

A handler is ``async def handler(tx, delivery)``. The worker runs it inside the transaction
that also marks the event processed for this plugin, so its writes and that mark commit
together; if it raises, nothing commits and the event is retried later. The bus skips an
event already processed, but delivery is at least once: write each effect so that a second
run changes nothing (here, the activity line's key is the event's id). ``delivery.event`` is
the typed event, ``delivery.ctx`` this plugin's context.

Subscribe to another plugin's events by their type name alone (never import its modules);
a type may map to several handlers, which run in order in the one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.${name} import store

Handler = Callable[[Tx, Delivery], Awaitable[None]]


async def record_activity(tx: Tx, delivery: Delivery) -> None:
    """Add the "created" line of the item to the activity log, once per event."""
    created = delivery.event
    await store.add_activity(tx, delivery.id, created.item_id, f"created “{created.title}”")


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"${name}.item_created": [record_activity]}
'''

SERVICE = '''\
"""The plugin's operations: what the API, the console, jobs, CLI commands and other plugins
(through api.py) do. The rules live here, not in the routes.

Every public function has the one signature ``verb(ctx, actor, <ids...>, <input>)``: the
context first, then who acts (a :class:`propmubi.actors.Actor`: ``Actor.user(principal)`` in
the API, ``Actor.staff(...)`` in the console, ``Actor.system("part")`` for jobs and handlers;
None only for an anonymous read), then ids, then a validated input from models.py. It opens
its own transaction. A variant that joins its caller's transaction takes ``(ctx, tx, actor,
...)`` and is named ``..._in``. Events are published with ``ctx.publish`` in the transaction
of the change; SQL is in store.py.
"""

from __future__ import annotations

import uuid

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.ids import uuid7
from propmubi_plugins.${name} import store
from propmubi_plugins.${name}.events import ItemCreated
from propmubi_plugins.${name}.models import ActivityLine, ItemIn, ItemOut, ItemPage
from propmubi_plugins.${name}.state import Ctx

__all__ = ["create_item", "create_item_in", "get_item", "list_items", "recent_activity"]


async def create_item(ctx: Ctx, actor: Actor, data: ItemIn) -> ItemOut:
    """Create an item; its event is published when it commits.

    :raises Forbidden: the actor is neither staff nor the system.
    """
    async with ctx.db.transaction() as tx:
        return await create_item_in(ctx, tx, actor, data)


async def create_item_in(ctx: Ctx, tx: Tx, actor: Actor, data: ItemIn) -> ItemOut:
    """:func:`create_item` in the caller's transaction: the item and its event commit, or
    roll back, with the caller's other changes."""
    if not actor.is_staff:
        raise Forbidden("only staff create items")
    row = await store.insert_item(tx, uuid7(), data.title, data.note, actor.ref,
                                  ctx.clock.now())
    item = ItemOut(**row)
    await ctx.publish(tx, ItemCreated(item_id=item.id, title=item.title), actor=actor.ref)
    return item


async def get_item(ctx: Ctx, actor: Actor | None, item_id: uuid.UUID) -> ItemOut:
    """One item (anyone may read items).

    :raises NotFound: there is no such item.
    """
    row = await store.item(ctx.db, item_id)
    if row is None:
        raise NotFound(f"no item {item_id}")
    return ItemOut(**row)


async def list_items(ctx: Ctx, actor: Actor | None, cursor: str | None,
                     limit: int | None) -> ItemPage:
    """A page of items, newest first (anyone may read items).

    :param cursor: the previous page's ``next_cursor``; None for the first page.
    :param limit: items per page; None for ``plugins.${name}.page_size``.
    :raises ValidationFailed: the cursor is not one this list handed out (422 naming
        ``cursor``).
    """
    after = None
    if cursor is not None:
        try:
            after = cursors.unpack_position(cursor)
        except ValueError:
            raise ValidationFailed([FieldError(
                "query", "cursor", "not a cursor from this list; start from the first page")]
            ) from None
    size = limit or ctx.settings.page_size
    rows = await store.page(ctx.db, after, size + 1)  # one more tells whether a page follows
    items = [ItemOut(**row) for row in rows[:size]]
    more = len(rows) > size
    return ItemPage(items=items, next_cursor=cursors.pack_position(
        items[-1].created_at, items[-1].id) if more else None)


async def recent_activity(ctx: Ctx, actor: Actor | None, limit: int) -> list[ActivityLine]:
    """The newest lines of the activity log (kept by the event handler)."""
    return [ActivityLine(**row) for row in await store.activity(ctx.db, limit)]
'''

STORE = '''\
"""The plugin's SQL and nothing else: plain parameterised statements (``%s`` placeholders,
never text pasted into SQL), each function taking the database or a transaction first and
returning rows as dicts. No rules and no events here; those are service.py's.

Tables, indexes and Redis keys carry the plugin's name (``ctx.keys(...)`` for Redis), and a
plugin reads only its own tables: another plugin's data comes through that plugin's api.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx


async def insert_item(tx: Tx, item_id: uuid.UUID, title: str, note: str, created_by: str,
                      created_at: dt.datetime) -> dict[str, Any]:
    """Insert an item; the new row."""
    rows = await tx.fetch(
        "INSERT INTO ${name}_items"
        " (id, title, note, created_by, created_at) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id, title, note, created_by, created_at",
        (item_id, title, note, created_by, created_at))
    return rows[0]


async def item(q: Queries, item_id: uuid.UUID) -> dict[str, Any] | None:
    """One item, or None."""
    return await q.fetchrow(
        "SELECT id, title, note, created_by, created_at"
        " FROM ${name}_items WHERE id = %s", (item_id,))


async def page(q: Queries, after: tuple[dt.datetime, uuid.UUID] | None,
               limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` items older than the position ``after``, newest first (the index
    on ``(created_at DESC, id DESC)`` serves every page alike)."""
    if after is None:
        return await q.fetch(
            "SELECT id, title, note, created_by, created_at"
            " FROM ${name}_items"
            " ORDER BY created_at DESC, id DESC LIMIT %s", (limit,))
    return await q.fetch(
        "SELECT id, title, note, created_by, created_at"
        " FROM ${name}_items WHERE (created_at, id) < (%s, %s)"
        " ORDER BY created_at DESC, id DESC LIMIT %s", (*after, limit))


async def titles_among(q: Queries, titles: list[str]) -> set[str]:
    """Which of ``titles`` some item already has."""
    rows = await q.fetch(
        "SELECT title FROM ${name}_items WHERE title = ANY(%s)", (titles,))
    return {row["title"] for row in rows}


async def add_activity(tx: Tx, event_id: uuid.UUID, item_id: uuid.UUID, line: str) -> bool:
    """Record the line of an event; False (and nothing written) when it is already there."""
    added = await tx.fetchval(
        "INSERT INTO ${name}_activity (event_id, item_id, line)"
        " VALUES (%s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING true",
        (event_id, item_id, line))
    return bool(added)


async def activity(q: Queries, limit: int) -> list[dict[str, Any]]:
    """The newest activity lines."""
    return await q.fetch(
        "SELECT item_id, line, recorded_at"
        " FROM ${name}_activity"
        " ORDER BY recorded_at DESC, event_id DESC LIMIT %s", (limit,))
'''

ROUTES = '''\
"""The plugin's JSON API, mounted under ``/api/v1`` (``propmubi_api_routes``).

Handlers are thin: they get their declared ``params`` / ``query`` / ``body`` already
structured and validated (bad input never reaches them: the core answers 422 problem+json
listing every bad field) and the plugin's context when they name a ``ctx`` parameter; they
call the service with the caller as an Actor and return attrs objects. ``roles=`` answers
401 / 403 before any input is read; ``rate_limit=`` gives a route its own limit. Errors are
raised as :mod:`propmubi.errors` (``NotFound`` is a 404 problem+json).
"""

from __future__ import annotations

from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.${name} import service
from propmubi_plugins.${name}.models import ItemId, ItemIn, ItemOut, ItemPage, ListQuery
from propmubi_plugins.${name}.state import Ctx

routes = Routes(tags=["${name}"])


def _caller(request: web.Request) -> Actor | None:
    """The signed-in caller as an Actor; None for an anonymous one."""
    principal = request.get(PRINCIPAL)
    return Actor.user(principal) if principal is not None else None


@routes.get("/${name}/items", query=ListQuery, response=ItemPage,
            errors=[422])
async def list_items(request: web.Request, ctx: Ctx, query: ListQuery) -> ItemPage:
    """Items, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return await service.list_items(ctx, _caller(request), query.cursor, query.limit)


@routes.get("/${name}/items/{item_id}", params=ItemId,
            response=ItemOut, errors=[404])
async def get_item(request: web.Request, ctx: Ctx, params: ItemId) -> ItemOut:
    """One item."""
    return await service.get_item(ctx, _caller(request), params.item_id)


@routes.post("/${name}/items", body=ItemIn, response=ItemOut,
             status=201, roles=["staff"], rate_limit="30/minute")
async def create_item(request: web.Request, ctx: Ctx, body: ItemIn) -> ItemOut:
    """Create an item (staff); publishes its ``item_created`` event."""
    return await service.create_item(ctx, Actor.user(request[PRINCIPAL]), body)
'''

CONSOLE = '''\
"""The plugin's staff console pages (``propmubi_console_pages``), mounted under ``/console``.

The console shell signs staff in and checks each page's role and every form's CSRF token;
a page handler receives the plugin's context when it names ``ctx``. Forms are plain HTML
posts that work without JavaScript: read one with ``read_form`` into a models.py class; on
errors render the page again with status 422 and ``errors`` (the template puts each message
next to its field) and what was typed; on success flash a message and redirect
(POST-redirect-GET). Changes go through the service as ``Actor.staff(...)``, so the console
keeps the API's rules and publishes the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from propmubi.actors import Actor
from propmubi.console.forms import FormErrors, read_form
from propmubi.console.pages import flash, render, see_other, staff_id
from propmubi.types import ConsolePage
from propmubi.web.appkeys import CONSOLE_PREFIX, CONSOLE_USER
from propmubi_plugins.${name} import service
from propmubi_plugins.${name}.models import ItemIn
from propmubi_plugins.${name}.state import Ctx

#: The page's path (ConsolePage paths are mounted under /console), and its address.
PATH = "/${name}/items"
PAGE = CONSOLE_PREFIX + PATH
#: Activity lines shown under the list.
ACTIVITY_SHOWN = 10


def _staff(request: web.Request) -> Actor:
    """The signed-in staff member, as the service's actor."""
    return Actor.staff(staff_id(request), request[CONSOLE_USER].get("roles", ("staff",)))


async def items_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Items, newest first, with the create form and the activity log."""
    return await _render(request, ctx)


async def create_item(request: web.Request, ctx: Ctx) -> web.Response:
    """The create form: a new item, or the page again with the refused fields (422)."""
    form, errors = await read_form(request, ItemIn)
    if form is None:
        return await _render(request, ctx, typed=await request.post(), errors=errors,
                             status=422)
    item = await service.create_item(ctx, _staff(request), form)
    flash(request, f"Created “{item.title}”.", "success")
    return see_other(PAGE)


async def _render(request: web.Request, ctx: Ctx, *, typed: Mapping[str, Any] | None = None,
                  errors: FormErrors | None = None, status: int = 200) -> web.Response:
    actor = _staff(request)
    page = await service.list_items(ctx, actor, request.query.get("cursor"), None)
    return render("${name}/items.html", request, {
        "page_url": PAGE, "items": page.items, "next_cursor": page.next_cursor,
        "activity": await service.recent_activity(ctx, actor, ACTIVITY_SHOWN),
        "typed": typed or {}, "errors": errors or FormErrors(),
        "started_at": ctx.state.started_at,
    }, status=status)


def pages() -> list[ConsolePage]:
    """The items page and its form's target; the page has a menu entry."""
    return [
        ConsolePage(path=PATH, handler=items_page, name="${name}-items",
                    nav_label="${title}"),
        ConsolePage(path=PATH, handler=create_item, name="${name}-create",
                    method="POST"),
    ]
'''

SEED = '''\
"""Demo data for ``propmubi dev`` and ``propmubi seed``: reproducible, and safe to run twice.

Demo rows are made through the service, as the system, so they obey the rules and publish
their events like any other; a second run finds them by their titles and adds nothing.
``scale`` 1.0 is the full demo size; ``propmubi dev`` seeds a small fraction.
"""

from __future__ import annotations

from propmubi.actors import Actor
from propmubi_plugins.${name} import service, store
from propmubi_plugins.${name}.models import ItemIn
from propmubi_plugins.${name}.state import Ctx

#: Demo items at scale 1.0.
FULL_SIZE = 100


async def seed(ctx: Ctx, scale: float) -> None:
    """Create the demo items that do not exist yet."""
    titles = [f"Demo item {n}" for n in range(1, max(1, round(FULL_SIZE * scale)) + 1)]
    existing = await store.titles_among(ctx.db, titles)
    actor = Actor.system("seed")
    for title in titles:
        if title not in existing:
            await service.create_item(ctx, actor, ItemIn(title=title, note="A demo item."))
'''

API = '''\
"""What other plugins may ask this plugin: typed queries, run in the caller's database or
transaction.

Only a plugin whose ``PluginInfo.requires`` names this one may import this module, and no
other module of this plugin: pyproject.toml's import-linter independence contract allows
exactly the imports listed in its ``ignore_imports``, one line per importing module
(``"propmubi_plugins.<other>.service -> propmubi_plugins.<this>.api"``), and
tests/core/test_import_contracts.py checks each against ``requires``. Other plugins depend
on what is here: change it as carefully as an API.
"""

from __future__ import annotations

import uuid

from propmubi.db import Database, Tx
from propmubi_plugins.${name} import store
from propmubi_plugins.${name}.models import ItemOut

__all__ = ["ItemOut", "item"]


async def item(q: Database | Tx, item_id: uuid.UUID) -> ItemOut | None:
    """One item by id, or None."""
    row = await store.item(q, item_id)
    return ItemOut(**row) if row is not None else None
'''

MIGRATION_UP = '''\
-- The ${name} plugin's first schema. Names of tables and indexes start with the plugin's
-- name. Once applied anywhere this file never changes: add 0002_<what>.sql (and its
-- .down.sql) instead. Nothing migrates by itself: `propmubi migrate up` applies it.
CREATE TABLE ${name}_items (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL,
    note        text        NOT NULL DEFAULT '',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL
);
-- The list reads newest first, one keyset page at a time.
CREATE INDEX ${name}_items_created_idx ON ${name}_items (created_at DESC, id DESC);

-- The event handler's effect: one line per handled ${name}.item_created. The event's id as
-- the key makes a second run of the handler change nothing.
CREATE TABLE ${name}_activity (
    event_id     uuid        PRIMARY KEY,
    item_id      uuid        NOT NULL,
    line         text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
-- The console shows the newest lines.
CREATE INDEX ${name}_activity_recorded_idx ON ${name}_activity (recorded_at DESC, event_id DESC);
'''

MIGRATION_DOWN = '''\
-- Undoes 0001_${name}.sql (`propmubi migrate down --plugin ${name} --to 0`).
DROP TABLE ${name}_activity;
DROP TABLE ${name}_items;
'''

TEMPLATE = '''\
{#- The ${name} items page (console.py renders it): the create form, the list, the activity.
    Plain HTML forms, no JavaScript; every input has a label; refused fields show their
    message next to them (ui.field_error) and the page answers 422. -#}
{% extends "default:base.html" %}
{% import "default:macros.html" as ui %}
{% block title %}${title}{% endblock %}
{% block content %}
{% macro when(at) -%}{{ at.strftime("%Y-%m-%d %H:%M UTC") }}{%- endmacro %}
{% macro created(row) -%}{{ when(row.created_at) }}{%- endmacro %}
{% macro recorded(row) -%}{{ when(row.recorded_at) }}{%- endmacro %}
{% macro invalid(field) -%}
  {%- if errors.of(field) %} aria-invalid="true" aria-describedby="{{ field }}-error"{% endif -%}
{%- endmacro %}
<h1>${title}</h1>
<section class="card">
  <h2 style="margin-top:0">New item</h2>
  {{ ui.form_errors(errors) }}
  <form method="post" action="{{ page_url }}">
    {{ csrf_field() }}
    <p><label for="title">Title</label><br>
      <input id="title" name="title" value="{{ typed.get("title", "") }}" maxlength="200"
             required style="width:100%;padding:.4rem"{{ invalid("title") }}></p>
    {{ ui.field_error(errors, "title") }}
    <p><label for="note">Note (optional)</label><br>
      <textarea id="note" name="note" rows="3" maxlength="2000"
                style="width:100%;padding:.4rem"{{ invalid("note") }}>
        {{- typed.get("note", "") -}}
      </textarea></p>
    {{ ui.field_error(errors, "note") }}
    <button type="submit">Create</button>
  </form>
</section>
{{ ui.table([("Title", "title"), ("Note", "note"), ("Created", created)], items,
            empty="No items yet.") }}
{{ ui.pager(next_cursor=next_cursor, base_url=page_url) }}
<section class="card" style="margin-top:1.5rem">
  <h2 style="margin-top:0">Activity</h2>
  {{ ui.table([("When", recorded), ("What", "line")], activity,
              empty="Nothing yet: the worker records a line for each new item.") }}
  <p class="muted">This process started the plugin at {{ when(started_at) }}.</p>
</section>
{% endblock %}
'''

#: (path under the repository, template text) of every file of a new plugin.
PLUGIN_FILES: tuple[tuple[str, str], ...] = (
    ("plugins/${name}/__init__.py", INIT),
    ("plugins/${name}/settings.py", SETTINGS),
    ("plugins/${name}/state.py", STATE),
    ("plugins/${name}/models.py", MODELS),
    ("plugins/${name}/events.py", EVENTS),
    ("plugins/${name}/handlers.py", HANDLERS),
    ("plugins/${name}/service.py", SERVICE),
    ("plugins/${name}/store.py", STORE),
    ("plugins/${name}/routes.py", ROUTES),
    ("plugins/${name}/console.py", CONSOLE),
    ("plugins/${name}/seed.py", SEED),
    ("plugins/${name}/api.py", API),
    ("plugins/${name}/migrations/0001_${name}.sql", MIGRATION_UP),
    ("plugins/${name}/migrations/0001_${name}.down.sql", MIGRATION_DOWN),
    ("plugins/${name}/templates/${name}/items.html", TEMPLATE),
)
