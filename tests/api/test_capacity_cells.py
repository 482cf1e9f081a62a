"""/v1/capacity per cell (issue 12): a ``cells`` block, ``?cell=`` for one
cell, ``400 unknown_cell`` for a cell the store lacks. SQLite is one cell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import LOCAL_CELL
from claimant.store import Store
from tests.faults import ALWAYS, FaultyStore

AGG = "5b0bd5c8-6d8e-4c3e-9c56-0a3f7a7f1a11"


def test_capacity_has_a_block_per_cell(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("a", vcpu=8)
    make_provider("b", vcpu=4)
    cap = client.get("/v1/capacity").json()
    assert cap["cell"] is None
    assert list(cap["cells"]) == [LOCAL_CELL]
    local = cap["cells"][LOCAL_CELL]
    assert local["providers"] == cap["providers"]
    assert local["resource_classes"]["VCPU"] == cap["resource_classes"]["VCPU"]
    assert local["resource_classes"]["VCPU"]["capacity"] == 12


def test_capacity_of_one_cell(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("a", vcpu=8)
    whole = client.get("/v1/capacity").json()
    one = client.get("/v1/capacity", params={"cell": LOCAL_CELL}).json()
    assert one["cell"] == LOCAL_CELL
    assert one["providers"] == whole["providers"]
    assert list(one["cells"]) == [LOCAL_CELL]


def test_unknown_cell_is_400(client: TestClient) -> None:
    r = client.get("/v1/capacity", params={"cell": "dc9"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "unknown_cell"
    assert "dc9" in err["message"]


def test_empty_store_still_lists_its_cell(client: TestClient) -> None:
    cap = client.get("/v1/capacity").json()
    assert cap["cells"] == {
        LOCAL_CELL: {
            "providers": {
                "total": 0,
                "enabled": 0,
                "disabled": 0,
                "health": {"up": 0, "stale": 0, "down": 0, "no_agent": 0},
            },
            "resource_classes": {},
        }
    }


def test_capacity_survives_unreadable_aggregate_names(store: Store) -> None:
    # Seen with dc2 stopped: `top --cell dc1` was 503 store_unavailable, as
    # aggregate names are global (QUORUM over every DC); the sums are local.
    faulty = FaultyStore(store, list_aggregates=ALWAYS)
    app = create_app(faulty, auth=AuthConfig.noauth2())  # type: ignore[arg-type]
    with TestClient(app, headers={"x-auth-token": "admin", "x-roles": "admin"}) as client:
        r = client.post(
            "/v1/providers",
            json={"name": "a", "inventories": {"VCPU": {"total": 8}}, "aggregates": [AGG]},
        )
        assert r.status_code == 201, r.text
        cap = client.get("/v1/capacity", params={"cell": LOCAL_CELL})
        assert cap.status_code == 200, cap.text
        (agg,) = cap.json()["aggregates"]
        assert agg["uuid"] == AGG and agg["name"] is None
        assert cap.json()["resource_classes"]["VCPU"]["capacity"] == 8
