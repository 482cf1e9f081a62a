"""The app around the routes: health, metrics, OpenAPI, the Placement mount,
the expired-claim sweep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.scheduler import SchedulerConfig
from claimant.store import Store

from .conftest import ADMIN


def test_openapi_and_docs(client: TestClient) -> None:
    doc = client.get("/v1/openapi.json").json()
    assert doc["info"]["title"] == "claimant native API"
    assert "/requests" in doc["paths"] and "post" in doc["paths"]["/requests"]
    schema = doc["components"]["schemas"]["RequestCreate"]
    assert schema["additionalProperties"] is False
    docs = client.get("/v1/docs")
    assert docs.status_code == 200 and "/v1/docs/assets/init.js" in docs.text
    assert "/openapi.json" in client.get("/v1/docs/assets/init.js").text


def test_metrics_count_routes_and_placements(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    client.get(f"/v1/providers/{p['uuid']}")
    client.get("/v1/providers/" + "0" * 32)
    client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}], "count": 2})
    text = client.get("/metrics").text
    assert 'route="/v1/providers/{uuid}",status="200"' in text
    assert 'route="/v1/providers/{uuid}",status="404"' in text
    assert 'claimant_placements_total{result="placed"} 2.0' in text
    assert "claimant_requests_scheduled_total 1.0" in text
    assert "claimant_schedule_duration_seconds_count 1.0" in text


def test_placement_api_is_mounted_at_the_root(client: TestClient) -> None:
    root = client.get("/")
    assert root.status_code == 200 and "versions" in root.json()
    assert client.get("/resource_providers").status_code == 200
    # The native API, health and metrics are never shadowed by the mount.
    assert client.get("/v1/providers").json() == {"providers": []}
    assert client.get("/v1/nope").json()["error"]["code"] == "not_found"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert 'route="/*"' in client.get("/metrics").text


def test_expired_claims_are_swept(
    store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    app = create_app(
        store,
        auth=AuthConfig.noauth2(),
        scheduler_config=SchedulerConfig(claim_ttl=0.2),
        expire_interval=0.05,
    )
    with TestClient(app, headers=ADMIN) as c:
        c.post("/v1/providers", json={"name": "cn1", "inventories": {"VCPU": {"total": 2}}})
        r = c.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 2}}]})
        claim = r.json()["placements"][0]["claims"][0]["uuid"]
        # Polls for the sweep's effect (bounded); asserts no timing.
        deadline = time.monotonic() + 30
        while c.get(f"/v1/claims/{claim}").status_code != 404:
            assert time.monotonic() < deadline, "the sweep never removed the expired claim"
            time.sleep(0.05)
        again = c.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 2}}]})
        assert again.status_code == 201
