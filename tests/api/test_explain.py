"""Issue 11: POST /v1/requests?dry_run=true explains a placement without
claiming: what the query returned, which filter rejected whom and why, the
weights, what would be chosen, and the hosts that would fit but are
disabled or stale."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from claimant.store import Store


def test_dry_run_explains_without_claiming(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    a = make_provider("cn-a")
    b = make_provider("cn-b", vcpu=16)
    off = make_provider("cn-off", enabled=False)
    dead = make_provider("cn-dead")
    make_provider("cn-small", vcpu=1)
    store.heartbeat(dead["uuid"], at=time.time() - 3600)
    consumer = "00000000-0000-4000-8000-0000000000c1"
    placed = client.post(
        "/v1/requests",
        json={"groups": [{"resources": {"VCPU": 2}}], "consumers": [consumer]},
    ).json()
    # A placement picks at random among the best: either host may hold it.
    names = {a["uuid"]: "cn-a", b["uuid"]: "cn-b"}
    taken = names[placed["placements"][0]["claims"][0]["provider_uuid"]]
    free = "cn-a" if taken == "cn-b" else "cn-b"
    claims_before = len(store.list_claims())

    r = client.post(
        "/v1/requests",
        params={"dry_run": "true"},
        json={"groups": [{"resources": {"VCPU": 2}}], "hints": {"different_host": [consumer]}},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["dry_run"] is True and out["fits"] is True
    [g] = out["groups"]
    rows = {c["name"]: c for c in g["candidates"]}
    assert set(rows) == {"cn-a", "cn-b"}  # cn-small does not fit; off and dead are not eligible
    assert rows[taken]["passed"] is False
    assert rows[taken]["rejected_by"] == "DifferentHostFilter"
    assert "different_host" in rows[taken]["reason"]
    assert rows[free]["passed"] is True and rows[free]["rank"] == 1
    assert set(rows[free]["weights"]) >= {"RAMWeigher", "CPUWeigher"}
    assert names[g["would_choose"]] == free
    assert g["would_pick_among"] == [g["would_choose"]]
    not_eligible = {u["name"]: u["why"] for u in g["not_eligible"]}
    assert not_eligible["cn-off"] == "disabled"
    assert not_eligible["cn-dead"].startswith("stale: last heartbeat")
    assert off["uuid"] and "cn-a" not in not_eligible

    # Nothing was claimed or recorded.
    assert len(store.list_claims()) == claims_before
    assert client.get(f"/v1/requests/{out['request']['uuid']}").status_code == 404


def test_dry_run_of_a_request_nothing_fits(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1", vcpu=1)
    r = client.post(
        "/v1/requests", params={"dry_run": "true"}, json={"groups": [{"resources": {"VCPU": 4}}]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["fits"] is False
    assert r.json()["groups"][0]["would_choose"] is None
