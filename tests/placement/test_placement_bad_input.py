"""Issue 9: bad input to the Placement API is a 400 that says why, never a
500 (RecursionError, UnicodeEncodeError, OverflowError) nor a 503 carrying
SQLite's text (clients retry 503s). Also the role table on the catalogue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.store import open_store

# Fixed, not random: they appear in test ids, which must be the same in every
# process (pytest-xdist compares its workers' collections).
RP = "5e1f0a3c-7b7e-4c1e-9d55-0f6f2b1c0a01"
CONSUMER = "5e1f0a3c-7b7e-4c1e-9d55-0f6f2b1c0a02"
JSON = {"content-type": "application/json"}
BIG = 2**64
INVENTORIES = f"/resource_providers/{RP}/inventories"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("bad") / "claimant.db"
    store = open_store("sqlite:///" + str(path).lstrip("/"))
    store.migrate()
    headers = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}
    app = create_app(store, auth=AuthConfig.noauth2())
    with TestClient(app, headers=headers, raise_server_exceptions=False) as c:
        assert c.post("/resource_providers", json={"name": "rp", "uuid": RP}).status_code == 200
        for i in range(80):
            assert c.put(f"/resource_classes/CUSTOM_C{i}").status_code in (201, 204)
        invs = {f"CUSTOM_C{i}": {"total": 8} for i in range(80)} | {"VCPU": {"total": 8}}
        r = c.put(INVENTORIES, json={"resource_provider_generation": 0, "inventories": invs})
        assert r.status_code == 200, r.text
        yield c
    store.close()


def _inventory(ratio: str) -> bytes:
    return (
        '{"resource_provider_generation": 1, "inventories": {"VCPU": '
        f'{{"total": 4, "allocation_ratio": {ratio}}}}}}}'
    ).encode()


def _allocation(project: str) -> bytes:
    return (
        f'{{"allocations": {{"{RP}": {{"resources": {{"VCPU": 1}}}}}}, '
        f'"project_id": "{project}", "user_id": "u", "consumer_generation": null, '
        '"consumer_type": "INSTANCE"}'
    ).encode()


RCS_70 = ",".join(f"CUSTOM_C{i}:1" for i in range(70))
MEMBER_OF_1000 = "&".join(f"member_of={uuid.UUID(int=i + 1)}" for i in range(1000))
GROUPS_130 = "&".join(f"resources{i}=VCPU:1" for i in range(130))
CANDIDATES = "/allocation_candidates?resources=VCPU:1"
DEEP = b"[" * 100_000 + b"]" * 100_000

# (case, method, path, body, what the 400 says)
CASES = [
    ("100,000-deep JSON", "POST", "/resource_providers", DEEP, "deep"),
    (
        "lone surrogate in a name",
        "POST",
        "/resource_providers",
        b'{"name": "a\\ud800"}',
        "surrogate",
    ),
    (
        "lone surrogate in project_id",
        "PUT",
        f"/allocations/{CONSUMER}",
        _allocation("p\\udfff"),
        "surrogate",
    ),
    ("allocation_ratio 3e38", "PUT", INVENTORIES, _inventory("3e38"), "capacity"),
    ("allocation_ratio Infinity", "PUT", INVENTORIES, _inventory("Infinity"), "Infinity"),
    ("allocation_ratio NaN", "PUT", INVENTORIES, _inventory("NaN"), "NaN"),
    (
        "amount beyond 2^63-1",
        "GET",
        f"/allocation_candidates?resources=VCPU:{BIG}",
        None,
        "at most",
    ),
    ("limit beyond 2^63-1", "GET", f"{CANDIDATES}&limit={BIG}", None, "limit"),
    (
        "70 classes",
        "GET",
        f"/allocation_candidates?resources={RCS_70}",
        None,
        "too many resource classes",
    ),
    (
        "70 classes, providers",
        "GET",
        f"/resource_providers?resources={RCS_70}",
        None,
        "too many resource classes",
    ),
    ("1000 member_of sets", "GET", f"{CANDIDATES}&{MEMBER_OF_1000}", None, "too many member_of"),
    (
        "1000 member_of, providers",
        "GET",
        f"/resource_providers?{MEMBER_OF_1000}",
        None,
        "too many member_of",
    ),
    (
        "130 request groups",
        "GET",
        f"/allocation_candidates?{GROUPS_130}",
        None,
        "too many request groups",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "says"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_400(
    client: TestClient, case: str, method: str, path: str, body: bytes | None, says: str
) -> None:
    r = client.request(method, path, content=body, headers=JSON if body else None)
    assert r.status_code == 400, r.text
    detail = r.json()["errors"][0]["detail"]
    assert says in detail
    assert "SQLite" not in detail and "sqlite" not in detail


def test_largest_allowed_request_is_served(client: TestClient) -> None:
    """16 groups of 32 classes: the caps leave a query SQLite accepts."""
    groups = "&".join(
        f"resources{g}=" + ",".join(f"CUSTOM_C{(g * 4 + i) % 80}:1" for i in range(32))
        for g in range(16)
    )
    r = client.get(f"/allocation_candidates?group_policy=none&{groups}")
    assert r.status_code == 200, r.text
    classes = ",".join(f"CUSTOM_C{i}:1" for i in range(32))
    r = client.get(f"/allocation_candidates?resources={classes}")
    assert r.status_code == 200 and r.json()["allocation_requests"], r.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/resource_classes/CUSTOM_SVC"),
        ("DELETE", "/resource_classes/CUSTOM_C79"),
        ("PUT", "/traits/CUSTOM_SVC"),
        ("DELETE", f"/resource_providers/{RP}"),
    ],
)
def test_service_cannot_change_the_catalogue(client: TestClient, method: str, path: str) -> None:
    """Issue 9: a service token deleted resource classes (204), created traits
    (201) and deleted providers (204) through the Placement API."""
    r = client.request(method, path, headers={"x-auth-token": "svc", "x-roles": "service"})
    assert r.status_code == 403, r.text
