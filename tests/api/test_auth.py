"""Authentication (noauth2, token file) and roles (reader, service, admin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api.auth import AuthConfig, Role, load_tokens
from claimant.api.routes import ROUTES
from claimant.cli.serve import is_loopback
from claimant.model import InvalidInput


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_missing_token_is_401(anon: TestClient) -> None:
    r = anon.get("/v1/providers")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_health_and_metrics_need_no_token(anon: TestClient) -> None:
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/metrics").status_code == 200


def test_noauth2_non_admin_is_service(anon: TestClient) -> None:
    h = {"x-auth-token": "someone"}
    assert anon.post("/v1/providers", json={"name": "cn1"}, headers=h).status_code == 201
    r = anon.post("/v1/resource_classes", json={"name": "CUSTOM_X"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_noauth2_project_from_headers(anon: TestClient) -> None:
    ctx = AuthConfig.noauth2().authenticate(
        {"x-auth-token": "tok", "openstack-project-id": "p9", "openstack-user-id": "u9"}
    )
    assert (ctx.role, ctx.project_id, ctx.user_id) == (Role.SERVICE, "p9", "u9")
    ctx = AuthConfig.noauth2().authenticate({"x-auth-token": "tok"})
    assert (ctx.project_id, ctx.user_id) == ("tok", "tok")


@pytest.mark.parametrize(
    ("token", "method", "path", "body", "status"),
    [
        ("unknown", "GET", "/v1/providers", None, 401),
        ("admin", "GET", "/v1/providers", None, 401),  # noauth2's magic word means nothing here
        ("reader-secret", "GET", "/v1/providers", None, 200),
        ("reader-secret", "POST", "/v1/providers", {"name": "x"}, 403),
        ("reader-secret", "PUT", "/v1/traits/CUSTOM_X", None, 403),
        ("service-secret", "POST", "/v1/providers", {"name": "x"}, 201),
        ("service-secret", "PUT", "/v1/traits/CUSTOM_X", None, 403),
        ("service-secret", "POST", "/v1/resource_types", {"name": "t"}, 403),
        ("admin-secret", "PUT", "/v1/traits/CUSTOM_X", None, 201),
        ("admin-secret", "POST", "/v1/resource_classes", {"name": "CUSTOM_Y"}, 201),
    ],
)
def test_token_roles(
    tokens_app: FastAPI, token: str, method: str, path: str, body: object, status: int
) -> None:
    with TestClient(tokens_app, headers={"x-auth-token": token}) as c:
        r = c.request(method, path, json=body)
    assert r.status_code == status, r.text


def test_reader_can_call_no_write_route(tokens_app: FastAPI) -> None:
    with TestClient(tokens_app, headers={"x-auth-token": "reader-secret"}) as c:
        for route in ROUTES:
            if route.method == "GET":
                continue
            path = "/v1" + route.path.replace("{uuid}", "0" * 32).replace("{name}", "CUSTOM_X")
            r = c.request(route.method, path, json={})
            assert r.status_code == 403, (route.method, route.path, r.text)


def test_service_token_carries_project(tokens_app: FastAPI) -> None:
    with TestClient(tokens_app, headers={"x-auth-token": "admin-secret"}) as c:
        c.post("/v1/providers", json={"name": "cn1", "inventories": {"VCPU": {"total": 2}}})
    with TestClient(tokens_app, headers={"x-auth-token": "service-secret"}) as c:
        r = c.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]})
    assert r.status_code == 201, r.text
    assert (r.json()["project_id"], r.json()["user_id"]) == ("p1", "u1")


def test_yaml_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tok1: admin\ntok2:\n  role: reader\n  project_id: p\n")
    tokens = load_tokens(path)
    assert tokens["tok1"].role is Role.ADMIN
    assert (tokens["tok2"].role, tokens["tok2"].project_id) == (Role.READER, "p")


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("not json", "{"),
        ("empty", "{}"),
        ("unknown role", '{"t": {"role": "root"}}'),
        ("entry not a mapping", '{"t": 5}'),
    ],
)
def test_bad_token_files(tmp_path: Path, case: str, text: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(text)
    with pytest.raises(InvalidInput):
        load_tokens(path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
