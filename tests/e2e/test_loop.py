"""Conductor -> scheduler -> agent, in one process and over HTTP, on every store."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from claimant.agent.http import create_agent_app
from claimant.api import AuthConfig, create_app
from claimant.conductor import AgentDirectory, Conductor
from claimant.conductor.http import create_conductor_app
from claimant.model import ClaimStatus, Request, RequestGroup, RequestStatus, new_uuid
from claimant.model.events import Subject
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import Store

from .conftest import LOOPBACK, AgentFactory, LoopbackServer


def _request(count: int = 1, memory_mb: int = 1024) -> Request:
    return Request(
        uuid=new_uuid(),
        groups=(RequestGroup(resources={"VCPU": 1, "MEMORY_MB": memory_mb}),),
        count=count,
    )


def _conductor(store: Store, agents: AgentDirectory) -> Conductor:
    # Subset 1: the best host is chosen, so a failed host sinks below the good
    # one (build-failure weigher) and the reschedule is deterministic.
    return Conductor(store, Scheduler(store, SchedulerConfig(host_subset_size=1)), agents)


def test_builds_confirm_claims_into_allocations(store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(store, "host-a")
    b = make_agent(store, "host-b")
    agents = AgentDirectory()
    agents.add([a.uuid], a)
    agents.add([b.uuid], b)
    conductor = _conductor(store, agents)
    result = conductor.build(_request(count=3))
    assert result.request.status == RequestStatus.ACTIVE
    assert result.placed == 3
    saved = store.get_request(result.request.uuid)
    assert saved.status == RequestStatus.ACTIVE
    assert [h["event"] for h in saved.history][-1] == "active"
    claims = store.list_claims(request_uuid=saved.uuid)
    assert len(claims) == 3
    assert {c.status for c in claims} == {ClaimStatus.CONFIRMED}
    assert sorted(c.uuid for c in claims) == sorted(saved.claims)
    assert sorted(a.instances() + b.instances()) == sorted(saved.consumers)

    deleted = conductor.destroy(saved.uuid)
    assert deleted.status == RequestStatus.DELETED
    assert store.list_claims(request_uuid=saved.uuid) == []
    for host in (a, b):
        assert all(u.used == 0 for u in store.get_usage(host.uuid).usages.values())
        assert host.instances() == []


def test_failed_build_releases_and_reschedules(store: Store, make_agent: AgentFactory) -> None:
    # The failing host has more free RAM, so spread picks it first.
    bad = make_agent(store, "host-bad", memory_mb=8192, failure_rate=1.0)
    good = make_agent(store, "host-good")
    agents = AgentDirectory()
    agents.add([bad.uuid], bad)
    agents.add([good.uuid], good)
    result = _conductor(store, agents).build(_request())
    assert result.request.status == RequestStatus.ACTIVE
    assert result.instances[0].failures == [("driver", bad.uuid)]
    assert result.reschedules == 1
    events = [h["event"] for h in store.get_request(result.request.uuid).history]
    assert events == ["scheduled", "building", "build_failed", "rescheduled", "built", "active"]
    on_bad = [e.event for e in store.list_events(Subject.PROVIDER, bad.uuid)]
    assert on_bad == ["claimed", "released", "build_failed"]
    assert store.list_claims(provider_uuid=bad.uuid) == []
    (claim,) = store.list_claims(provider_uuid=good.uuid)
    assert claim.status == ClaimStatus.CONFIRMED


def test_reschedules_are_bounded_and_skip_failed_hosts(
    store: Store, make_agent: AgentFactory
) -> None:
    bad = [make_agent(store, f"host-bad-{i}", failure_rate=1.0) for i in range(3)]
    agents = AgentDirectory()
    for a in bad:
        agents.add([a.uuid], a)
    conductor = Conductor(store, Scheduler(store), agents, max_attempts=2)
    result = conductor.build(_request())
    assert result.request.status == RequestStatus.FAILED
    failures = result.instances[0].failures
    assert len(failures) == 2
    assert len({host for _, host in failures}) == 2  # never the same host twice
    assert all(store.list_claims(provider_uuid=a.uuid) == [] for a in bad)
    assert store.get_request(result.request.uuid).history[-1]["event"] == "failed"


def test_partial_placement_without_all_or_nothing(store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(store, "host-a", vcpu=2)
    agents = AgentDirectory()
    agents.add([a.uuid], a)
    request = _request(count=3).evolve(all_or_nothing=False)
    result = _conductor(store, agents).build(request)
    assert result.placed == 2
    saved = store.get_request(request.uuid)
    assert saved.status == RequestStatus.PARTIAL
    assert saved.reason == "2 of 3 instance(s) built"
    assert saved.history[-1]["event"] == "partial"
    assert len(saved.claims) == 2


def test_no_valid_host_is_recorded(store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(store, "host-a")
    agents = AgentDirectory()
    agents.add([a.uuid], a)
    result = _conductor(store, agents).build(_request(memory_mb=999999))
    assert result.no_valid_host
    assert store.get_request(result.request.uuid).status == RequestStatus.FAILED


def test_build_over_http(store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(store, "host-a")
    conductor = _conductor(store, AgentDirectory())
    with (
        LoopbackServer(create_agent_app(a, token="s3cret")) as agent_url,
        LoopbackServer(
            create_conductor_app(conductor, token="s3cret", agent_token="s3cret")
        ) as url,
        httpx.Client(base_url=url, headers={"X-Auth-Token": "s3cret"}, timeout=60) as http,
    ):
        r = http.post("/v1/agents", json={"url": agent_url, "providers": [a.uuid]})
        assert r.status_code == 204, r.text
        body = {"flavor": {"vcpus": 1, "memory_mb": 512}, "count": 2}
        r = http.post("/v1/builds", params={"wait": "true"}, json=body)
        assert r.status_code == 201, r.text
        uuid = r.json()["uuid"]
        assert r.json()["status"] == "active"
        shown = http.get(f"/v1/builds/{uuid}").json()
        assert len(shown["placements"]) == 2
        assert {c["status"] for p in shown["placements"] for c in p["claims"]} == {"confirmed"}
        assert http.post("/v1/builds", json=body, headers={"X-Auth-Token": "x"}).status_code == 401

        # The native API reads the same persisted request.
        with TestClient(create_app(store, auth=AuthConfig.noauth2())) as api:
            native = api.get(f"/v1/requests/{uuid}", headers={"x-auth-token": "admin"}).json()
        assert native["status"] == "active"
        assert "built" in [h["event"] for h in native["history"]]

        r = http.delete(f"/v1/builds/{uuid}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "deleted"
        assert a.instances() == []


def test_background_build_is_followed_by_get(store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(store, "host-a")
    agents = AgentDirectory()
    agents.add([a.uuid], a)
    app = create_conductor_app(_conductor(store, agents))
    with TestClient(app, base_url=LOOPBACK) as http:
        r = http.post("/v1/builds", json={"flavor": {"vcpus": 1, "memory_mb": 512}})
        assert r.status_code == 202, r.text
        uuid = r.json()["uuid"]
        assert http.get(f"/v1/builds/{uuid}").status_code == 200  # saved before the 202
        for _ in range(500):
            status = http.get(f"/v1/builds/{uuid}").json()["status"]
            if status in ("active", "failed"):
                break
            time.sleep(0.01)
        assert status == "active"


def test_a_request_spanning_a_tree_is_built_by_the_roots_agent(
    store: Store, make_agent: AgentFactory
) -> None:
    """VCPU from the host and a VGPU from its GPU child: the claims name the
    child first (uuid order), yet the host's agent builds it."""
    from claimant.model import Provider, Span
    from claimant.model.resources import Inventory

    host = make_agent(store, "tree-host")
    gpu = Provider(
        uuid="00000000-0000-4000-8000-000000000001",  # sorts before any host uuid
        name="tree-host-gpu0",
        parent_uuid=host.uuid,
        inventories={"VGPU": Inventory("VGPU", 2)},
    )
    store.create_provider(gpu)
    agents = AgentDirectory()
    agents.add([host.uuid], host)
    request = Request(
        uuid=new_uuid(),
        groups=(RequestGroup(resources={"VCPU": 1, "VGPU": 1}, span=Span.TREE),),
    )
    result = _conductor(store, agents).build(request)
    assert result.request.status == RequestStatus.ACTIVE, result.request.history
    claims = store.list_claims(request_uuid=request.uuid)
    assert {c.provider_uuid for c in claims} == {host.uuid, gpu.uuid}
    assert {c.status for c in claims} == {ClaimStatus.CONFIRMED}
    assert host.instances() == list(result.request.consumers)


def test_failed_build_over_http_is_409_build_failed(
    store: Store, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: the conductor answered 201 (and the CLI exited 0) for a failed build."""
    bad = make_agent(store, "host-bad", failure_rate=1.0)
    agents = AgentDirectory()
    agents.add([bad.uuid], bad)
    app = create_conductor_app(_conductor(store, agents))
    with TestClient(app, base_url=LOOPBACK) as http:
        r = http.post(
            "/v1/builds", params={"wait": "true"}, json={"flavor": {"vcpus": 1, "memory_mb": 512}}
        )
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "build_failed"
        saved = store.get_request(err["details"]["request_uuid"])
        assert saved.status == RequestStatus.FAILED
        assert saved.reason == err["details"]["reason"] != ""
    # The conductor logs the failed build and the request's end, with the request id.
    failed = [
        r
        for r in caplog.records
        if r.name.startswith("claimant.conductor") and r.levelname == "WARNING"
    ]
    assert any("build of" in r.getMessage() and "failed" in r.getMessage() for r in failed)
    assert any(r.getMessage().startswith("request failed:") for r in failed)
    assert {getattr(r, "request_id", None) for r in failed} == {saved.uuid}
