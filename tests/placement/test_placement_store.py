"""The Placement API over the shared store: what one API writes the other
sees, and concurrent allocation writes never overcommit a provider."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import Inventory, Provider
from claimant.store import Store, open_store
from tests.placement import gabbi_support as gs

ADMIN = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}


def _sqlite_url(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "claimant.db").lstrip("/")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
    ]
)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[gs.LiveServer]:
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("cassandra_url")  # dropped after the test
    with gs.live_server(url) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(_sqlite_url(tmp_path))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


def test_placement_and_native_api_share_one_store(store: Store) -> None:
    with TestClient(create_app(store, auth=AuthConfig.noauth2()), headers=ADMIN) as client:
        r = client.post("/resource_providers", json={"name": "from-placement"})
        assert r.status_code == 200, r.text
        from_placement = r.json()["uuid"]
        native = client.get(f"/v1/providers/{from_placement}")
        assert native.status_code == 200
        assert native.json()["name"] == "from-placement"

        r = client.post("/v1/providers", json={"name": "from-native"})
        assert r.status_code == 201, r.text
        from_native = r.json()["uuid"]
        seen = client.get(f"/resource_providers/{from_native}")
        assert seen.status_code == 200
        assert seen.json()["name"] == "from-native"
        assert seen.json()["root_provider_uuid"] == from_native


def test_placement_allocation_is_a_confirmed_claim_in_the_store(store: Store) -> None:
    p = store.create_provider(
        Provider(uuid=str(uuid.uuid4()), name="cn", inventories={"VCPU": Inventory("VCPU", 4)})
    )
    consumer = str(uuid.uuid4())
    with TestClient(create_app(store, auth=AuthConfig.noauth2()), headers=ADMIN) as client:
        body = {
            "allocations": {p.uuid: {"resources": {"VCPU": 3}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        }
        r = client.put(f"/allocations/{consumer}", json=body)
        assert r.status_code == 204, r.text
    assert store.get_usage(p.uuid).usages["VCPU"].used == 3
    held = store.list_claims(consumer_uuid=consumer)
    assert [(c.provider_uuid, c.amounts) for c in held] == [(p.uuid, {"VCPU": 3})]
    consumer_row = store.get_consumer(consumer)
    assert consumer_row is not None and consumer_row.consumer_type == "INSTANCE"


def test_concurrent_allocations_never_overcommit(live: gs.LiveServer) -> None:
    capacity, writers = 8, 16
    client = httpx.Client(base_url=live.base_url, headers=ADMIN, timeout=60)
    r = client.post("/resource_providers", json={"name": "small"})
    rp = r.json()["uuid"]
    r = client.put(
        f"/resource_providers/{rp}/inventories",
        json={"resource_provider_generation": 0, "inventories": {"VCPU": {"total": capacity}}},
    )
    assert r.status_code == 200, r.text
    rng = random.Random(7)
    wants = [rng.randint(1, 3) for _ in range(writers)]
    start = threading.Barrier(writers)
    outcome: dict[int, int] = {}

    def write(i: int) -> None:
        body = {
            "allocations": {rp: {"resources": {"VCPU": wants[i]}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        }
        with httpx.Client(base_url=live.base_url, headers=ADMIN, timeout=60) as c:
            start.wait()
            outcome[i] = c.put(f"/allocations/{uuid.uuid4()}", json=body).status_code

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcome.values()) <= {204, 409}
    granted = sum(wants[i] for i, status in outcome.items() if status == 204)
    assert 0 < granted <= capacity
    usage = client.get(f"/resource_providers/{rp}/usages").json()["usages"]
    assert usage == {"VCPU": granted}
    held = client.get(f"/resource_providers/{rp}/allocations").json()["allocations"]
    assert sum(a["resources"]["VCPU"] for a in held.values()) == granted
    client.close()
