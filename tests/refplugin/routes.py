"""API routes of the reference plugin."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid

import attrs
from aiohttp import web
from attrs import validators as v

from propmubi.errors import NotFound
from propmubi.web.appkeys import SERVICES
from propmubi.web.routing import Routes
from tests.refplugin import store

routes = Routes(tags=["reference"])


@attrs.frozen
class NoteIn:
    """A note to create."""

    text: str = attrs.field(validator=[v.min_len(1), v.max_len(200)],
                            metadata={"description": "The note's text."})
    tags: list[str] = attrs.field(factory=list, validator=v.max_len(5))
    priority: int = attrs.field(default=0, validator=[v.ge(0), v.le(5)])


@attrs.frozen
class Note:
    """A stored note."""

    id: uuid.UUID
    text: str
    tags: list[str]
    created_at: dt.datetime


@attrs.frozen
class NoteId:
    id: uuid.UUID


@attrs.frozen
class ListQuery:
    limit: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])


@attrs.frozen
class SleepQuery:
    seconds: float = attrs.field(default=0.0, validator=[v.ge(0), v.le(60)])


class Colour(enum.Enum):
    red = "red"
    green = "green"


@attrs.frozen
class Address:
    """Nested object of the validation tests."""

    city: str = attrs.field(validator=v.min_len(1))
    postcode: str = attrs.field(validator=v.matches_re(r"[0-9]{6}"))


@attrs.frozen
class Line:
    sku: str = attrs.field(validator=v.max_len(12))
    qty: int = attrs.field(validator=v.ge(1))


@attrs.frozen
class EchoIn:
    """Every shape the validation layer must handle: nested objects, lists of objects, enums,
    optional date-times, maps."""

    name: str = attrs.field(validator=v.max_len(20))
    address: Address
    lines: list[Line] = attrs.field(validator=v.max_len(3))
    count: int = 0
    colour: Colour = Colour.red
    due: dt.datetime | None = None
    labels: dict[str, int] = attrs.Factory(dict)


@attrs.frozen
class EchoQuery:
    tag: list[str] = attrs.Factory(list)
    flag: bool = False
    ids: list[uuid.UUID] | None = None


@routes.post("/reference/notes", body=NoteIn, response=Note, status=201,
             rate_limit="5/minute")
async def create_note(request: web.Request, body: NoteIn) -> Note:
    """Create a note."""
    row = await store.insert(request.app[SERVICES].db, body.text, body.tags)
    return Note(**row)


@routes.get("/reference/notes/{id}", params=NoteId, response=Note, errors=[404])
async def get_note(request: web.Request, params: NoteId) -> Note:
    """One note by id."""
    row = await store.get(request.app[SERVICES].db, params.id)
    if row is None:
        raise NotFound(f"no note {params.id}")
    return Note(**row)


@routes.get("/reference/notes", query=ListQuery, response=list[Note])
async def list_notes(request: web.Request, query: ListQuery) -> list[Note]:
    """The latest notes (the DB-backed route of the benchmark)."""
    return [Note(**row) for row in await store.latest(request.app[SERVICES].db, query.limit)]


@routes.get("/reference/slow", query=SleepQuery, timeout=0.5)
async def slow(request: web.Request, query: SleepQuery) -> dict[str, float]:
    """Sleeps; its declared timeout is 0.5 s."""
    await asyncio.sleep(query.seconds)
    return {"slept": query.seconds}


@routes.get("/reference/sleep", query=SleepQuery, rate_limit=False)
async def sleep(request: web.Request, query: SleepQuery) -> dict[str, float]:
    """Sleeps within the default timeout (graceful-drain tests)."""
    await asyncio.sleep(query.seconds)
    return {"slept": query.seconds}


@routes.get("/reference/boom", rate_limit=False)
async def boom(request: web.Request) -> None:
    """Raises an unexpected error (500 mapping test)."""
    raise RuntimeError("secret internal detail")


@routes.post("/reference/echo", body=EchoIn, query=EchoQuery, response=EchoIn,
             rate_limit=False)
async def echo(request: web.Request, body: EchoIn, query: EchoQuery) -> EchoIn:
    """Returns its validated body (validation tests; no database)."""
    return body


@routes.get("/reference/query", query=EchoQuery, response=EchoQuery, rate_limit=False)
async def echo_query(request: web.Request, query: EchoQuery) -> EchoQuery:
    """Returns its validated query (validation tests)."""
    return query


@routes.get("/reference/moved", rate_limit=False)
async def moved(request: web.Request) -> None:
    """Raises a redirect, as aiohttp handlers may."""
    raise web.HTTPFound("/api/v1/reference/notes")


@routes.get("/reference/upstream", rate_limit=False)
async def upstream(request: web.Request) -> None:
    """Times out on its own (an upstream call), well within the route's deadline."""
    async with asyncio.timeout(0):
        await asyncio.sleep(1)
