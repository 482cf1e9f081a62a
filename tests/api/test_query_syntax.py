"""One parser for ``required`` and ``member_of`` (issue 13): the native API
(GET /v1/providers) and the Placement API (GET /resource_providers, latest
microversion) accept the same syntax and refuse the same mistakes. The
native API also takes aggregate names and ``member_of=A,B`` without ``in:``;
Placement does not (its own rules, tests/placement/gabbits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.store import open_store

# Fixed, not random: they appear in test ids.
AGG1 = "0d9a9a57-3f4a-4e0e-9a4e-000000000001"
AGG2 = "0d9a9a57-3f4a-4e0e-9a4e-000000000002"
AVX2 = "HW_CPU_X86_AVX2"
SSE = "HW_CPU_X86_SSE"
PLACEMENT = {"openstack-api-version": "placement latest"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("syntax") / "claimant.db"
    store = open_store("sqlite:///" + str(path).lstrip("/"))
    store.migrate()
    app = create_app(store, auth=AuthConfig.noauth2())
    with TestClient(app, headers={"x-auth-token": "admin"}) as c:
        for name, traits, agg in (("big", [], AGG2), ("small", [AVX2], AGG1)):
            body = {"name": name, "traits": traits, "aggregates": [agg]}
            assert c.post("/v1/providers", json=body).status_code == 201
        yield c
    store.close()


def _native(client: TestClient, key: str, value: str) -> set[str] | tuple[int, str]:
    r = client.get("/v1/providers", params={key: value})
    if r.status_code != 200:
        return r.status_code, r.json()["error"]["message"]
    return {p["name"] for p in r.json()["providers"]}


def _placement(client: TestClient, key: str, value: str) -> set[str] | tuple[int, str]:
    r = client.get("/resource_providers", params={key: value}, headers=PLACEMENT)
    if r.status_code != 200:
        return r.status_code, r.json()["errors"][0]["detail"]
    return {p["name"] for p in r.json()["resource_providers"]}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("required", AVX2, {"small"}, id="required"),
        pytest.param("required", f"!{AVX2}", {"big"}, id="forbidden"),
        pytest.param("required", f"{AVX2},!{SSE}", {"small"}, id="required-and-forbidden"),
        pytest.param("required", f"in:{AVX2},{SSE}", {"small"}, id="any-of"),
        pytest.param("member_of", AGG2, {"big"}, id="member-of"),
        pytest.param("member_of", f"in:{AGG1},{AGG2}", {"big", "small"}, id="member-of-any"),
        pytest.param("member_of", f"!{AGG1}", {"big"}, id="member-of-not"),
        # The native API took "in:AGG1" for an aggregate's name (400
        # unknown_aggregate) where Placement (1.32+) excludes both.
        pytest.param("member_of", f"!in:{AGG1},{AGG2}", set(), id="member-of-none-of"),
    ],
)
def test_both_apis_accept_the_same_syntax(
    client: TestClient, key: str, value: str, expected: set[str]
) -> None:
    assert _placement(client, key, value) == expected
    assert _native(client, key, value) == expected


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        # The native API said "no such trait(s): !HW_CPU_X86_SSE".
        pytest.param("required", f"in:{AVX2},!{SSE}", "forbidden", id="forbidden-in-any-of"),
        # The native API said "no such trait(s): " (an empty name).
        pytest.param("required", "!", "empty", id="bare-bang"),
        pytest.param("required", f"{AVX2},", "empty", id="trailing-comma"),
        pytest.param("required", "in:", "empty", id="empty-any-of"),
        pytest.param("member_of", "in:", "", id="empty-member-of"),
        pytest.param("member_of", "!", "", id="member-of-bare-bang"),
    ],
)
def test_both_apis_refuse_the_same_mistakes(
    client: TestClient, key: str, value: str, says: str
) -> None:
    placement = _placement(client, key, value)
    native = _native(client, key, value)
    assert isinstance(placement, tuple) and placement[0] == 400, placement
    assert isinstance(native, tuple) and native[0] == 400, native
    assert says in native[1].lower(), native
