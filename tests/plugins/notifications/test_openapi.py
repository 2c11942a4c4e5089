"""The OpenAPI document with notifications in it: valid, one declaration per path shape, and
true to what the routes answer."""

from __future__ import annotations

import collections
import re

import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.plugins.notifications.conftest import DLT_ID, STAFF, USER

TEMPLATES = "/api/v1/notifications/templates"
DEVICES = "/api/v1/notifications/devices"


def conforms(doc: dict, schema: dict, instance: object) -> None:
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


async def test_the_document_describes_the_notifications_routes(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    validate(doc, cls=OpenAPIV31SpecValidator)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    shapes = collections.defaultdict(list)
    for path in doc["paths"]:
        shapes[re.sub(r"\{[^}]+\}", "{}", path)].append(path)
    assert [paths for paths in shapes.values() if len(paths) > 1] == []
    assert {TEMPLATES, TEMPLATES + "/{template_id}", "/api/v1/notifications/preferences",
            "/api/v1/notifications/unsubscribe/{token}", DEVICES,
            DEVICES + "/{token}"} <= set(doc["paths"])
    create = doc["paths"][TEMPLATES]["post"]["responses"]
    assert {"201", "401", "403", "409", "422"} <= set(create)
    body = {"type": "otp", "channel": "sms", "category": "account", "kind": "critical",
            "body": "{#code#} is your code.", "variables": ["code"], "dlt_template_id": DLT_ID}
    schema = doc["paths"][TEMPLATES]["post"]["requestBody"]["content"]["application/json"]
    conforms(doc, schema["schema"], body)
    made = await client.post(TEMPLATES, json=body, headers=STAFF)
    conforms(doc, create["201"]["content"]["application/json"]["schema"], await made.json())
    refused = await client.post(TEMPLATES, json={**body, "dlt_template_id": "12"},
                                headers=STAFF)
    conforms(doc, create["422"]["content"]["application/problem+json"]["schema"],
             await refused.json(content_type="application/problem+json"))
    listing = doc["paths"][TEMPLATES]["get"]["responses"]["200"]["content"]
    conforms(doc, listing["application/json"]["schema"],
             await (await client.get(TEMPLATES, headers=STAFF)).json())
    prefs = doc["paths"]["/api/v1/notifications/preferences"]["get"]["responses"]["200"]
    conforms(doc, prefs["content"]["application/json"]["schema"], await (await client.get(
        "/api/v1/notifications/preferences", headers=USER)).json())
    page = doc["paths"]["/api/v1/notifications/unsubscribe/{token}"]["get"]["responses"]
    assert "text/html" in page["200"]["content"] and "404" in page


async def test_the_document_describes_the_device_routes(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    devices = doc["paths"][DEVICES]
    put = devices["put"]
    assert {"200", "401", "422"} <= set(put["responses"]) and "201" not in put["responses"]
    body = {"token": "fcm:APA91bHun4MxP5egoKMwt2KZ", "platform": "ios"}
    conforms(doc, put["requestBody"]["content"]["application/json"]["schema"], body)
    for bad in ({"token": "short", "platform": "ios"}, {"token": body["token"]},
                {**body, "platform": "symbian"}, {**body, "token": "has a space"}):
        with pytest.raises(ValidationError):
            conforms(doc, put["requestBody"]["content"]["application/json"]["schema"], bad)
    made = await client.put(DEVICES, json=body, headers=USER)
    assert made.status == 200
    conforms(doc, put["responses"]["200"]["content"]["application/json"]["schema"],
             await made.json())
    refused = await client.put(DEVICES, json={**body, "platform": "symbian"}, headers=USER)
    conforms(doc, put["responses"]["422"]["content"]["application/problem+json"]["schema"],
             await refused.json(content_type="application/problem+json"))
    listing = devices["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    conforms(doc, listing, await (await client.get(DEVICES, headers=USER)).json())
    delete = doc["paths"][DEVICES + "/{token}"]["delete"]
    assert {"204", "401", "404", "422"} <= set(delete["responses"])
    assert "content" not in delete["responses"]["204"]
    (param,) = delete["parameters"]
    assert param["in"] == "path" and param["schema"]["pattern"]
    gone = await client.delete(f"{DEVICES}/{body['token']}", headers=USER)
    assert gone.status == 204
    missing = await client.delete(f"{DEVICES}/{body['token']}", headers=USER)
    conforms(doc, delete["responses"]["404"]["content"]["application/problem+json"]["schema"],
             await missing.json(content_type="application/problem+json"))
