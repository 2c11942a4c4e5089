"""The vocabularies and attrs classes of towers and units: the validated inputs of their writes
(the API's bodies, the CSV import's rows), their list query, and the shapes of their answers.

The shared validators (text lengths, currency codes) are the project models' own
(``plugins/catalog/models.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema
from propmubi_plugins.catalog.media.models import Photo
from propmubi_plugins.catalog.models import (
    CURRENCY_PATTERN,
    ProjectOut,
    opt_text_rules,
    optional_one_of,
    text_rules,
)

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Unit statuses; sold and blocked units do not count in a project's price range.
UNIT_STATUSES = ("available", "held", "booked", "sold", "blocked")
#: Compass directions a unit's main door / balcony faces.
FACINGS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
#: Unit fields checked against each other, the tower and the project (``_check_unit`` of the
#: service) besides their own rules.
CROSS_CHECKED = ("code", "floor", "currency", "carpet_area_sqft", "super_area_sqft")


# --------------------------------------------------------------------------------------------
# Validators and input classes (routes use them as bodies; the CSV import as rows)
# --------------------------------------------------------------------------------------------


# Stored as numeric(9,2) with CHECK (> 0): a smaller area would round to 0.00 (a 500).
@json_schema(minimum=0.01, maximum=1_000_000)
def _area(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0.01:
        raise ValueError("must be at least 0.01 sq ft")
    if value > 1_000_000:
        raise ValueError("must be at most 1,000,000 sq ft")


@json_schema(minimum=0.01, maximum=1_000_000)  # and at least the carpet area
def _super_area(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    _area(instance, attribute, value)
    # A sibling is unknown while other fields are refused: the service's cross-checks
    # (``_check_unit``) then compare what is valid, so the problem comes with the others.
    carpet = getattr(instance, "carpet_area_sqft", None)
    if value is not None and carpet is not None and value < carpet:
        raise ValueError("must be at least the carpet area")


@json_schema(exclusiveMinimum=0, maximum=10**15)
def _price(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and not (0 < value <= 10**15):
        raise ValueError("must be a positive amount in minor units (at most 10^15)")


@attrs.frozen(kw_only=True)
class TowerIn:
    """A tower (block, wing) of a project."""

    name: str = attrs.field(validator=text_rules(1, 100))
    floors: int = attrs.field(validator=[v.ge(1), v.le(200)], metadata={
        "description": "Floors above ground; units are on floors -5 (basements) to this."})


@attrs.frozen(kw_only=True)
class TowerPatch:
    """Changes to a tower."""

    name: str | None = attrs.field(default=None, validator=opt_text_rules(1, 100))
    floors: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(200)]))


@attrs.frozen(kw_only=True)
class UnitIn:
    """A unit of a tower. Prices are integer minor units (paise for INR)."""

    code: str = attrs.field(validator=[*text_rules(1, 40), v.matches_re(r"[^\s].*")],
                            metadata={"description": "Unique within the tower, e.g. A-1203."})
    unit_type: str = attrs.field(validator=text_rules(1, 40), metadata={
        "description": "1BHK, 2BHK, Studio, Villa, Penthouse..."})
    bedrooms: int = attrs.field(validator=[v.ge(0), v.le(20)])
    carpet_area_sqft: float = attrs.field(validator=_area)
    super_area_sqft: float | None = attrs.field(default=None, validator=_super_area)
    floor: int = attrs.field(validator=[v.ge(-5), v.le(200)])
    facing: str | None = attrs.field(default=None, validator=optional_one_of(FACINGS))
    price_minor: int = attrs.field(validator=_price)
    currency: str = attrs.field(default="INR", validator=v.matches_re(CURRENCY_PATTERN))
    status: str = attrs.field(default="available", validator=v.in_(UNIT_STATUSES))


@attrs.frozen(kw_only=True)
class UnitPatch:
    """Changes to a unit; absent (or null) fields stay."""

    code: str | None = attrs.field(default=None, validator=v.optional(
        [*text_rules(1, 40), v.matches_re(r"[^\s].*")]))
    unit_type: str | None = attrs.field(default=None, validator=opt_text_rules(1, 40))
    bedrooms: int | None = attrs.field(default=None, validator=v.optional([v.ge(0), v.le(20)]))
    carpet_area_sqft: float | None = attrs.field(default=None, validator=_area)
    super_area_sqft: float | None = attrs.field(default=None, validator=_area)
    floor: int | None = attrs.field(default=None, validator=v.optional([v.ge(-5), v.le(200)]))
    facing: str | None = attrs.field(default=None, validator=optional_one_of(FACINGS))
    price_minor: int | None = attrs.field(default=None, validator=_price)
    status: str | None = attrs.field(default=None, validator=optional_one_of(UNIT_STATUSES))


@attrs.frozen
class UnitStatusIn:
    status: str = attrs.field(validator=v.in_(UNIT_STATUSES))


@attrs.frozen
class UnitsCsvIn:
    """A bulk unit import: the CSV file's text (see ``csv_import.py``)."""

    text: str


# --------------------------------------------------------------------------------------------
# Query parameters
# --------------------------------------------------------------------------------------------


@attrs.frozen
class UnitQuery:
    """Filters and keyset pagination of a project's units."""

    tower_id: uuid.UUID | None = None
    status: str | None = attrs.field(default=None, validator=optional_one_of(UNIT_STATUSES))
    limit: int = attrs.field(default=100, validator=[v.ge(1), v.le(500)])
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class TowerOut:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    floors: int
    units: int
    created_at: dt.datetime


@attrs.frozen
class UnitOut:
    id: uuid.UUID
    project_id: uuid.UUID
    tower_id: uuid.UUID
    code: str
    unit_type: str
    bedrooms: int
    carpet_area_sqft: float
    super_area_sqft: float | None
    floor: int
    facing: str | None
    price_minor: int
    currency: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class UnitPage:
    items: list[UnitOut]
    next_cursor: str | None


@attrs.frozen
class ImportResult:
    """What a CSV import created."""

    imported: int
    project: ProjectOut


@attrs.frozen
class ProjectDetail(ProjectOut):
    """A project's page: the project with its towers (by name, with their unit counts) and
    the photos of its own gallery, in order (the first is the cover)."""

    towers: list[TowerOut]
    photos: list[Photo]
