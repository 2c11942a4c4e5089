"""The photo upload's multipart form is in the OpenAPI document (``form=`` on the route)."""

from __future__ import annotations


async def test_multipart_forms_are_documented(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/projects/{id}/photos", "/api/v1/units/{id}/photos"):
        body = doc["paths"][path]["post"]["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        form = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert form["properties"]["file"] == {
            "type": "string", "format": "binary",
            "description": "JPEG, PNG or WebP, at most plugins.catalog.max_upload_bytes."}
        assert set(form["required"]) == {"file", "alt_text"}
        assert form["properties"]["alt_text"]["maxLength"] == 300
