"""Console forms, validated like API bodies: an attrs class, structured by cattrs.

    @attrs.frozen
    class RejectForm:
        reason: str = attrs.field(validator=attrs.validators.min_len(3))

    form, errors = await read_form(request, RejectForm)
    if errors:
        return render("kyc/detail.html", request, {..., "errors": errors}, status=422)

An empty text box is an absent field (the class's default applies), except in a text field
the class requires and validates: its validator gets the empty text and says what to give.

Field errors have the API's shape (``{"in": "form", "field": ..., "message": ...}``); templates
show each next to its field with the ``field_error`` macro of ``macros.html``, and the page
answers 422 so that a script or a test sees the form was refused.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
from aiohttp import web

from propmubi.console.sessions import CSRF_FIELD
from propmubi.errors import FieldError
from propmubi.validation import query_converter, structure_input

__all__ = ["FormErrors", "read_form"]

T = TypeVar("T", bound=attrs.AttrsInstance)  # a form is an attrs class


class FormErrors(list[FieldError]):
    """A form's field errors, with a lookup by field name for templates."""

    def of(self, field: str) -> str | None:
        """The first message about ``field``, or None."""
        return next((e["message"] for e in self if e["field"] == field), None)


def _data(form: Any, cls: type) -> dict[str, Any]:
    fields = attrs.fields_dict(cls)
    data: dict[str, Any] = {}
    for key in set(form.keys()) - {CSRF_FIELD}:  # the token is the console shell's check
        if key not in fields:
            continue  # buttons and fields of other forms on the page
        values = [v for v in form.getall(key) if isinstance(v, str)]
        if _is_list(fields[key].type):
            data[key] = [v for v in values if v.strip()]
        elif values and values[-1].strip():
            data[key] = values[-1].strip()
        elif values and _validated_required_text(fields[key]):
            data[key] = ""  # its validator says what to give ("Give the reason.")
        # Otherwise an empty text box is an absent field: the default applies, or "required".
    for name, field in fields.items():
        # An unticked checkbox sends nothing: a bool field without a value is False.
        if field.type in (bool, "bool") and name not in data:
            data[name] = "false"
    return data


def _validated_required_text(field: Any) -> bool:
    """A text field without a default whose validator judges an empty value: the API class
    requires it (as the OpenAPI document says), the form shows the validator's words."""
    return (field.default is attrs.NOTHING and field.validator is not None
            and field.type in (str, "str"))


def _is_list(tp: Any) -> bool:
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    return str(text).startswith(("list", "tuple")) or "list[" in str(tp)


async def read_form(request: web.Request, cls: type[T]) -> tuple[T | None, FormErrors]:
    """Structure the posted form into ``cls``.

    :returns: the instance and no errors, or None and every field error (all of them, as the
        API reports them).
    """
    attrs.resolve_types(cls)
    form = await request.post()
    obj, errors = structure_input(_data(form, cls), cls, "form", query_converter)
    return obj, FormErrors(errors)
