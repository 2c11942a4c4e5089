"""Search, suggest and feed: validated parameters in, a query plan out, shaped answers back.

The SQL lives in :mod:`.store`, as a fixed set of fragments keyed by name; this module
only chooses which fragments a request needs and binds its values as parameters, so nothing
from the caller is ever formatted into SQL. The public functions :func:`search`,
:func:`suggest` and :func:`feed` answer through the cache (:mod:`.cache`).

Answers are computed on the primary, not the read replica: an answer read from a replica that
lags behind a change, just after the change bumped the cache generations, would be cached
under the new generation and stay stale for ``cache_ttl``. The cache takes the read load.

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

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.errors import FieldError, ValidationFailed
from propmubi.storage import Storage
from propmubi_plugins.catalog.models import BuilderRef
from propmubi_plugins.catalog.search import cache, store
from propmubi_plugins.catalog.search.models import (
    CoverPhoto,
    Facets,
    FacetValue,
    FeedPage,
    FeedQuery,
    PriceBucket,
    ProjectHit,
    SearchPage,
    SearchQuery,
    Suggestion,
    SuggestPage,
    SuggestQuery,
    parse_polygon,
)
from propmubi_plugins.catalog.state import Ctx

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



# --- the plan --------------------------------------------------------------------------------

@attrs.frozen
class SearchPlan:
    """A validated search: which fragments of :mod:`.store` it uses and their values."""

    filters: tuple[str, ...]      # names in store.FILTERS (non-facet)
    facet_filters: tuple[str, ...]  # names in store.FACET_FILTERS that are active
    text: str | None              # a key of store.TSQUERY, when q is given
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
    if point and query.radius_km is not None:
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

def _hit(row: dict[str, Any], storage: Storage | None) -> ProjectHit:
    distance = row.get("distance_m")
    photo = row.get("cover")
    cover = (CoverPhoto(thumb=storage.url(photo["thumb_key"]), web=storage.url(photo["web_key"]),
                        alt_text=photo["alt_text"])
             if storage is not None and photo else None)
    return ProjectHit(
        id=row["id"], slug=row["slug"], name=row["name"],
        builder=BuilderRef(id=row["builder_id"], name=row["builder_name"],
                           slug=row["builder_slug"], verified=row["builder_verified"]),
        city=row["city"], locality=row["locality"], lat=row["lat"], lng=row["lng"],
        status=row["status"], possession_date=row["possession_date"],
        price_min=row["price_min"], price_max=row["price_max"], currency=row["currency"],
        bedrooms=list(row["bedrooms"] or []), units_available=row["units_available"],
        featured=row["featured"],
        distance_km=None if distance is None else round(distance / 1000.0, 3), cover=cover)


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


async def run_search(db: Any, plan: SearchPlan, storage: Storage | None = None) -> SearchPage:
    """The page of items, the facets and the total of a planned search (covers' URLs from
    ``storage``; without it, hits have no cover)."""
    rows = await store.search_items(db, plan)
    more = len(rows) > plan.limit
    rows = rows[:plan.limit]
    facet_rows = await store.search_facets(
        db, plan, [lo for lo, _ in PRICE_BUCKETS],
        [hi if hi is not None else 2**63 - 1 for _, hi in PRICE_BUCKETS], FACET_TOP)
    facets, total = _facets(facet_rows)
    next_cursor = (encode_cursor(plan.fingerprint, rows[-1]["sort_key"], rows[-1]["id"])
                   if more and rows else None)
    return SearchPage(items=[_hit(r, storage) for r in rows], facets=facets, total=total,
                      next_cursor=next_cursor)


def _like_prefix(text: str) -> str:
    folded = text.strip()
    return folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def run_suggest(db: Any, query: SuggestQuery) -> SuggestPage:
    """Ranked completions over project names, localities and builder names."""
    q = " ".join(query.q.split())
    rows = await store.suggest(db, q, _like_prefix(q), int(query.limit))
    return SuggestPage(items=[
        Suggestion(kind=r["kind"], label=r["label"], id=r["id"], slug=r["slug"],
                   city=r["city"], score=round(float(r["score"]), 4)) for r in rows])


async def run_feed(db: Any, query: FeedQuery, storage: Storage | None = None) -> FeedPage:
    """A city's published projects, featured first, then newest (covers as in
    :func:`run_search`)."""
    rows = await store.feed(db, " ".join(query.city.split()), query.limit)
    return FeedPage(items=[_hit(r, storage) for r in rows])


# --- answering (cached) -------------------------------------------------------------------------

async def search(ctx: Ctx, actor: Actor | None, query: SearchQuery) -> str:
    """Published projects matching ``query``: the JSON text of a :class:`SearchPage`.

    :raises ValidationFailed: parameters that do not go together, or a foreign cursor.
    """
    plan = plan_search(query)
    # Scoped to no city even with a city filter: the disjunctive city facet counts every city.
    return await cache.cached(ctx, "search", plan.canonical, None,
                              lambda: run_search(ctx.db, plan, ctx.storage))


async def suggest(ctx: Ctx, actor: Actor | None, query: SuggestQuery) -> str:
    """Completions of ``query.q``: the JSON text of a :class:`SuggestPage`."""
    params = {"q": " ".join(query.q.split()).lower(), "limit": query.limit}
    return await cache.cached(ctx, "suggest", params, None,
                              lambda: run_suggest(ctx.db, query))


async def feed(ctx: Ctx, actor: Actor | None, query: FeedQuery) -> str:
    """A city's published projects: the JSON text of a :class:`FeedPage`."""
    params = {"city": " ".join(query.city.split()).lower(), "limit": query.limit}
    return await cache.cached(ctx, "feed", params, query.city,
                              lambda: run_feed(ctx.db, query, ctx.storage))
