"""The gallery statements (and the cascades of deletions) find their rows through the
gallery indexes."""

from __future__ import annotations

import uuid

from propmubi_plugins.catalog.media import store as media_store


async def plan(services, sql: str, params) -> str:
    async with services.db.transaction() as tx:
        # With sequential scans priced out, a plan still scanning means no usable index.
        await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetch("EXPLAIN " + sql, params)
    return "\n".join(r["QUERY PLAN"] for r in rows)


async def test_gallery_reads_and_renumbering_use_the_gallery_indexes(services):
    project = {"project_id": uuid.uuid4(), "unit_id": None, "position": 3}
    unit = {"project_id": uuid.uuid4(), "unit_id": uuid.uuid4(), "position": 3}
    for params, index in ((project, "catalog_media_project_gallery_idx"),
                          (unit, "catalog_media_unit_gallery_idx")):
        where = media_store._gallery(params["unit_id"])
        for sql in (f"SELECT m.id FROM catalog_media m WHERE {where} ORDER BY m.position",
                    f"SELECT count(*) FROM catalog_media m WHERE {where}",
                    f"UPDATE catalog_media m SET position = m.position + 1 WHERE {where} "
                    "AND m.position >= %(position)s"):
            found = await plan(services, sql, params)
            assert index in found and "Seq Scan" not in found, found


async def test_cascades_from_projects_and_units_use_an_index(services):
    for sql, params in (("DELETE FROM catalog_media WHERE project_id = %s", (uuid.uuid4(),)),
                        ("DELETE FROM catalog_media WHERE unit_id = %s", (uuid.uuid4(),))):
        found = await plan(services, sql, params)
        assert "Index" in found and "Seq Scan" not in found, found
