"""The OpenAPI document is the contract: schemathesis drives a live server with data generated
from it (valid and invalid, deterministic, bounded), with and without a builder's token, and
runs every check it has on every response: no server error, and every status, content type,
header and body as documented; valid data accepted, invalid data refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.contract.conftest import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Examples per operation in the fuzzing phase (positive and negative data); the examples and
#: coverage phases add their own deterministic cases. Bounds the run to a minute or two.
MAX_EXAMPLES = 50

#: Schema-valid requests the server rightly refuses, for rules that are not a property of one
#: value a JSON Schema can state: (status, where, field, words of the message). Positive data
#: refused only for these is not a mismatch; every other check, and every other refusal, stays.
NOT_EXPRESSIBLE = [
    # Opaque page cursors: only a `next_cursor` the server handed out is one.
    (422, "query", "cursor", ""),
    # A phone number must exist in its country's numbering plan (libphonenumber).
    (422, "body", "phone", ""),
    # A polygon needs three distinct vertices, each within range: beyond a regular expression.
    (422, "query", "polygon", ""),
    # References to rows that do not exist (generated UUIDs): the input is well formed.
    (422, "body", "builder_id", "no such builder"),
    # Rules across fields, or on the state of other rows.
    (422, "body", "super_area_sqft", "at least the carpet area"),
    (422, "body", "floor", "the tower has"),
    (422, "body", "currency", "the project's prices are in"),
    # A code or tower name in use: a 409 alone, listed with the rest in a 422 otherwise.
    (422, "body", "code", "the tower already has a unit"),
    (422, "body", "name", "the project already has a tower"),
    (422, "body", "floors", "a unit of this tower is on floor"),
    (422, "query", "lat", "go together"),  # a circle needs lat, lng and radius_km
    (422, "query", "lng", "go together"),
    (422, "query", "radius_km", "go together"),
    (422, "body", "rera_number", "required for builders"),  # depends on the path's role
    (422, "body", "document_number", ""),  # its format depends on document_kind
    (422, "body", "towers", "add at least one tower"),  # submitting a project not ready
    (422, "body", "units", "add at least one unit"),
    (422, "body", "photos", "upload at least one photo"),
    (422, "body", "name", "printable"),  # str.isprintable(): Unicode categories, no pattern
    # An upload's bytes must be an image (the document can only say "binary").
    (415, None, None, "not a JPEG, PNG or WebP image"),
    (422, "body", "file", "the file is empty"),
    # The CSV import reads a text/csv body the route declaration cannot describe yet.
    (415, None, None, "expected Content-Type: text/csv"),
    # Booking terms: a fixed amount or a percentage, each with its own field.
    (422, "body", "amount_minor", "booking amount"),
    (422, "body", "amount_bps", "leave"),
    (422, "body", "amount_bps", "booking amount"),
    (422, "body", "unit_id", "no such unit"),
    # An Idempotency-Key reused with another request (schemathesis repeats header values).
    (422, None, None, "Idempotency-Key was used with a different request"),
    # A provider's webhook is only valid with its HMAC signature over the exact body bytes.
    (400, None, None, "Signature"),
    # Agents, CRM, notifications: rules across fields, or on other rows.
    (422, "body", "ends_on", "ends on or after"),  # a holiday's end against its start
    (422, "body", "ends_on", "lasts at most"),
    (422, "body", "valid_until", "must end after it starts"),
    (422, "query", "to", "after from"),
    (422, "query", "to", "at most 30 days"),  # the span from `from`
    (422, "body", "rating", "Rate only a visit that happened"),  # depends on `attended`
    (422, "body", "project_id", "No such project"),
]
#: Routes that answer a person's browser with an HTML page, which a route declaration
#: cannot describe yet (the document says JSON): the signed unsubscribe link.
HTML_PAGES = ("/api/v1/notifications/unsubscribe/",)


def _explained(status: int, problem: dict[str, Any]) -> bool:
    errors = problem.get("errors") or [{}]
    return all(any(status == want and e.get("in") == where and e.get("field") == field
                   and words in (e.get("message") or problem.get("detail") or "")
                   for want, where, field, words in NOT_EXPRESSIBLE) for e in errors)


def _shadowed(doc: dict[str, Any], label: str, message: str) -> bool:
    """An undeclared method on a concrete path that a templated sibling declares: OpenAPI
    matches the concrete path first (so expects 405), aiohttp falls through to the template
    (`PATCH /projects/feed` is `PATCH /projects/{id}` with the id "feed": 401, or 422 for a
    bad id). Only that case is excused."""
    path = label.partition(" ")[2]
    method = message.removeprefix("Unsupported method ").partition(" ")[0].lower()
    for other, operations in doc["paths"].items():
        if "{" in other and method in operations:
            pattern = [p if not p.startswith("{") else None for p in other.split("/")]
            parts = path.split("/")
            if len(parts) == len(pattern) and all(
                    want is None or want == part for want, part in zip(pattern, parts,
                                                                       strict=True)):
                return True
    return False


def _exempt(check: Any, recorder: Any, case_id: str, doc: dict[str, Any], label: str) -> bool:
    """A failure explained above (:data:`NOT_EXPRESSIBLE`, :func:`_shadowed`)."""
    if check.name == "unsupported_method" and check.failure_info is not None:
        return _shadowed(doc, label, check.failure_info.failure.message)
    if check.name == "content_type_conformance":
        interaction = recorder.interactions.get(case_id)
        url = interaction.request.uri if interaction is not None else ""
        return any(page in url for page in HTML_PAGES)
    if check.name != "positive_data_acceptance":
        return False
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    if response is None or response.status_code not in (400, 415, 422):
        return False
    return _explained(response.status_code, orjson.loads(response.content))


def _answer(recorder: Any, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    if response is None:
        return "no response"
    return f"{response.status_code} {response.content[:400]!r}"


def _run(server: LiveServer, headers: dict[str, str]) -> tuple[list[str], list[str]]:
    """Every phase over every operation: (server errors, other failed checks and errors)."""
    config = schemathesis.Config.from_dict({
        "seed": 20261204,
        "headers": headers,
        "cache": {"enabled": False},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": True},
    })
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json", config=config)
    schema.config.update(base_url=server.base_url.removesuffix("/api/v1"))
    server_errors: list[str] = []
    failures: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.SUCCESS or _exempt(
                            check, event.recorder, case_id, schema.raw_schema, event.label):
                        continue
                    info = check.failure_info
                    text = (f"{event.label} [{check.name}] {info.failure.title}: "
                            f"{info.failure.message}\n    {info.code_sample}"
                            f"\n    -> {_answer(event.recorder, case_id)}"
                            if info is not None else f"{event.label} [{check.name}] crashed")
                    (server_errors if check.name == "not_a_server_error" else failures
                     ).append(text)
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            failures.append(f"the run stopped: {event.exception!r}")
    return sorted(set(server_errors)), sorted(set(failures))


def _verdict(server_errors: list[str], failures: list[str]) -> str:
    return (f"{len(server_errors)} server errors, {len(failures)} conformance failures\n"
            + "\n".join(server_errors + failures))


def test_anonymous_callers_get_what_the_document_promises(live_server: LiveServer) -> None:
    server_errors, failures = _run(live_server, {})
    assert not server_errors and not failures, _verdict(server_errors, failures)


def test_a_builder_gets_what_the_document_promises(live_server: LiveServer) -> None:
    server_errors, failures = _run(live_server, {"Authorization": f"Bearer {live_server.token}"})
    assert not server_errors and not failures, _verdict(server_errors, failures)
