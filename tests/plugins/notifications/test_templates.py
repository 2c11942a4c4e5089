"""Templates: the variable syntax, the DLT rules of SMS (refused when created, with a 422
naming the field), and the staff API."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from propmubi.validation import json_converter, structure_input
from propmubi_plugins.notifications import seed, store, templating
from propmubi_plugins.notifications.models import TemplateIn
from tests.plugins.notifications.conftest import DLT_ID, STAFF, USER

TEMPLATES = "/api/v1/notifications/templates"


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    """The field errors of a template body (as the API structures it)."""
    _, errors = structure_input(data, TemplateIn, "body", json_converter)
    return {e["field"]: e["message"] for e in errors}


def sms(body: str, variables: list[str], **more: Any) -> dict[str, Any]:
    return {"type": "lead_assigned", "channel": "sms", "category": "leads",
            "kind": "transactional", "body": body, "variables": variables,
            "dlt_template_id": DLT_ID, **more}


def test_a_good_sms_template_passes():
    assert errors_of(sms("Lead {#name#} for {#project#}.", ["name", "project"])) == {}


def test_more_than_two_variables_are_refused_for_sms_only():
    body = "{#a#} saw {#b#} at {#c#}."
    assert "at most 2 variables" in errors_of(sms(body, ["a", "b", "c"]))["body"]
    email = {**sms(body, ["a", "b", "c"]), "channel": "email", "subject": "Hi",
             "dlt_template_id": None}
    assert errors_of(email) == {}


def test_two_variables_in_a_row_are_refused():
    found = errors_of(sms("Hello {#first#}  {#last#}, welcome.", ["first", "last"]))
    assert "in a row" in found["body"]
    assert errors_of(sms("Hello {#first#} and {#last#}", ["first", "last"])) == {}


def test_undeclared_malformed_and_unused_variables_are_named():
    assert "{#who#} is not declared" in errors_of(sms("Hi {#who#}", []))["body"]
    assert "malformed placeholder" in errors_of(sms("Hi {#Who#}", ["who"]))["body"]
    assert "malformed placeholder" in errors_of(sms("Hi {#who}", ["who"]))["body"]
    assert "malformed placeholder" in errors_of(sms("Hi who#}", []))["body"]
    assert "never uses" in errors_of(sms("Hi {#who#}", ["who", "extra"]))["variables"]
    assert "not a variable name" in errors_of(sms("Hi", ["Bad-Name"]))["variables"]


def test_dlt_ids_subjects_and_kinds():
    assert "DLT template id" in errors_of(sms("Hi", [], dlt_template_id=None))[
        "dlt_template_id"]
    assert "19 digits" in errors_of(sms("Hi", [], dlt_template_id="12345"))["dlt_template_id"]
    assert "no subject" in errors_of(sms("Hi", [], subject="Oops"))["subject"]
    email = {**sms("Hi", []), "channel": "email", "dlt_template_id": DLT_ID}
    found = errors_of(email)
    assert set(found) == {"subject", "dlt_template_id"}
    assert "promotional" in errors_of(sms("Hi", [], category="marketing"))["kind"]
    assert "marketing" in errors_of(sms("Hi", [], kind="promotional"))["kind"]


# -- the rules as properties ----------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "name", "unit_no"])
TEXT = st.text(alphabet="abc ,.:-!\n", max_size=6)
SEGMENTS = st.lists(st.tuples(TEXT, NAMES), max_size=5)


def _body(segments: list[tuple[str, str]], tail: str) -> str:
    return "".join(f"{text}{{#{name}#}}" for text, name in segments) + tail


@given(SEGMENTS, TEXT)
def test_placeholders_are_found_in_order(segments, tail):
    body = _body(segments, tail)
    assert [p.name for p in templating.placeholders(body)] == [n for _, n in segments]
    values = {n: n.upper() for _, n in segments}
    assert templating.render(body, values) == "".join(
        f"{t}{n.upper()}" for t, n in segments) + tail


@given(SEGMENTS, TEXT)
def test_an_sms_is_refused_exactly_when_dlt_refuses_it(segments, tail):
    body = _body(segments, tail)
    names = sorted({n for _, n in segments})
    too_many = len(segments) > 2
    in_a_row = any(not text.strip() for text, _ in segments[1:])
    found = errors_of(sms(body if body.strip() else "x" + body, names))
    assert ("body" in found) == (too_many or in_a_row), (body, found)
    if too_many:
        assert "at most 2" in found["body"]
    elif in_a_row:
        assert "in a row" in found["body"]


@given(st.text(max_size=30))
def test_any_text_either_parses_or_says_where_it_is_malformed(text):
    try:
        found = templating.placeholders(text)
    except templating.TemplateSyntaxError as exc:
        assert "malformed placeholder at character" in str(exc)
    else:
        rest = text
        for p in reversed(found):
            rest = rest[:p.start] + rest[p.end:]
        assert "{#" not in rest and "#}" not in rest


# -- the API --------------------------------------------------------------------------------------

async def create(client: Any, data: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await client.post(TEMPLATES, json=data, headers=STAFF)
    assert response.status == status, await response.text()
    return await response.json()


async def test_staff_create_read_list_and_replace_templates(client):
    made = await create(client, sms("Lead {#name#} for {#project#}.", ["name", "project"]))
    assert made["created_by"].startswith("user:") and made["active"] is True
    got = await (await client.get(f"{TEMPLATES}/{made['id']}", headers=STAFF)).json()
    assert got == made
    push = await create(client, {**sms("Lead {#name#}", ["name"]), "channel": "push",
                                 "subject": "New lead", "dlt_template_id": None})
    listed = await (await client.get(TEMPLATES, headers=STAFF)).json()
    assert [t["id"] for t in listed["items"]] == [push["id"], made["id"]]
    only = await (await client.get(TEMPLATES, params={"channel": "push"},
                                   headers=STAFF)).json()
    assert [t["id"] for t in only["items"]] == [push["id"]]
    response = await client.put(f"{TEMPLATES}/{made['id']}", headers=STAFF,
                                json=sms("Lead {#name#} is yours.", ["name"], active=False))
    assert response.status == 200, await response.text()
    assert (await response.json())["body"] == "Lead {#name#} is yours."


async def test_a_refused_template_is_a_422_naming_each_field(client, services):
    problem = await create(client, sms("{#a#} {#b#}", ["a", "b"], dlt_template_id="1"),
                           status=422)
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"body", "dlt_template_id"}
    assert not await services.db.fetchval("SELECT count(*) FROM notifications_templates")


async def test_a_second_template_of_a_type_and_channel_is_a_409(client):
    await create(client, sms("Hi {#name#}", ["name"]))
    problem = await create(client, sms("Hello {#name#}", ["name"]), status=409)
    assert "already has an sms template" in problem["detail"]


async def test_templates_are_for_staff_only(client):
    assert (await client.get(TEMPLATES)).status == 401
    assert (await client.get(TEMPLATES, headers=USER)).status == 403
    response = await client.post(TEMPLATES, json=sms("Hi", []), headers=USER)
    assert response.status == 403
    missing = await client.get(f"{TEMPLATES}/{uuid.uuid4()}", headers=STAFF)
    assert missing.status == 404
    assert (await client.get(f"{TEMPLATES}/nope", headers=STAFF)).status == 422
    assert (await client.get(TEMPLATES, params={"cursor": "x"}, headers=STAFF)).status == 422


async def test_seeding_twice_adds_nothing(ctx):
    await seed.seed(ctx, 0.1)
    first = await store.template_keys(ctx.db)
    assert ("otp", "sms") in first and ("lead_assigned", "email") in first
    await seed.seed(ctx, 0.1)
    assert await ctx.db.fetchval("SELECT count(*) FROM notifications_templates") == len(first)
