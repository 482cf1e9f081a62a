"""Issue 11: /metrics shows the cloud: capacity and use per class, providers
by health and enabled, live claims, expired claims, placements by result and
claimant_schedule_seconds; the store is read once per few seconds."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from claimant.api.metrics import StoreCollector
from claimant.store import Store


def _value(text: str, sample: str) -> float:
    m = re.search(rf"^{re.escape(sample)} ([0-9.e+-]+)$", text, re.M)
    assert m, f"{sample} not in /metrics"
    return float(m.group(1))


def test_cloud_gauges_and_placement_results(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    a = make_provider("cn1", vcpu=8, memory_mb=1024)
    make_provider("cn2", vcpu=4, memory_mb=512, enabled=False)
    dead = make_provider("cn3", vcpu=2, memory_mb=256)
    store.heartbeat(a["uuid"], at=time.time())
    store.heartbeat(dead["uuid"], at=time.time() - 3600)
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 3}}], "count": 2})
    assert r.status_code == 201, r.text
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 8}}], "count": 3})
    assert r.status_code == 409
    text = client.get("/metrics").text
    assert _value(text, 'claimant_provider_capacity{resource_class="VCPU"}') == 14
    assert _value(text, 'claimant_provider_used{resource_class="VCPU"}') == 6
    assert _value(text, 'claimant_provider_capacity{resource_class="MEMORY_MB"}') == 1792
    assert _value(text, 'claimant_providers{enabled="true",health="up"}') == 1
    assert _value(text, 'claimant_providers{enabled="true",health="stale"}') == 1
    assert _value(text, 'claimant_providers{enabled="false",health="no_agent"}') == 1
    assert _value(text, "claimant_claims_live") == 2
    assert _value(text, 'claimant_placements_total{result="placed"}') == 2
    assert _value(text, 'claimant_placements_total{result="failed"}') == 3
    assert _value(text, "claimant_schedule_seconds_count") == 1
    assert _value(text, "claimant_claims_expired_total") == 0


def test_expired_claims_are_counted(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]})
    real = store.clock
    store.clock = lambda: real() + 3600
    try:
        assert store.expire_claims() == 1
        text = client.get("/metrics").text
    finally:
        store.clock = real
    assert _value(text, "claimant_claims_expired_total") == 1
    assert _value(text, "claimant_claims_live") == 0


def test_summary_is_cached(store: Store, make_provider: Callable[..., dict[str, Any]]) -> None:
    now = [0.0]
    collector = StoreCollector(store, 60.0, ttl=5.0, clock=lambda: now[0])
    first = collector.summary()
    make_provider("cn1")
    assert collector.summary() is first  # within ttl: the store is not read again
    now[0] = 5.0
    fresh = collector.summary()
    assert fresh is not first and fresh is not None
    assert fresh.capacity["VCPU"] == 8
