"""``propmubi seed --scale N``: a reproducible demo catalogue.

At scale 1: 50 builders, 2,000 projects and 100,000 units (50 a project, in 1 to 4 towers) in
real Indian cities and localities with approximate coordinates, per-city prices per square
foot, 1-4 BHK mixes. ``propmubi dev`` seeds a small fraction. :func:`counts` gives the sizes
of a scale without touching the database.

Reproducible and idempotent: every row's id is a UUIDv5 of its position, every random choice
comes from a generator seeded by that position (so a project is the same at any scale), and
inserts are ``ON CONFLICT DO NOTHING``; running twice adds nothing. Rows go in with one
``INSERT ... SELECT FROM unnest(...)`` per table and batch, and the projects' derived columns
are then computed by the same statement the API uses. Seeding publishes no events: it is
demo data loaded before anything subscribes (search reads the tables).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import Any

from propmubi_plugins.catalog import store
from propmubi_plugins.catalog.models import AMENITIES
from propmubi_plugins.catalog.service import slugify
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import store as units_store
from propmubi_plugins.catalog.units.models import FACINGS

#: Namespace of the seed's UUIDv5 ids.
NAMESPACE = uuid.UUID("6f1d1c1e-8a55-4c5e-9a7e-2f0c7b7d5e01")
BUILDERS, PROJECTS, UNITS_PER_PROJECT = 50, 2000, 50
_BATCH_PROJECTS = 250
_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# city: (price per sq ft in rupees (low, high), RERA prefix, [(locality, lat, lng), ...])
CITIES: dict[str, tuple[tuple[int, int], str, list[tuple[str, float, float]]]] = {
    "Mumbai": ((14000, 45000), "P518000", [
        ("Andheri West", 19.1364, 72.8296), ("Bandra West", 19.0596, 72.8295),
        ("Powai", 19.1176, 72.9060), ("Goregaon East", 19.1663, 72.8526),
        ("Malad West", 19.1874, 72.8484), ("Worli", 19.0176, 72.8162),
        ("Lower Parel", 18.9953, 72.8300), ("Chembur", 19.0522, 72.9005),
        ("Borivali West", 19.2307, 72.8567), ("Thane West", 19.2183, 72.9781),
        ("Mulund West", 19.1726, 72.9425), ("Kandivali East", 19.2051, 72.8697)]),
    "Pune": ((6500, 16000), "P521000", [
        ("Baner", 18.5590, 73.7868), ("Hinjewadi", 18.5913, 73.7389),
        ("Wakad", 18.5987, 73.7688), ("Kharadi", 18.5515, 73.9348),
        ("Hadapsar", 18.5089, 73.9260), ("Viman Nagar", 18.5679, 73.9143),
        ("Kothrud", 18.5074, 73.8077), ("Aundh", 18.5580, 73.8075),
        ("Wagholi", 18.5808, 73.9787), ("Undri", 18.4567, 73.9167)]),
    "Bengaluru": ((6000, 18000), "PRM/KA/RERA/1251", [
        ("Whitefield", 12.9698, 77.7500), ("Sarjapur Road", 12.9100, 77.6850),
        ("Electronic City", 12.8452, 77.6602), ("Hebbal", 13.0358, 77.5970),
        ("Koramangala", 12.9352, 77.6245), ("HSR Layout", 12.9116, 77.6474),
        ("Yelahanka", 13.1007, 77.5963), ("Bannerghatta Road", 12.8876, 77.5971),
        ("Marathahalli", 12.9569, 77.7011), ("Devanahalli", 13.2437, 77.7172),
        ("JP Nagar", 12.9063, 77.5857), ("Hennur", 13.0358, 77.6431)]),
    "Hyderabad": ((5500, 14000), "P024000", [
        ("Gachibowli", 17.4401, 78.3489), ("Kondapur", 17.4700, 78.3600),
        ("Kokapet", 17.3950, 78.3290), ("Narsingi", 17.3870, 78.3560),
        ("Madhapur", 17.4483, 78.3915), ("Kukatpally", 17.4849, 78.4138),
        ("Tellapur", 17.4600, 78.2880), ("Miyapur", 17.4960, 78.3570),
        ("Manikonda", 17.4050, 78.3870), ("Uppal", 17.4050, 78.5590)]),
    "Chennai": ((5500, 15000), "TN/29/Building", [
        ("OMR Sholinganallur", 12.9010, 80.2279), ("Velachery", 12.9815, 80.2180),
        ("Anna Nagar", 13.0850, 80.2101), ("Porur", 13.0382, 80.1565),
        ("Perungudi", 12.9654, 80.2461), ("Tambaram", 12.9249, 80.1000),
        ("Adyar", 13.0012, 80.2565), ("Guindy", 13.0067, 80.2206),
        ("Pallikaranai", 12.9349, 80.2137)]),
    "Gurugram": ((8000, 25000), "RC/REP/HARERA/GGM", [
        ("Golf Course Road", 28.4530, 77.0960), ("Sohna Road", 28.4089, 77.0424),
        ("Dwarka Expressway", 28.4950, 77.0050), ("Sector 65", 28.4020, 77.0730),
        ("Sector 79", 28.3820, 76.9980), ("New Gurgaon", 28.3950, 76.9700),
        ("DLF Phase 5", 28.4421, 77.1000), ("Sector 102", 28.4800, 76.9880)]),
    "Noida": ((6000, 16000), "UPRERAPRJ", [
        ("Sector 150", 28.4190, 77.4810), ("Sector 137", 28.5110, 77.4060),
        ("Sector 75", 28.5780, 77.3880), ("Greater Noida West", 28.6060, 77.4290),
        ("Sector 128", 28.5250, 77.3600), ("Sector 62", 28.6270, 77.3650),
        ("Sector 18", 28.5700, 77.3210), ("Yamuna Expressway", 28.3700, 77.5400)]),
    "Ahmedabad": ((4000, 11000), "PR/GJ/AHMEDABAD", [
        ("SG Highway", 23.0300, 72.5070), ("Bopal", 23.0330, 72.4630),
        ("Satellite", 23.0300, 72.5170), ("Prahlad Nagar", 23.0120, 72.5100),
        ("Gota", 23.1030, 72.5410), ("Shela", 23.0000, 72.4590),
        ("Chandkheda", 23.1090, 72.5850), ("Thaltej", 23.0500, 72.5000)]),
    "Kolkata": ((4500, 13000), "WBRERA/P/KOL", [
        ("New Town", 22.5920, 88.4840), ("Rajarhat", 22.6200, 88.4500),
        ("Salt Lake", 22.5800, 88.4150), ("EM Bypass", 22.5100, 88.4000),
        ("Tollygunge", 22.4980, 88.3460), ("Behala", 22.4980, 88.3100),
        ("Garia", 22.4660, 88.3920), ("Howrah", 22.5958, 88.2636)]),
}

_BUILDER_FIRST = ("Shree", "Sai", "Prestige", "Lodha", "Godrej", "Sobha", "Brigade", "Kolte",
                  "Mahindra", "Puravankara", "Tata", "Shapoorji", "Raheja", "Hiranandani",
                  "Kalpataru", "Rustomjee", "Oberoi", "Embassy", "Salarpuria", "Aparna",
                  "My Home", "Rajapushpa", "Casagrand", "Purva", "Adani", "Goyal", "Shivalik",
                  "Merlin", "Siddha", "Ambuja", "Mahagun", "Gaur", "ATS", "Ace", "Bestech",
                  "Signature", "Paras", "Vatika", "M3M", "Emaar")
_BUILDER_SECOND = ("Developers", "Realty", "Estates", "Constructions", "Infra", "Properties",
                   "Builders", "Housing", "Group", "Homes")
_PROJECT_FIRST = ("Green", "Royal", "Silver", "Golden", "Blue", "Urban", "Lake", "Palm",
                  "Sky", "River", "Sunrise", "Emerald", "Park", "Grand", "Serene", "Orchid",
                  "Maple", "Lotus", "Crystal", "Harmony", "Elite", "Prime", "Vista", "Signature")
_PROJECT_SECOND = ("Meadows", "Heights", "Residency", "Towers", "Greens", "Enclave", "Gardens",
                   "Square", "Vista", "Woods", "Springs", "Horizon", "Court", "Avenue",
                   "Terraces", "Retreat", "Habitat", "One", "Crest", "County")
# BHK: (share, carpet area range sq ft, super/carpet ratio range)
_MIX = {1: (0.25, (380, 560)), 2: (0.40, (600, 900)), 3: (0.27, (950, 1450)),
        4: (0.08, (1600, 2600))}
_MODERATION = (("published", 0.85), ("in_review", 0.07), ("draft", 0.05), ("rejected", 0.03))


def counts(scale: float) -> dict[str, int]:
    """How many builders, projects and units a scale seeds (scale 1: 50, 2,000, 100,000)."""
    projects = max(1, round(PROJECTS * scale))
    return {"builders": min(max(1, round(BUILDERS * scale)), projects), "projects": projects,
            "units": projects * UNITS_PER_PROJECT}


def _id(kind: str, *parts: Any) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([kind, *map(str, parts)]))


def _rng(*parts: Any) -> random.Random:
    return random.Random(":".join(map(str, ("propmubi-seed", *parts))))


def builder_rows(n: int) -> dict[str, list[Any]]:
    """Column lists of the first ``n`` demo builders."""
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "name", "slug", "rera", "verified",
                                                  "description", "website")}
    for i in range(n):
        rng = _rng("builder", i)
        first = _BUILDER_FIRST[i % len(_BUILDER_FIRST)]
        name = f"{first} {rng.choice(_BUILDER_SECOND)}"
        if i >= len(_BUILDER_FIRST):
            name += f" {i // len(_BUILDER_FIRST) + 1}"
        ident = _id("builder", i)
        cols["id"].append(ident)
        cols["name"].append(name)
        cols["slug"].append(f"{slugify(name)}-{ident.hex[-6:]}")
        cols["rera"].append(f"PRM{rng.randrange(10**7, 10**8)}")
        rng.random()  # was the verified draw: every later choice stays as it was
        cols["verified"].append(builder_verified(i))
        cols["description"].append(f"{name} has delivered {rng.randrange(3, 60)} projects "
                                   f"since {rng.randrange(1975, 2015)}.")
        cols["website"].append(f"https://www.{slugify(name).replace('-', '')}.example")
    return cols


def builder_verified(i: int) -> bool:
    """Whether demo builder ``i`` has verified its identity: all but one in ten. An unverified
    builder cannot send projects to review, so that one's projects are all drafts; the dev
    seed's builder (0) is verified and most of its projects are published."""
    return i % 10 != 9


def _pick_moderation(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for state, share in _MODERATION:
        acc += share
        if x < acc:
            return state
    return "published"


def _bhk(rng: random.Random) -> int:
    x, acc = rng.random(), 0.0
    for bhk, (share, _) in _MIX.items():
        acc += share
        if x < acc:
            return bhk
    return 2


def project_rows(start: int, stop: int, builders: int
                 ) -> tuple[dict[str, list[Any]], ...]:
    """Column lists of demo projects ``start..stop-1``, their towers, units and reviews."""
    p: dict[str, list[Any]] = {k: [] for k in (
        "id", "builder_id", "slug", "name", "city", "locality", "address", "lat", "lng", "rera",
        "status", "possession", "amenities", "description", "moderation", "reason", "featured",
        "created", "submitted", "published")}
    t: dict[str, list[Any]] = {k: [] for k in ("id", "project_id", "name", "floors")}
    u: dict[str, list[Any]] = {k: [] for k in (
        "id", "project_id", "tower_id", "code", "unit_type", "bedrooms", "carpet", "super",
        "floor", "facing", "price", "currency", "status")}
    r: dict[str, list[Any]] = {k: [] for k in ("project_id", "action", "reason", "at")}
    cities = list(CITIES)
    for i in range(start, stop):
        rng = _rng("project", i)
        city = cities[i % len(cities)]
        (low, high), rera_prefix, localities = CITIES[city]
        locality, lat, lng = rng.choice(localities)
        name = f"{rng.choice(_PROJECT_FIRST)} {rng.choice(_PROJECT_SECOND)}"
        ident = _id("project", i)
        moderation = _pick_moderation(rng)
        created = _EPOCH + dt.timedelta(minutes=rng.randrange(0, 600 * 24 * 60))
        submitted = (created + dt.timedelta(days=rng.randrange(1, 10))
                     if moderation != "draft" else None)
        published = (submitted + dt.timedelta(days=rng.randrange(1, 5))
                     if moderation == "published" and submitted else None)
        if not builder_verified(i % builders):
            # After the draws above: the rest of the project stays the same at any scale.
            moderation, submitted, published = "draft", None, None
        status = rng.choice(("upcoming", "under_construction", "under_construction", "ready"))
        possession = (None if status == "ready" else
                      dt.date(2026 + rng.randrange(0, 5), rng.randrange(1, 13), 1))
        p["id"].append(ident)
        p["builder_id"].append(_id("builder", i % builders))
        p["slug"].append(f"{slugify(name, locality)}-{ident.hex[-6:]}")
        p["name"].append(name)
        p["city"].append(city)
        p["locality"].append(locality)
        p["address"].append(f"Plot {rng.randrange(1, 400)}, {locality}, {city}")
        p["lat"].append(round(lat + rng.uniform(-0.012, 0.012), 6))
        p["lng"].append(round(lng + rng.uniform(-0.012, 0.012), 6))
        p["rera"].append(f"{rera_prefix}{rng.randrange(10**5, 10**6)}")
        p["status"].append(status)
        p["possession"].append(possession)
        p["amenities"].append(",".join(sorted(rng.sample(AMENITIES, rng.randrange(4, 14)))))
        p["description"].append(f"{name} in {locality}, {city}: homes by the demo builder, "
                                f"{rng.randrange(1, 20)} acres of open space.")
        p["moderation"].append(moderation)
        p["reason"].append("Please upload the RERA certificate" if moderation == "rejected"
                           else None)
        p["featured"].append(moderation == "published" and rng.random() < 0.06)
        p["created"].append(created)
        p["submitted"].append(submitted)
        p["published"].append(published)
        if submitted:
            r["project_id"].append(ident)
            r["action"].append("submitted")
            r["reason"].append(None)
            r["at"].append(submitted)
        if moderation in ("published", "rejected") and submitted:
            r["project_id"].append(ident)
            r["action"].append(moderation)
            r["reason"].append(p["reason"][-1])
            r["at"].append(published or submitted + dt.timedelta(days=2))

        per_sqft = rng.randrange(low, high)
        tower_count = rng.choice((1, 2, 2, 3, 3, 4))
        towers = []
        for k in range(tower_count):
            tower_id = _id("tower", i, k)
            floors = rng.randrange(13, 41)  # 50 units, 4 a floor: no floor repeats
            towers.append((tower_id, chr(ord("A") + k), floors))
            t["id"].append(tower_id)
            t["project_id"].append(ident)
            t["name"].append(f"Tower {chr(ord('A') + k)}")
            t["floors"].append(floors)
        for n in range(UNITS_PER_PROJECT):
            tower_id, letter, floors = towers[n % tower_count]
            index = n // tower_count
            floor = 1 + index // 4 % floors
            bhk = _bhk(rng)
            carpet = rng.randrange(*_MIX[bhk][1])
            super_area = round(carpet * rng.uniform(1.25, 1.4))
            # Higher floors cost a little more; prices round to a thousand rupees.
            price_rupees = carpet * per_sqft * (1 + floor * 0.004)
            u["id"].append(_id("unit", i, n))
            u["project_id"].append(ident)
            u["tower_id"].append(tower_id)
            u["code"].append(f"{letter}-{floor}{index % 4 + 1:02d}")
            u["unit_type"].append(f"{bhk}BHK")
            u["bedrooms"].append(bhk)
            u["carpet"].append(carpet)
            u["super"].append(super_area)
            u["floor"].append(floor)
            u["facing"].append(rng.choice(FACINGS))
            u["price"].append(int(round(price_rupees, -3)) * 100)
            u["currency"].append("INR")
            x = rng.random()
            u["status"].append("available" if x < 0.62 else "sold" if x < 0.85 else
                               "booked" if x < 0.93 else "held" if x < 0.97 else "blocked")
    return p, t, u, r


async def seed(ctx: Ctx, scale: float) -> dict[str, int]:
    """Create the demo catalogue (idempotent); how many rows of each kind were new."""
    started = time.perf_counter()
    sizes = counts(scale)
    new = {"builders": 0, "projects": 0, "towers": 0, "units": 0}
    db = ctx.db
    async with db.transaction() as tx:
        new["builders"] = await store.seed_builders(tx, builder_rows(sizes["builders"]))
    for start in range(0, sizes["projects"], _BATCH_PROJECTS):
        stop = min(start + _BATCH_PROJECTS, sizes["projects"])
        projects, towers, units, reviews = project_rows(start, stop, sizes["builders"])
        async with db.transaction() as tx:
            new["projects"] += await store.seed_projects(tx, projects)
            new["towers"] += await units_store.seed_towers(tx, towers)
            new["units"] += await units_store.seed_units(tx, units)
            await store.seed_reviews(tx, reviews)
            await units_store.recompute_derived(tx, projects["id"])
    ctx.log.info("catalog seed (scale %s): %s new in %.1fs", scale, new,
             time.perf_counter() - started)
    return new
