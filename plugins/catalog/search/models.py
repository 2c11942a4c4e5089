"""Search, suggest and feed: their query parameters (validated at the edge, each error naming
its parameter) and the shapes of their answers."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import attrs

from propmubi.validation import CONTROL_FREE_PATTERN, SPACE_CLASS, json_schema
from propmubi_plugins.catalog.models import (
    AMENITIES,
    BuilderRef,
    control_character_problem,
    unknown_amenities_problem,
)

SORTS = ("relevance", "price_asc", "price_desc", "distance", "newest")
STATUSES = ("upcoming", "under_construction", "ready")
MAX_RADIUS_KM = 100.0
MIN_POLYGON, MAX_POLYGON = 3, 50


# --- validation helpers ----------------------------------------------------------------------

def _text(max_len: int) -> Any:
    @json_schema(**{"x-not-blank": True}, maxLength=max_len, pattern=CONTROL_FREE_PATTERN)
    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            return
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters")
        problem = control_character_problem(value)
        if problem:
            raise ValueError(problem)

    return check


def _texts(max_items: int, max_len: int) -> Any:
    @json_schema(maxItems=max_items, items={"x-not-blank": True, "maxLength": max_len,
                                            "pattern": CONTROL_FREE_PATTERN})
    def check(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
        if len(value) > max_items:
            raise ValueError(f"at most {max_items} values")
        for item in value:
            if not item.strip():
                raise ValueError("values must not be blank")
            if len(item) > max_len:
                raise ValueError(f"values must be at most {max_len} characters")
            problem = control_character_problem(item)
            if problem:
                raise ValueError(f"values {problem}")

    return check


@json_schema(maxItems=20, items={"enum": list(AMENITIES)})
def _amenities(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    _texts(20, 100)(instance, attribute, value)
    problem = unknown_amenities_problem([a.strip() for a in value])
    if problem:
        raise ValueError(problem)


def _between(low: float, high: float, *, low_open: bool = False) -> Any:
    @json_schema(**{"exclusiveMinimum" if low_open else "minimum": low, "maximum": high})
    def check(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
        if value is None:
            return
        if (value <= low if low_open else value < low) or value > high:
            opening = "greater than" if low_open else "at least"
            raise ValueError(f"must be {opening} {low:g} and at most {high:g}")

    return check


@json_schema(minimum=0)
def _non_negative(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError("must be at least 0")


@json_schema(maxItems=10, items={"minimum": 0, "maximum": 20})
def _bhk(instance: Any, attribute: attrs.Attribute, value: list[int]) -> None:
    if len(value) > 10:
        raise ValueError("at most 10 values")
    if any(not 0 <= v <= 20 for v in value):
        raise ValueError("values must be between 0 and 20")


@json_schema(items={"enum": list(STATUSES)})
def _statuses(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    bad = [v for v in value if v not in STATUSES]
    if bad:
        raise ValueError(f"must be one of {', '.join(STATUSES)}")


@json_schema(enum=[*SORTS, None])
def _sort(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in SORTS:
        raise ValueError(f"must be one of {', '.join(SORTS)}")


@json_schema(minimum=1, maximum=50)
def _limit(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= 50:
        raise ValueError("must be between 1 and 50")


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """``lat,lng;lat,lng;...`` -> [(lat, lng), ...]; ValueError says what is wrong.

    A closed ring (last vertex repeating the first) is accepted. Self-intersection is not
    checked: PostgreSQL's point-in-polygon test then decides by crossings.
    """
    parts = text.strip().strip(";").split(";")
    if len(parts) > MAX_POLYGON + 1:
        raise ValueError(f"at most {MAX_POLYGON} vertices")
    vertices = []
    for i, part in enumerate(parts, 1):
        pieces = part.split(",")
        if len(pieces) != 2:
            raise ValueError(f"vertex {i}: expected lat,lng")
        try:
            lat, lng = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise ValueError(f"vertex {i}: expected two numbers") from None
        if not (math.isfinite(lat) and math.isfinite(lng)):
            raise ValueError(f"vertex {i}: expected finite numbers")
        if not -90 <= lat <= 90 or not -180 <= lng <= 180:
            raise ValueError(f"vertex {i}: lat must be within -90..90 and lng within -180..180")
        vertices.append((lat, lng))
    if len(vertices) > 1 and vertices[0] == vertices[-1]:
        vertices.pop()  # a closed ring repeats its first vertex
    if len(vertices) > MAX_POLYGON:
        raise ValueError(f"at most {MAX_POLYGON} vertices")
    if len(set(vertices)) < MIN_POLYGON:
        raise ValueError(f"at least {MIN_POLYGON} distinct vertices")
    return vertices


def _polygon(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        if len(value) > 4000:
            raise ValueError("must be at most 4000 characters")
        parse_polygon(value)


# --- inputs ----------------------------------------------------------------------------------

@attrs.frozen
class SearchQuery:
    """``GET /projects/search``. List parameters repeat their key (``bhk=2&bhk=3``)."""

    q: str | None = attrs.field(default=None, validator=_text(200))
    city: list[str] = attrs.field(factory=list, validator=_texts(10, 100))
    locality: list[str] = attrs.field(factory=list, validator=_texts(20, 100))
    price_min: int | None = attrs.field(default=None, validator=_non_negative)
    price_max: int | None = attrs.field(default=None, validator=_non_negative)
    bhk: list[int] = attrs.field(factory=list, validator=_bhk)
    status: list[str] = attrs.field(factory=list, validator=_statuses)
    possession_before: dt.date | None = None
    amenities: list[str] = attrs.field(factory=list, validator=_amenities)
    verified_builder: bool | None = None
    lat: float | None = attrs.field(default=None, validator=_between(-90, 90))
    lng: float | None = attrs.field(default=None, validator=_between(-180, 180))
    radius_km: float | None = attrs.field(default=None,
                                          validator=_between(0, MAX_RADIUS_KM, low_open=True))
    polygon: str | None = attrs.field(default=None, validator=_polygon)
    sort: str | None = attrs.field(default=None, validator=_sort)
    cursor: str | None = attrs.field(default=None, validator=_text(1000))
    limit: int = attrs.field(default=20, validator=_limit)


# At least two characters once stripped: two that are not whitespace, anywhere.
@json_schema(pattern=rf"[^{SPACE_CLASS}][\s\S]*[^{SPACE_CLASS}]", maxLength=64)
def _suggest_q(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if len(value.strip()) < 2:
        raise ValueError("must be at least 2 characters")
    if len(value) > 64:
        raise ValueError("must be at most 64 characters")


@attrs.frozen
class SuggestQuery:
    """``GET /projects/suggest``."""

    q: str = attrs.field(validator=_suggest_q)
    limit: int = attrs.field(default=10, validator=_between(1, 10))


@attrs.frozen
class FeedQuery:
    """``GET /projects/feed``."""

    city: str = attrs.field(validator=_text(100))
    limit: int = attrs.field(default=20, validator=_limit)


# --- outputs (the shapes the OpenAPI document shows) ------------------------------------------

@attrs.frozen
class CoverPhoto:
    """A project's cover: the first photo of its gallery (thumbnail and web size URLs)."""

    thumb: str
    web: str
    alt_text: str


@attrs.frozen
class ProjectHit:
    """One project in a search or feed answer; ``cover`` is None for a project without
    photos."""

    id: uuid.UUID
    slug: str
    name: str
    builder: BuilderRef
    city: str
    locality: str
    lat: float
    lng: float
    status: str
    possession_date: dt.date | None
    price_min: int | None
    price_max: int | None
    currency: str
    bedrooms: list[int]
    units_available: int
    featured: bool
    distance_km: float | None = None
    cover: CoverPhoto | None = None


@attrs.frozen
class FacetValue:
    value: Any
    count: int


@attrs.frozen
class PriceBucket:
    """A price range (inclusive, minor units; ``price_max`` None: no upper bound)."""

    price_min: int
    price_max: int | None
    count: int


@attrs.frozen
class Facets:
    city: list[FacetValue]
    locality: list[FacetValue]
    bhk: list[FacetValue]
    status: list[FacetValue]
    price: list[PriceBucket]
    amenities: list[FacetValue]
    verified_builder: list[FacetValue]


@attrs.frozen
class SearchPage:
    """A page of results; ``total`` is the exact number of matching projects."""

    items: list[ProjectHit]
    facets: Facets
    total: int
    next_cursor: str | None


@attrs.frozen
class Suggestion:
    """``kind`` is project, locality or builder; localities have no id or slug."""

    kind: str
    label: str
    id: uuid.UUID | None
    slug: str | None
    city: str | None
    score: float


@attrs.frozen
class SuggestPage:
    items: list[Suggestion]


@attrs.frozen
class FeedPage:
    items: list[ProjectHit]
