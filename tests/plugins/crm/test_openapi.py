"""The OpenAPI document with the CRM in it: valid, one declaration per path shape, and true to
what the CRM's routes answer."""

from __future__ import annotations

import collections
import re

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.plugins.crm.conftest import ENQUIRIES, LEADS, add_agent, enquiry, send


def conforms(doc: dict, schema: dict, instance: object) -> None:
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


def answer_schema(doc: dict, path: str, method: str, status: str,
                  kind: str = "application/json") -> dict:
    return doc["paths"][path][method]["responses"][status]["content"][kind]["schema"]


async def test_the_document_describes_the_crm_routes(client, ctx, buyer, staff, make_user,
                                                     project):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    validate(doc, cls=OpenAPIV31SpecValidator)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    shapes = collections.defaultdict(list)
    for path in doc["paths"]:
        shapes[re.sub(r"\{[^}]+\}", "{}", path)].append(path)
    assert [paths for paths in shapes.values() if len(paths) > 1] == []
    lead_path = f"{LEADS}/{{lead_id}}"
    assert {ENQUIRIES, "/api/v1/crm/partner-leads", LEADS, lead_path, f"{lead_path}/stage",
            f"{lead_path}/reassign", "/api/v1/crm/my/leads", "/api/v1/crm/stages"
            } <= set(doc["paths"])
    assert {"202", "401", "422", "429"} <= set(doc["paths"][ENQUIRIES]["post"]["responses"])

    advisor = await make_user("agent")
    await add_agent(ctx, user_id=advisor.id)
    ack = await send(client, buyer, enquiry(project))
    conforms(doc, answer_schema(doc, ENQUIRIES, "post", "202"), ack)
    refused = await send(client, buyer, enquiry(project, phone="nope"), status=422)
    conforms(doc, answer_schema(doc, ENQUIRIES, "post", "422", "application/problem+json"),
             refused)
    page = await (await client.get(LEADS, headers=staff.headers)).json()
    conforms(doc, answer_schema(doc, LEADS, "get", "200"), page)
    url = f"{LEADS}/{ack['lead_id']}"
    detail = await (await client.get(url, headers=advisor.headers)).json()
    conforms(doc, answer_schema(doc, lead_path, "get", "200"), detail)
    moved = await client.post(f"{url}/stage", json={"stage": "contacted"},
                              headers=advisor.headers)
    conforms(doc, answer_schema(doc, f"{lead_path}/stage", "post", "200"), await moved.json())
    stages = await (await client.get("/api/v1/crm/stages", headers=buyer.headers)).json()
    conforms(doc, answer_schema(doc, "/api/v1/crm/stages", "get", "200"), stages)
    assert [s["key"] for s in stages][:2] == ["new", "contacted"]


async def test_the_document_describes_the_visit_routes(client, ctx, clock, buyer, make_user,
                                                       project):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    crm = "/api/v1/crm"
    visit_path = f"{crm}/visits/{{visit_id}}"
    slots_path = f"{crm}/projects/{{project_id}}/visit-slots"
    book_path = f"{LEADS}/{{lead_id}}/visits"
    assert {slots_path, book_path, visit_path, f"{visit_path}/reschedule",
            f"{visit_path}/cancel", f"{visit_path}/feedback", f"{crm}/my/visits"
            } <= set(doc["paths"])
    assert {p["name"] for p in doc["paths"][slots_path]["get"]["parameters"]} >= {
        "project_id", "from", "to"}
    assert {"201", "404", "409", "422"} <= set(doc["paths"][book_path]["post"]["responses"])

    advisor = await make_user("agent")
    await add_agent(ctx, user_id=advisor.id)
    ack = await send(client, buyer, enquiry(project))
    slots = await (await client.get(slots_path.replace("{project_id}", str(project["id"])),
                                     headers=buyer.headers)).json()
    conforms(doc, answer_schema(doc, slots_path, "get", "200"), slots)
    booked = await client.post(f"{LEADS}/{ack['lead_id']}/visits",
                               json={"starts_at": slots[0]["starts_at"]}, headers=buyer.headers)
    visit = await booked.json()
    assert booked.status == 201, visit
    conforms(doc, answer_schema(doc, book_path, "post", "201"), visit)
    detail = await (await client.get(f"{crm}/visits/{visit['id']}",
                                     headers=advisor.headers)).json()
    conforms(doc, answer_schema(doc, visit_path, "get", "200"), detail)
    page = await (await client.get(f"{crm}/my/visits", headers=advisor.headers)).json()
    conforms(doc, answer_schema(doc, f"{crm}/my/visits", "get", "200"), page)
    full = await client.post(f"{LEADS}/{ack['lead_id']}/visits",
                             json={"starts_at": slots[0]["starts_at"]}, headers=buyer.headers)
    assert full.status == 409
    conforms(doc, answer_schema(doc, book_path, "post", "409", "application/problem+json"),
             await full.json())
