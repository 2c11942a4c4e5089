"""Structuring input (request bodies, query strings, configuration) into attrs classes,
collecting every bad field with its path."""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from propmubi.errors import FieldError

__all__ = ["json_converter", "query_converter", "structure_input", "unstructure"]


def _reject(expected: str, value: Any) -> ValueError:
    return ValueError(f"expected {expected}, got {type(value).__name__}")


def _base_converter(strict: bool) -> cattrs.Converter:
    """A converter for JSON bodies (``strict``: no coercion) or query/path strings (coercing)."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _str(value: Any, _: type) -> str:
        if isinstance(value, str):
            return value
        raise _reject("a string", value)

    def _int(value: Any, _: type) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not strict and isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value):
            return int(value)
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
            return parsed.astimezone(dt.UTC)
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
    # Responses: orjson writes datetimes, UUIDs and enums itself.
    for passthrough in (dt.datetime, dt.date, uuid.UUID):
        conv.register_unstructure_hook(passthrough, lambda v: v)
    return conv


json_converter = _base_converter(strict=True)
query_converter = _base_converter(strict=False)


def unstructure(value: Any) -> Any:
    """Plain data for orjson from attrs instances (and lists/dicts of them)."""
    return json_converter.unstructure(value)


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s): {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, (ValueError, TypeError)) and str(exc):
        return str(exc)
    name = getattr(type_, "__name__", str(type_))
    return f"invalid value, expected {name}"


def _json_path_to_field(path: str) -> str:
    return path[1:].lstrip(".") if path.startswith("$") else path


def _type_errors(exc: BaseException, location: str) -> list[FieldError]:
    out = []
    for message in cattrs.transform_error(exc, path="$", format_exception=_format):
        reason, _, path = message.rpartition(" @ ")
        field = _json_path_to_field(path)
        if reason.startswith("unknown field(s): ") and not field:
            for name in reason.removeprefix("unknown field(s): ").split(", "):
                out.append(FieldError(location, name, "unknown field"))
            continue
        out.append(FieldError(location, field, reason))
    return out


def _validator_errors(obj: Any, path: str, location: str, out: list[FieldError]) -> None:
    """Run every attrs validator on its own, so one bad field does not hide the next."""
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        where = f"{path}.{field.name}" if path else field.name
        if field.validator is not None:
            try:
                field.validator(obj, field, value)
            except (ValueError, TypeError) as exc:
                out.append(FieldError(location, where, str(exc)))
                continue
        _validate_nested(value, where, location, out)


def _validate_nested(value: Any, path: str, location: str, out: list[FieldError]) -> None:
    if attrs.has(type(value)):
        _validator_errors(value, path, location, out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _validate_nested(item, f"{path}[{i}]", location, out)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _validate_nested(item, f"{path}.{key}", location, out)


def structure_input(data: Any, cls: type, location: str, converter: cattrs.Converter
                    ) -> tuple[Any, list[FieldError]]:
    """Structure ``data`` into ``cls``; return the instance (or None) and every field error.

    Types are checked first (with attrs validators off, so all type errors are found at once);
    then each validator runs separately, so every failing constraint is reported too.
    """
    if attrs.has(cls) and not isinstance(data, Mapping):
        return None, [FieldError(location, "", f"expected an object, got {type(data).__name__}")]
    with attrs.validators.disabled():
        try:
            obj = converter.structure(data, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
            return None, _type_errors(exc, location)
    errors: list[FieldError] = []
    _validate_nested(obj, "", location, errors)
    return (None, errors) if errors else (obj, [])
