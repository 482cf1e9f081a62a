"""Bad input never gives a 5xx: a table of bad inputs sent to every route of
the route table, and the shape of every error body."""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api.routes import ROUTES
from claimant.store import Store

from .conftest import ADMIN

BAD_PATH_VALUES = {
    "malformed uuid": "not-a-uuid",
    "unknown uuid": str(uuid.uuid4()),
    "very long": "A" * 5000,
    "odd characters": "%E2%98%83%00x",
    "lower-case name": "custom_x",
}

BAD_BODIES: dict[str, bytes] = {
    "malformed json": b'{"name": ',
    "empty body": b"",
    "json null": b"null",
    "json array": b"[1, 2]",
    "json string": b'"x"',
    "unknown field": json.dumps({"zzz": 1}).encode(),
    "wrong types": json.dumps(
        {"generation": "0", "name": 5, "traits": "X", "inventories": [], "groups": {}}
    ).encode(),
    "negative amounts": json.dumps(
        {
            "generation": -1,
            "inventories": {"VCPU": {"total": -5}},
            "groups": [{"resources": {"VCPU": -1}}],
        }
    ).encode(),
    "huge integers": json.dumps(
        {
            "generation": 2**80,
            "inventories": {"VCPU": {"total": 2**80}},
            "groups": [{"resources": {"VCPU": 2**80}}],
            "count": 2**70,
        }
    ).encode(),
    "bad uuids": json.dumps(
        {"uuid": "xyz", "parent_uuid": 7, "aggregates": ["nope"], "consumers": ["x"]}
    ).encode(),
    "unknown names": json.dumps(
        {
            "name": "CUSTOM_ok",
            "generation": 0,
            "traits": ["CUSTOM_NOT_THERE"],
            "inventories": {"CUSTOM_NOT_THERE": {"total": 1}},
            "groups": [{"resources": {"CUSTOM_NOT_THERE": 1}}],
        }
    ).encode(),
    "booleans as numbers": json.dumps(
        {"generation": True, "groups": [{"resources": {"VCPU": True}}], "discrete": 1}
    ).encode(),
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "not utf-8": b'{"name": "\xff\xfe"}',
}

# Bodies that are well-formed for one route but wrong in what they say.
P, INV = "/providers", "/providers/{uuid}/inventories"
ROUTE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", P): {
        "unknown class": {"name": "x", "inventories": {"CUSTOM_NOPE": {"total": 1}}},
        "unknown trait": {"name": "x", "traits": ["CUSTOM_NOPE"]},
        "unknown type": {"name": "x", "type": "nope"},
        "unknown parent": {"name": "x", "parent_uuid": str(uuid.UUID(int=7))},
        "reserved above total": {"name": "x", "inventories": {"VCPU": {"total": 1, "reserved": 2}}},
        "min above max": {
            "name": "x",
            "inventories": {"VCPU": {"total": 4, "min_unit": 3, "max_unit": 2}},
        },
        "zero ratio": {"name": "x", "inventories": {"VCPU": {"total": 1, "allocation_ratio": 0}}},
        "blank name": {"name": ""},
    },
    ("PUT", "/providers/{uuid}"): {
        "own parent": {"generation": 0, "parent_uuid": "{uuid}"},
        "null name": {"generation": 0, "name": None},
        "unknown attribute": {"generation": 0, "attributes": {"colour": "blue"}},
    },
    ("PUT", INV): {
        "unknown class": {"generation": 0, "inventories": {"CUSTOM_NOPE": {"total": 1}}},
        "negative total": {"generation": 0, "inventories": {"VCPU": {"total": -1}}},
        "stale generation": {"generation": 99, "inventories": {}},
    },
    ("PUT", "/providers/{uuid}/traits"): {
        "unknown trait": {"generation": 0, "traits": ["CUSTOM_NOPE"]},
        "lower-case trait": {"generation": 0, "traits": ["hw_cpu"]},
    },
    ("PUT", "/providers/{uuid}/aggregates"): {
        # A name is accepted since aggregates have names; an unknown one is not.
        "unknown name": {"generation": 0, "aggregates": ["a"]},
    },
    ("POST", "/resource_classes"): {
        "standard name": {"name": "VCPU"},
        "discrete as string": {"name": "CUSTOM_X", "discrete": "yes"},
    },
    ("POST", "/resource_types"): {
        "built-in name": {"name": "compute"},
        "bad kind": {"name": "t", "attributes": [{"name": "a", "kind": "colour"}]},
        "bad attribute name": {"name": "t", "attributes": [{"name": "A-1", "kind": "string"}]},
    },
    ("POST", "/requests"): {
        "negative amount": {"groups": [{"resources": {"VCPU": -1}}]},
        "zero amount": {"groups": [{"resources": {"VCPU": 0}}]},
        "unknown class": {"groups": [{"resources": {"CUSTOM_NOPE": 1}}]},
        "unknown trait": {"groups": [{"resources": {"VCPU": 1}, "forbidden_traits": ["NOPE"]}]},
        "bad operator": {
            "groups": [
                {"resources": {"VCPU": 1}, "attributes": [{"name": "a", "op": "~", "value": 1}]}
            ]
        },
        "ordered op on bool": {
            "groups": [
                {"resources": {"VCPU": 1}, "attributes": [{"name": "a", "op": "<", "value": True}]}
            ]
        },
        "empty in": {
            "groups": [
                {"resources": {"VCPU": 1}, "attributes": [{"name": "a", "op": "in", "value": []}]}
            ]
        },
        "count zero": {"groups": [{"resources": {"VCPU": 1}}], "count": 0},
        "bad strategy": {"groups": [{"resources": {"VCPU": 1}}], "hints": {"strategy": "x"}},
        "flavor negative extra": {
            "flavor": {"vcpus": 1, "memory_mb": 1, "extra": {"resources:VGPU": "-1"}}
        },
        "flavor unknown class": {
            "flavor": {"vcpus": 1, "memory_mb": 1, "extra": {"CUSTOM_NOPE": 1}}
        },
        "duplicate consumers": {
            "groups": [{"resources": {"VCPU": 1}}],
            "count": 2,
            "consumers": [str(uuid.UUID(int=3))] * 2,
        },
    },
}

BAD_QUERIES: dict[str, dict[str, str]] = {
    "bad resources": {"resources": "VCPU:-1,MEMORY_MB"},
    "bad member_of": {"member_of": "in:not-a-uuid"},
    "bad uuid filters": {"uuid": "x", "in_tree": "y", "consumer_uuid": "z"},
    "unknown trait": {"required": "!CUSTOM_NOT_THERE"},
    "bad limit and status": {"limit": "-3", "status": "sleeping"},
    "empty project": {"project_id": ""},
}


def _fill(path: str, value: str) -> str:
    return path.replace("{uuid}", value).replace("{name}", value)


def _snapshot(store: Store) -> Any:
    return (
        [(p.uuid, p.generation) for p in store.list_providers()],
        [r.uuid for r in store.list_requests(limit=1000)],
        sorted(rc.name for rc in store.list_resource_classes()),
        sorted(store.list_traits()),
        sorted(t.name for t in store.list_resource_types()),
    )


@pytest.fixture
def populated(client: TestClient, make_provider: Callable[..., dict[str, Any]]) -> dict[str, str]:
    p = make_provider("cn1")
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]})
    claim = r.json()["placements"][0]["claims"][0]["uuid"]
    return {"provider": p["uuid"], "claim": claim}


def _cases(populated: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any]]]:
    cases = []
    for route in ROUTES:
        real = populated["claim"] if route.path.startswith("/claims") else populated["provider"]
        paths = {"real": _fill(route.path, real)}
        if "{" in route.path:
            paths.update({k: _fill(route.path, v) for k, v in BAD_PATH_VALUES.items()})
        for (pname, path), (bname, body) in itertools.product(
            paths.items(), [("no body", None), *BAD_BODIES.items()]
        ):
            if body is not None and route.method not in ("POST", "PUT"):
                continue
            kwargs: dict[str, Any] = {}
            if body is not None:
                kwargs = {"content": body, "headers": {**ADMIN, "content-type": "application/json"}}
            cases.append((route.method, "/v1" + path, f"{pname} / {bname}", kwargs))
        for qname, params in BAD_QUERIES.items():
            cases.append((route.method, "/v1" + paths["real"], qname, {"params": params}))
    return cases


def test_no_bad_input_gives_a_5xx(client: TestClient, store: Store, populated: Any) -> None:
    safe = [c for c in _cases(populated) if c[0] != "DELETE"]
    before = _snapshot(store)
    failures = []
    for method, path, case, kwargs in safe:
        r = client.request(method, path, **kwargs)
        if r.status_code >= 500:
            failures.append(f"{method} {path[:60]} [{case}] -> {r.status_code} {r.text[:200]}")
            continue
        if r.status_code >= 400:
            err = r.json()["error"]
            assert err["code"] and err["message"], (method, path, case)
            assert "Traceback" not in r.text
    assert not failures, "\n".join(failures)
    # Only well-formed writes to real paths may have changed anything; the
    # bad ones above must not have.
    after = _snapshot(store)
    assert after[2:] == before[2:]
    assert [u for u, _ in after[0]] == [u for u, _ in before[0]]


@pytest.mark.parametrize(
    ("method", "path", "case", "body"),
    [
        pytest.param(m, p, case, body, id=f"{m} {p} {case}")
        for (m, p), bodies in ROUTE_BODIES.items()
        for case, body in bodies.items()
    ],
)
def test_wrong_content_is_4xx_and_changes_nothing(
    client: TestClient,
    store: Store,
    populated: dict[str, str],
    method: str,
    path: str,
    case: str,
    body: dict[str, Any],
) -> None:
    real = populated["provider"]
    body = json.loads(json.dumps(body).replace("{uuid}", real))
    before = _snapshot(store)
    r = client.request(method, "/v1" + _fill(path, real), json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] in (
        "invalid_input",
        "not_found",
        "already_exists",
        "generation_conflict",
        "unknown_aggregate",
    )
    assert _snapshot(store) == before


def test_bad_deletes_give_no_5xx(client: TestClient, populated: Any) -> None:
    for method, path, case, kwargs in _cases(populated):
        if method != "DELETE" or "real" in case:
            continue
        r = client.request(method, path, **kwargs)
        assert r.status_code < 500, (path, case, r.text)


def test_validation_error_lists_fields(client: TestClient) -> None:
    r = client.post("/v1/providers", json={"name": "x", "inventories": {"VCPU": {"total": -1}}})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert [f["field"] for f in err["details"]["fields"]] == ["body.inventories.VCPU.total"]


def test_unknown_field_is_refused(client: TestClient) -> None:
    r = client.post("/v1/providers", json={"name": "x", "colour": "blue"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"][0]["field"] == "body.colour"


def test_malformed_json_is_400(client: TestClient) -> None:
    r = client.post(
        "/v1/providers", content=b"{", headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/providers", "GET, POST"),
        ("POST", "/v1/providers/" + str(uuid.UUID(int=1)), "DELETE, GET, PUT"),
        ("DELETE", "/v1/providers/" + str(uuid.UUID(int=1)) + "/inventories", "GET, PUT"),
        ("PUT", "/v1/claims/" + str(uuid.UUID(int=1)), "DELETE, GET"),
        ("GET", "/v1/claims/" + str(uuid.UUID(int=1)) + "/confirm", "POST"),
    ],
)
def test_405_allow_comes_from_the_route_table(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_every_route_in_the_table_is_served(app: FastAPI, client: TestClient) -> None:
    served = {
        (m, path)
        for path, ops in client.get("/v1/openapi.json").json()["paths"].items()
        for m in ops
    }
    assert served == {(r.method.lower(), r.path) for r in ROUTES}


def test_unhandled_error_is_500_without_traceback(
    store: Store, app: FastAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_providers", boom)
    with caplog.at_level(logging.ERROR, "claimant.api"), TestClient(app, headers=ADMIN) as c:
        r = c.get("/v1/providers")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in r.text
    assert "secret internals" in caplog.text


def test_store_unavailable_is_503(
    store: Store, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claimant.model import StoreUnavailable

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(store, "list_providers", down)
    with TestClient(app, headers=ADMIN) as c:
        r = c.get("/v1/providers")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
