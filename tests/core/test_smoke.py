async def test_health_ready(client):
    resp = await client.get("/health")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    resp = await client.get("/ready")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["database"]["ok"]
