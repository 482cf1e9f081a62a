"""Issue 9: the OpenAPI document tells the truth, and /v1/docs needs no CDN."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from claimant.api.routes import ROUTES


def _doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/v1/openapi.json", headers={"x-auth-token": ""})
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_every_operation_names_the_token_and_its_errors(client: TestClient) -> None:
    doc = _doc(client)
    assert doc["components"]["securitySchemes"]["x-auth-token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-auth-token",
    }
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert op["security"] == [{"x-auth-token": []}], route.path
        statuses = set(op["responses"])
        assert {str(route.status), "401", "403", "500", "503"} <= statuses, route.path
        if "{" in route.path:
            assert {"400", "404"} <= statuses, route.path
        if "requestBody" in op:
            assert {"400", "413", "422"} <= statuses, route.path
        if route.method != "GET":
            assert "409" in statuses, route.path


def test_uuids_are_marked_as_uuids(client: TestClient) -> None:
    doc = _doc(client)
    param = doc["paths"]["/claims/{uuid}"]["get"]["parameters"][0]
    assert param["schema"]["format"] == "uuid"
    # issue 11: a provider in a path may be named by name too
    (named,) = [
        p for p in doc["paths"]["/providers/{uuid}"]["get"]["parameters"] if p["in"] == "path"
    ]
    assert "format" not in named["schema"] and "name" in named["description"]
    body = doc["components"]["schemas"]["RequestCreate"]["properties"]["uuid"]
    assert {"type": "string", "format": "uuid"} in body["anyOf"]


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    anon = {"x-auth-token": ""}
    page = client.get("/v1/docs", headers=anon)
    assert page.status_code == 200
    assert "cdn" not in page.text and "https://" not in page.text
    assert client.get("/v1/docs/assets/swagger-ui-bundle.js", headers=anon).status_code == 200
    assert client.get("/v1/docs/assets/swagger-ui.css", headers=anon).status_code == 200
