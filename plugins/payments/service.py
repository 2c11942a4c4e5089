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
from propmubi.errors import BadRequest, Forbidden, NotFound
from propmubi.ids import uuid7
from propmubi_plugins.payments import store
from propmubi_plugins.payments.events import ItemCreated
from propmubi_plugins.payments.models import ActivityLine, ItemIn, ItemOut, ItemPage
from propmubi_plugins.payments.state import Ctx

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
    :param limit: items per page; None for ``plugins.payments.page_size``.
    :raises BadRequest: the cursor is not one this list handed out.
    """
    after = None
    if cursor is not None:
        try:
            after = cursors.unpack_position(cursor)
        except ValueError:
            raise BadRequest("the cursor is not a page of this list; start from the first "
                             "page") from None
    size = limit or ctx.settings.page_size
    rows = await store.page(ctx.db, after, size + 1)  # one more tells whether a page follows
    items = [ItemOut(**row) for row in rows[:size]]
    more = len(rows) > size
    return ItemPage(items=items, next_cursor=cursors.pack_position(
        items[-1].created_at, items[-1].id) if more else None)


async def recent_activity(ctx: Ctx, actor: Actor | None, limit: int) -> list[ActivityLine]:
    """The newest lines of the activity log (kept by the event handler)."""
    return [ActivityLine(**row) for row in await store.activity(ctx.db, limit)]
