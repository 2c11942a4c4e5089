"""SQL of search, suggest, feed and cache invalidation.

A search statement is assembled from the constant fragments below, chosen by name by
:func:`.service.plan_search`; every value is a bound parameter. Nothing a caller sends is ever
part of the SQL text, so the set of statements this module can produce is finite and each of
them is covered by the EXPLAIN tests (tests/plugins/catalog/test_explain_search.py).

Every project condition starts with ``moderation = 'published'``: the indexes of
0003_search.sql are partial on it. Queries go to the primary (see service.py for why).
"""

from __future__ import annotations

import uuid
from typing import Any

# The last word being typed, as a prefix query. It is folded first and then quoted as one
# tsquery lexeme (quotes doubled, backslashes escaped): folding can turn a plain letter into
# query syntax (unaccent makes "ŉ" into "'n" and "⑴" into "(1)"), which to_tsquery would
# reject as a syntax error. Quoted, the text is only split into words; none is an empty query.
_PREFIX = ("to_tsquery('pg_catalog.simple', '''' || replace(replace("
           r"catalog_fold(%(q_last)s), '\', '\\'), '''', '''''') || ''':*')")

# The text query, three shapes: plain web search; web search and a prefix match on the last
# word being typed; only that prefix. websearch_to_tsquery accepts any text.
TSQUERY = {
    "web": "websearch_to_tsquery('pg_catalog.simple', catalog_fold(%(q)s))",
    "web_prefix": "(websearch_to_tsquery('pg_catalog.simple', catalog_fold(%(q_head)s))"
                  f" && {_PREFIX})",
    "prefix": _PREFIX,
}

_EARTH_POINT = "catalog_earth(%(lat)s, %(lng)s)"
_EARTH_ROW = "catalog_earth(p.lat, p.lng)"
_DISTANCE = f"public.earth_distance({_EARTH_POINT}, {_EARTH_ROW})"

# Conditions that are not facets: always applied, to items and to every facet count.
FILTERS = {
    "text": "p.search_document @@ {tsquery}",
    # The cube box finds candidates through the GiST index; the exact distance rechecks
    # (the box's corners are farther than the radius).
    "radius": f"public.earth_box({_EARTH_POINT}, %(radius_m)s) OPERATOR(public.@>) {_EARTH_ROW}"
              f" AND {_DISTANCE} <= %(radius_m)s",
    "polygon": "point(p.lng, p.lat) <@ %(polygon)s::polygon",
    "possession_before": "p.possession_date <= %(possession_before)s",
}

# Facet conditions: applied to items; each facet is counted without its own.
FACET_FILTERS = {
    "city": "lower(p.city) = ANY(%(cities)s::text[])",
    "locality": "lower(p.locality) = ANY(%(localities)s::text[])",
    "bhk": "p.bedrooms && %(bhk)s::smallint[]",
    "status": "p.status = ANY(%(statuses)s::text[])",
    "price": "(p.price_max >= %(price_min)s AND p.price_min <= %(price_max)s)",
    "amenities": "p.amenities @> %(amenities)s::text[]",
    "verified": "b.verified = %(verified)s",
}

# Sort key (never null, so that a row comparison is the whole keyset test), its direction,
# and the type its text form is cast back to from a cursor.
SORTS = {
    "newest": ("coalesce(p.published_at, '-infinity'::timestamptz)", "DESC", "timestamptz"),
    "price_asc": ("coalesce(p.price_min, 9223372036854775807)", "ASC", "bigint"),
    "price_desc": ("coalesce(p.price_max, -1)", "DESC", "bigint"),
    "relevance": ("ts_rank_cd(p.search_document, {tsquery})", "DESC", "real"),
    "distance": (_DISTANCE, "ASC", "double precision"),
}

_COLUMNS = """p.id, p.slug, p.name, p.builder_id, b.name AS builder_name,
       b.slug AS builder_slug, b.verified AS builder_verified, p.city, p.locality, p.lat,
       p.lng, p.status, p.possession_date, p.price_min, p.price_max, p.currency, p.bedrooms,
       p.units_available, p.featured,
       (SELECT jsonb_build_object('thumb_key', m.thumb_key, 'web_key', m.web_key,
                                  'alt_text', m.alt_text)
          FROM catalog_media m WHERE m.project_id = p.id AND m.unit_id IS NULL
         ORDER BY m.unit_id, m.position LIMIT 1) AS cover"""
# A hit's project with its builder; its cover is the first photo of its own gallery
# (catalog_media_project_gallery_idx), a scalar subquery so that it is read only for the
# rows the LIMIT keeps and never disturbs the index order of a keyset page. (The planner takes
# no order from `unit_id IS NULL`; ordering by the index's own columns spares it a sort.)
_FROM = "FROM catalog_projects p JOIN catalog_builders b ON b.id = p.builder_id"


def _conditions(plan: Any, names: tuple[str, ...], table: dict[str, str]) -> list[str]:
    tsquery = TSQUERY[plan.text] if plan.text else ""
    return [table[name].format(tsquery=tsquery) for name in names]


def items_sql(plan: Any) -> tuple[str, dict[str, Any]]:
    """The items statement of a plan and its parameters."""
    tsquery = TSQUERY[plan.text] if plan.text else ""
    key, direction, cast = SORTS[plan.sort]
    key = key.format(tsquery=tsquery)
    where = ["p.moderation = 'published'",
             *_conditions(plan, plan.filters, FILTERS),
             *_conditions(plan, plan.facet_filters, FACET_FILTERS)]
    params = dict(plan.params, limit=plan.limit + 1)
    if plan.after is not None:
        op = "<" if direction == "DESC" else ">"
        where.append(f"({key}, p.id) {op} (%(after_key)s::{cast}, %(after_id)s)")
        params["after_key"], params["after_id"] = plan.after
    distance = f"{_DISTANCE} AS distance_m," if plan.point else ""
    sql = (f"SELECT {_COLUMNS}, {distance} ({key})::text AS sort_key\n"
           f"{_FROM}\n"
           f"WHERE {' AND '.join(where)}\n"
           f"ORDER BY {key} {direction}, p.id {direction}\n"
           "LIMIT %(limit)s")
    return sql, params


# One arm per facet over the rows that pass every non-facet filter and fail at most one
# facet filter (a row failing two can count in no facet). Each arm keeps the rows that pass
# every facet filter but its own.
_FACET_ARMS = {
    "total": ("SELECT 'total' AS facet, NULL::text AS value, count(*) AS n FROM base"
              " WHERE {others}"),
    "city": ("(SELECT 'city', min(city), count(*) FROM base WHERE {others}"
             " GROUP BY lower(city) ORDER BY count(*) DESC, min(city) LIMIT %(top_city)s)"),
    "locality": ("(SELECT 'locality', min(locality), count(*) FROM base WHERE {others}"
                 " GROUP BY lower(locality) ORDER BY count(*) DESC, min(locality)"
                 " LIMIT %(top_locality)s)"),
    "bhk": ("SELECT 'bhk', bhk::text, count(*) FROM base, unnest(bedrooms) AS bhk"
            " WHERE {others} GROUP BY bhk"),
    "status": "SELECT 'status', status, count(*) FROM base WHERE {others} GROUP BY status",
    "price": ("SELECT 'price', (bucket.n - 1)::text, count(*)"
              " FROM base, unnest(%(bucket_lo)s::bigint[], %(bucket_hi)s::bigint[])"
              " WITH ORDINALITY AS bucket(lo, hi, n)"
              " WHERE {others} AND price_max >= bucket.lo AND price_min <= bucket.hi"
              " GROUP BY bucket.n"),
    "amenities": ("(SELECT 'amenities', amenity, count(*) FROM base, unnest(amenities) AS amenity"
                  " WHERE {others} GROUP BY amenity ORDER BY count(*) DESC, amenity"
                  " LIMIT %(top_amenities)s)"),
    "verified": ("SELECT 'verified', verified::text, count(*) FROM base WHERE {others}"
                 " GROUP BY verified"),
}


def facets_sql(plan: Any, bucket_lo: list[int], bucket_hi: list[int], top: dict[str, int]
               ) -> tuple[str, dict[str, Any]]:
    """The facets statement of a plan (with the exact total) and its parameters."""
    where = ["p.moderation = 'published'", *_conditions(plan, plan.filters, FILTERS)]
    flags = []
    for name in plan.facet_filters:
        condition = FACET_FILTERS[name].format(tsquery="")
        # A null (no price) is a failed filter, not an unknown one.
        flags.append(f"coalesce({condition}, false) AS f_{name}")
    if plan.facet_filters:
        failed = " + ".join(f"coalesce((NOT {FACET_FILTERS[n]})::int, 1)"
                            for n in plan.facet_filters)
        where.append(f"{failed} <= 1")
    select = ["p.city", "p.locality", "p.bedrooms", "p.status", "p.price_min", "p.price_max",
              "p.amenities", "b.verified", *flags]
    base = (f"SELECT {', '.join(select)}\n"
            "  FROM catalog_projects p JOIN catalog_builders b ON b.id = p.builder_id\n"
            f"  WHERE {' AND '.join(where)}")
    arms = []
    for facet, arm in _FACET_ARMS.items():
        others = [f"f_{n}" for n in plan.facet_filters if n != facet] or ["true"]
        arms.append(arm.format(others=" AND ".join(others)))
    sql = f"WITH base AS MATERIALIZED (\n{base}\n)\n" + "\nUNION ALL\n".join(arms)
    params = dict(plan.params, bucket_lo=bucket_lo, bucket_hi=bucket_hi,
                  top_city=top["city"], top_locality=top["locality"],
                  top_amenities=top["amenities"])
    return sql, params


async def search_items(db: Any, plan: Any) -> list[dict[str, Any]]:
    """``limit + 1`` rows of a search page (one more tells whether a next page exists)."""
    sql, params = items_sql(plan)
    return await db.fetch(sql, params)


async def search_facets(db: Any, plan: Any, bucket_lo: list[int], bucket_hi: list[int],
                        top: dict[str, int]) -> list[dict[str, Any]]:
    """Rows ``(facet, value, n)``; facet ``total`` holds the exact number of matches."""
    sql, params = facets_sql(plan, bucket_lo, bucket_hi, top)
    return await db.fetch(sql, params)


# Suggest: each kind takes its best few through its trigram index, then the best overall.
# A term matches when the query is close to one of its words (``<%``: word_similarity >= 0.6,
# "prestge" finds "Prestige Lakeside"), close to the whole term (``%``: similarity >= 0.3,
# "whitefeild" finds "Whitefield"), or starts it; a term starting with the query ranks first.
# The best few of each kind come first, so that many similar project names do not hide the
# builder or the locality the user may be typing.
def _match(term: str) -> str:
    return (f"(catalog_fold(%(q)s) <%% {term} OR {term} %% catalog_fold(%(q)s)"
            f" OR {term} LIKE catalog_fold(%(prefix)s))")


def _score(term: str) -> str:
    return (f"greatest(word_similarity(catalog_fold(%(q)s), {term}),"
            f" similarity(catalog_fold(%(q)s), {term}))"
            f" + CASE WHEN {term} LIKE catalog_fold(%(prefix)s) THEN 1 ELSE 0 END")


_NAME, _LOCALITY, _BUILDER = ("catalog_fold(p.name)", "catalog_fold(p.locality)",
                              "catalog_fold(b.name)")
SUGGEST = f"""
WITH hits AS (
  (SELECT 'project' AS kind, p.name AS label, p.id, p.slug, p.city, {_score(_NAME)} AS score
     FROM catalog_projects p
    WHERE p.moderation = 'published' AND {_match(_NAME)}
    ORDER BY score DESC, label LIMIT %(limit)s)
  UNION ALL
  (SELECT 'locality', min(p.locality), NULL::uuid, NULL::text, min(p.city),
          max({_score(_LOCALITY)})
     FROM catalog_projects p
    WHERE p.moderation = 'published' AND {_match(_LOCALITY)}
    GROUP BY {_LOCALITY}, lower(p.city)
    ORDER BY 6 DESC, 2 LIMIT %(limit)s)
  UNION ALL
  (SELECT 'builder', b.name, b.id, b.slug, NULL::text, {_score(_BUILDER)}
     FROM catalog_builders b
    WHERE {_match(_BUILDER)}
      AND EXISTS (SELECT 1 FROM catalog_projects p
                   WHERE p.builder_id = b.id AND p.moderation = 'published')
    ORDER BY 6 DESC, 2 LIMIT %(limit)s)
)
SELECT kind, label, id, slug, city, score
  FROM (SELECT hits.*, row_number() OVER (PARTITION BY kind ORDER BY score DESC, label) AS rank
          FROM hits) ranked
 ORDER BY rank <= %(per_kind)s DESC, score DESC,
          CASE kind WHEN 'project' THEN 0 WHEN 'locality' THEN 1 ELSE 2 END, label
 LIMIT %(limit)s
"""


async def suggest(db: Any, q: str, prefix: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` suggestions, best first."""
    return await db.fetch(SUGGEST, {"q": q, "prefix": prefix, "limit": limit,
                                         "per_kind": max(1, limit // 3)})


FEED = f"""
SELECT {_COLUMNS}
  {_FROM}
 WHERE p.moderation = 'published' AND lower(p.city) = lower(%(city)s)
 ORDER BY lower(p.city), p.featured DESC,
          coalesce(p.published_at, '-infinity'::timestamptz) DESC, p.id DESC
 LIMIT %(limit)s
"""


async def feed(db: Any, city: str, limit: int) -> list[dict[str, Any]]:
    """A city's published projects: featured first, then newest."""
    return await db.fetch(FEED, {"city": city, "limit": limit})


_PROJECT_CITY = "SELECT city FROM catalog_projects WHERE id = %(id)s"


async def project_city(tx: Any, project_id: uuid.UUID) -> str | None:
    """A project's city (None when it no longer exists), for cache invalidation."""
    return await tx.fetchval(_PROJECT_CITY, {"id": project_id})
