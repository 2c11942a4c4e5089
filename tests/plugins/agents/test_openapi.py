"""The OpenAPI document with agents in it: valid, one declaration per path shape, and true to
what the routes answer (here, because the plugin is loaded explicitly, installed or not)."""

from __future__ import annotations

import collections
import re

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.plugins.agents.conftest import ME, agent_body, onboard


def conforms(doc: dict, schema: dict, instance: object) -> None:
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


async def test_the_document_describes_the_agents_routes(client, ctx, make_user, active_agent):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    validate(doc, cls=OpenAPIV31SpecValidator)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    shapes = collections.defaultdict(list)
    for path in doc["paths"]:
        shapes[re.sub(r"\{[^}]+\}", "{}", path)].append(path)
    assert [paths for paths in shapes.values() if len(paths) > 1] == []
    assert {ME, f"{ME}/registration", f"{ME}/holidays", f"{ME}/holidays/{{holiday_id}}",
            f"{ME}/listings", "/api/v1/agents", "/api/v1/agents/{agent_id}",
            "/api/v1/agents/{agent_id}/suspend", "/api/v1/agents/listings/{listing_id}/accept",
            "/api/v1/agents/projects/{project_id}/listings"} <= set(doc["paths"])
    mine = doc["paths"][ME]["get"]["responses"]
    response = await client.get(ME, headers=active_agent["user"].headers)
    conforms(doc, mine["200"]["content"]["application/json"]["schema"], await response.json())
    created = doc["paths"][ME]["post"]["responses"]
    assert {"201", "401", "403", "409", "422"} <= set(created)
    refused = await client.post(ME, json=agent_body(), headers=active_agent["user"].headers)
    conforms(doc, created["409"]["content"]["application/problem+json"]["schema"],
             await refused.json())
    conforms(doc, created["201"]["content"]["application/json"]["schema"],
             await onboard(client, await make_user("agent"),
                           registration={"state": "GJ", "number": "AG/GJ/AHMEDABAD/AA01234",
                                         "valid_from": "2025-01-01",
                                         "valid_until": "2029-12-31"}))
    # What the document states about the registration is what the server enforces.
    schemas = doc["components"]["schemas"]
    registration = next(s for name, s in schemas.items() if name.endswith("RegistrationIn"))
    assert registration["properties"]["number"]["maxLength"] == 60
    assert "MH" in registration["properties"]["state"]["enum"]
