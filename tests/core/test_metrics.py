"""/metrics: Prometheus text with the HTTP, database and process metrics; on the main listener,
or on one of its own (``metrics.listen``).

Prometheus metrics are process-global and other tests move them too: assert on increases
between two scrapes, never on absolute values.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from propmubi.app import create_app
from propmubi.config import Config, ConfigError, load_config
from tests.core.test_server import CLIENT_TIMEOUT, free_port, get, server_environ

NOTE = "/api/v1/reference/notes/{id}"


async def scrape(client) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` from one GET /metrics."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template(client):
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/api/v1/reference/notes/{uuid.uuid4()}")).status == 404
    assert (await client.get("/api/v1/reference/notes/not-a-uuid")).status == 422
    after = await scrape(client)

    total = "propmubi_http_requests_total"
    labels = {"method": "GET", "route": NOTE}
    assert value(after, total, status="404", **labels) - value(
        before, total, status="404", **labels) == 3
    assert value(after, total, status="422", **labels) - value(
        before, total, status="422", **labels) == 1
    # One series per template, none per concrete id.
    assert not [key for key in after[total] if "not-a-uuid" in str(key)]
    count = "propmubi_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 4
    assert value(after, "propmubi_http_request_duration_seconds_bucket", le="+Inf",
                 **labels) >= 4
    # The scrape itself is in flight while it renders.
    assert value(after, "propmubi_http_requests_in_flight") >= 1


async def test_unmatched_and_unknown_methods_share_series(client):
    before = await scrape(client)
    for path in [f"/no/such/{uuid.uuid4()}", f"/api/v1/{uuid.uuid4()}"]:
        assert (await client.get(path)).status == 404
    assert (await client.delete("/health")).status == 405
    assert (await client.request("PROPFIND", "/health")).status == 405
    after = await scrape(client)
    total = "propmubi_http_requests_total"

    def delta(**labels: str) -> float:
        return value(after, total, **labels) - value(before, total, **labels)

    assert delta(method="GET", route="unmatched", status="404") == 2
    assert delta(method="DELETE", route="unmatched", status="405") == 1
    # The parser knows some thirty methods; the rare ones share one label.
    assert delta(method="OTHER", route="unmatched", status="405") == 1
    assert not [key for key in after[total] if ("method", "PROPFIND") in key]


async def test_redirects_and_server_errors_are_counted_with_their_status(client):
    before = await scrape(client)
    assert (await client.get("/api/v1/reference/moved", allow_redirects=False)).status == 302
    assert (await client.get("/api/v1/reference/boom")).status == 500
    after = await scrape(client)
    total = "propmubi_http_requests_total"
    for route, status in [("/api/v1/reference/moved", "302"), ("/api/v1/reference/boom", "500")]:
        labels = {"method": "GET", "route": route, "status": status}
        assert value(after, total, **labels) - value(before, total, **labels) == 1


async def test_database_and_process_metrics(client):
    assert (await client.get("/api/v1/reference/notes")).status == 200
    samples = await scrape(client)
    pools = samples["propmubi_db_pool_connections"]
    assert pools, "no pool samples while the app's pool is open"
    assert all({"pool", "state"} == {k for k, _ in labels} for labels in pools)
    assert any(v > 0 for v in samples["propmubi_db_query_duration_seconds_count"].values())
    assert samples["propmubi_redis_pool_connections"]
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds"]:
        assert value(samples, name) > 0, name


async def test_metrics_listen_takes_metrics_off_the_main_listener(migrated, plugins,
                                                                   aiohttp_client):
    config = migrated.evolve(metrics={"listen": "127.0.0.1:9464"})
    client = await aiohttp_client(create_app(config, plugins))
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert (await client.get("/health")).status == 200


@pytest.mark.parametrize("value", ["9464", "localhost", "127.0.0.1:", ":9464",
                                   "127.0.0.1:70000", "[::1]"])
def test_metrics_listen_must_be_host_and_port(value: str) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.listen: .*host:port"):
        load_config(None, {"PROPMUBI_METRICS__LISTEN": value}, use_default_path=False)
    assert load_config(None, {"PROPMUBI_METRICS__LISTEN": "[::1]:9464"},
                       use_default_path=False).metrics.listen == "[::1]:9464"


@pytest.mark.slow
async def test_serve_answers_metrics_on_its_own_listener(migrated: Config, spawn: Any) -> None:
    port = free_port()
    proc = spawn(["serve"], server_environ(migrated,
                                           PROPMUBI_METRICS__LISTEN=f"127.0.0.1:{port}"))
    await proc.wait_http()
    await proc.wait_for_output("serving /metrics on")
    status, _ = await get(proc.port, f"/api/v1/reference/notes/{uuid.uuid4()}")
    assert status == 404
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        # Only metrics there: the application's routes are on the main listener.
        async with session.get(f"http://127.0.0.1:{port}/api/v1/reference/notes") as resp:
            assert resp.status == 404
        async with session.get(f"http://127.0.0.1:{proc.port}/metrics") as resp:
            assert resp.status == 404
    assert f'route="{NOTE}",status="404"' in text
