"""Issue 9: one policy for both APIs. A role x route matrix generated from
both route tables (a new route cannot be missed), the check-string language,
and operators' policy files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.api.auth import Context
from claimant.api.placement.routes import ROUTES as PLACEMENT_ROUTES
from claimant.api.policy import Policy, default_rules, load_policy
from claimant.api.routes import ROUTES as NATIVE_ROUTES
from claimant.model import InvalidInput
from claimant.store import Store

ROLES = ("none", "reader", "service", "admin")
STRENGTH = {"none": 0, "reader": 1, "service": 2, "admin": 3}
PROJECT = "p-matrix"

# The role table for the Placement API, written out here rather than
# read from the route table: catalogue changes and provider deletion are
# admin's, reads a reader's, every other write a service's.
PLACEMENT_ADMIN_ONLY = {
    ("POST", "/resource_classes"),
    ("PUT", "/resource_classes/{name}"),
    ("DELETE", "/resource_classes/{name}"),
    ("PUT", "/traits/{name}"),
    ("DELETE", "/traits/{name}"),
    ("DELETE", "/resource_providers/{uuid}"),
}


def _fill(path: str) -> str:
    values = {
        "uuid": str(uuid.uuid4()),
        "consumer_uuid": str(uuid.uuid4()),
        "name": "CUSTOM_MATRIX",
        "resource_class": "VCPU",
        "name_or_uuid": "rack-matrix",
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


def _cases() -> list[tuple[str, str, str, str, int]]:
    """(api, method, path template, role, weakest role allowed as a number)."""
    out = []
    for r in NATIVE_ROUTES:
        for role in ROLES:
            out.append(("native", r.method, "/v1" + r.path, role, int(r.role)))
    for route in PLACEMENT_ROUTES:
        for verb, method in route.methods.items():
            if method.public:
                continue
            if (verb, route.template) in PLACEMENT_ADMIN_ONLY:
                need = 3
            elif verb == "GET":
                need = 1
            else:
                need = 2
            for role in ROLES:
                out.append(("placement", verb, route.template, role, need))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def matrix_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from claimant.store import open_store

    path = tmp_path_factory.mktemp("matrix") / "claimant.db"
    store: Store = open_store("sqlite:///" + str(path).lstrip("/"))
    store.migrate()
    try:
        with TestClient(create_app(store, auth=AuthConfig.noauth2())) as c:
            yield c
    finally:
        store.close()


def _headers(role: str) -> dict[str, str]:
    h = {
        "x-auth-token": f"user:{PROJECT}",
        "openstack-api-version": "placement latest",
        "content-type": "application/json",
        "accept": "application/json",
    }
    if role != "none":
        h["x-roles"] = role
    return h


@pytest.mark.parametrize(
    ("api", "method", "path", "role", "need"),
    CASES,
    ids=[f"{a}-{m}-{p}-{r}" for a, m, p, r, _ in CASES],
)
def test_role_route_matrix(
    matrix_client: TestClient, api: str, method: str, path: str, role: str, need: int
) -> None:
    url = _fill(path)
    params = {"project_id": PROJECT} if path == "/usages" or url == "/v1/usages" else None
    r = matrix_client.request(method, url, headers=_headers(role), params=params, content=b"{}")
    if STRENGTH[role] >= need:
        assert r.status_code not in (401, 403), (role, r.status_code, r.text)
    else:
        assert r.status_code == 403, (role, r.status_code, r.text)


@pytest.mark.parametrize(
    ("api", "method", "path"),
    sorted({(a, m, p) for a, m, p, _, _ in CASES}),
)
def test_every_route_needs_a_token(
    matrix_client: TestClient, api: str, method: str, path: str
) -> None:
    r = matrix_client.request(
        method, _fill(path), headers={"openstack-api-version": "placement latest"}, content=b"{}"
    )
    assert r.status_code == 401, r.text


def test_every_route_has_a_rule_with_a_default() -> None:
    names = {r.name for r in default_rules()}
    assert {r.rule for r in NATIVE_ROUTES} <= names
    for route in PLACEMENT_ROUTES:
        for method in route.methods.values():
            assert method.public or method.policy in names


def _caller(*roles: str, project: str = "p1", system: bool = False) -> Context:
    return Context(frozenset(roles), project, "u1", system)


@pytest.mark.parametrize(
    ("case", "check", "caller", "target", "allowed"),
    [
        ("role", "role:admin", _caller("admin"), {}, True),
        ("role is case-insensitive", "role:Admin", _caller("admin"), {}, True),
        ("missing role", "role:admin", _caller("service"), {}, False),
        ("always", "@", _caller(), {}, True),
        ("never", "!", _caller("admin"), {}, False),
        ("empty allows", "", _caller(), {}, True),
        ("or", "role:a or role:b", _caller("b"), {}, True),
        ("and", "role:a and role:b", _caller("b"), {}, False),
        ("not", "not role:a", _caller("b"), {}, True),
        ("and before or", "role:x or role:a and role:b", _caller("x"), {}, True),
        (
            "parentheses",
            "(role:x or role:a) and role:b",
            _caller("x"),
            {},
            False,
        ),
        ("project match", "project_id:%(project_id)s", _caller(), {"project_id": "p1"}, True),
        ("project mismatch", "project_id:%(project_id)s", _caller(), {"project_id": "p2"}, False),
        ("target key missing", "project_id:%(project_id)s", _caller(), {}, False),
        (
            "no project never matches an empty target",
            "project_id:%(project_id)s",
            _caller(project=""),
            {"project_id": ""},
            False,
        ),
        ("rule reference", "rule:service_api", _caller("service"), {}, True),
        ("undefined rule refuses", "rule:nope", _caller("admin"), {}, False),
    ],
)
def test_check_strings(
    case: str, check: str, caller: Context, target: dict[str, str], allowed: bool
) -> None:
    policy = Policy({"service_api": "role:service", "under_test": check})
    assert policy.allowed("under_test", caller, target) is allowed


def test_system_scoped_callers_are_refused() -> None:
    policy = Policy({"r": "@"})
    assert not policy.allowed("r", _caller("admin", system=True))
    assert Policy({"r": "@"}, enforce_scope=False).allowed("r", _caller(system=True))


@pytest.mark.parametrize(
    ("case", "rules", "message"),
    [
        ("unbalanced", {"placement:usages": "(role:admin"}, "unexpected end"),
        ("stray )", {"placement:usages": "role:admin)"}, "unexpected"),
        ("dangling or", {"placement:usages": "role:admin or"}, "unexpected end"),
        ("not a check", {"placement:usages": "admin"}, "not a check"),
        ("unknown rule name", {"placement:resource_provider:delete": "@"}, "unknown rule"),
        ("cycle", {"a": "rule:b", "b": "rule:a", "placement:usages": "rule:a"}, "refer"),
    ],
)
def test_bad_policy_files_are_refused(
    tmp_path: Path, case: str, rules: dict[str, str], message: str
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(rules))
    with pytest.raises(InvalidInput, match=message):
        load_policy(path)


def test_policy_file_overrides_both_apis(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        '"placement:resource_providers:delete": "rule:service_api"\n'
        '"claimant:list_providers": "rule:admin_api"\n'
        '"my_helper": "role:service"\n'
        '"placement:traits:update": "rule:my_helper"\n'
    )
    app: FastAPI = create_app(store, auth=AuthConfig.noauth2(), policy=load_policy(path))
    service = {"x-auth-token": "svc", "x-roles": "service"}
    with TestClient(app, headers=service) as c:
        rp = str(uuid.uuid4())
        r = c.post("/resource_providers", json={"name": "rp", "uuid": rp})
        assert r.status_code in (200, 201), r.text
        assert c.delete(f"/resource_providers/{rp}").status_code == 204
        ver = {"openstack-api-version": "placement 1.6"}
        assert c.put("/traits/CUSTOM_T", headers=ver).status_code == 201
        assert c.get("/v1/providers").status_code == 403
        assert c.get("/v1/providers", headers={"x-roles": "admin"}).status_code == 200
