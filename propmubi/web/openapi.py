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
from propmubi.validation import INT_MAX, INT_MIN, JSON_SCHEMA_ATTR, SPACE_CLASS
from propmubi.web.auth import BEARER_SCHEME
from propmubi.web.idempotency import HEADER as IDEMPOTENCY_HEADER
from propmubi.web.idempotency import REPLAYED_HEADER
from propmubi.web.routing import RouteSpec

__all__ = ["build_openapi", "schema_for"]

#: Every text field, unless a pattern of its own says so: PostgreSQL text cannot hold NUL,
#: so the server refuses it.
NO_NUL = "^[^\\u0000]*$"
#: A text with ``not_blank``: at least one character that is not whitespace.
NOT_BLANK = f"[^{SPACE_CLASS}]"
# While a field's validators are read, its patterns are collected under these keys (then
# :func:`_finish_text` writes them as one pattern where it can: one generates far better).
_PATTERNS, _NOT_BLANK = "x-patterns", "x-not-blank"
# A pattern made of one repeated atom: "any character but C" (and perhaps "or CRLF").
_REPEATED = re.compile(r"\^(\[\^([^\]]*)\]|\(\?:\[\^([^\]]*)\]\|\\r\\n\))\*\$")
_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    # PostgreSQL's bigint: the server refuses (422) what it cannot store.
    int: {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
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


_COMPARE = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum", ">=": "minimum"}


def _kind(tp: Any) -> str | None:
    """The JSON type a field's value takes, ``None`` aside ("string", "array", ...)."""
    tp = _without_none(tp)
    if typing.get_origin(tp) in (list, tuple, set, frozenset, Sequence):
        return "array"
    kind: str | None = _SIMPLE.get(tp, {}).get("type")
    return kind


def _without_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _is_texts(tp: Any) -> bool:
    """A list of texts (whose items get the text rules)."""
    tp = _without_none(tp)
    args = typing.get_args(tp)
    return typing.get_origin(tp) in (list, tuple, set, frozenset, Sequence) and args[:1] == (str,)


def _add_pattern(schema: dict[str, Any], pattern: str) -> None:
    patterns = schema.setdefault(_PATTERNS, [])
    if pattern not in patterns:
        patterns.append(pattern)


def _finish_text(schema: dict[str, Any], text: bool) -> None:
    """Write the collected patterns of a text (``text``: a ``str`` field) or of a list of
    texts' items: no NUL unless a pattern already deals with it, not blank folded into a
    repeated-atom pattern where there is one; a second pattern goes into ``allOf``."""
    holders = [schema, *schema.get("anyOf", ())]  # a list, or a list or null
    items = next((h["items"] for h in holders if isinstance(h.get("items"), dict)), None)
    if items is not None and (text or _PATTERNS in items or _NOT_BLANK in items):
        _finish_text(items, text)
        text = False
    patterns: list[str] = schema.pop(_PATTERNS, [])
    not_blank = schema.pop(_NOT_BLANK, False)
    if not text and not patterns and not not_blank:
        return
    if text and "enum" not in schema and not any("\\u0000" in p for p in patterns):
        patterns.append(NO_NUL)
    if not_blank:
        for i, pattern in enumerate(patterns):
            found = _REPEATED.fullmatch(pattern)
            if found:
                chars = found.group(2) if found.group(2) is not None else found.group(3)
                atom = found.group(1)
                patterns[i] = f"^{atom}*[^{chars}{SPACE_CLASS}]{atom}*$"
                break
        else:
            patterns.append(NOT_BLANK)
    if patterns:
        schema["pattern"] = patterns[0]
    if patterns[1:]:
        schema["allOf"] = [{"pattern": p} for p in patterns[1:]]


def _merge(schema: dict[str, Any], keywords: dict[str, Any]) -> None:
    for key, value in keywords.items():
        if key == _NOT_BLANK:
            schema[_NOT_BLANK] = True
        elif key == "pattern":
            _add_pattern(schema, value)
        elif key == "items" and isinstance(value, dict):
            # Into the array's own items (the array branch of a list-or-null), copied: the
            # keywords are shared by every schema of this validator.
            holder = next((h for h in (schema, *schema.get("anyOf", ()))
                           if isinstance(h.get("items"), dict)), schema)
            holder["items"] = items = dict(holder.get("items", {}))
            _merge(items, value)
        else:
            schema[key] = value


def _constraints(validator: Any, schema: dict[str, Any], kind: str | None = None,
                 optional: bool = False) -> None:
    """Translate a field's validators into JSON Schema keywords: attrs' own (``min_len``,
    ``max_len``, ``in_``, ``lt``/``le``/``ge``/``gt``, ``matches_re``, ``optional``,
    ``and_``) and those marked with :func:`propmubi.validation.json_schema`. ``kind`` is the
    field's JSON type (a length is ``minLength`` or ``minItems``); ``optional`` lets null
    through an ``enum``. Type-specific keywords sit beside an ``anyOf`` with null: they do not
    apply to null."""
    if validator is None:
        return
    hinted = getattr(validator, JSON_SCHEMA_ATTR, None)
    if isinstance(hinted, dict):
        _merge(schema, hinted)
        return
    for inner in getattr(validator, "_validators", ()):  # and_()
        _constraints(inner, schema, kind, optional)
    if hasattr(validator, "validator") and type(validator).__name__ == "_OptionalValidator":
        _constraints(validator.validator, schema, kind, optional=True)
    array = (kind or schema.get("type")) == "array"
    if hasattr(validator, "max_length"):
        schema["maxItems" if array else "maxLength"] = validator.max_length
    if hasattr(validator, "min_length"):
        schema["minItems" if array else "minLength"] = validator.min_length
    if hasattr(validator, "compare_op"):
        keyword = _COMPARE.get(validator.compare_op)
        if keyword:
            schema[keyword] = validator.bound
            # A bound of its own replaces the 64-bit range an integer starts with.
            plain = keyword.removeprefix("exclusive").lower()
            if plain != keyword and schema.get(plain) in (INT_MIN, INT_MAX):
                del schema[plain]
    if hasattr(validator, "options") and isinstance(validator.options, (list, tuple, set,
                                                                        frozenset)):
        schema["enum"] = sorted(validator.options, key=str) + ([None] if optional else [])
    if hasattr(validator, "pattern") and isinstance(validator.pattern, re.Pattern):
        # JSON Schema patterns search; attrs' matches_re matches the whole value by default.
        pattern = validator.pattern.pattern
        func = getattr(getattr(validator, "match_func", None), "__name__", "fullmatch")
        if func == "fullmatch":
            pattern = f"^(?:{pattern})$"
        elif func == "match":
            pattern = f"^(?:{pattern})"
        _add_pattern(schema, pattern)


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
        _constraints(field.validator, schema, _kind(field.type))
        _finish_text(schema, _without_none(field.type) is str or _is_texts(field.type))
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
    hinted = getattr(cls, JSON_SCHEMA_ATTR, None)  # a rule across fields (json_schema)
    if isinstance(hinted, dict):
        out.update(hinted)
    return out


def _parameters(cls: type | None, where: str, components: dict[str, Any]
                ) -> list[dict[str, Any]]:
    if cls is None:
        return []
    attrs.resolve_types(cls)
    out = []
    for field in attrs.fields(cls):
        # A query or path value is never null: `X | None = None` only means "may be absent".
        tp = _without_none(field.type)
        schema = schema_for(tp, components)
        _constraints(field.validator, schema, _kind(tp))
        _finish_text(schema, tp is str or _is_texts(tp))
        if field.default is not attrs.NOTHING and field.default is not None:
            _default(field, schema)
        if None in schema.get("enum", ()):
            schema["enum"] = [e for e in schema["enum"] if e is not None]
        param = {"name": field.name, "in": where,
                 "required": where == "path" or field.default is attrs.NOTHING,
                 "schema": schema}
        if field.metadata.get("description"):
            param["description"] = field.metadata["description"]
        if schema.get("type") == "array":
            param["explode"] = True
        out.append(param)
    return out


def _form_schema(cls: type, components: dict[str, Any]) -> dict[str, Any]:
    """A multipart form's schema: a part is text or a file, never null (``X | None = None``
    only means it may be left out)."""
    ref = schema_for(cls, components)
    schema = components[ref["$ref"].rsplit("/", 1)[1]]
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if options and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            prop.pop("anyOf")
            if prop.get("default", 0) is None:
                prop.pop("default")
            schema["properties"][name] = {**rest[0], **prop} if len(rest) == 1 else {
                "anyOf": rest, **prop}
    return ref


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}


#: The ``Idempotency-Key`` header parameter of an ``idempotent=True`` route.
IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
    "description": "Makes a retry safe: a request repeated with the same key (same method, "
                   "path, query and body) gets the first answer again instead of running "
                   "twice; answers are kept for [http] idempotency_ttl (24 h by default). "
                   "Not kept: 5xx and 429, after which the key may be used again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[\\x21-\\x7E]+$"},
}


def _also(op: dict[str, Any], status: str, description: str) -> None:
    """Document ``status`` as a problem, adding ``description`` to one already listed."""
    current = op["responses"].get(status)
    if current is not None:
        description = f"{current['description']}; or: {description}"
    op["responses"][status] = _problem(description)


def _idempotency(op: dict[str, Any], ok: dict[str, Any]) -> None:
    """The ``Idempotency-Key`` parameter, the replay header and the answers it adds."""
    op.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
    ok["headers"] = {REPLAYED_HEADER: {
        "description": "`true` when this is the stored answer to an earlier request with the "
                       "same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]}}}
    _also(op, "400", "Bad Idempotency-Key header")
    _also(op, "409", "A request with this Idempotency-Key is still in progress; see "
                     "Retry-After")
    op["responses"]["409"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    _also(op, "422", "The Idempotency-Key was used for a different request")


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
            "multipart/form-data": {"schema": _form_schema(spec.form, components)}}}
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
    if spec.idempotent:
        _idempotency(op, ok)
    # Every status a route answers is listed above, so a client (and schemathesis' status
    # code check) can rely on them; a 5xx is a server fault or a backing service down (503)
    # or too slow (504), never an answer to the input.
    op["responses"]["5XX"] = _problem("Server error: internal (500), a backing service "
                                      "unavailable (503) or the request timed out (504)")
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
