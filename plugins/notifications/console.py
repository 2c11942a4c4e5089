"""The notifications plugin's console pages (mounted under ``/console``).

- ``/notifications``: **Messages**, the delivery ledger, newest first, by status and channel:
  type, recipient (by name), channel, provider, status, attempts, why; a message's page
  lists every attempt and staff's decisions, and for one whose fate is ``unknown`` the form
  to decide it once the provider's own records are checked: delivered, not delivered, or
  not delivered and sent again.
- ``/notifications/templates``: **Templates**, the list and the create form; a template's
  page is its edit form. Refused fields show their message next to them (422).
- ``/notifications/outbox``: the **Dev outbox**, what the console providers "sent" (the
  sign-in OTP of a newcomer), outside production and only when a console provider is
  configured (404 otherwise); the Messages page links to it then.
- The dashboard card: sent, failed and deferred today.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from propmubi.console.forms import FormErrors, read_form
from propmubi.console.names import actor_names
from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_actor,
)
from propmubi.errors import BadRequest, Conflict, FieldError, NotFound
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.validation import query_converter, structure_input
from propmubi.web.appkeys import CONSOLE_PREFIX
from propmubi_plugins.notifications import delivery, privacy, service, store
from propmubi_plugins.notifications.models import (
    CATEGORIES,
    KINDS,
    STATUSES,
    DecisionIn,
    TemplateIn,
    TemplateOut,
    TemplateQuery,
)
from propmubi_plugins.notifications.providers.base import CHANNELS
from propmubi_plugins.notifications.state import Ctx

BASE = CONSOLE_PREFIX + "/notifications"
TEMPLATES = BASE + "/templates"
_SPLIT = re.compile(r"[\s,]+")
#: The template form's fields (the names of TemplateIn's).
_FIELDS = ("type", "channel", "category", "kind", "subject", "body", "dlt_template_id")


def _choice(request: web.Request, key: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(key) or None
    if value is not None and value not in allowed:
        raise BadRequest(f"unknown {key} {value!r}")
    return value


def recipient(row: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """Who a delivery is for: the user's name, else the address (masked: a direct send's is
    stored masked already, and masking again changes nothing)."""
    if row["user_id"] is not None:
        return names.get(f"user:{row['user_id']}", "unknown user")
    return privacy.mask(row["channel"], str(row["addresses"][row["address_index"]]))


async def messages(request: web.Request, ctx: Ctx) -> web.Response:
    """The ledger: deliveries newest first, by status and channel."""
    status = _choice(request, "status", STATUSES)
    channel = _choice(request, "channel", CHANNELS)
    size = ctx.settings.page_size
    rows = await store.ledger_page(ctx.db, status, channel,
                                   parse_cursor(request.query.get("cursor")), size + 1)
    more = len(rows) > size
    rows = rows[:size]
    names = await actor_names(request.app, [f"user:{r['user_id']}" for r in rows
                                            if r["user_id"] is not None])
    return render("notifications/messages.html", request, {
        "rows": rows, "names": names, "recipient": recipient, "status": status,
        "channel": channel, "statuses": STATUSES, "channels": CHANNELS, "base": BASE,
        "next_cursor": cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
        "outbox": _outbox_available(ctx)})


async def message(request: web.Request, ctx: Ctx, *, errors: FormErrors | None = None,
                  typed: Mapping[str, str] | None = None, status: int = 200) -> web.Response:
    """One delivery, every attempt and staff's decisions; for an ``unknown`` one, the
    decision form."""
    delivery_id = path_uuid(request, "id", "message")
    row = await store.delivery_detail(ctx.db, delivery_id)
    if row is None:
        raise NotFound("no such message")
    decisions = await store.decisions_of(ctx.db, delivery_id)
    names = await actor_names(request.app, [
        *([f"user:{row['user_id']}"] if row["user_id"] is not None else []),
        row["requested_by"], *(d["actor"] for d in decisions)])
    return render("notifications/message.html", request, {
        "row": row, "names": names, "who": recipient(row, names), "base": BASE,
        "attempts": await store.attempts_of(ctx.db, delivery_id), "decisions": decisions,
        "resend_refusal": service.resend_refusal(row),
        "decision_labels": DECISION_LABELS, "errors": errors or FormErrors(),
        "typed": typed or {}}, status=status)


DECISION_LABELS = {"delivered": "Delivered", "failed": "Not delivered",
                   "resend": "Not delivered: sent again"}
_DECIDED = {"delivered": "Recorded as delivered.", "failed": "Recorded as not delivered.",
            "resend": "Sending it again."}


async def decide(request: web.Request, ctx: Ctx) -> web.Response:
    """Staff's decision about an ``unknown`` message; a refused form is the page again (422)
    with the message next to its field, a decision no longer possible a flash."""
    delivery_id = path_uuid(request, "id", "message")
    posted = await request.post()
    typed = {k: str(posted.get(k, "")) for k in ("decision", "note")}
    data, errors = await read_form(request, DecisionIn)
    if data is None:
        return await message(request, ctx, errors=errors, typed=typed, status=422)
    try:
        await service.decide_unknown(ctx, staff_actor(request), delivery_id, data)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
    else:
        flash(request, _DECIDED[data.decision], "success")
    return see_other(f"{BASE}/messages/{delivery_id}")


def _typed_template(template: TemplateOut) -> dict[str, Any]:
    return {"type": template.type, "channel": template.channel,
            "category": template.category, "kind": template.kind,
            "subject": template.subject or "", "body": template.body,
            "variables": ", ".join(template.variables),
            "dlt_template_id": template.dlt_template_id or "",
            "active": "true" if template.active else ""}


async def templates(request: web.Request, ctx: Ctx, *, typed: Mapping[str, Any] | None = None,
                    errors: FormErrors | None = None, status: int = 200) -> web.Response:
    """Templates newest first, by channel, with the create form."""
    channel = _choice(request, "channel", CHANNELS)
    cursor = request.query.get("cursor") or None
    parse_cursor(cursor)  # a mangled link is a 400
    page = await service.list_templates(ctx, staff_actor(request), TemplateQuery(
        channel=channel, cursor=cursor))
    return render("notifications/templates.html", request, {
        "items": page.items, "next_cursor": page.next_cursor, "channel": channel,
        "page_url": TEMPLATES, "errors": errors or FormErrors(),
        "typed": typed if typed is not None else {"active": "true", "kind": "transactional"},
        **_choices()}, status=status)


def _choices() -> dict[str, Any]:
    return {"channels": CHANNELS, "categories": CATEGORIES, "kinds": KINDS}


async def _read_template(request: web.Request) -> tuple[TemplateIn | None, FormErrors,
                                                        dict[str, Any]]:
    """The posted template form, validated like the API's body; what was typed."""
    form = await request.post()
    typed = {k: str(form.get(k, "")) for k in (*_FIELDS, "variables", "active")}
    data: dict[str, Any] = {k: typed[k].strip() for k in _FIELDS if typed[k].strip()}
    if "body" in data:
        data["body"] = typed["body"].replace("\r\n", "\n").strip("\n")
    data["variables"] = [v for v in _SPLIT.split(typed["variables"]) if v]
    data["active"] = "true" if typed["active"] else "false"
    obj, errors = structure_input(data, TemplateIn, "form", query_converter)
    return obj, FormErrors(errors), typed


def _conflict(exc: Conflict) -> FormErrors:
    return FormErrors([FieldError("form", "channel", exc.detail or exc.title)])


async def create_template(request: web.Request, ctx: Ctx) -> web.Response:
    """The create form: a template, or the page again with the refused fields (422)."""
    data, errors, typed = await _read_template(request)
    if data is None:
        return await templates(request, ctx, typed=typed, errors=errors, status=422)
    try:
        created = await service.create_template(ctx, staff_actor(request), data)
    except Conflict as exc:
        return await templates(request, ctx, typed=typed, errors=_conflict(exc), status=422)
    flash(request, f"Created the {created.channel} template of {created.type}.", "success")
    return see_other(f"{TEMPLATES}/{created.id}")


async def template(request: web.Request, ctx: Ctx, *, typed: Mapping[str, Any] | None = None,
                   errors: FormErrors | None = None, status: int = 200) -> web.Response:
    """A template's edit form."""
    template_id = path_uuid(request, "id", "template")
    current = await service.get_template(ctx, staff_actor(request), template_id)
    names = await actor_names(request.app, [current.created_by, current.updated_by])
    return render("notifications/template.html", request, {
        "template": current, "names": names, "page_url": f"{TEMPLATES}/{template_id}",
        "templates_url": TEMPLATES, "errors": errors or FormErrors(),
        "typed": typed if typed is not None else _typed_template(current), **_choices()},
        status=status)


async def edit_template(request: web.Request, ctx: Ctx) -> web.Response:
    """The edit form: the template replaced, or the page again with the refused fields."""
    template_id = path_uuid(request, "id", "template")
    data, errors, typed = await _read_template(request)
    if data is None:
        return await template(request, ctx, typed=typed, errors=errors, status=422)
    try:
        await service.update_template(ctx, staff_actor(request), template_id, data)
    except Conflict as exc:
        return await template(request, ctx, typed=typed, errors=_conflict(exc), status=422)
    flash(request, "Saved the template.", "success")
    return see_other(f"{TEMPLATES}/{template_id}")


def _outbox_available(ctx: Ctx) -> bool:
    return not ctx.state.production and ctx.state.has_console_provider()


async def outbox(request: web.Request, ctx: Ctx) -> web.Response:
    """The last messages of the console providers (development only)."""
    if not _outbox_available(ctx):
        raise NotFound("the dev outbox exists only with a console provider, outside "
                       "production")
    return render("notifications/outbox.html", request, {
        "entries": await delivery.dev_outbox(ctx), "base": BASE})


async def today(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    """The dashboard card: sent and failed today (UTC), deferred now."""
    start = ctx.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return {**await store.counts_since(ctx.db, start), "base": BASE}


def pages() -> list[ConsolePage]:
    """Messages, a message, templates (list, create, edit) and the dev outbox."""
    return [
        ConsolePage(path="/notifications", handler=messages, name="notifications-messages",
                    nav_label="Messages", nav_order=70),
        ConsolePage(path="/notifications/messages/{id}", handler=message,
                    name="notifications-message"),
        ConsolePage(path="/notifications/messages/{id}/decision", handler=decide,
                    name="notifications-message-decision", method="POST"),
        ConsolePage(path="/notifications/templates", handler=templates,
                    name="notifications-templates", nav_label="Templates", nav_order=71),
        ConsolePage(path="/notifications/templates", handler=create_template,
                    name="notifications-template-create", method="POST"),
        ConsolePage(path="/notifications/templates/{id}", handler=template,
                    name="notifications-template"),
        ConsolePage(path="/notifications/templates/{id}", handler=edit_template,
                    name="notifications-template-edit", method="POST"),
        ConsolePage(path="/notifications/outbox", handler=outbox,
                    name="notifications-outbox"),
    ]


def widgets() -> list[ConsoleWidget]:
    """Today's messages card."""
    return [ConsoleWidget(name="notifications-today", title="Messages today",
                          template="notifications/widget.html", load=today, order=70)]

