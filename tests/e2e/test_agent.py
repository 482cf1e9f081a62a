"""The agent on its own: registration, drift, heartbeats, claims, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.agent import (
    Agent,
    AgentConfig,
    BuildMessage,
    DestroyMessage,
    Failure,
    FakeDriver,
    load_driver,
    provider_spec,
)
from claimant.agent.http import create_agent_app
from claimant.model import (
    ClaimStatus,
    InvalidInput,
    Inventory,
    NoValidHost,
    Request,
    RequestGroup,
    new_uuid,
)
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import ClaimSpec, Store

from .conftest import LOOPBACK, AgentFactory


def _claim(store: Store, agent: Agent, ttl: float = 300.0) -> tuple[str, str]:
    gen = store.get_provider(agent.uuid).generation
    consumer = new_uuid()
    c = store.claim(ClaimSpec(agent.uuid, gen, {"VCPU": 1}, consumer, ttl=ttl))
    return consumer, c.uuid


def test_registers_then_fixes_drift(sqlite_store: Store, make_agent: AgentFactory) -> None:
    agent = make_agent(sqlite_store, "host-a", vcpu=4)
    p = sqlite_store.get_provider(agent.uuid)
    assert p.inventories["VCPU"].total == 4
    assert p.heartbeat_at is not None
    # Someone changes the record behind the agent's back.
    sqlite_store.set_inventories(agent.uuid, p.generation, {"VCPU": Inventory("VCPU", 99)})
    drift = agent.sync("test")
    assert len(drift) == 1 and "inventories" in drift[0]
    assert sqlite_store.get_provider(agent.uuid).inventories["VCPU"].total == 4
    assert agent.sync("test") == []


def test_a_change_reported_by_the_driver_is_written_at_the_next_build(
    sqlite_store: Store, make_agent: AgentFactory
) -> None:
    agent = make_agent(sqlite_store, "host-a", vcpu=4)
    assert agent.sync_if_changed() == []
    assert isinstance(agent.driver, FakeDriver)
    agent.driver.inventories = {"VCPU": {"total": 8}}  # e.g. a CPU was brought online
    consumer, claim = _claim(sqlite_store, agent)
    assert agent.build(BuildMessage(consumer, (claim,))).ok
    assert sqlite_store.get_provider(agent.uuid).inventories["VCPU"].total == 8
    assert agent.last_sync["reason"] == "host changed"


def test_restarted_agent_finds_its_provider(sqlite_store: Store, make_agent: AgentFactory) -> None:
    first = make_agent(sqlite_store, "host-a")
    consumer, claim = _claim(sqlite_store, first)
    assert first.build(BuildMessage(consumer, (claim,))).ok
    again = make_agent(sqlite_store, "host-a")
    assert again.uuid == first.uuid
    assert again.instances() == [consumer]  # recovered from the store, not from memory


def test_stale_heartbeat_is_not_scheduled(sqlite_store: Store, make_agent: AgentFactory) -> None:
    agent = make_agent(sqlite_store, "host-a")
    request = Request(uuid=new_uuid(), groups=(RequestGroup(resources={"VCPU": 1}),))
    sched = Scheduler(sqlite_store, SchedulerConfig(heartbeat_timeout=60))
    sqlite_store.heartbeat(agent.uuid, at=sqlite_store.clock() - 120)
    with pytest.raises(NoValidHost):
        sched.schedule(request)
    agent.heartbeat()
    assert sched.schedule(request.evolve(uuid=new_uuid())).placements


@pytest.mark.parametrize(
    ("case", "ttl", "release_first", "failure"),
    [
        ("live claim builds", 300.0, False, None),
        ("released claim fails as a race", 300.0, True, Failure.CLAIM),
    ],
)
def test_build_checks_the_claim(
    sqlite_store: Store,
    make_agent: AgentFactory,
    case: str,
    ttl: float,
    release_first: bool,
    failure: Failure | None,
) -> None:
    agent = make_agent(sqlite_store, "host-a")
    consumer, claim = _claim(sqlite_store, agent, ttl)
    if release_first:
        sqlite_store.release_claim(claim)
    reply = agent.build(BuildMessage(consumer, (claim,)))
    assert reply.ok is (failure is None), case
    assert reply.failure == failure
    if failure is None:
        assert sqlite_store.get_claim(claim).status == ClaimStatus.CONFIRMED
        freed = agent.destroy(DestroyMessage(consumer)).freed
        assert freed == (claim,)
    assert sqlite_store.list_claims(provider_uuid=agent.uuid) == []


def test_a_missing_claim_releases_the_others_of_the_consumer_only(
    sqlite_store: Store, make_agent: AgentFactory
) -> None:
    agent = make_agent(sqlite_store, "host-a")
    pool = make_agent(sqlite_store, "pool-a")
    consumer, host_claim = _claim(sqlite_store, agent)
    gen = sqlite_store.get_provider(pool.uuid).generation
    pool_claim = sqlite_store.claim(ClaimSpec(pool.uuid, gen, {"VCPU": 1}, consumer)).uuid
    _, other_claim = _claim(sqlite_store, pool)
    sqlite_store.release_claim(host_claim)
    reply = agent.build(BuildMessage(consumer, (host_claim, pool_claim, other_claim)))
    assert (reply.ok, reply.failure) == (False, Failure.CLAIM)
    assert "does not exist" in reply.message
    assert [c.uuid for c in sqlite_store.list_claims(provider_uuid=pool.uuid)] == [other_claim]


def test_a_misrouted_build_touches_nothing(sqlite_store: Store, make_agent: AgentFactory) -> None:
    a = make_agent(sqlite_store, "host-a")
    b = make_agent(sqlite_store, "host-b")
    consumer, claim = _claim(sqlite_store, b)
    reply = a.build(BuildMessage(consumer, (claim,)))
    assert (reply.ok, reply.failure) == (False, Failure.UNKNOWN_PROVIDER)
    assert sqlite_store.get_claim(claim).status == ClaimStatus.CLAIMED


def test_driver_failure_releases_the_claim(sqlite_store: Store, make_agent: AgentFactory) -> None:
    agent = make_agent(sqlite_store, "host-a", failure_rate=1.0)
    consumer, claim = _claim(sqlite_store, agent)
    reply = agent.build(BuildMessage(consumer, (claim,)))
    assert (reply.ok, reply.failure) == (False, Failure.DRIVER)
    assert sqlite_store.list_claims(provider_uuid=agent.uuid) == []


@pytest.mark.parametrize(
    ("case", "path", "body", "status"),
    [
        ("not json", "/build", b"{", 400),
        ("not an object", "/build", b"[1]", 400),
        ("bad consumer", "/build", b'{"consumer_uuid": "x", "claims": []}', 400),
        ("claims not a list", "/build", b'{"consumer_uuid": "%s", "claims": 3}', 400),
        ("bad attempt", "/build", b'{"consumer_uuid": "%s", "attempt": 0}', 400),
        ("destroy without consumer", "/destroy", b"{}", 400),
    ],
)
def test_agent_http_rejects_bad_messages(
    sqlite_store: Store, make_agent: AgentFactory, case: str, path: str, body: bytes, status: int
) -> None:
    agent = make_agent(sqlite_store, "host-a")
    if b"%s" in body:
        body = body % new_uuid().encode()
    with TestClient(create_agent_app(agent), base_url=LOOPBACK) as http:
        r = http.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, case
    assert r.json()["error"]["code"] == "invalid_input"


BAD_INVENTORY = "[provider]\nname='a'\n[provider.inventories]\nVCPU='x'\n"


@pytest.mark.parametrize(
    ("case", "text", "suffix", "message"),
    [
        ("no provider table", "[driver]\nname='fake'\n", ".toml", "[provider]"),
        ("bad toml", "[provider\n", ".toml", "not valid"),
        ("bad json", "{", ".json", "not valid"),
        ("unknown table", "[provider]\nname='a'\n[extra]\n", ".toml", "unknown table"),
        (
            "bad interval",
            "[provider]\nname='a'\n[agent]\nheartbeat_interval=0\n",
            ".toml",
            "positive",
        ),
        (
            "bad inventory",
            "[provider]\nname='a'\n[provider.inventories]\nVCPU='x'\n",
            ".toml",
            "VCPU",
        ),
    ],
)
def test_config_errors(tmp_path: Path, case: str, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"agent{suffix}"
    path.write_text(text)
    with pytest.raises(InvalidInput) as err:
        provider_spec(AgentConfig.load(path).provider)
    assert message in err.value.message, case


@pytest.mark.parametrize(
    ("case", "name", "options"),
    [
        ("unknown name", "nope", {}),
        # One plugin mechanism (issue 13): a driver is an entry point, never a dotted path.
        ("dotted path", "claimant.agent.driver:FakeDriver", {}),
        ("bad option", "fake", {"colour": "red"}),
        ("bad failure rate", "fake", {"failure_rate": 2}),
    ],
)
def test_driver_loading_errors(case: str, name: str, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        load_driver(name, options)


def test_driver_by_entry_point() -> None:
    assert isinstance(load_driver("fake", {}), FakeDriver)
