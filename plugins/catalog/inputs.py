"""The catalogue's vocabularies and the validated input classes of its writes (the API's
bodies and the CSV import's rows): every field checked at the edge, naming the field."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import attrs
from attrs import validators as v

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Construction status of a project.
PROJECT_STATUSES = ("upcoming", "under_construction", "ready")
#: Moderation states.
MODERATION_STATES = ("draft", "in_review", "published", "rejected")
#: Unit statuses; sold and blocked units do not count in a project's price range.
UNIT_STATUSES = ("available", "held", "booked", "sold", "blocked")
#: Compass directions a unit's main door / balcony faces.
FACINGS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
#: The fixed amenity vocabulary (apps show an icon for each; search filters on them).
AMENITIES = (
    "swimming_pool", "gym", "clubhouse", "children_play_area", "jogging_track",
    "landscaped_garden", "indoor_games", "sports_court", "yoga_deck", "party_hall",
    "power_backup", "lift", "covered_parking", "visitor_parking", "ev_charging",
    "security_24x7", "cctv", "intercom", "gated_community", "fire_safety",
    "rainwater_harvesting", "solar_power", "sewage_treatment", "water_storage",
    "piped_gas", "wifi", "co_working", "senior_citizen_area", "pet_park", "amphitheatre",
    "shopping_centre", "school_nearby", "hospital_nearby", "metro_nearby",
)
#: Fields of a published project that only staff may change (see the module docstring).
LOCKED_WHEN_PUBLISHED = ("name", "city", "locality", "lat", "lng", "rera_number")

_CURRENCY = r"[A-Z]{3}"
_RERA = r"[A-Za-z0-9][A-Za-z0-9/\-_. ]{2,59}"
_URL = r"https?://[^\s/$.?#][^\s]{0,300}"


# --------------------------------------------------------------------------------------------
# Validators and input classes (routes use them as bodies; the CSV import as rows)
# --------------------------------------------------------------------------------------------


def _text(lo: int, hi: int) -> list[Any]:
    return [v.min_len(lo), v.max_len(hi), not_blank] if lo else [v.max_len(hi)]


def _opt_text(lo: int, hi: int) -> Any:
    return v.optional(_text(lo, hi))


def not_blank(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("must not be blank")


def _finite(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")


def _area(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be greater than 0")
    if value > 1_000_000:
        raise ValueError("must be at most 1,000,000 sq ft")


def _super_area(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    _area(instance, attribute, value)
    carpet = instance.carpet_area_sqft  # AttributeError in the partial pass: checked later
    if value is not None and carpet is not None and value < carpet:
        raise ValueError("must be at least the carpet area")


def _amenities(instance: Any, attribute: attrs.Attribute, value: list[str] | None) -> None:
    if value is None:
        return
    unknown = sorted({a for a in value if a not in AMENITIES})
    if unknown:
        raise ValueError(f"unknown amenities {', '.join(map(repr, unknown[:5]))}; "
                         "see the amenity vocabulary (GET /catalog/vocabulary)")
    if len(set(value)) != len(value):
        raise ValueError("must not repeat an amenity")


def _date_range(instance: Any, attribute: attrs.Attribute, value: dt.date | None) -> None:
    if value is not None and not (1950 <= value.year <= 2100):
        raise ValueError("must be between 1950 and 2100")


def _price(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and not (0 < value <= 10**15):
        raise ValueError("must be a positive amount in minor units (at most 10^15)")


def optional_one_of(allowed: tuple[str, ...]) -> Any:
    """Like ``optional(in_(allowed))``, but kept out of the OpenAPI ``enum`` (whose list
    could not include the null default)."""

    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")

    return check


_LAT = [_finite, v.ge(-90.0), v.le(90.0)]
_LNG = [_finite, v.ge(-180.0), v.le(180.0)]


@attrs.frozen(kw_only=True)
class BuilderIn:
    """A builder profile. ``owner_user_id`` is for staff only (a builder's own profile is
    always theirs); ``verified`` is not settable: it follows document verification."""

    name: str = attrs.field(validator=_text(1, 200))
    rera_promoter_id: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)), metadata={"description": "The promoter's RERA registration."})
    description: str = attrs.field(default="", validator=_text(0, 5000))
    website: str | None = attrs.field(default=None, validator=v.optional(v.matches_re(_URL)))
    owner_user_id: uuid.UUID | None = attrs.field(default=None, metadata={
        "description": "Staff only: the user who will manage this builder."})


@attrs.frozen(kw_only=True)
class BuilderPatch:
    """Changes to a builder profile; absent fields stay, an empty string clears
    ``rera_promoter_id`` / ``website``."""

    name: str | None = attrs.field(default=None, validator=_opt_text(1, 200))
    rera_promoter_id: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(f"(?:{_RERA})?")))
    description: str | None = attrs.field(default=None, validator=_opt_text(0, 5000))
    website: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(f"(?:{_URL})?")))


@attrs.frozen(kw_only=True)
class ProjectIn:
    """A new project (a draft). Staff name the builder; builders create for their own."""

    name: str = attrs.field(validator=_text(1, 200))
    city: str = attrs.field(validator=_text(1, 100))
    locality: str = attrs.field(validator=_text(1, 100))
    address: str = attrs.field(default="", validator=_text(0, 500))
    lat: float = attrs.field(validator=_LAT)
    lng: float = attrs.field(validator=_LNG)
    rera_number: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)))
    status: str = attrs.field(default="upcoming", validator=v.in_(PROJECT_STATUSES))
    possession_date: dt.date | None = attrs.field(default=None, validator=_date_range)
    amenities: list[str] = attrs.field(factory=list, validator=[v.max_len(len(AMENITIES)),
                                                                _amenities])
    description: str = attrs.field(default="", validator=_text(0, 10000))
    currency: str = attrs.field(default="INR", validator=v.matches_re(_CURRENCY), metadata={
        "description": "Currency of every unit price in the project (ISO 4217)."})
    builder_id: uuid.UUID | None = attrs.field(default=None, metadata={
        "description": "Staff only: the builder the project belongs to."})


@attrs.frozen(kw_only=True)
class ProjectPatch:
    """Changes to a project; absent (or null) fields stay. ``featured`` is for staff."""

    name: str | None = attrs.field(default=None, validator=_opt_text(1, 200))
    city: str | None = attrs.field(default=None, validator=_opt_text(1, 100))
    locality: str | None = attrs.field(default=None, validator=_opt_text(1, 100))
    address: str | None = attrs.field(default=None, validator=_opt_text(0, 500))
    lat: float | None = attrs.field(default=None, validator=v.optional(_LAT))
    lng: float | None = attrs.field(default=None, validator=v.optional(_LNG))
    rera_number: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)))
    status: str | None = attrs.field(default=None, validator=optional_one_of(PROJECT_STATUSES))
    possession_date: dt.date | None = attrs.field(default=None, validator=_date_range)
    amenities: list[str] | None = attrs.field(default=None, validator=v.optional(
        [v.max_len(len(AMENITIES)), _amenities]))
    description: str | None = attrs.field(default=None, validator=_opt_text(0, 10000))
    featured: bool | None = None


@attrs.frozen(kw_only=True)
class TowerIn:
    """A tower (block, wing) of a project."""

    name: str = attrs.field(validator=_text(1, 100))
    floors: int = attrs.field(validator=[v.ge(1), v.le(200)], metadata={
        "description": "Floors above ground; units are on floors -5 (basements) to this."})


@attrs.frozen(kw_only=True)
class TowerPatch:
    """Changes to a tower."""

    name: str | None = attrs.field(default=None, validator=_opt_text(1, 100))
    floors: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(200)]))


@attrs.frozen(kw_only=True)
class UnitIn:
    """A unit of a tower. Prices are integer minor units (paise for INR)."""

    code: str = attrs.field(validator=[*_text(1, 40), v.matches_re(r"[^\s].*")], metadata={
        "description": "Unique within the tower, e.g. A-1203."})
    unit_type: str = attrs.field(validator=_text(1, 40), metadata={
        "description": "1BHK, 2BHK, Studio, Villa, Penthouse..."})
    bedrooms: int = attrs.field(validator=[v.ge(0), v.le(20)])
    carpet_area_sqft: float = attrs.field(validator=_area)
    super_area_sqft: float | None = attrs.field(default=None, validator=_super_area)
    floor: int = attrs.field(validator=[v.ge(-5), v.le(200)])
    facing: str | None = attrs.field(default=None, validator=optional_one_of(FACINGS))
    price_minor: int = attrs.field(validator=_price)
    currency: str = attrs.field(default="INR", validator=v.matches_re(_CURRENCY))
    status: str = attrs.field(default="available", validator=v.in_(UNIT_STATUSES))


@attrs.frozen(kw_only=True)
class UnitPatch:
    """Changes to a unit; absent (or null) fields stay."""

    code: str | None = attrs.field(default=None, validator=v.optional(
        [*_text(1, 40), v.matches_re(r"[^\s].*")]))
    unit_type: str | None = attrs.field(default=None, validator=_opt_text(1, 40))
    bedrooms: int | None = attrs.field(default=None, validator=v.optional([v.ge(0), v.le(20)]))
    carpet_area_sqft: float | None = attrs.field(default=None, validator=_area)
    super_area_sqft: float | None = attrs.field(default=None, validator=_area)
    floor: int | None = attrs.field(default=None, validator=v.optional([v.ge(-5), v.le(200)]))
    facing: str | None = attrs.field(default=None, validator=optional_one_of(FACINGS))
    price_minor: int | None = attrs.field(default=None, validator=_price)
    status: str | None = attrs.field(default=None, validator=optional_one_of(UNIT_STATUSES))
