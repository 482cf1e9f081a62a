"""Issue 10: Placement's own wide-tree requests through the Placement API
(placement/tests/functional/test_allocation_candidates.py). Before the
candidate engine, 8 groups over 8 single-VF children never answered (every
combination of groups was built before any was checked: 8^8 of them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import new_uuid
from claimant.store import open_store


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store("sqlite:///" + str(tmp_path / "claimant.db").lstrip("/"))
    store.migrate()
    headers = {"x-auth-token": "admin", "openstack-api-version": "placement 1.38"}
    with TestClient(create_app(store, auth=AuthConfig.noauth2()), headers=headers) as c:
        assert c.put("/resource_classes/CUSTOM_VF").status_code in (201, 204)
        yield c
    store.close()


def _provider(c: TestClient, name: str, inventories: dict[str, int], parent: str | None) -> str:
    uuid = new_uuid()
    body: dict[str, Any] = {"name": name, "uuid": uuid}
    if parent:
        body["parent_provider_uuid"] = parent
    assert c.post("/resource_providers", json=body).status_code == 200
    r = c.put(
        f"/resource_providers/{uuid}/inventories",
        json={
            "resource_provider_generation": 0,
            "inventories": {rc: {"total": n} for rc, n in inventories.items()},
        },
    )
    assert r.status_code == 200, r.text
    return uuid


def _trees(c: TestClient, computes: int, pfs: int, vfs: int) -> dict[str, set[str]]:
    out = {}
    for i in range(computes):
        root = _provider(c, f"compute{i}", {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 500}, None)
        out[root] = {
            _provider(c, f"compute{i}:PF{j}", {"CUSTOM_VF": vfs}, root) for j in range(pfs)
        }
    return out


def _candidates(c: TestClient, groups: int, limit: int) -> dict[str, Any]:
    query = "resources=DISK_GB:20,MEMORY_MB:2048,VCPU:2"
    query += "".join(f"&resources{g}=CUSTOM_VF:1" for g in range(groups))
    r = c.get(f"/allocation_candidates?{query}&group_policy=none&limit={limit}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_eight_groups_over_eight_single_vf_children(client: TestClient) -> None:
    [(root, pfs)] = _trees(client, 1, 8, 1).items()
    body = _candidates(client, 8, 1000)
    seen = set()
    for ar in body["allocation_requests"]:
        allocs = ar["allocations"]
        assert allocs[root]["resources"] == {"DISK_GB": 20, "MEMORY_MB": 2048, "VCPU": 2}
        assert set(allocs) == {root} | pfs
        assert all(allocs[pf]["resources"] == {"CUSTOM_VF": 1} for pf in pfs)
        chosen = [ar["mappings"][str(g)][0] for g in range(8)]
        assert set(chosen) == pfs  # each group on its own VF
        seen.add(tuple(chosen))
    assert len(seen) == len(body["allocation_requests"]) == 1000
    assert set(body["provider_summaries"]) == {root} | pfs


def test_every_candidate_of_two_computes(client: TestClient) -> None:
    """Placement's test_no_global_limit: 2 x 8 PFs x 8 VFs, 4 groups: 8,192."""
    trees = _trees(client, 2, 8, 8)
    body = _candidates(client, 4, 9000)
    assert len(body["allocation_requests"]) == 2 * 8**4
    roots = {next(u for u in ar["allocations"] if u in trees) for ar in body["allocation_requests"]}
    assert roots == set(trees)


def test_one_device_short(client: TestClient) -> None:
    """Placement's TestAlmostFittingRoot: 64 groups, 63 single-VF children."""
    _trees(client, 1, 63, 1)
    assert _candidates(client, 64, 10000)["allocation_requests"] == []
