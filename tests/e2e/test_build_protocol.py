"""The build protocol under faults (issue 8, scenario 2): a lost reply from an
agent that did build must not free its allocation or put the instance on a
second host; a store outage while the agent confirms must not leave an
instance running without an allocation. Real agents over HTTP, real stores;
faults come from ``DroppingProxy`` (lost replies) and ``FaultyStore``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from claimant.agent import Agent, BuildMessage, Failure
from claimant.agent.http import HttpAgentClient, create_agent_app
from claimant.conductor import AgentDirectory, Conductor
from claimant.model import (
    ClaimStatus,
    Request,
    RequestGroup,
    RequestStatus,
    new_uuid,
)
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import ClaimSpec, Store
from tests.faults import ALWAYS, FaultyStore

from .conftest import AgentFactory, LoopbackServer
from .proxy import DroppingProxy


def _request(count: int = 1) -> Request:
    return Request(
        uuid=new_uuid(),
        groups=(RequestGroup(resources={"VCPU": 1, "MEMORY_MB": 512}),),
        count=count,
    )


def _claim(store: Store, agent: Agent, ttl: float = 300.0) -> tuple[str, str]:
    consumer = new_uuid()
    claim = store.claim(
        ClaimSpec(
            provider_uuid=agent.uuid,
            expected_generation=store.get_provider(agent.uuid).generation,
            amounts={"VCPU": 1, "MEMORY_MB": 512},
            consumer_uuid=consumer,
            ttl=ttl,
        )
    )
    return consumer, claim.uuid


def assert_hosts_match_the_ledger(store: Store, agents: list[Agent]) -> None:
    """Every instance an agent runs holds a confirmed allocation on its host,
    and no consumer runs on two hosts."""
    seen: dict[str, str] = {}
    for agent in agents:
        for consumer in agent.driver.instances:  # type: ignore[attr-defined]
            assert consumer not in seen, f"{consumer} runs on {seen[consumer]} and {agent.name}"
            seen[consumer] = agent.name
            held = store.list_claims(consumer_uuid=consumer, provider_uuid=agent.uuid)
            assert held, f"{consumer} runs on {agent.name} with no allocation"
            assert {c.status for c in held} == {ClaimStatus.CONFIRMED}


@pytest.fixture
def served() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_a_lost_build_reply_keeps_the_built_instance(
    store: Store, make_agent: AgentFactory, served: ExitStack
) -> None:
    # Each agent's first build reply is lost on the way back: the agent built
    # and confirmed, the conductor only saw the connection drop.
    agents = [make_agent(store, "host-a"), make_agent(store, "host-b")]
    directory = AgentDirectory()
    proxies = []
    for agent in agents:
        url = served.enter_context(LoopbackServer(create_agent_app(agent)))
        proxy = DroppingProxy(url)
        proxies.append(proxy)
        client = HttpAgentClient(served.enter_context(proxy), timeout=30)
        served.callback(client.close)
        directory.add([agent.uuid], client)
    conductor = Conductor(store, Scheduler(store, SchedulerConfig(host_subset_size=1)), directory)
    result = conductor.build(_request())
    assert sum(p.dropped for p in proxies) == 1
    assert_hosts_match_the_ledger(store, agents)
    assert result.request.status == RequestStatus.ACTIVE, result.request.history
    saved = store.get_request(result.request.uuid)
    held = store.list_claims(request_uuid=saved.uuid)
    assert sorted(saved.claims) == sorted(c.uuid for c in held)
    assert {c.status for c in held} == {ClaimStatus.CONFIRMED}
    assert result.instances[0].attempts == 1


def test_a_store_outage_while_confirming_is_retried(store: Store, make_agent: AgentFactory) -> None:
    agent = make_agent(store, "host-a")
    consumer, claim = _claim(store, agent)
    agent.store = FaultyStore(store, confirm_claim={1, 2})  # type: ignore[assignment]
    reply = agent.build(BuildMessage(consumer, (claim,)))
    assert reply.ok, reply.message
    assert store.get_claim(claim).status == ClaimStatus.CONFIRMED
    assert_hosts_match_the_ledger(store, [agent])


def test_an_instance_not_confirmed_before_expiry_is_destroyed(
    sqlite_store: Store, make_agent: AgentFactory
) -> None:
    agent = make_agent(sqlite_store, "host-a")
    now = [sqlite_store.clock()]
    sqlite_store.clock = lambda: now[0]  # type: ignore[method-assign]
    consumer, claim = _claim(sqlite_store, agent, ttl=10)

    def outage_while_time_passes(n: int) -> bool:
        now[0] += 4  # each failed attempt takes a while
        return ALWAYS(n)

    agent.store = FaultyStore(sqlite_store, confirm_claim=outage_while_time_passes)  # type: ignore[assignment]
    reply = agent.build(BuildMessage(consumer, (claim,)))
    assert not reply.ok
    assert reply.failure == Failure.CLAIM
    assert consumer not in agent.driver.instances  # type: ignore[attr-defined]
    assert agent.instances() == []
    assert_hosts_match_the_ledger(sqlite_store, [agent])
