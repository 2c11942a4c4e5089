"""The reference plugin: one table, validated API routes, a console template and a job.

It exists to prove the hooks end to end in the tests and benchmarks; it is never installed as
an entry point, so production never runs it. Load it with ``plugins.modules =
["tests.refplugin"]`` (the benchmark does) or pass the module to ``load_plugins(extra=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.context import PluginContext
from propmubi.types import ConsolePage, ConsoleWidget, Job, PluginInfo, template_dir
from propmubi.web.appkeys import CONSOLE_USER, SERVICES, SUBJECT
from propmubi.web.routing import Routes
from tests.refplugin import routes, store

#: Test-only headers that stand in for the authentication that later plugins provide.
TEST_SUBJECT_HEADER = "X-Test-Subject"
TEST_STAFF_HEADER = "X-Test-Staff-Role"


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="reference", version="1.0.0", description="test plugin")


@hookimpl
def propmubi_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    return routes.routes


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    return [template_dir(__file__)]


async def notes_page(request: web.Request) -> web.Response:
    notes = await store.latest(request.app[SERVICES].db, 20)
    return aiohttp_jinja2.render_template("reference/notes.html", request, {"notes": notes})


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    return [ConsolePage(path="/reference/notes", handler=notes_page, name="reference-notes",
                        nav_label="Notes")]


async def notes_count(request: web.Request) -> dict[str, Any]:
    db = request.app[SERVICES].db
    return {"count": await db.fetchval("SELECT count(*) FROM reference_notes")}


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    return [ConsoleWidget(name="reference-notes", title="Notes", template="reference/widget.html",
                          load=notes_count)]


@hookimpl
def propmubi_middlewares(config: Config) -> list[Any]:
    # Test identities exist only in the test environment (the benchmark runs without them).
    if config.app.environment != "test":
        return []

    @web.middleware
    async def test_identity(request: web.Request, handler: Any) -> web.StreamResponse:
        if TEST_SUBJECT_HEADER in request.headers:
            request[SUBJECT] = request.headers[TEST_SUBJECT_HEADER]
        if TEST_STAFF_HEADER in request.headers:
            request[CONSOLE_USER] = {"roles": [request.headers[TEST_STAFF_HEADER]]}
        return await handler(request)

    return [test_identity]


async def count_notes(ctx: PluginContext[None, None]) -> None:
    await store.record_job_run(ctx.db)


@hookimpl
def propmubi_jobs() -> list[Job]:
    return [Job(name="count_notes", run=count_notes, every=1.0)]


@hookimpl
def propmubi_seed(ctx: PluginContext[None, None], scale: float) -> Any:
    return store.seed(ctx.db, max(1, int(1000 * scale)))
