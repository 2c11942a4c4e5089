"""The OpenAPI document with bookings in it: valid, one declaration per path shape, and true to
what the routes answer (run here because the plugin is loaded explicitly, installed or not)."""

from __future__ import annotations

import collections
import re

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.plugins.bookings.conftest import HOLDS, hold


def conforms(doc: dict, schema: dict, instance: object) -> None:
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


async def test_the_document_describes_the_bookings_routes(client, buyer, make_user, units):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    validate(doc, cls=OpenAPIV31SpecValidator)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    shapes = collections.defaultdict(list)
    for path in doc["paths"]:
        shapes[re.sub(r"\{[^}]+\}", "{}", path)].append(path)
    assert [paths for paths in shapes.values() if len(paths) > 1] == []
    assert {"/api/v1/holds", "/api/v1/holds/{booking_id}", "/api/v1/holds/{booking_id}/extend",
            "/api/v1/bookings", "/api/v1/bookings/{booking_id}",
            "/api/v1/bookings/{booking_id}/cancel",
            "/api/v1/projects/{id}/booking-terms"} <= set(doc["paths"])
    created = doc["paths"][HOLDS]["post"]["responses"]
    assert {"201", "401", "409", "422", "503"} <= set(created)
    booking = await hold(client, buyer, units["A-101"])
    conforms(doc, created["201"]["content"]["application/json"]["schema"], booking)
    refused = await hold(client, await make_user(), units["A-101"], status=409)
    conforms(doc, created["409"]["content"]["application/problem+json"]["schema"], refused)
    terms = doc["paths"]["/api/v1/projects/{id}/booking-terms"]["get"]["responses"]["200"]
    response = await client.get(f"/api/v1/projects/{booking['project_id']}/booking-terms")
    conforms(doc, terms["content"]["application/json"]["schema"], await response.json())
