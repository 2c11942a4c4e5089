"""Structuring input (request bodies, query strings, configuration) into attrs classes,
collecting every bad field with its path."""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_mutable_sequence,
    is_sequence,
    list_structure_factory,
)
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)

from propmubi.errors import FieldError

__all__ = ["CONTROL_FREE_MULTILINE_PATTERN", "CONTROL_FREE_PATTERN", "INT_MAX", "INT_MIN",
           "JSON_SCHEMA_ATTR", "SPACE_CLASS", "InvalidInput",
           "json_converter", "json_schema", "not_blank", "query_converter", "structure_input",
           "unstructure", "valid_fields"]

#: The characters ``str.strip()`` removes (Python's whitespace) as the body of a regular
#: expression character class, in ``\\uXXXX`` escapes (read alike by ECMA-262, JSON Schema's
#: dialect, and Python): ``f"[^{SPACE_CLASS}]"`` is a character that is not blank.
SPACE_CLASS = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
#: JSON Schema patterns of text without control characters (C0, DEL, C1): one line, and a
#: free text that may also hold tabs and line breaks (``\n`` or ``\r\n``). A validator that
#: refuses them says so with ``@json_schema(pattern=...)``.
CONTROL_FREE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
CONTROL_FREE_MULTILINE_PATTERN = (r"^(?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\r]"
                                  r"|\r\n)*$")
#: The attribute of a validator holding the JSON Schema keywords it stands for (see
#: :func:`json_schema`); the OpenAPI generator reads it.
JSON_SCHEMA_ATTR = "__json_schema__"
_V = typing.TypeVar("_V")


def json_schema(**keywords: Any) -> typing.Callable[[_V], _V]:
    """Say which JSON Schema keywords a hand-written validator enforces, so that the OpenAPI
    document states what the server accepts::

        @json_schema(minimum=1, maximum=50)
        def _limit(instance, attribute, value): ...

    ``items`` (a schema) is merged into the items of an array field. Keep the keywords exactly
    as strict as the validator: a client generating data from the document must get no 422
    for a value the document allows.
    """

    def mark(validator: _V) -> _V:
        setattr(validator, JSON_SCHEMA_ATTR, keywords)
        return validator

    return mark


@json_schema(**{"x-not-blank": True})
def not_blank(instance: Any, attribute: Any, value: str | None) -> None:
    """Refuse a string of only whitespace (None passes: combine with ``optional``)."""
    if value is not None and not value.strip():
        raise ValueError("must not be blank")


_JSON_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean",
               type(None): "null", list: "array", dict: "object"}
# PostgreSQL's bigint; a larger integer would fail in the database as a 500.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _reject(expected: str, value: Any) -> ValueError:
    return ValueError(f"expected {expected}, got {_kind(value)}")


def _guard(check: Any, expected: str, make: Any, wrap_str: bool = False) -> Any:
    """A hook factory that checks the JSON shape before cattrs descends into a value: cattrs
    alone would iterate a string as a list of characters or read an int as an object."""

    def factory(tp: Any) -> Any:
        inner = make(tp)

        def hook(value: Any, _: Any) -> Any:
            if wrap_str and isinstance(value, str):
                value = [value]  # a query key given once for a list field
            elif not check(value):
                raise _reject(expected, value)
            return inner(value, tp)

        return hook

    return factory


def _base_converter(strict: bool) -> cattrs.Converter:
    """A converter for JSON bodies (``strict``: no coercion) or query/path strings (coercing)."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _str(value: Any, _: type) -> str:
        if isinstance(value, str):
            # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
            if "\x00" in value:
                raise ValueError("must not contain NUL (U+0000) characters")
            return value
        raise _reject("a string", value)

    def _int(value: Any, _: type) -> int:
        # JSON Schema's "integer" includes 17.0 (a number with no fractional part): take it,
        # as the OpenAPI document promises. A query string's digits are checked the same way.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif not strict and isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,19}", value):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if INT_MIN <= value <= INT_MAX:
                return value
            raise ValueError("expected an integer within the 64-bit range")
        raise _reject("an integer", value)

    def _float(value: Any, _: type) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if not strict and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if number == number and abs(number) != float("inf"):
                    return number
        raise _reject("a number", value)

    def _bool(value: Any, _: type) -> bool:
        if isinstance(value, bool):
            return value
        if not strict and value in ("true", "1", "false", "0"):
            return value in ("true", "1")
        raise _reject("a boolean", value)

    def _datetime(value: Any, _: type) -> dt.datetime:
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("expected an ISO 8601 date-time") from None
            if parsed.tzinfo is None:
                raise ValueError("expected a date-time with a UTC offset")
            try:
                return parsed.astimezone(dt.UTC)
            except OverflowError:  # year 1 or 9999 pushed out of range by its offset
                raise ValueError("expected a date-time within years 1-9999 in UTC") from None
        raise _reject("an ISO 8601 date-time string", value)

    def _date(value: Any, _: type) -> dt.date:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError("expected an ISO 8601 date (YYYY-MM-DD)") from None
        raise _reject("a date string", value)

    def _uuid(value: Any, _: type) -> uuid.UUID:
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                raise ValueError("expected a UUID") from None
        raise _reject("a UUID string", value)

    def _enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"must be one of {allowed}") from None

    conv.register_structure_hook(str, _str)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(dt.datetime, _datetime)
    conv.register_structure_hook(dt.date, _date)
    conv.register_structure_hook(uuid.UUID, _uuid)
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum)
    # Later registrations win: lists are matched before the wider sequence predicate.
    conv.register_structure_hook_factory(is_mapping, _guard(
        lambda v: isinstance(v, Mapping), "an object", conv.gen_structure_mapping))
    conv.register_structure_hook_factory(is_sequence, _guard(
        lambda v: isinstance(v, list), "an array",
        lambda t: homogenous_tuple_structure_factory(t, conv), wrap_str=not strict))
    conv.register_structure_hook_factory(is_mutable_sequence, _guard(
        lambda v: isinstance(v, list), "an array",
        lambda t: list_structure_factory(t, conv), wrap_str=not strict))
    conv.register_structure_hook_factory(attrs.has, _guard(
        lambda v: isinstance(v, Mapping), "an object", conv.gen_structure_attrs_fromdict))
    # Responses: orjson writes datetimes, UUIDs and enums itself.
    for passthrough in (dt.datetime, dt.date, uuid.UUID):
        conv.register_unstructure_hook(passthrough, lambda v: v)
    return conv


json_converter = _base_converter(strict=True)
query_converter = _base_converter(strict=False)


def unstructure(value: Any) -> Any:
    """Plain data for orjson from attrs instances (and lists/dicts of them)."""
    return json_converter.unstructure(value)


def _message(exc: BaseException) -> str:
    # attrs validators raise ValueError(message, attribute, ...): only the message is public.
    if exc.args and isinstance(exc.args[0], str) and exc.args[0]:
        return exc.args[0]
    return str(exc)


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, (ValueError, TypeError)) and str(exc):
        return _message(exc)
    name = getattr(type_, "__name__", str(type_))
    return f"invalid value, expected {name}"


def _join(path: str, name: Any) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else str(name)


def _type_errors(exc: BaseException, path: str, location: str, out: list[FieldError],
                 type_: Any = None) -> None:
    """Flatten cattrs' exception groups into field errors with dotted paths (``a.b[2].c``)."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            # A ClassValidationError's notes are AttributeValidationNotes (a field name), an
            # IterableValidationError's are IterableValidationNotes (an index).
            name = note.name if isinstance(note, AttributeValidationNote) else note.index
            _type_errors(inner, _join(path, name), location, out, note.type)
        for inner in without:
            _type_errors(inner, path, location, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        # Name each unknown key at its own path, nested ones included.
        for name in sorted(exc.extra_fields):
            out.append(FieldError(location, _join(path, name), "unknown field"))
    else:
        out.append(FieldError(location, path, _format(exc, type_)))


def _run_validator(field: Any, instance: Any, value: Any, where: str, location: str,
                   out: list[FieldError]) -> bool:
    """Run one field's validator; False (and an error recorded) when it refuses the value."""
    if field.validator is None:
        return True
    try:
        field.validator(instance, field, value)
    except (ValueError, TypeError) as exc:
        out.append(FieldError(location, where, _message(exc)))
        return False
    return True


def _validator_errors(obj: Any, path: str, location: str, out: list[FieldError]) -> None:
    """Run every attrs validator on its own, so one bad field does not hide the next."""
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        where = _join(path, field.name)
        if _run_validator(field, obj, value, where, location, out):
            _validate_nested(value, where, location, out)


def _validate_nested(value: Any, path: str, location: str, out: list[FieldError]) -> None:
    if attrs.has(type(value)):
        _validator_errors(value, path, location, out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _validate_nested(item, f"{path}[{i}]", location, out)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _validate_nested(item, _join(path, key), location, out)


class _Unfinished:
    """Stands in for an instance that could not be built: a validator reading a sibling field
    gets an AttributeError, which the partial pass ignores (the full pass will run it)."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _has_errors_under(path: str, bad: set[str]) -> bool:
    if not path:
        return bool(bad)
    return any(b == path or b.startswith((path + ".", path + "[")) for b in bad)


def _partial_constraints(data: Any, tp: Any, path: str, location: str,
                         converter: cattrs.Converter, bad: set[str], out: list[FieldError]
                         ) -> None:
    """After type errors, still check the constraints of every part that did type-check, so
    that one response lists all that is wrong rather than one round trip per kind of error."""
    if not _has_errors_under(path, bad):
        try:
            value = converter.structure(data, tp)
        except Exception:  # a part cattrs refuses alone; its type error is already listed
            return
        _validate_nested(value, path, location, out)
        return
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            tp, args = others[0], typing.get_args(others[0])
    origin = typing.get_origin(tp)
    if attrs.has(tp) and isinstance(data, Mapping):
        attrs.resolve_types(tp)
        unfinished = _Unfinished()
        for field in attrs.fields(tp):
            if field.name not in data:
                continue
            where = _join(path, field.name)
            if _has_errors_under(where, bad):
                _partial_constraints(data[field.name], field.type, where, location, converter,
                                     bad, out)
                continue
            try:
                value = converter.structure(data[field.name], field.type)
                valid = _run_validator(field, unfinished, value, where, location, out)
            except Exception:  # a validator that needs the whole instance; checked later
                continue
            if valid:
                _validate_nested(value, where, location, out)
    elif is_sequence(tp) and args and isinstance(data, list):
        for i, item in enumerate(data):
            _partial_constraints(item, args[0], f"{path}[{i}]", location, converter, bad, out)
    elif origin is not None and is_mapping(tp) and len(args) == 2 and isinstance(data, Mapping):
        for key, item in data.items():
            _partial_constraints(item, args[1], _join(path, key), location, converter, bad,
                                 out)


def structure_input(data: Any, cls: type, location: str, converter: cattrs.Converter
                    ) -> tuple[Any, list[FieldError]]:
    """Structure ``data`` into ``cls``; return the instance (or None) and every field error.

    Types are checked first (with attrs validators off, so all type errors are found at once);
    then each validator runs separately, so every failing constraint is reported too, also
    those of the parts that type-checked when others did not.
    """
    if attrs.has(cls) and not isinstance(data, Mapping):
        return None, [FieldError(location, "", f"expected an object, got {_kind(data)}")]
    with attrs.validators.disabled():
        try:
            obj: Any = converter.structure(data, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
            errors: list[FieldError] = []
            _type_errors(exc, "", location, errors)
            _partial_constraints(data, cls, "", location, converter,
                                 {e["field"] for e in errors}, errors)
            return None, errors
    errors = []
    _validate_nested(obj, "", location, errors)
    return (None, errors) if errors else (obj, [])


@attrs.frozen
class InvalidInput:
    """An input that did not validate, handed to code that checks more before answering (a
    route declared with ``partial_body=True``): every field error found so far, and the
    top-level fields that are valid on their own (typed as the input class holds them; only
    those given, no defaults), so that its own checks (against the database, say) run on them
    and one answer lists every problem."""

    errors: list[FieldError]
    valid: dict[str, Any]


def valid_fields(data: Any, cls: type, errors: Sequence[FieldError],
                 converter: cattrs.Converter) -> dict[str, Any]:
    """The top-level fields of ``data`` that ``errors`` do not name and that structure and
    pass their own validator alone (a validator that needs a sibling's value skips the
    field; see :class:`InvalidInput`)."""
    if not attrs.has(cls) or not isinstance(data, Mapping):
        return {}
    attrs.resolve_types(cls)
    bad = {e["field"] for e in errors}
    unfinished = _Unfinished()
    valid: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name not in data or _has_errors_under(field.name, bad):
            continue
        found: list[FieldError] = []
        try:
            with attrs.validators.disabled():
                value = converter.structure(data[field.name], field.type)
            if _run_validator(field, unfinished, value, field.name, "", found):
                _validate_nested(value, field.name, "", found)
        except Exception:  # refused alone, or a validator reading a sibling: not valid alone
            continue
        if not found:
            valid[field.name] = value
    return valid
