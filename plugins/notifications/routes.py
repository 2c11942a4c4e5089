"""The notifications plugin's JSON API, mounted under ``/api/v1``.

- ``/notifications/templates`` (staff): list, create, read, replace templates.
- ``/notifications/preferences`` (any signed-in user): their opt-outs per category and
  channel; transactional categories cannot be turned off (422).
- ``/notifications/devices`` (any signed-in user): register or refresh a push device (PUT),
  list their own (GET), forget one of their own (DELETE ``…/{token}``; another's is a 404).
- ``/notifications/unsubscribe/{token}`` (no sign-in; the signed link of a promotional
  e-mail): GET shows a confirmation page, POST unsubscribes (RFC 8058 one-click: mail
  clients POST ``List-Unsubscribe=One-Click``). A bad or forged token is a 404 page.
"""

from __future__ import annotations

import html

from aiohttp import web

from propmubi.actors import Actor
from propmubi.errors import NotFound
from propmubi.types import ANY_ROLE
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.notifications import service
from propmubi_plugins.notifications.models import (
    DeviceIn,
    DeviceList,
    DeviceOut,
    DeviceToken,
    PreferencesIn,
    PreferencesOut,
    TemplateId,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplateQuery,
    UnsubscribeToken,
)
from propmubi_plugins.notifications.state import Ctx

routes = Routes(tags=["notifications"])

#: Who manages templates.
STAFF = ["staff"]


def _caller(request: web.Request) -> Actor:
    return Actor.user(request[PRINCIPAL])


@routes.get("/notifications/templates", query=TemplateQuery, response=TemplatePage,
            roles=STAFF)
async def list_templates(request: web.Request, ctx: Ctx, query: TemplateQuery
                         ) -> TemplatePage:
    """Templates newest first (staff); filter by ``channel`` or ``type``."""
    return await service.list_templates(ctx, _caller(request), query)


@routes.post("/notifications/templates", body=TemplateIn, response=TemplateOut, status=201,
             roles=STAFF, errors=[409], rate_limit="60/minute")
async def create_template(request: web.Request, ctx: Ctx, body: TemplateIn) -> TemplateOut:
    """Create a template (staff). Variables are ``{#name#}``, each declared in
    ``variables``; an SMS template needs its DLT template id and holds at most two
    variables, never two in a row. 409 when the type has a template on that channel."""
    return await service.create_template(ctx, _caller(request), body)


@routes.get("/notifications/templates/{template_id}", params=TemplateId,
            response=TemplateOut, roles=STAFF, errors=[404])
async def get_template(request: web.Request, ctx: Ctx, params: TemplateId) -> TemplateOut:
    """One template (staff)."""
    return await service.get_template(ctx, _caller(request), params.template_id)


@routes.put("/notifications/templates/{template_id}", params=TemplateId, body=TemplateIn,
            response=TemplateOut, roles=STAFF, errors=[404, 409], rate_limit="60/minute")
async def replace_template(request: web.Request, ctx: Ctx, params: TemplateId,
                           body: TemplateIn) -> TemplateOut:
    """Replace a template (staff), under the same rules as creating one; messages not sent
    yet use the new text."""
    return await service.update_template(ctx, _caller(request), params.template_id, body)


@routes.get("/notifications/preferences", response=PreferencesOut, roles=[ANY_ROLE])
async def get_preferences(request: web.Request, ctx: Ctx) -> PreferencesOut:
    """Every category on every channel for the signed-in user: on or off, and whether it
    may be turned off."""
    return await service.preferences(ctx, _caller(request))


@routes.put("/notifications/preferences", body=PreferencesIn, response=PreferencesOut,
            roles=[ANY_ROLE], rate_limit="30/minute")
async def put_preferences(request: web.Request, ctx: Ctx, body: PreferencesIn
                          ) -> PreferencesOut:
    """Replace the signed-in user's opt-outs. Only promotional categories can be turned
    off: an opt-out of a transactional one is a 422 naming it."""
    return await service.set_preferences(ctx, _caller(request), body)


@routes.put("/notifications/devices", body=DeviceIn, response=DeviceOut, roles=[ANY_ROLE],
            rate_limit="30/minute")
async def put_device(request: web.Request, ctx: Ctx, body: DeviceIn) -> DeviceOut:
    """Register the signed-in user's device for push notifications, or refresh it (call at
    every app start and whenever FCM hands the app a new token): 200 with the device either
    way. A token another account registered moves to this one; a user keeps their 20 most
    recently seen devices."""
    return await service.register_device(ctx, _caller(request), body)


@routes.get("/notifications/devices", response=DeviceList, roles=[ANY_ROLE])
async def get_devices(request: web.Request, ctx: Ctx) -> DeviceList:
    """The signed-in user's devices, the most recently seen first."""
    return await service.devices(ctx, _caller(request))


@routes.delete("/notifications/devices/{token}", params=DeviceToken, status=204,
               roles=[ANY_ROLE], errors=[404], rate_limit="30/minute")
async def delete_device(request: web.Request, ctx: Ctx, params: DeviceToken) -> None:
    """Forget one of the signed-in user's devices (the app signs out): no more push
    messages to it. 404 for a token that is not theirs."""
    await service.forget_device(ctx, _caller(request), params.token)


def _page(title: str, paragraphs: list[str], status: int = 200, form: str = "") -> web.Response:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    text = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title></head><body><main>"
            f"<h1>{html.escape(title)}</h1>{body}{form}</main></body></html>")
    return web.Response(text=text, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store",
                                 "Referrer-Policy": "no-referrer"})


_BAD_LINK = ["This unsubscribe link is not valid. Open the newest e-mail we sent you and use "
             "its link, or change what you receive in the app's settings."]


@routes.get("/notifications/unsubscribe/{token}", params=UnsubscribeToken, response=str,
            content_type="text/html", errors=[404], rate_limit="30/minute")
async def unsubscribe_page(request: web.Request, ctx: Ctx, params: UnsubscribeToken
                           ) -> web.Response:
    """The confirmation page of an unsubscribe link (HTML; changes nothing)."""
    try:
        _, category = service.unsubscribe_target(ctx, params.token)
    except NotFound:
        return _page("Link not valid", _BAD_LINK, status=404)
    action = html.escape(request.path)
    form = (f'<form method="post" action="{action}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">Unsubscribe from {html.escape(category)} messages</button>'
            "</form>")
    return _page("Unsubscribe", [f"Stop receiving {category} messages from Propmubi by "
                                 "e-mail, SMS and push? Account, visit and booking messages "
                                 "still reach you."], form=form)


@routes.post("/notifications/unsubscribe/{token}", params=UnsubscribeToken, response=str,
             content_type="text/html", errors=[404], rate_limit="30/minute")
async def unsubscribe(request: web.Request, ctx: Ctx, params: UnsubscribeToken
                      ) -> web.Response:
    """Unsubscribe (RFC 8058 one-click, no sign-in): the token's user no longer gets its
    category on any channel. Posting twice changes nothing."""
    try:
        _, category = await service.unsubscribe(ctx, None, params.token)
    except NotFound:
        return _page("Link not valid", _BAD_LINK, status=404)
    return _page("Unsubscribed", [f"You will no longer receive {category} messages. You can "
                                  "turn them on again in the app's settings."])
