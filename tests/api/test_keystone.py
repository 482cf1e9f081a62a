"""``claimant serve --auth keystone``: tokens of a real Keystone (PyPI's
``keystone``: SQLite, fernet tokens, gunicorn), validated by
keystonemiddleware from a placement.conf-style ``[keystone_authtoken]``.

Users, each in their own project unless said: admin (admin), nova (service),
alice (reader in project A), bob (reader in project B), olga (a role
claimant does not know), plus the service user claimant validates with.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from platformdirs import user_cache_dir

from tests.api.serve_support import CLI, Served, serve
from tests.api.test_policy import CASES, STRENGTH, _fill
from tests.conftest import skip_unless_built
from tests.keystone import server as ks

pytestmark = skip_unless_built(
    ks.available(),
    "no Keystone test venv (scripts/test builds it from tests/keystone/requirements.txt)",
)

# Short, so an expired token can be shown; tokens are refetched when half-used.
TOKEN_LIFETIME = 30
PASSWORD = "pw-" + "x" * 12
PLACEMENT = {"openstack-api-version": "placement latest", "accept": "application/json"}


@dataclass
class Cloud:
    keystone: ks.Keystone
    served: Served
    projects: dict[str, str]
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict)

    def token(self, who: str) -> str:
        at, tok = self._tokens.get(who, (0.0, ""))
        if time.monotonic() - at > TOKEN_LIFETIME / 2:
            project = {"admin": "admin", "nova": "service"}.get(who, f"proj-{who}")
            if who in ("alice", "rita"):
                project = "proj-a"
            tok = self.keystone.token(
                who, ks.ADMIN_PASSWORD if who == "admin" else PASSWORD, project
            )
            self._tokens[who] = (time.monotonic(), tok)
        return tok

    def call(self, method: str, path: str, who: str | None, **kw: object) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if who is not None:
            headers["x-auth-token"] = self.token(who)
        return httpx.request(method, self.served.url + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    assert ks.available(), f"no Keystone venv at {ks.VENV}: run scripts/test"
    work = tmp_path_factory.mktemp("keystone")
    keystone = ks.Keystone(work, token_expiration=TOKEN_LIFETIME)
    keystone.start()
    try:
        keystone.user("claimant", PASSWORD, "service", ["service"])
        keystone.user("nova", PASSWORD, "service", ["service"])
        keystone.user("alice", PASSWORD, "proj-a", ["reader"])
        keystone.user("rita", PASSWORD, "proj-a", ["service"])
        keystone.user("bob", PASSWORD, "proj-b", ["reader"])
        keystone.user("olga", PASSWORD, "proj-olga", ["observer"])
        keystone.user("matrix-none", PASSWORD, "proj-matrix-none", ["observer"])
        for role in ("reader", "service", "admin"):
            keystone.user(f"matrix-{role}", PASSWORD, f"proj-matrix-{role}", [role])
        conf = work / "placement.conf"
        conf.write_text(
            "[DEFAULT]\n\n[api]\nauth_strategy = keystone\n\n"
            + keystone.authtoken_section("claimant", PASSWORD, "service")
        )
        names = ["proj-a", "proj-b", "service", *(f"proj-matrix-{r}" for r in STRENGTH)]
        projects = {n: keystone.project(n) for n in names}
        with serve(work, "--auth", "keystone", "--config-file", str(conf)) as served:
            yield Cloud(keystone, served, projects)
    finally:
        keystone.stop()


def test_no_token_or_a_forged_one_is_401_on_both_apis(cloud: Cloud) -> None:
    for path, headers in (("/v1/providers", {}), ("/resource_providers", PLACEMENT)):
        assert cloud.call("GET", path, None, headers=headers).status_code == 401
        forged = {**headers, "x-auth-token": "gAAAAAB-not-a-fernet-token"}
        r = cloud.call("GET", path, None, headers=forged)
        assert r.status_code == 401, r.text


def test_roles_come_from_the_token(cloud: Cloud) -> None:
    assert cloud.call("GET", "/v1/providers", "alice").status_code == 200
    # A reader may not write; a service may, and may not change the catalogue.
    body = {"name": "CUSTOM_KS_GPU"}
    assert (
        cloud.call("POST", "/resource_classes", "alice", json=body, headers=PLACEMENT).status_code
        == 403
    )
    assert (
        cloud.call("POST", "/resource_classes", "nova", json=body, headers=PLACEMENT).status_code
        == 403
    )
    r = cloud.call("POST", "/resource_classes", "admin", json=body, headers=PLACEMENT)
    assert r.status_code == 201, r.text
    r = cloud.call(
        "POST", "/resource_providers", "nova", json={"name": "ks-cn1"}, headers=PLACEMENT
    )
    assert r.status_code == 200, r.text
    assert cloud.call("GET", "/v1/providers", "olga").status_code == 403


def test_headers_never_add_a_role_or_a_project(cloud: Cloud) -> None:
    spoof = {**PLACEMENT, "x-roles": "admin", "x-project-id": cloud.projects["proj-b"]}
    r = cloud.call("DELETE", "/resource_classes/CUSTOM_KS_NOPE", "alice", headers=spoof)
    assert r.status_code == 403, r.text
    # Project scoping: alice (project A) may not read project B's usages.
    pb = cloud.projects["proj-b"]
    r = cloud.call("GET", f"/v1/usages?project_id={pb}", "alice", headers={"x-project-id": pb})
    assert r.status_code == 403, r.text
    r = cloud.call("GET", f"/v1/usages?project_id={cloud.projects['proj-a']}", "alice")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("api", "method", "path", "role", "need"),
    CASES,
    ids=[f"{a}-{m}-{p}-{r}" for a, m, p, r, _ in CASES],
)
def test_role_route_matrix_with_keystone_tokens(
    cloud: Cloud, api: str, method: str, path: str, role: str, need: int
) -> None:
    url = _fill(path)
    project = cloud.projects[f"proj-matrix-{role}"]
    params = {"project_id": project} if path == "/usages" or url == "/v1/usages" else None
    headers = {**PLACEMENT, "content-type": "application/json"}
    r = cloud.call(method, url, f"matrix-{role}", headers=headers, params=params, content=b"{}")
    if STRENGTH[role] >= need:
        assert r.status_code not in (401, 403), (role, r.status_code, r.text)
    else:
        assert r.status_code == 403, (role, r.status_code, r.text)


def test_revoked_token_is_refused(cloud: Cloud) -> None:
    tok = cloud.keystone.token("bob", PASSWORD, "proj-b")
    cloud.keystone.revoke(tok)
    r = httpx.get(cloud.served.url + "/v1/providers", headers={"x-auth-token": tok}, timeout=60)
    assert r.status_code == 401, r.text


def test_expired_token_is_refused(cloud: Cloud) -> None:
    tok = cloud.keystone.token("bob", PASSWORD, "proj-b")
    r = httpx.get(cloud.served.url + "/v1/providers", headers={"x-auth-token": tok}, timeout=60)
    assert r.status_code == 200, r.text
    time.sleep(TOKEN_LIFETIME + 1)
    # Also once validated and cached: the cache keeps a token's expiry.
    r = httpx.get(cloud.served.url + "/v1/providers", headers={"x-auth-token": tok}, timeout=60)
    assert r.status_code == 401, r.text


def test_keystone_unreachable_is_503_not_401(cloud: Cloud, tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    section = cloud.keystone.authtoken_section("claimant", PASSWORD, "service")
    conf.write_text(section.replace(f":{cloud.keystone.port}/", ":9/"))
    tok = cloud.token("nova")
    with serve(tmp_path, "--auth", "keystone", "--config-file", str(conf)) as other:
        for path, headers in (("/v1/providers", {}), ("/resource_providers", PLACEMENT)):
            r = httpx.get(other.url + path, headers={**headers, "x-auth-token": tok}, timeout=120)
            assert r.status_code == 503, r.text
            assert "identity service" in r.text


def test_serve_refuses_keystone_without_a_section(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text("[api]\nauth_strategy = keystone\n")
    out = subprocess.run(
        [*CLI, "serve", "--auth", "keystone", "--config-file", str(conf), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "[keystone_authtoken]" in out.stderr


def test_openstack_client_with_a_clouds_yaml(cloud: Cloud, tmp_path: Path) -> None:
    openstack = Path(user_cache_dir("claimant")) / "osc-venv" / "bin" / "openstack"
    if not openstack.is_file():
        pytest.skip("no osc-placement venv (scripts/test builds it)")
    # The service catalog points Placement at claimant, as after a switch-over.
    service = cloud.keystone._call(
        "POST", "/services", {"service": {"type": "placement", "name": "placement"}}
    )["service"]["id"]
    cloud.keystone._call(
        "POST",
        "/endpoints",
        {
            "endpoint": {
                "service_id": service,
                "interface": "public",
                "url": cloud.served.url,
                "region_id": "RegionOne",
            }
        },
    )
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  test:\n    auth:\n"
        f"      auth_url: {cloud.keystone.url}\n"
        "      username: nova\n"
        f"      password: {PASSWORD}\n"
        "      project_name: service\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        "    region_name: RegionOne\n"
        "    identity_api_version: 3\n"
    )
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}
    out = subprocess.run(
        [str(openstack), "--os-cloud", "test", "resource", "provider", "create", "ks-osc-cn"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        [
            str(openstack),
            "--os-cloud",
            "test",
            "resource",
            "provider",
            "list",
            "-f",
            "value",
            "-c",
            "name",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "ks-osc-cn" in out.stdout.split()


def test_a_failing_middleware_is_503_never_500(cloud: Cloud, tmp_path: Path) -> None:
    # keystonemiddleware looks Keystone up in the catalog under this
    # interface; there is none: keystoneauth raises EndpointNotFound.
    conf = tmp_path / "placement.conf"
    section = cloud.keystone.authtoken_section("claimant", PASSWORD, "service")
    conf.write_text(section + "interface = nowhere\n")
    with serve(tmp_path, "--auth", "keystone", "--config-file", str(conf)) as other:
        r = httpx.get(
            other.url + "/v1/providers",
            headers={"x-auth-token": cloud.keystone.token("bob", PASSWORD, "proj-b")},
            timeout=120,
        )
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "identity_unavailable"
    assert "Traceback" not in r.text and "EndpointNotFound" not in r.text
