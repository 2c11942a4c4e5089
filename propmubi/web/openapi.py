"""OpenAPI 3.1 from the declared routes and their attrs classes."""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import re
import types
import typing
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from propmubi import __version__
from propmubi.errors import PROBLEM_BASE
from propmubi.web.auth import BEARER_SCHEME
from propmubi.web.routing import RouteSpec

__all__ = ["build_openapi", "schema_for"]

_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.date: {"type": "string", "format": "date"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    bytes: {"type": "string", "format": "binary"},  # a file part of a multipart form
    typing.Any: {},
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": [PROBLEM_BASE + "validation"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["in", "field", "message"],
            "properties": {"in": {"enum": ["body", "query", "path", "header"]},
                           "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


def _constraints(validator: Any, schema: dict[str, Any]) -> None:
    """Translate attrs' built-in validators into JSON Schema keywords (best effort)."""
    if validator is None:
        return
    for inner in getattr(validator, "_validators", ()):  # and_()
        _constraints(inner, schema)
    if hasattr(validator, "validator") and type(validator).__name__ == "_OptionalValidator":
        _constraints(validator.validator, schema)
    array = schema.get("type") == "array"
    if hasattr(validator, "max_length"):
        schema["maxItems" if array else "maxLength"] = validator.max_length
    if hasattr(validator, "min_length"):
        schema["minItems" if array else "minLength"] = validator.min_length
    if hasattr(validator, "compare_op"):
        keyword = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum",
                   ">=": "minimum"}.get(validator.compare_op)
        if keyword:
            schema[keyword] = validator.bound
    if hasattr(validator, "options") and isinstance(validator.options, (list, tuple, set,
                                                                        frozenset)):
        schema["enum"] = sorted(validator.options, key=str)
    if hasattr(validator, "pattern") and isinstance(validator.pattern, re.Pattern):
        # JSON Schema patterns search; attrs' matches_re matches the whole value by default.
        pattern = validator.pattern.pattern
        func = getattr(getattr(validator, "match_func", None), "__name__", "fullmatch")
        if func == "fullmatch":
            pattern = f"^(?:{pattern})$"
        elif func == "match":
            pattern = f"^(?:{pattern})"
        schema["pattern"] = pattern


class _Components(dict[str, Any]):
    """Component schemas, remembering which class got which name."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.names: dict[type, str] = {}


def _component_name(cls: type, components: dict[str, Any]) -> str:
    # Plugins name their classes independently: a second `NoteIn` (or a class called
    # `Problem`) must not silently take the first one's schema.
    names: dict[type, str] | None = getattr(components, "names", None)
    if names is None:
        return cls.__name__
    if cls in names:
        return names[cls]
    name = cls.__name__
    if name in components:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", f"{cls.__module__}.{cls.__qualname__}")
        name, n = base, 2
        while name in components:
            name, n = f"{base}_{n}", n + 1
    names[cls] = name
    return name


def schema_for(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a type, adding attrs classes to ``components`` and referring to them."""
    if tp in _SIMPLE:
        return dict(_SIMPLE[tp])
    if tp is None or tp is type(None):
        return {"type": "null"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [schema_for(a, components) for a in args]
        return {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset, Sequence):
        item = args[0] if args else typing.Any
        return {"type": "array", "items": schema_for(item, components)}
    if origin is dict:
        value = args[1] if len(args) == 2 else typing.Any
        return {"type": "object", "additionalProperties": schema_for(value, components)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if attrs.has(tp):
        name = _component_name(tp, components)
        if name not in components:
            components[name] = {}  # placeholder first: classes may refer to themselves
            components[name] = _object_schema(tp, components)
        return {"$ref": f"#/components/schemas/{name}"}
    return {}


def _default(field: Any, schema: dict[str, Any]) -> None:
    default = field.default
    if isinstance(default, enum.Enum):
        default = default.value
    # An attrs.Factory (a computed default) is none of these, so it shows no default.
    if isinstance(default, (str, int, float, bool, type(None))):
        schema["default"] = default


def _object_schema(cls: type, components: dict[str, Any]) -> dict[str, Any]:
    attrs.resolve_types(cls)
    properties = {}
    required = []
    for field in attrs.fields(cls):
        schema = schema_for(field.type, components)
        _constraints(field.validator, schema)
        if field.metadata.get("description"):
            schema["description"] = field.metadata["description"]
        if field.default is attrs.NOTHING:
            required.append(field.name)
        else:
            _default(field, schema)
        properties[field.name] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "additionalProperties": False}
    if cls.__doc__:
        # The first paragraph, which may wrap over several lines.
        out["description"] = " ".join(
            inspect.cleandoc(cls.__doc__).split("\n\n")[0].split())
    if required:
        out["required"] = required
    return out


def _parameters(cls: type | None, where: str, components: dict[str, Any]
                ) -> list[dict[str, Any]]:
    if cls is None:
        return []
    attrs.resolve_types(cls)
    out = []
    for field in attrs.fields(cls):
        schema = schema_for(field.type, components)
        _constraints(field.validator, schema)
        if field.default is not attrs.NOTHING:
            _default(field, schema)
        param = {"name": field.name, "in": where,
                 "required": where == "path" or field.default is attrs.NOTHING,
                 "schema": schema}
        if field.metadata.get("description"):
            param["description"] = field.metadata["description"]
        if schema.get("type") == "array":
            param["explode"] = True
        out.append(param)
    return out


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}


def _operation(spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": spec.name, "responses": {}}
    if spec.summary:
        op["summary"] = spec.summary
    if spec.description and spec.description != spec.summary:
        op["description"] = spec.description
    if spec.tags:
        op["tags"] = list(spec.tags)
    params = _parameters(spec.params, "path", components) + _parameters(spec.query, "query",
                                                                        components)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schema_for(spec.body, components)}}}
    elif spec.form is not None:
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": schema_for(spec.form, components)}}}
    ok: dict[str, Any] = {"description": "Success"}
    if spec.status != 204:
        media = spec.content_type or "application/json"
        ok["content"] = {media: {"schema": schema_for(spec.response, components)
                                 if spec.response is not None else {}}}
    op["responses"][str(spec.status)] = ok
    if spec.body is not None:
        op["responses"]["400"] = _problem("Malformed JSON")
        op["responses"]["413"] = _problem("Body too large")
        op["responses"]["415"] = _problem("Not JSON")
    if spec.body is not None or spec.query is not None or spec.params is not None:
        op["responses"]["422"] = _problem("Invalid input; `errors` lists every bad field")
    if spec.rate_limit is not False and (spec.rate_limit or spec.path.startswith("/api/")):
        op["responses"]["429"] = _problem("Rate limited; see Retry-After")
    if spec.roles is not None:
        op["security"] = [{BEARER_SCHEME: []}]
        op["responses"]["401"] = _problem("No valid access token")
        op["responses"]["403"] = _problem("Lacks the role: " + ", ".join(spec.roles))
    for status in spec.errors:
        op["responses"][str(status)] = _problem("See the problem type")
    op["responses"]["default"] = _problem("Error")
    return op


def build_openapi(specs: Sequence[RouteSpec], title: str = "Propmubi API") -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``specs`` (only ``/api`` routes are public API)."""
    components: dict[str, Any] = _Components({"Problem": PROBLEM_SCHEMA})
    paths: dict[str, dict[str, Any]] = {}
    secured = False
    for spec in sorted(specs, key=lambda s: (s.path, s.method)):
        if not spec.path.startswith("/api/"):
            continue
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, components)
        secured = secured or spec.roles is not None
    document_components: dict[str, Any] = {"schemas": dict(components)}
    if secured:
        document_components["securitySchemes"] = {BEARER_SCHEME: {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token from POST /api/v1/auth/otp/verify or /refresh."}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": paths,
        "components": document_components,
    }
