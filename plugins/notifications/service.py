"""The notifications plugin's operations: templates (staff), requesting notifications (other
plugins, through api.py), direct sends (OTPs), preferences, unsubscribing and push devices
(users), and privacy: a user's erasure and the retention job (docs/notifications.md,
*Privacy*).

Every public function has the one signature ``verb(ctx, actor, <ids...>, <input>)`` and opens
its own transaction; ``..._in`` variants join the caller's. Sending itself is delivery.py's.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import psycopg2.errors

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from propmubi.ids import uuid7
from propmubi_plugins.notifications import delivery, privacy, store, tokens
from propmubi_plugins.notifications.events import NotificationRequested
from propmubi_plugins.notifications.models import (
    CATEGORIES,
    PROMOTIONAL_CATEGORIES,
    DecisionIn,
    DeliveryOut,
    DeviceIn,
    DeviceList,
    DeviceOut,
    NotificationOut,
    NotifyIn,
    PreferenceOut,
    PreferencesIn,
    PreferencesOut,
    SendResult,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplateQuery,
)
from propmubi_plugins.notifications.providers.base import CHANNELS, Message
from propmubi_plugins.notifications.state import Ctx

__all__ = ["MessageNotSent", "create_template", "devices", "erase_user_in", "forget_device",
           "forget_old", "get_template", "list_templates", "notify", "notify_in",
           "preferences", "register_device", "send_now", "set_preferences", "unsubscribe",
           "unsubscribe_target", "update_template"]

#: The field of NotifyIn that holds each channel's address.
ADDRESS_FIELD = {"sms": "phone", "email": "email", "push": "push_tokens"}
#: Tokens a notification takes from its user's registered devices (NotifyIn's limit too).
PUSH_TOKENS_MAX = 10
#: Devices a user keeps; registering another forgets the least recently seen.
DEVICES_MAX = 20
#: The actor of the erasure handler and the retention job.
PRIVACY = Actor.system("notifications-privacy")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class MessageNotSent(ServiceUnavailable):
    """A direct send (``send_now``) did not get the message accepted.

    :ivar maybe_sent: a provider may have accepted it anyway (the delivery is ``unknown``).
    """

    slug, title = "message-not-sent", "The message could not be sent"

    def __init__(self, detail: str, *, maybe_sent: bool, delivery_id: uuid.UUID) -> None:
        super().__init__(detail)
        self.maybe_sent = maybe_sent
        self.delivery_id = delivery_id


def _staff_only(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_staff:
        raise Forbidden("only staff manage notification templates")
    return actor


# -- templates ----------------------------------------------------------------------------------

def _template(row: dict[str, Any]) -> TemplateOut:
    return TemplateOut(**{**row, "variables": list(row["variables"] or [])})


async def create_template(ctx: Ctx, actor: Actor, data: TemplateIn) -> TemplateOut:
    """Create a template (staff).

    :raises Conflict: its notification type has a template on that channel already.
    """
    _staff_only(actor)
    async with ctx.db.transaction() as tx:
        row = await store.insert_template(tx, {
            **attrs.asdict(data), "id": uuid7(), "created_by": actor.ref,
            "created_at": ctx.clock.now()})
    if row is None:
        raise Conflict(f"{data.type} already has an {data.channel} template; edit that one")
    return _template(row)


async def ensure_templates(ctx: Ctx, actor: Actor, templates: Sequence[TemplateIn]
                           ) -> list[TemplateOut]:
    """Create each template whose (type, channel) has none yet; one that exists (edited or
    switched off by staff) is left as it is. What seeds call: safe to run twice.

    :returns: the templates created now.
    """
    existing = await store.template_keys(ctx.db)
    created = []
    for template in templates:
        if (template.type, template.channel) not in existing:
            created.append(await create_template(ctx, actor, template))
            existing.add((template.type, template.channel))
    return created


async def update_template(ctx: Ctx, actor: Actor, template_id: uuid.UUID,
                          data: TemplateIn) -> TemplateOut:
    """Replace a template's fields (staff). Deliveries not sent yet use the new text.

    :raises NotFound: no such template.
    :raises Conflict: another template has that type and channel.
    """
    _staff_only(actor)
    try:
        async with ctx.db.transaction() as tx:
            row = await store.update_template(tx, {
                **attrs.asdict(data), "id": template_id, "updated_by": actor.ref,
                "updated_at": ctx.clock.now()})
    except psycopg2.errors.UniqueViolation:
        raise Conflict(f"{data.type} already has an {data.channel} template") from None
    if row is None:
        raise NotFound("no such template")
    return _template(row)


async def get_template(ctx: Ctx, actor: Actor, template_id: uuid.UUID) -> TemplateOut:
    """One template (staff).

    :raises NotFound: no such template.
    """
    _staff_only(actor)
    row = await store.template(ctx.db, template_id)
    if row is None:
        raise NotFound("no such template")
    return _template(row)


async def list_templates(ctx: Ctx, actor: Actor, query: TemplateQuery) -> TemplatePage:
    """Templates newest first, by channel or type (staff).

    :raises ValidationFailed: a cursor this list did not hand out (422 naming ``cursor``).
    """
    _staff_only(actor)
    after = None
    if query.cursor is not None:
        try:
            after = cursors.unpack_position(query.cursor)
        except ValueError:
            raise ValidationFailed([FieldError(
                "query", "cursor", "not a cursor from this list; start from the first page")]
            ) from None
    size = query.limit or ctx.settings.page_size
    rows = await store.templates_page(ctx.db, query.channel, query.type, after, size + 1)
    items = [_template(r) for r in rows[:size]]
    more = len(rows) > size
    return TemplatePage(items=items, next_cursor=cursors.pack_position(
        items[-1].created_at, items[-1].id) if more else None)


# -- notifications ------------------------------------------------------------------------------

def _out(row: dict[str, Any], deliveries: list[dict[str, Any]],
         duplicate: bool = False) -> NotificationOut:
    return NotificationOut(
        id=row["id"], type=row["type"], user_id=row["user_id"], dedupe_key=row["dedupe_key"],
        created_at=row["created_at"], duplicate=duplicate, deliveries=[DeliveryOut(
            id=d["id"], channel=d["channel"], status=d["status"], attempts=d["attempts"],
            provider=d["provider"], reason=d["reason"],
            next_attempt_at=(d["next_attempt_at"]
                             if d["status"] in ("pending", "deferred") else None),
            sent_at=d["sent_at"]) for d in deliveries])


async def notify(ctx: Ctx, actor: Actor, data: NotifyIn) -> NotificationOut:
    """:func:`notify_in` in a transaction of its own."""
    async with ctx.db.transaction() as tx:
        return await notify_in(ctx, tx, actor, data)


async def notify_in(ctx: Ctx, tx: Tx, actor: Actor, data: NotifyIn) -> NotificationOut:
    """Store a notification and one delivery per channel, and publish
    ``notifications.notification_requested``, in the caller's transaction: all of it
    commits, or rolls back, with the caller's change. The worker sends it after the commit.

    The channels are ``data.channels``, or every channel of the type with an active template
    and an address given. A ``dedupe_key`` already used returns that notification
    (``duplicate=True``) and stores nothing.

    :raises ValidationFailed: the type has no active template, a channel asked for has no
        template or no address, or a variable a template declares has no value (each
        naming its field).
    """
    if data.dedupe_key is not None:
        existing = await store.notification_by_key(tx, data.dedupe_key)
        if existing is not None:
            return _out(existing, await store.deliveries_of(tx, existing["id"]), True)
    templates = {t["channel"]: t for t in await store.templates_of_type(tx, data.type)
                 if t["active"]}
    push_tokens = list(data.push_tokens)
    if not push_tokens and "push" in templates:
        # The user's registered devices, the most recently seen first.
        push_tokens = [d["token"] for d in await store.devices_of(tx, data.user_id,
                                                                    PUSH_TOKENS_MAX)]
    addresses = {"sms": [data.phone] if data.phone else [],
                 "email": [data.email] if data.email else [], "push": push_tokens}
    errors: list[FieldError] = []
    if not templates:
        raise ValidationFailed([FieldError("body", "type",
                                           f"no active template of type {data.type!r}")])
    if data.channels is not None:
        channels = list(data.channels)
        for index, channel in enumerate(channels):
            if channel not in templates:
                errors.append(FieldError("body", f"channels[{index}]",
                                         f"{data.type} has no active {channel} template"))
            elif not addresses[channel]:
                errors.append(FieldError("body", ADDRESS_FIELD[channel],
                                         f"needed to send {data.type} by {channel}"
                                         + (" (the user has no registered device)"
                                            if channel == "push" else "")))
    else:
        channels = [c for c in CHANNELS if c in templates and addresses[c]]
        if not channels:
            wanted = ", ".join(ADDRESS_FIELD[c] for c in CHANNELS if c in templates)
            errors.append(FieldError("body", "type", f"{data.type} goes by "
                                     f"{', '.join(sorted(templates))}: give {wanted}"))
    for name in sorted({v for c in channels if c in templates
                        for v in templates[c]["variables"]} - set(data.variables)):
        errors.append(FieldError("body", f"variables.{name}",
                                 f"the {data.type} template needs a value for {{#{name}#}}"))
    if errors:
        raise ValidationFailed(errors)
    now = ctx.clock.now()
    notification_id = uuid7()
    row = {"id": notification_id, "type": data.type, "user_id": data.user_id,
           "time_zone": data.time_zone or ctx.settings.default_time_zone,
           "variables": dict(data.variables), "dedupe_key": data.dedupe_key,
           "requested_by": actor.ref, "created_at": now}
    if not await store.insert_notification(tx, row):  # the same key, committed meanwhile
        existing = await store.notification_by_key(tx, data.dedupe_key or "")
        if existing is None:
            raise Conflict("a notification with this dedupe_key is being created; retry")
        return _out(existing, await store.deliveries_of(tx, existing["id"]), True)
    for channel in channels:
        template = templates[channel]
        await store.insert_delivery(tx, {
            "id": uuid7(), "notification_id": notification_id, "channel": channel,
            "user_id": data.user_id, "template_id": template["id"],
            "category": template["category"], "kind": template["kind"],
            "addresses": addresses[channel], "status": "pending", "provider": None,
            "message_key": f"{notification_id}:{channel}", "next_attempt_at": now,
            "created_at": now})
    await ctx.publish(tx, NotificationRequested(
        notification_id=notification_id, type=data.type, user_id=data.user_id,
        channels=channels), actor=actor.ref)
    return _out(row, await store.deliveries_of(tx, notification_id))


async def get_notification(ctx: Ctx, actor: Actor, notification_id: uuid.UUID
                           ) -> NotificationOut:
    """A notification and where each of its deliveries stands.

    :raises NotFound: no such notification, or not the actor's (a user sees their own).
    """
    row = await store.notification(ctx.db, notification_id)
    if row is None or (not actor.is_staff and row["user_id"] != actor.user_id):
        raise NotFound("no such notification")
    return _out(row, await store.deliveries_of(ctx.db, notification_id))


def _check_address(channel: str, to: str) -> None:
    if channel not in CHANNELS:
        raise ValidationFailed([FieldError("body", "channel",
                                           f"one of {', '.join(CHANNELS)}")])
    if channel == "sms" and not _E164.match(to):
        raise ValidationFailed([FieldError("body", "to", "a phone number in E.164 form")])
    if not to or len(to) > 4096:
        raise ValidationFailed([FieldError("body", "to", "an address is needed")])


async def send_now(ctx: Ctx, actor: Actor, channel: str, to: str, body: str, *,
                   subject: str | None = None, dlt_template_id: str | None = None,
                   user_id: uuid.UUID | None = None, type: str = "otp",
                   category: str = "account") -> SendResult:
    """Send one message now, as ``critical`` (no quiet hours, windows, caps or opt-outs),
    through the channel's providers with fallback, writing the same ledger as every
    notification. The body is not stored (an OTP is a secret): a send interrupted by a crash
    is never resent and ends ``unknown``. Nor is the address: the ledger keeps it masked
    (``+91******2377``), since a code often goes to someone who has no account yet, whose
    erasure could not find it.

    :raises ValidationFailed: an unknown channel or a malformed address.
    :raises MessageNotSent: no provider accepted it (``maybe_sent`` when one may have).
    """
    _check_address(channel, to)
    if not body.strip():
        raise ValidationFailed([FieldError("body", "body", "the message is empty")])
    now = ctx.clock.now()
    notification_id, delivery_id = uuid7(), uuid7()
    key = f"{notification_id}:{channel}"
    async with ctx.db.transaction() as tx:
        await store.insert_notification(tx, {
            "id": notification_id, "type": type, "user_id": user_id,
            "time_zone": ctx.settings.default_time_zone, "variables": {}, "dedupe_key": None,
            "requested_by": actor.ref, "created_at": now})
        await store.insert_delivery(tx, {
            "id": delivery_id, "notification_id": notification_id, "channel": channel,
            "user_id": user_id, "template_id": None, "category": category,
            "kind": "critical", "addresses": [privacy.mask(channel, to)], "status": "pending",
            "provider": None, "message_key": key, "next_attempt_at": now, "masked_at": now,
            "created_at": now})
    message = Message(key=key, channel=channel,  # type: ignore[arg-type]  # checked above
                      to=to, body=body, subject=subject, template_id=dlt_template_id,
                      data={"notification_id": str(notification_id), "type": type,
                            "category": category})
    await delivery.deliver(ctx, delivery_id, direct=message)
    row = await store.delivery_detail(ctx.db, delivery_id)
    assert row is not None
    if row["status"] == "sent":
        return SendResult(notification_id=notification_id, delivery_id=delivery_id,
                          provider=row["provider"], attempts=row["attempts"],
                          provider_message_id=row["provider_message_id"] or "")
    raise MessageNotSent(f"the {channel} message was not sent: {row['reason']}",
                         maybe_sent=row["status"] == "unknown", delivery_id=delivery_id)


def resend_refusal(row: dict[str, Any]) -> str | None:
    """Why a delivery cannot be sent again, or None when it can: a direct send keeps no text,
    a masked recipient no address."""
    if row["template_id"] is None:
        return "a direct send (a sign-in code) cannot be sent again: its text is not kept"
    if row["masked_at"] is not None:
        return ("the recipient's address is no longer kept (erased or past retention): it "
                "cannot be sent again")
    return None


async def decide_unknown(ctx: Ctx, actor: Actor, delivery_id: uuid.UUID, data: DecisionIn
                         ) -> None:
    """Staff settle a delivery whose fate is ``unknown`` after checking the provider's own
    records (delivery.decide says what each decision does); the decision is kept with who
    made it and their note.

    :raises NotFound: no such delivery.
    :raises Conflict: the delivery is not ``unknown`` (someone decided already), or it cannot
        be sent again: a direct send (a sign-in code: its text is not kept) or a recipient
        whose address is no longer kept (erased, or past retention).
    """
    if not actor.is_staff:
        raise Forbidden("only staff settle a message whose delivery is unknown")
    now = ctx.clock.now()
    async with ctx.db.transaction() as tx:
        row = await store.lock_delivery_wait(tx, delivery_id)
        if row is None:
            raise NotFound("no such message")
        if row["status"] != "unknown":
            raise Conflict(f"the message is {row['status']}, not unknown: nothing to decide")
        refusal = resend_refusal(row) if data.decision == "resend" else None
        if refusal is not None:
            raise Conflict(refusal)
        detail = await store.delivery_detail(tx, delivery_id)
        assert detail is not None
        await delivery.decide(ctx, tx, detail, data.decision, now)
        await store.insert_decision(tx, {
            "id": uuid7(), "delivery_id": delivery_id, "decision": data.decision,
            "note": data.note, "actor": actor.ref, "decided_at": now})


# -- preferences and unsubscribing --------------------------------------------------------------

def _user(actor: Actor) -> uuid.UUID:
    user_id = actor.user_id
    if user_id is None:
        raise Forbidden("preferences belong to a signed-in user")
    return user_id


async def preferences(ctx: Ctx, actor: Actor) -> PreferencesOut:
    """Every category on every channel for the signed-in user."""
    out = await store.opted_out(ctx.db, _user(actor))
    return PreferencesOut(items=[
        PreferenceOut(category=category, channel=channel,
                      enabled=(category, channel) not in out,
                      can_opt_out=category in PROMOTIONAL_CATEGORIES)
        for category in CATEGORIES for channel in CHANNELS])


async def set_preferences(ctx: Ctx, actor: Actor, data: PreferencesIn) -> PreferencesOut:
    """Replace the signed-in user's opt-outs (transactional categories were refused by
    :class:`PreferencesIn` already)."""
    user_id = _user(actor)
    pairs = sorted({(o.category, o.channel) for o in data.opted_out})
    async with ctx.db.transaction() as tx:
        await store.replace_opt_outs(tx, user_id, pairs, ctx.clock.now())
    return await preferences(ctx, actor)


def unsubscribe_target(ctx: Ctx, token: str) -> tuple[uuid.UUID, str]:
    """The user and category of a genuine unsubscribe token.

    :raises NotFound: a malformed, forged or foreign token (one answer for all).
    """
    found = tokens.verify(ctx.state.unsubscribe_key, token)
    if found is None or found[1] not in PROMOTIONAL_CATEGORIES:
        raise NotFound("this unsubscribe link is not valid")
    return found


async def unsubscribe(ctx: Ctx, actor: Actor | None, token: str) -> tuple[uuid.UUID, str]:
    """Opt the token's user out of its category on every channel (a second time changes
    nothing); the user and category.

    :raises NotFound: see :func:`unsubscribe_target`.
    """
    user_id, category = unsubscribe_target(ctx, token)
    async with ctx.db.transaction() as tx:
        for channel in CHANNELS:
            await store.add_opt_out(tx, user_id, category, channel, "unsubscribe_link",
                                    ctx.clock.now())
    return user_id, category


# -- push devices -------------------------------------------------------------------------------

def _device(row: dict[str, Any]) -> DeviceOut:
    return DeviceOut(token=row["token"], platform=row["platform"],
                     created_at=row["created_at"], last_seen_at=row["last_seen_at"])


async def register_device(ctx: Ctx, actor: Actor, data: DeviceIn) -> DeviceOut:
    """Register the signed-in user's device token, or refresh it (``last_seen_at``). A token
    another user registered moves to this one. A user keeps :data:`DEVICES_MAX` devices: the
    least recently seen beyond that are forgotten."""
    user_id = _user(actor)
    async with ctx.db.transaction() as tx:
        row = await store.upsert_device(tx, user_id, data.token, data.platform,
                                        ctx.clock.now())
        await store.trim_devices(tx, user_id, DEVICES_MAX)
    return _device(row)


async def devices(ctx: Ctx, actor: Actor) -> DeviceList:
    """The signed-in user's devices, the most recently seen first."""
    return DeviceList(items=[_device(r) for r in await store.devices_of(ctx.db, _user(actor))])


async def forget_device(ctx: Ctx, actor: Actor, token: str) -> None:
    """Forget one of the signed-in user's devices (signing out of the app).

    :raises NotFound: no such token, or another user's (one answer for both).
    """
    user_id = _user(actor)
    async with ctx.db.transaction() as tx:
        if not await store.delete_device(tx, token, user_id):
            raise NotFound("no such device")


# -- privacy ------------------------------------------------------------------------------------

async def _mask_deliveries(ctx: Ctx, tx: Tx, rows: list[dict[str, Any]], *,
                           erased: bool) -> list[str]:
    """Mask the addresses of deliveries and of their attempts (and the addresses quoted in
    their reasons and errors); the whole addresses that were there. ``erased``: a delivery
    still waiting is skipped (its recipient is gone)."""
    now = ctx.clock.now()
    whole: list[str] = []
    addresses: dict[uuid.UUID, tuple[str, list[str]]] = {}
    for row in rows:
        channel, old = row["channel"], list(row["addresses"])
        masked = [privacy.mask(channel, a) for a in old]
        whole += [a for a, m in zip(old, masked, strict=True) if a != m]
        addresses[row["id"]] = (channel, old)
        values: dict[str, Any] = {}
        if masked != old:
            values["addresses"] = masked
        reason = privacy.redact(row["reason"], channel, old)
        if erased and row["status"] in ("pending", "deferred"):
            values["status"], reason = "skipped", "the recipient's account was erased"
            delivery.MESSAGES.labels(channel, row["provider"] or "", "skipped").inc()
        if reason != row["reason"]:
            values["reason"] = reason
        if row["masked_at"] is None:
            values["masked_at"] = now
        if values:
            await store.set_delivery(tx, row["id"], **values, updated_at=now)
    for attempt in await store.attempts_to_mask(tx, list(addresses)):
        channel, old = addresses[attempt["delivery_id"]]
        address = privacy.mask(channel, attempt["address"])
        error = privacy.redact(attempt["error"], channel, old)
        if (address, error) != (attempt["address"], attempt["error"]):
            await store.set_attempt_text(tx, attempt["delivery_id"], attempt["attempt_no"],
                                         address, error)
    return whole


async def erase_user_in(ctx: Ctx, tx: Tx, actor: Actor, user_id: uuid.UUID) -> list[str]:
    """Forget what the plugin holds about an erased user (``auth.user_erased``), in the
    caller's transaction: their deliveries' and attempts' addresses masked (waiting ones
    skipped, one being sent never sent again), the values rendered into their messages
    cleared, their opt-outs and devices deleted. Running it again changes nothing.

    :returns: the whole addresses (and device tokens) it found, so that the caller can find
        the dev outbox's entries sent to them.
    """
    rows = await store.lock_user_deliveries(tx, user_id)
    whole = await _mask_deliveries(ctx, tx, rows, erased=True)
    await store.forget_user_variables(tx, user_id)
    await store.delete_opt_outs(tx, user_id)
    whole += await store.delete_user_devices(tx, user_id)
    if rows or whole:
        ctx.log.info("notifications: erased user %s (%d deliveries) by %s", user_id,
                     len(rows), actor.ref)
    return sorted(set(whole))


async def forget_old(ctx: Ctx) -> int:
    """The ``forget_old`` job: once ``retention_days`` have passed, a finished delivery keeps
    its address masked and its notification no values; a device not seen for
    ``device_idle_days`` is forgotten. Works in batches of ``batch_size``; how many rows it
    changed (the next run goes on)."""
    settings = ctx.settings
    now = ctx.clock.now()
    before = now - dt.timedelta(days=settings.retention_days)
    async with ctx.db.transaction() as tx:
        rows = await store.lock_old_unmasked(tx, before, settings.batch_size)
        await _mask_deliveries(ctx, tx, rows, erased=False)
        cleared = await store.forget_old_variables(tx, before, settings.batch_size)
        idle = await store.delete_idle_devices(
            tx, now - dt.timedelta(days=settings.device_idle_days), settings.batch_size)
    return len(rows) + cleared + idle
