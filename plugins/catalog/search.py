"""Search, suggest and feed: validated parameters in, a query plan out, shaped answers back.

The SQL lives in :mod:`search_store`, as a fixed set of fragments keyed by name; this module
only chooses which fragments a request needs and binds its values as parameters, so nothing
from the caller is ever formatted into SQL.

Semantics worth knowing:

- ``q`` is a web-search query (quoted phrases, ``-word``, ``or``) over the unaccented name,
  locality, builder name, city and description; its last word also matches as a prefix, so
  ``prest`` finds "Prestige" while the user types.
- ``price_min`` / ``price_max`` (minor units) keep projects whose unit price range overlaps
  the asked range; a project without priced units never matches a price filter.
- Facets are disjunctive: each is counted with every other filter applied but not its own,
  so that a client can show "2 BHK (14)" next to a ticked "3 BHK".
- Pagination is keyset: the cursor carries the last row's sort key and id, plus a
  fingerprint of the search it belongs to. A project inserted between two page fetches sorts
  either before the cursor (never shown) or after it (shown once): rows that existed are never
  repeated or skipped.
- Radius and distance use earthdistance's sphere (radius 6,378,168 m); a polygon is planar in
  (lng, lat) and must not cross the antimeridian.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import uuid
from typing import Any

import attrs
import orjson

from propmubi.errors import FieldError, ValidationFailed
from propmubi_plugins.catalog import cursors, search_store

SORTS = ("relevance", "price_asc", "price_desc", "distance", "newest")
STATUSES = ("upcoming", "under_construction", "ready")
MAX_RADIUS_KM = 100.0
MIN_POLYGON, MAX_POLYGON = 3, 50
# Price buckets of the price facet, inclusive, in minor units (INR paise): under 50 lakh,
# 50 lakh-1 crore, 1-2 crore, 2-5 crore, 5 crore and more.
PRICE_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 50_00_000_00 - 1),
    (50_00_000_00, 1_00_00_000_00 - 1),
    (1_00_00_000_00, 2_00_00_000_00 - 1),
    (2_00_00_000_00, 5_00_00_000_00 - 1),
    (5_00_00_000_00, None),
)
FACET_TOP = {"city": 20, "locality": 20, "amenities": 30}
_CURSOR_VERSION = 1


# --- validation helpers ----------------------------------------------------------------------

def _text(max_len: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            return
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters")

    return check


def _texts(max_items: int, max_len: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
        if len(value) > max_items:
            raise ValueError(f"at most {max_items} values")
        for item in value:
            if not item.strip():
                raise ValueError("values must not be blank")
            if len(item) > max_len:
                raise ValueError(f"values must be at most {max_len} characters")

    return check


def _between(low: float, high: float, *, low_open: bool = False) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
        if value is None:
            return
        if (value <= low if low_open else value < low) or value > high:
            opening = "greater than" if low_open else "at least"
            raise ValueError(f"must be {opening} {low:g} and at most {high:g}")

    return check


def _non_negative(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError("must be at least 0")


def _bhk(instance: Any, attribute: attrs.Attribute, value: list[int]) -> None:
    if len(value) > 10:
        raise ValueError("at most 10 values")
    if any(not 0 <= v <= 20 for v in value):
        raise ValueError("values must be between 0 and 20")


def _statuses(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    bad = [v for v in value if v not in STATUSES]
    if bad:
        raise ValueError(f"must be one of {', '.join(STATUSES)}")


def _sort(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in SORTS:
        raise ValueError(f"must be one of {', '.join(SORTS)}")


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
    amenities: list[str] = attrs.field(factory=list, validator=_texts(20, 100))
    verified_builder: bool | None = None
    lat: float | None = attrs.field(default=None, validator=_between(-90, 90))
    lng: float | None = attrs.field(default=None, validator=_between(-180, 180))
    radius_km: float | None = attrs.field(default=None,
                                          validator=_between(0, MAX_RADIUS_KM, low_open=True))
    polygon: str | None = attrs.field(default=None, validator=_polygon)
    sort: str | None = attrs.field(default=None, validator=_sort)
    cursor: str | None = attrs.field(default=None, validator=_text(1000))
    limit: int = attrs.field(default=20, validator=_limit)


def _suggest_q(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if len(value.strip()) < 2:
        raise ValueError("must be at least 2 characters")
    if len(value) > 64:
        raise ValueError("must be at most 64 characters")


@attrs.frozen
class SuggestQuery:
    """``GET /projects/suggest``."""

    q: str = attrs.field(validator=_suggest_q)
    limit: int = attrs.field(default=10, validator=_between(1, 10))  # type: ignore[arg-type]


@attrs.frozen
class FeedQuery:
    """``GET /projects/feed``."""

    city: str = attrs.field(validator=_text(100))
    limit: int = attrs.field(default=20, validator=_limit)


# --- outputs (the shapes the OpenAPI document shows) ------------------------------------------

@attrs.frozen
class BuilderRef:
    id: uuid.UUID
    name: str
    verified: bool


@attrs.frozen
class ProjectHit:
    """One project in a search or feed answer."""

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


# --- the plan --------------------------------------------------------------------------------

@attrs.frozen
class SearchPlan:
    """A validated search: which fragments of :mod:`search_store` it uses and their values."""

    filters: tuple[str, ...]      # names in search_store.FILTERS (non-facet)
    facet_filters: tuple[str, ...]  # names in search_store.FACET_FILTERS that are active
    text: str | None              # a key of search_store.TSQUERY, when q is given
    sort: str
    params: dict[str, Any]
    after: tuple[Any, uuid.UUID] | None
    limit: int
    point: bool
    fingerprint: str
    canonical: dict[str, Any]     # the cache's view of the request


def _fold(value: str) -> str:
    return value.strip().lower()


def _canonical(query: SearchQuery, polygon: list[tuple[float, float]] | None) -> dict[str, Any]:
    """Equal searches map to equal dicts (order and case of repeated values do not matter)."""
    return {
        "q": " ".join(query.q.split()) if query.q else None,
        "city": sorted({_fold(c) for c in query.city}),
        "locality": sorted({_fold(v) for v in query.locality}),
        "price_min": query.price_min, "price_max": query.price_max,
        "bhk": sorted(set(query.bhk)), "status": sorted(set(query.status)),
        "possession_before": query.possession_before.isoformat()
        if query.possession_before else None,
        "amenities": sorted({a.strip() for a in query.amenities}),
        "verified_builder": query.verified_builder,
        "lat": query.lat, "lng": query.lng, "radius_km": query.radius_km,
        "polygon": polygon,
    }


_PREFIX_WORD = re.compile(r"[^\W_]+$")


def _split_text(q: str) -> tuple[str, str | None]:
    """(head, last word to match as a prefix) - or (q, None) when the last word is not a
    plain word being typed (inside a quoted phrase, negated, or after ``or``)."""
    q = q.strip()
    match = _PREFIX_WORD.search(q)
    if not match or q.count('"') % 2 == 1:
        return q, None
    head = q[:match.start()]
    if head.endswith("-") and (len(head) == 1 or head[-2].isspace()):
        return q, None
    if head.rstrip().lower().endswith(" or") or head.strip().lower() == "or":
        return q, None
    return head, match.group(0)


def _fingerprint(canonical: dict[str, Any], sort: str) -> str:
    raw = orjson.dumps({"search": canonical, "sort": sort}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_cursor(fingerprint: str, key: str, row_id: uuid.UUID) -> str:
    """An opaque cursor: the last row's sort key and id, and the search it belongs to."""
    return cursors.pack([_CURSOR_VERSION, fingerprint, key, str(row_id)])


_INT_KEY = re.compile(r"-?\d{1,19}")


def _typed_key(sort: str, key: str) -> Any:
    """The sort key (as the database printed it) as a Python value of the key's type, so
    that a forged cursor cannot make the cast in SQL fail."""
    if sort in ("relevance", "distance"):
        number = float(key)
        if not math.isfinite(number) or number < 0:
            raise ValueError
        return number
    if sort in ("price_asc", "price_desc"):
        if not _INT_KEY.fullmatch(key) or not -(2**63) <= int(key) < 2**63:
            raise ValueError
        return int(key)
    if key == "-infinity":
        return key
    moment = dt.datetime.fromisoformat(key)
    if moment.tzinfo is None:
        raise ValueError
    return moment


def decode_cursor(cursor: str, fingerprint: str, sort: str) -> tuple[Any, uuid.UUID]:
    """The (key, id) a cursor carries; ValueError when it is not one of this search's."""
    try:
        version, fp, key, row_id = cursors.unpack(cursor)
        if version != _CURSOR_VERSION or not isinstance(key, str) or len(key) > 64:
            raise ValueError("not a cursor")
        if fp != fingerprint:
            raise ValueError("belongs to another search (filters or sort changed)")
        return _typed_key(sort, key), uuid.UUID(row_id)
    except ValueError as exc:
        message = str(exc) if "another search" in str(exc) else "is not a valid cursor"
        raise ValueError(message) from None
    except (TypeError, AttributeError, OverflowError):
        raise ValueError("is not a valid cursor") from None


def plan_search(query: SearchQuery) -> SearchPlan:
    """Check what the fields cannot check alone; choose fragments and bind values.

    :raises ValidationFailed: naming each bad parameter (``query.lat``, ...).
    """
    errors: list[FieldError] = []

    def bad(field: str, message: str) -> None:
        errors.append(FieldError("query", field, message))

    geo = {"lat": query.lat, "lng": query.lng, "radius_km": query.radius_km}
    given = {k for k, v in geo.items() if v is not None}
    if given and given != set(geo):
        for name in sorted(set(geo) - given):
            bad(name, "lat, lng and radius_km go together")
    point = given == set(geo)
    if point and query.polygon is not None:
        bad("polygon", "give either a polygon or lat, lng and radius_km, not both")
    if (query.price_min is not None and query.price_max is not None
            and query.price_min > query.price_max):
        bad("price_min", "must not be greater than price_max")
    text = query.q.strip() if query.q else None
    sort = query.sort or ("relevance" if text else "distance" if point else "newest")
    if sort == "relevance" and not text:
        bad("sort", "relevance needs q")
    if sort == "distance" and not point:
        bad("sort", "distance needs lat, lng and radius_km")
    if errors:
        raise ValidationFailed(errors)

    polygon = parse_polygon(query.polygon) if query.polygon is not None else None
    canonical = _canonical(query, polygon)
    fingerprint = _fingerprint(canonical, sort)
    after = None
    if query.cursor is not None:
        try:
            after = decode_cursor(query.cursor, fingerprint, sort)
        except ValueError as exc:
            raise ValidationFailed([FieldError("query", "cursor", str(exc))]) from None

    params: dict[str, Any] = {}
    filters: list[str] = []
    text_kind = None
    if text:
        head, last = _split_text(text)
        if last is None:
            text_kind = "web"
            params["q"] = text
        elif head.strip():
            text_kind = "web_prefix"
            params["q_head"], params["q_last"] = head, last
        else:
            text_kind = "prefix"
            params["q_last"] = last
        filters.append("text")
    if point:
        filters.append("radius")
        params.update(lat=query.lat, lng=query.lng, radius_m=query.radius_km * 1000.0)
    if polygon is not None:
        filters.append("polygon")
        # PostgreSQL's polygon literal, (x, y) = (lng, lat); built from parsed floats.
        params["polygon"] = "(" + ",".join(f"({lng!r},{lat!r})" for lat, lng in polygon) + ")"
    if query.possession_before is not None:
        filters.append("possession_before")
        params["possession_before"] = query.possession_before

    facet_filters: list[str] = []
    if canonical["city"]:
        facet_filters.append("city")
        params["cities"] = canonical["city"]
    if canonical["locality"]:
        facet_filters.append("locality")
        params["localities"] = canonical["locality"]
    if canonical["bhk"]:
        facet_filters.append("bhk")
        params["bhk"] = canonical["bhk"]
    if canonical["status"]:
        facet_filters.append("status")
        params["statuses"] = canonical["status"]
    if query.price_min is not None or query.price_max is not None:
        facet_filters.append("price")
        # An absent bound is the widest one, so one fragment serves all three cases.
        params["price_min"] = query.price_min if query.price_min is not None else 0
        params["price_max"] = query.price_max if query.price_max is not None else 2**63 - 1
    if canonical["amenities"]:
        facet_filters.append("amenities")
        params["amenities"] = canonical["amenities"]
    if query.verified_builder is not None:
        facet_filters.append("verified")
        params["verified"] = query.verified_builder

    return SearchPlan(filters=tuple(filters), facet_filters=tuple(facet_filters),
                      text=text_kind, sort=sort, params=params, after=after,
                      limit=query.limit, point=point, fingerprint=fingerprint,
                      canonical={**canonical, "sort": sort, "cursor": query.cursor,
                                 "limit": query.limit})


# --- running ---------------------------------------------------------------------------------

def _hit(row: dict[str, Any]) -> ProjectHit:
    distance = row.get("distance_m")
    return ProjectHit(
        id=row["id"], slug=row["slug"], name=row["name"],
        builder=BuilderRef(id=row["builder_id"], name=row["builder_name"],
                           verified=row["builder_verified"]),
        city=row["city"], locality=row["locality"], lat=row["lat"], lng=row["lng"],
        status=row["status"], possession_date=row["possession_date"],
        price_min=row["price_min"], price_max=row["price_max"], currency=row["currency"],
        bedrooms=list(row["bedrooms"] or []), units_available=row["units_available"],
        featured=row["featured"],
        distance_km=None if distance is None else round(distance / 1000.0, 3))


def _facets(rows: list[dict[str, Any]]) -> tuple[Facets, int]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["facet"], []).append(row)
    total = int(groups.get("total", [{"n": 0}])[0]["n"])

    def values(name: str, convert: Any = str) -> list[FacetValue]:
        found = [FacetValue(convert(r["value"]), int(r["n"])) for r in groups.get(name, [])]
        return sorted(found, key=lambda f: (-f.count, str(f.value)))

    price_counts = {int(r["value"]): int(r["n"]) for r in groups.get("price", [])}
    price = [PriceBucket(lo, hi, price_counts.get(i, 0))
             for i, (lo, hi) in enumerate(PRICE_BUCKETS)]
    bhk = sorted(values("bhk", int), key=lambda f: f.value)
    return Facets(city=values("city"), locality=values("locality"), bhk=bhk,
                  status=values("status"), price=price, amenities=values("amenities"),
                  verified_builder=values("verified", lambda v: v == "true")), total


async def run_search(db: Any, plan: SearchPlan) -> SearchPage:
    """The page of items, the facets and the total of a planned search."""
    rows = await search_store.search_items(db, plan)
    more = len(rows) > plan.limit
    rows = rows[:plan.limit]
    facet_rows = await search_store.search_facets(
        db, plan, [lo for lo, _ in PRICE_BUCKETS],
        [hi if hi is not None else 2**63 - 1 for _, hi in PRICE_BUCKETS], FACET_TOP)
    facets, total = _facets(facet_rows)
    next_cursor = (encode_cursor(plan.fingerprint, rows[-1]["sort_key"], rows[-1]["id"])
                   if more and rows else None)
    return SearchPage(items=[_hit(r) for r in rows], facets=facets, total=total,
                      next_cursor=next_cursor)


def _like_prefix(text: str) -> str:
    folded = text.strip()
    return folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def run_suggest(db: Any, query: SuggestQuery) -> SuggestPage:
    """Ranked completions over project names, localities and builder names."""
    q = " ".join(query.q.split())
    rows = await search_store.suggest(db, q, _like_prefix(q), int(query.limit))
    return SuggestPage(items=[
        Suggestion(kind=r["kind"], label=r["label"], id=r["id"], slug=r["slug"],
                   city=r["city"], score=round(float(r["score"]), 4)) for r in rows])


async def run_feed(db: Any, query: FeedQuery) -> FeedPage:
    """A city's published projects, featured first, then newest."""
    rows = await search_store.feed(db, " ".join(query.city.split()), query.limit)
    return FeedPage(items=[_hit(r) for r in rows])
