"""Issue 9, authenticated services: the conductor's and agents' HTTP surfaces
check the token before they read a body, bound bodies, and let an agent
re-route only the providers it registered."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from claimant.agent.guard import ServiceAuth
from claimant.agent.http import create_agent_app
from claimant.conductor import AgentDirectory, Conductor
from claimant.conductor.http import create_conductor_app
from claimant.model import InvalidInput, new_uuid
from claimant.scheduler import Scheduler
from claimant.store import Store

from .conftest import LOOPBACK, AgentFactory, LoopbackServer

ADMIN, AGENT_A, AGENT_B, READER = "adm-tok", "agent-a-tok", "agent-b-tok", "reader-tok"
TOKENS = {
    ADMIN: {"role": "admin", "user_id": "ops"},
    AGENT_A: {"role": "service", "user_id": "agent-a"},
    AGENT_B: {"role": "service", "user_id": "agent-b"},
    READER: {"role": "reader"},
}
MIB = 1024 * 1024
FLAVOR = {"flavor": {"vcpus": 1, "memory_mb": 256}}
JSON = {"content-type": "application/json"}


def token_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": TOKENS}))
    os.chmod(path, mode)
    return path


@pytest.fixture
def conductor(sqlite_store: Store) -> Conductor:
    return Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())


@pytest.fixture
def http(conductor: Conductor, tmp_path: Path) -> Iterator[TestClient]:
    app = create_conductor_app(conductor, auth=ServiceAuth.from_file(token_file(tmp_path)))
    with TestClient(app) as client:
        yield client


def as_(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def test_unauthenticated_registration_is_refused(http: TestClient) -> None:
    p = new_uuid()
    r = http.post("/v1/agents", json={"url": "http://10.0.0.9:8790", "providers": [p]})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert http.get("/v1/agents", headers=as_(READER)).json()["agents"] == {}


def test_reader_may_read_but_not_register(http: TestClient) -> None:
    body = {"url": "http://127.0.0.1:8790", "providers": [new_uuid()]}
    r = http.post("/v1/agents", json=body, headers=as_(READER))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert http.get("/v1/agents", headers=as_(READER)).status_code == 200


def test_another_agent_cannot_reroute_a_provider(http: TestClient) -> None:
    p = new_uuid()
    mine = {"url": "http://127.0.0.1:8790", "providers": [p]}
    assert http.post("/v1/agents", json=mine, headers=as_(AGENT_A)).status_code == 204
    hijack = {"url": "http://127.0.0.66:9999", "providers": [p]}
    r = http.post("/v1/agents", json=hijack, headers=as_(AGENT_B))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert http.get("/v1/agents", headers=as_(ADMIN)).json()["agents"] == {p: mine["url"]}
    # Its owner may move it (a new address after a restart), and so may an admin.
    moved = {"url": "http://127.0.0.2:8790", "providers": [p]}
    assert http.post("/v1/agents", json=moved, headers=as_(AGENT_A)).status_code == 204
    assert http.post("/v1/agents", json=hijack, headers=as_(ADMIN)).status_code == 204
    assert http.get("/v1/agents", headers=as_(ADMIN)).json()["agents"] == {p: hijack["url"]}


@pytest.mark.parametrize(
    ("case", "url"),
    [
        ("file scheme", "file:///etc/passwd"),
        ("no host", "http://"),
        ("empty host", "http:///build"),
        ("credentials", "http://user:secret@127.0.0.1:8790"),
        ("user only", "http://user@127.0.0.1:8790"),
        ("bad port", "http://127.0.0.1:99999"),
        ("query", "http://127.0.0.1:8790/?x=1"),
        ("whitespace", "http://127.0.0.1:8790/ x"),
        ("lone surrogate", "http://\ud800:8790/"),
        ("non-ascii host", "http://h\u00f6st:8790/"),
        ("not a string", 12),
    ],
)
def test_registered_url_must_be_plain_http(http: TestClient, case: str, url: object) -> None:
    # json.dumps escapes a lone surrogate, which httpx's own encoder refuses.
    body = json.dumps({"url": url, "providers": [new_uuid()]}).encode()
    r = http.post("/v1/agents", content=body, headers={**as_(AGENT_A), **JSON})
    assert r.status_code == 400, f"{case}: {r.text}"
    assert r.json()["error"]["code"] == "invalid_input", case


def test_auth_comes_before_the_body_is_parsed(http: TestClient) -> None:
    for body in (b"{", b"[" * 5000):
        r = http.post("/v1/builds", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 401, r.text


@pytest.mark.parametrize("path", ["/v1/builds", "/v1/agents"])
def test_conductor_bodies_are_bounded(http: TestClient, path: str) -> None:
    big = b'{"x": "' + b"a" * (2 * MIB) + b'"}'
    # From Content-Length, before anything is read (even without a token) ...
    r = http.post(path, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"

    # ... and on the stream, when no length is declared.
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    r = http.post(
        path, content=chunks(), headers={**as_(ADMIN), "content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"


def test_a_body_under_the_limit_still_builds(http: TestClient) -> None:
    r = http.post("/v1/builds", json=FLAVOR, headers=as_(AGENT_A), params={"wait": "true"})
    assert r.status_code == 409, r.text  # no provider: failed, but recorded
    uuid = r.json()["error"]["details"]["request_uuid"]
    assert http.get(f"/v1/builds/{uuid}", headers=as_(READER)).status_code == 200


def test_agent_checks_token_before_body_and_bounds_it(
    sqlite_store: Store, make_agent: AgentFactory
) -> None:
    agent = make_agent(sqlite_store, "host-a")
    with TestClient(create_agent_app(agent, token="t0k")) as client:
        r = client.post("/build", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 401, r.text
        r = client.post("/build", content=b"x" * (2 * MIB), headers=as_("t0k"))
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        r = client.post(
            "/destroy", content=iter([b"x" * MIB, b"x" * MIB]), headers={**as_("t0k"), **JSON}
        )
        assert r.status_code == 413, r.text
        assert client.get("/v1/instances", headers=as_("t0k")).status_code == 200
        assert client.get("/v1/instances", headers=as_("t0k" + "x")).status_code == 401


def test_conductor_calls_an_agent_with_the_token_it_registered_with(
    conductor: Conductor, http: TestClient
) -> None:
    p = new_uuid()
    body = {"url": "http://127.0.0.1:8790", "providers": [p]}
    assert http.post("/v1/agents", json=body, headers=as_(AGENT_A)).status_code == 204
    client = conductor.agents.get(p)
    assert client.token == AGENT_A  # type: ignore[attr-defined]


def test_shared_token_still_guards_every_route(conductor: Conductor) -> None:
    with TestClient(create_conductor_app(conductor, token="s3cret")) as client:
        for method, path in [
            ("GET", "/v1/agents"),
            ("POST", "/v1/agents"),
            ("POST", "/v1/builds"),
            ("GET", f"/v1/builds/{new_uuid()}"),
            ("DELETE", f"/v1/builds/{new_uuid()}"),
        ]:
            r = client.request(method, path, headers=as_("wrong"))
            assert r.status_code == 401, (method, path, r.text)
        assert client.get("/v1/agents", headers=as_("s3cret")).status_code == 200


def test_directory_tracks_owners() -> None:
    directory = AgentDirectory()
    p = new_uuid()
    directory.add([p], object(), "http://127.0.0.1:1", owner="agent-a")  # type: ignore[arg-type]
    assert directory.owner(p) == "agent-a"
    assert directory.owner(new_uuid()) is None


def test_per_agent_tokens_over_http(
    sqlite_store: Store, make_agent: AgentFactory, tmp_path: Path
) -> None:
    """An agent registers with its own token and the conductor builds on it
    with that token; another agent's token is refused by the agent."""
    a = make_agent(sqlite_store, "host-a")
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    auth = ServiceAuth.from_file(token_file(tmp_path))
    with (
        LoopbackServer(create_agent_app(a, token=AGENT_A)) as agent_url,
        LoopbackServer(create_conductor_app(conductor, auth=auth)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        r = client.post(
            "/v1/agents", json={"url": agent_url, "providers": [a.uuid]}, headers=as_(AGENT_A)
        )
        assert r.status_code == 204, r.text
        r = client.post("/v1/builds", params={"wait": "true"}, json=FLAVOR, headers=as_(AGENT_B))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "active"
        assert len(a.instances()) == 1
        denied = httpx.get(agent_url + "/v1/instances", headers=as_(AGENT_B), timeout=10)
        assert denied.status_code == 401


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8779", 200),
        ("localhost", 200),
        ("[::1]:8779", 200),
        ("127.0.0.2", 200),
        ("evil.example", 400),
        ("evil.example:8779", 400),
        ("localhost.evil.example", 400),
        ("10.0.0.1", 400),
        ("", 400),
    ],
)
def test_open_conductor_answers_loopback_hosts_only(
    conductor: Conductor, host: str, status: int
) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 would
    otherwise drive a tokenless conductor."""
    with TestClient(create_conductor_app(conductor), base_url=LOOPBACK) as client:
        r = client.get("/v1/agents", headers={"host": host})
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["error"]["code"] == "invalid_host"


def test_a_guarded_conductor_takes_any_host(http: TestClient) -> None:
    assert http.get("/v1/agents", headers={**as_(READER), "host": "c.example"}).status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_bodies_must_be_json(conductor: Conductor, ctype: str) -> None:
    """A browser POSTs these types cross-site without a preflight: a page
    could re-route builds of a tokenless conductor on loopback."""
    body = json.dumps({"url": "http://127.0.0.66:1", "providers": [new_uuid()]})
    with TestClient(create_conductor_app(conductor), base_url=LOOPBACK) as client:
        r = client.post("/v1/agents", content=body, headers={"content-type": ctype})
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "unsupported_media_type"
        assert client.get("/v1/agents").json()["agents"] == {}
        ok = client.post("/v1/agents", content=body, headers=JSON)
        assert ok.status_code == 204, ok.text


def test_tokens_that_list_providers(
    sqlite_store: Store, make_agent: AgentFactory, tmp_path: Path
) -> None:
    """A token file may give providers (by name or uuid) to one token: only
    it (or an admin) registers them, even on a conductor that just started
    and has no registrations yet."""
    c, d = make_agent(sqlite_store, "host-c"), make_agent(sqlite_store, "host-d")
    other = new_uuid()
    path = tmp_path / "listed.json"
    path.write_text(
        json.dumps(
            {
                "tokens": {
                    **TOKENS,
                    "agent-c-tok": {"role": "service", "providers": ["host-c"]},
                    "agent-d-tok": {"role": "service", "providers": [d.uuid.upper()]},
                }
            }
        )
    )
    os.chmod(path, 0o600)
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    app = create_conductor_app(conductor, auth=ServiceAuth.from_file(path))

    def register(token: str, *uuids: str) -> int:
        body = {"url": "http://127.0.0.1:8790", "providers": list(uuids)}
        return client.post("/v1/agents", json=body, headers=as_(token)).status_code

    with TestClient(app) as client:
        assert register(AGENT_B, c.uuid) == 403  # first, but host-c is agent-c's
        assert register(AGENT_B, d.uuid) == 403
        assert register("agent-d-tok", c.uuid) == 403
        assert register("agent-c-tok", c.uuid, other) == 403  # other is not listed for it
        assert register("agent-c-tok", c.uuid) == 204
        assert register("agent-d-tok", d.uuid) == 204
        assert register(AGENT_B, other) == 204  # listed for nobody: first come
        assert register(ADMIN, c.uuid) == 204


@pytest.mark.parametrize("providers", [[], "host-c", [3], [""]])
def test_bad_provider_lists_are_refused(tmp_path: Path, providers: object) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"tokens": {"t": {"role": "service", "providers": providers}}}))
    os.chmod(path, 0o600)
    with pytest.raises(InvalidInput, match="providers must be a non-empty list"):
        ServiceAuth.from_file(path)


def test_an_agent_registers_a_bounded_number_of_providers(http: TestClient) -> None:
    body = {"url": "http://127.0.0.1:8790", "providers": [new_uuid() for _ in range(257)]}
    r = http.post("/v1/agents", json=body, headers=as_(AGENT_A))
    assert r.status_code == 400, r.text
    assert "at most 256" in r.json()["error"]["message"]
    body["providers"] = body["providers"][:256]
    assert http.post("/v1/agents", json=body, headers=as_(AGENT_A)).status_code == 204
