"""Console pages from ``propmubi_console_pages``: the role guard, template lookup (a plugin
template extending ``default:base.html``), and errors rendered as HTML, not problem+json."""

from __future__ import annotations

import pytest

import tests.refplugin
from propmubi import hookimpl
from propmubi.types import ConsoleWidget, PluginInfo

PAGE = "/console/reference/notes"
STAFF = {"X-Test-Staff-Role": "staff"}


def assert_html_error(resp, body: str, status: int, text: str) -> None:
    assert resp.status == status
    assert resp.content_type == "text/html"
    assert resp.charset == "utf-8"
    assert text in body
    assert resp.headers["X-Request-ID"] in body  # quotable to support


async def get(client, path: str, **headers: str):
    resp = await client.get(path, headers=headers)
    return resp, await resp.text()


async def test_console_page_needs_a_signed_in_user(client):
    resp, body = await get(client, PAGE)
    # The 401 answer is the sign-in form itself, returning to the page.
    assert resp.status == 401
    assert "text/html" in resp.headers["Content-Type"]
    assert "Sign in to open this page." in body and f'name="next" value="{PAGE}"' in body


async def test_console_page_needs_the_staff_role(client):
    resp, body = await get(client, PAGE, **{"X-Test-Staff-Role": "viewer"})
    assert_html_error(resp, body, 403, "Not allowed")
    assert "needs the staff role" in body


async def test_staff_see_the_notes_table(client):
    resp, body = await get(client, PAGE, **STAFF)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "No notes yet." in body
    for text in ["first <b>note</b>", "second"]:
        created = await client.post("/api/v1/reference/notes", json={"text": text,
                                                                     "tags": ["x", "y"]})
        assert created.status == 201
    _, body = await get(client, PAGE, **STAFF)
    # The plugin's template filled the blocks of the core's base.html.
    assert body.lstrip().startswith("<!doctype html>")
    assert "<title>Notes · Propmubi</title>" in body
    assert "<header><strong>Propmubi</strong> console</header>" in body
    assert "<h1>Notes</h1>" in body and "<table>" in body
    assert "<th>Created</th><th>Text</th><th>Tags</th>" in body
    assert body.count("<td>x, y</td>") == 2
    assert body.index("second") < body.index("first")  # newest first
    assert "first &lt;b&gt;note&lt;/b&gt;" in body and "<b>note</b>" not in body
    assert "No notes yet." not in body


async def test_admin_passes_every_role_check(client):
    assert (await client.get(PAGE, headers={"X-Test-Staff-Role": "admin"})).status == 200


async def test_console_errors_are_html(client):
    resp, body = await get(client, "/console/no/such/page", **STAFF)
    assert_html_error(resp, body, 404, "Not found")
    resp = await client.post(PAGE, headers=STAFF)
    assert resp.status == 405
    assert resp.content_type == "text/html"


class WidgetPlugin:
    """Dashboard cards: one that fails, one for admins only."""

    @staticmethod
    async def broken(request):
        raise RuntimeError("the card's source is down")

    @staticmethod
    async def secret(request):
        return {"count": 42}

    @hookimpl
    def propmubi_plugin_info(self):
        return PluginInfo(name="widgets")

    @hookimpl
    def propmubi_console_widgets(self):
        return [ConsoleWidget(name="broken", title="Broken card", template="reference/widget.html",
                              load=self.broken, order=1),
                ConsoleWidget(name="secret", title="Admin card", template="reference/widget.html",
                              load=self.secret, role="admin", order=2)]


@pytest.fixture
def extra_plugins():
    return [tests.refplugin, WidgetPlugin()]


async def test_dashboard_cards_render_in_order_fail_alone_and_respect_roles(client):
    await client.post("/api/v1/reference/notes", json={"text": "a", "tags": []})
    resp, body = await get(client, "/console/", **STAFF)
    assert resp.status == 200
    assert body.index("Broken card") < body.index('data-widget="reference-notes"')
    assert "This card could not be loaded: RuntimeError: the card&#39;s source is down" in body
    assert '<span data-testid="notes-count">1</span>' in body
    assert "Admin card" not in body
    _, body = await get(client, "/console/", **{"X-Test-Staff-Role": "admin"})
    assert "Admin card" in body and '<span data-testid="notes-count">42</span>' in body
