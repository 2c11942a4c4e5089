"""The booking terms of a project: what a hold asks for (a fixed amount or a share of the unit
price) and what a cancellation costs. Money is integer minor units; rates integer basis points
(100 bp = 1 %)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi_plugins.bookings.settings import RERA_CAP_BPS

AMOUNT_KINDS = ("fixed", "percent")


def _amount_minor(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    kind = getattr(instance, "amount_kind", None)
    if kind == "fixed" and value is None:
        raise ValueError("give the booking amount in minor units (a fixed amount)")
    if kind == "percent" and value is not None:
        raise ValueError("leave empty: the amount is a percentage (amount_bps)")
    if value is not None and not 1 <= value <= 10**15:
        raise ValueError("must be a positive amount in minor units (at most 10^15)")


def _amount_bps(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    kind = getattr(instance, "amount_kind", None)
    if kind == "percent" and value is None:
        raise ValueError("give the booking amount in basis points of the price")
    if kind == "fixed" and value is not None:
        raise ValueError("leave empty: the amount is fixed (amount_minor)")
    if value is not None and not 1 <= value <= RERA_CAP_BPS:
        raise ValueError(f"must be 1 to {RERA_CAP_BPS} basis points (RERA allows at most 10 %)")


@attrs.frozen(kw_only=True)
class TermsIn:
    """``PUT /projects/{id}/booking-terms``: the whole of a project's terms."""

    amount_kind: str = attrs.field(validator=v.in_(AMOUNT_KINDS), metadata={
        "description": "fixed: amount_minor; percent: amount_bps of the unit price."})
    amount_minor: int | None = attrs.field(default=None, validator=_amount_minor)
    amount_bps: int | None = attrs.field(default=None, validator=_amount_bps)
    free_cancel_hours: int = attrs.field(validator=[v.ge(0), v.le(8760)], metadata={
        "description": "Hours after confirmation in which cancelling costs nothing."})
    fee_fixed_minor: int = attrs.field(validator=[v.ge(0), v.le(10**15)], metadata={
        "description": "The least a cancellation after the free window costs."})
    fee_bps: int = attrs.field(validator=[v.ge(0), v.le(10_000)], metadata={
        "description": "The fee as basis points of what was captured (rounded half up)."})


@attrs.frozen
class TermsOut:
    """A project's booking terms; ``default`` when the project has none of its own."""

    project_id: uuid.UUID
    amount_kind: str
    amount_minor: int | None
    amount_bps: int | None
    free_cancel_hours: int
    fee_fixed_minor: int
    fee_bps: int
    currency: str
    default: bool
    updated_at: dt.datetime | None


@attrs.frozen
class ProjectId:
    """The ``{id}`` of a ``/projects/{id}/...`` path."""

    id: uuid.UUID
