"""Authentication (noauth2, token file) and roles (reader, service, admin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api.auth import TOKENS, AuthConfig, Role, Token, Unauthorized, load_tokens
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


def test_noauth2_token_without_roles_has_none(anon: TestClient) -> None:
    """Issue 9: as OpenStack's noauth2, a token other than ``admin`` has no
    role unless ``x-roles`` says so (it used to be a service caller)."""
    h = {"x-auth-token": "someone"}
    r = anon.post("/v1/providers", json={"name": "cn1"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert anon.get("/v1/providers", headers=h).status_code == 403
    service = {**h, "x-roles": "service"}
    assert anon.post("/v1/providers", json={"name": "cn1"}, headers=service).status_code == 201
    r = anon.post("/v1/resource_classes", json={"name": "CUSTOM_X"}, headers=service)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    reader = {**h, "x-roles": "reader,member"}
    assert anon.get("/v1/providers", headers=reader).status_code == 200
    assert anon.post("/v1/providers", json={"name": "x"}, headers=reader).status_code == 403


def test_noauth2_project_from_headers(anon: TestClient) -> None:
    ctx = AuthConfig.noauth2().authenticate(
        {"x-auth-token": "tok", "openstack-project-id": "p9", "openstack-user-id": "u9"}
    )
    assert (ctx.role, ctx.project_id, ctx.user_id) == (None, "p9", "u9")
    ctx = AuthConfig.noauth2().authenticate({"x-auth-token": "tok:proj", "x-roles": "service"})
    assert (ctx.role, ctx.project_id, ctx.user_id) == (Role.SERVICE, "proj", "tok")
    ctx = AuthConfig.noauth2().authenticate({"x-auth-token": "admin"})
    assert ctx.is_admin and ctx.role is Role.ADMIN


def test_tokens_mode_never_takes_project_or_user_from_headers(token_file: Path) -> None:
    """Issue 9: ``openstack-project-id: projB`` gave a project-less token B's project."""
    auth = AuthConfig.from_token_file(token_file)
    headers = {
        "x-auth-token": "reader-secret",
        "openstack-project-id": "projB",
        "x-project-id": "projB",
        "openstack-user-id": "uB",
        "x-roles": "admin",
    }
    ctx = auth.authenticate(headers)
    assert (ctx.roles, ctx.project_id, ctx.user_id) == (frozenset({"reader"}), "", "")
    ctx = auth.authenticate({**headers, "x-auth-token": "service-secret"})
    assert (ctx.project_id, ctx.user_id) == ("p1", "u1")


def test_unknown_auth_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9: ``CLAIMANT_AUTH=token`` (a typo) silently meant noauth2."""
    from claimant.api.app import auth_from_env

    monkeypatch.setenv("CLAIMANT_AUTH", "token")
    with pytest.raises(InvalidInput, match="unknown auth mode 'token'"):
        auth_from_env()
    with pytest.raises(InvalidInput):
        AuthConfig("Tokens")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_token_file_readable_by_others_is_refused(token_file: Path, mode: int) -> None:
    token_file.chmod(mode)
    with pytest.raises(InvalidInput, match="chmod 600"):
        load_tokens(token_file)


def test_token_lookup_compares_digests() -> None:
    """Lookups go through SHA-256 digests and ``hmac.compare_digest``; a
    near-miss (same prefix, same length) is refused like any other."""
    auth = AuthConfig(TOKENS, {"s3cret-token": Token(Role.ADMIN)})
    assert auth.authenticate({"x-auth-token": "s3cret-token"}).is_admin
    for guess in ("s3cret-tokem", "s3cret-token ", "", "S3CRET-TOKEN"):
        with pytest.raises((Unauthorized,)):
            auth.authenticate({"x-auth-token": guess})


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


def test_admin_token_without_project_gets_a_usable_one(tokens_app: FastAPI) -> None:
    # issue 11: an admin token with no project charged its requests to "",
    # which /v1/usages refuses; they go to the admin project instead.
    with TestClient(tokens_app, headers={"x-auth-token": "admin-secret"}) as c:
        c.post("/v1/providers", json={"name": "cn1", "inventories": {"VCPU": {"total": 2}}})
        r = c.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]})
        assert r.status_code == 201, r.text
        assert r.json()["project_id"] == "admin"
        used = c.get("/v1/usages", params={"project_id": "admin"}).json()["usages"]
        assert used["unknown"]["VCPU"] == 1


def test_yaml_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tok1: admin\ntok2:\n  role: reader\n  project_id: p\n")
    path.chmod(0o600)
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
    path.chmod(0o600)
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
