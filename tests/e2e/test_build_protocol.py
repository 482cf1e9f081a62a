"""The build protocol under faults (issue 8, scenario 2): a lost reply from an
agent that did build must not free its allocation or put the instance on a
second host; a store outage while the agent confirms must not leave an
instance running without an allocation. Real agents over HTTP, real stores;
faults come from ``DroppingProxy`` (lost replies) and ``FaultyStore``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from claimant.agent import (
    Agent,
    AgentConfig,
    BuildMessage,
    BuildReply,
    BuildStatus,
    Failure,
    FakeDriver,
)
from claimant.agent.http import AgentUnavailable, HttpAgentClient, create_agent_app
from claimant.conductor import AgentDirectory, Conductor
from claimant.model import (
    ClaimStatus,
    NotFound,
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


def test_a_repeated_build_gets_the_same_answer_and_builds_once(
    store: Store, make_agent: AgentFactory
) -> None:
    agent = make_agent(store, "host-a")
    calls: list[str] = []
    real_build = agent.driver.build

    def counting_build(consumer: str, amounts: dict[str, dict[str, int]]) -> None:
        calls.append(consumer)
        real_build(consumer, amounts)

    agent.driver.build = counting_build  # type: ignore[method-assign]
    consumer, claim = _claim(store, agent)
    msg = BuildMessage(consumer, (claim,), new_uuid())
    first = agent.build(msg)
    again = agent.build(msg)
    assert first.ok and again == first
    assert calls == [consumer]
    # A failed build is answered the same way too, and its claims stay released.
    bad_consumer = new_uuid()
    failed = agent.build(BuildMessage(bad_consumer, (new_uuid(),)))
    assert not failed.ok
    assert agent.build(BuildMessage(bad_consumer, ())) == failed


def test_agent_http_reports_builds_and_instances(
    store: Store, make_agent: AgentFactory, served: ExitStack
) -> None:
    agent = make_agent(store, "host-a")
    consumer, claim = _claim(store, agent)
    request_uuid = new_uuid()
    url = served.enter_context(LoopbackServer(create_agent_app(agent, token="t0k")))
    client = HttpAgentClient(url, token="t0k", timeout=30)
    served.callback(client.close)
    with pytest.raises(NotFound):
        client.build_record(consumer)
    reply = client.build(BuildMessage(consumer, (claim,), request_uuid))
    assert reply.ok
    record = client.build_record(consumer)
    assert record.status == BuildStatus.BUILT
    assert record.reply == reply
    assert client.instances() == [
        {
            "consumer_uuid": consumer,
            "request_uuid": request_uuid,
            "provider_uuid": agent.uuid,
            "claims": [claim],
            "resources": {"VCPU": 1, "MEMORY_MB": 512},
            "confirmed": True,
            "built_at": record.built_at,
        }
    ]
    assert isinstance(record.built_at, float)
    stranger = HttpAgentClient(url, timeout=30)
    served.callback(stranger.close)
    with pytest.raises(AgentUnavailable) as info:
        stranger.instances()
    assert not info.value.delivered  # refused (401): the agent did nothing


def test_a_restarted_agent_remembers_its_builds(
    sqlite_store: Store, make_agent: AgentFactory, tmp_path: Path
) -> None:
    state = str(tmp_path / "agent-state.json")
    extra = {"uuid": new_uuid()}
    first = _agent_with_state(sqlite_store, state, extra)
    consumer, claim = _claim(sqlite_store, first)
    failed_consumer, failed_claim = _claim(sqlite_store, first)
    sqlite_store.release_claim(failed_claim)
    built = first.build(BuildMessage(consumer, (claim,)))
    failed = first.build(BuildMessage(failed_consumer, (failed_claim,)))
    assert built.ok and not failed.ok
    first.stop()

    again = _agent_with_state(sqlite_store, state, extra)
    assert again.build_record(consumer).reply == built
    assert again.build(BuildMessage(failed_consumer, (failed_claim,))) == failed
    assert [i["consumer_uuid"] for i in again.running()] == [consumer]
    again.stop()


def test_an_agent_that_died_mid_build_frees_the_claims_at_restart(
    sqlite_store: Store, tmp_path: Path
) -> None:
    state = str(tmp_path / "agent-state.json")
    extra = {"uuid": new_uuid()}
    first = _agent_with_state(sqlite_store, state, extra)
    consumer, claim = _claim(sqlite_store, first)
    # The process dies inside the driver's build: its state file is left as
    # it was at that moment, saying "building".
    at_death: list[str] = []

    def die(consumer: str, amounts: dict[str, dict[str, int]]) -> None:
        with open(state) as f:
            at_death.append(f.read())
        raise _Died

    first.driver.build = die  # type: ignore[method-assign]
    with pytest.raises(_Died):
        first.build(BuildMessage(consumer, (claim,)))
    with open(state, "w") as f:
        f.write(at_death[0])
    assert '"building"' in at_death[0]

    again = _agent_with_state(sqlite_store, state, extra)
    assert again.build_record(consumer).status == BuildStatus.FAILED
    assert sqlite_store.list_claims(consumer_uuid=consumer) == []
    assert again.running() == []


class _Died(BaseException):
    """Stands for the process dying: nothing after it runs."""


def _agent_with_state(store: Store, state_file: str, extra: dict[str, str]) -> Agent:
    agent = Agent(
        store,
        AgentConfig(
            provider={"name": "host-s", "inventories": {"VCPU": 4, "MEMORY_MB": 4096}, **extra},
            state_file=state_file,
        ),
        FakeDriver(),
    )
    agent.start(background=False)
    return agent


def test_an_unreachable_agent_frees_the_claims_and_reschedules(
    store: Store, make_agent: AgentFactory
) -> None:
    agents = [make_agent(store, "host-a"), make_agent(store, "host-b")]
    directory = AgentDirectory()
    dead = HttpAgentClient("http://127.0.0.1:9", timeout=5)  # discard port: refused
    directory.add([agents[0].uuid], dead)
    directory.add([agents[1].uuid], agents[1])
    conductor = Conductor(store, Scheduler(store, SchedulerConfig(host_subset_size=2)), directory)
    result = conductor.build(_request(count=2))
    assert result.request.status == RequestStatus.ACTIVE, result.request.history
    assert sorted(agents[1].instances()) == sorted(result.request.consumers)
    assert_hosts_match_the_ledger(store, agents)
    assert store.list_claims(provider_uuid=agents[0].uuid) == []
    dead.close()


class _Silent:
    """An agent whose every reply is lost (it may or may not have built)."""

    def build(self, msg: BuildMessage) -> BuildReply:
        raise AgentUnavailable("no answer: read timed out")

    def destroy(self, msg: object) -> object:
        raise AgentUnavailable("no answer: read timed out")


def test_an_unknown_outcome_frees_nothing_and_builds_nowhere_else(
    sqlite_store: Store, make_agent: AgentFactory
) -> None:
    # No reply, and the store cannot say either (an outage): until the claims
    # settle nobody knows whether the instance runs, so the conductor must
    # neither free them nor build the instance on another host.
    a = make_agent(sqlite_store, "host-a", memory_mb=8192)
    b = make_agent(sqlite_store, "host-b")
    now = [sqlite_store.clock()]
    sqlite_store.clock = lambda: now[0]  # type: ignore[method-assign]
    directory = AgentDirectory()
    directory.add([a.uuid], _Silent())  # type: ignore[arg-type]
    directory.add([b.uuid], b)
    faulty = FaultyStore(sqlite_store, get_claim=ALWAYS)
    conductor = Conductor(
        faulty,  # type: ignore[arg-type]
        Scheduler(faulty, SchedulerConfig(host_subset_size=1)),  # type: ignore[arg-type]
        directory,
    )

    def time_passes(seconds: float) -> None:
        now[0] += 60

    conductor.sleep = time_passes  # type: ignore[method-assign]
    result = conductor.build(_request())
    assert result.request.status == RequestStatus.FAILED
    assert [e["event"] for e in result.request.history if e["event"].startswith("build")] == [
        "building",
        "build_unknown",
    ]
    held = sqlite_store.list_claims(request_uuid=result.request.uuid)
    assert held == []  # expired by now (the fake clock moved past the TTL) ...
    assert b.instances() == []  # ... and never built elsewhere
    assert len(result.request.claims) == 1  # the record said it might hold it


def test_a_confirm_outage_over_http_leaves_no_instance_without_allocation(
    store: Store, make_agent: AgentFactory, served: ExitStack
) -> None:
    # host-a's first confirm hits a store outage; before the fix the agent
    # answered 503, the conductor freed the claim and built on host-b while
    # host-a kept running the instance with nothing on its ledger.
    agents = [make_agent(store, "host-a", memory_mb=8192), make_agent(store, "host-b")]
    agents[0].store = FaultyStore(store, confirm_claim={1})  # type: ignore[assignment]
    directory = AgentDirectory()
    for agent in agents:
        url = served.enter_context(LoopbackServer(create_agent_app(agent)))
        client = HttpAgentClient(url, timeout=30)
        served.callback(client.close)
        directory.add([agent.uuid], client)
    conductor = Conductor(store, Scheduler(store, SchedulerConfig(host_subset_size=1)), directory)
    result = conductor.build(_request())
    assert result.request.status == RequestStatus.ACTIVE, result.request.history
    assert agents[0].instances() == list(result.request.consumers)
    assert_hosts_match_the_ledger(store, agents)


def test_destroy_without_an_agent_keeps_the_allocation(
    store: Store, make_agent: AgentFactory
) -> None:
    # Only the agent can say the instance is gone: with no agent answering,
    # freeing the allocation would leave the instance running on nothing.
    agent = make_agent(store, "host-a")
    directory = AgentDirectory()
    directory.add([agent.uuid], agent)
    conductor = Conductor(store, Scheduler(store), directory)
    built = conductor.build(_request())
    assert built.request.status == RequestStatus.ACTIVE
    dead = HttpAgentClient("http://127.0.0.1:9", timeout=5)
    directory.add([agent.uuid], dead)
    with pytest.raises(AgentUnavailable):
        conductor.destroy(built.request.uuid)
    dead.close()
    assert_hosts_match_the_ledger(store, [agent])
    saved = store.get_request(built.request.uuid)
    assert saved.history[-1]["event"] == "destroy_failed"
    assert sorted(saved.claims) == sorted(built.request.claims)

    directory.add([agent.uuid], agent)  # the agent is back: now it goes
    assert conductor.destroy(built.request.uuid).status == RequestStatus.DELETED
    assert agent.instances() == []
    assert store.list_claims(request_uuid=built.request.uuid) == []


def test_a_build_slower_than_the_client_timeout_is_built_once(
    store: Store, served: ExitStack
) -> None:
    # The conductor's client gives up before the agent finishes; its resends
    # wait for the build in flight and get its reply: one instance, one host.
    agent = Agent(
        store,
        AgentConfig(provider={"name": "host-slow", "inventories": {"VCPU": 4, "MEMORY_MB": 4096}}),
        FakeDriver(build_time=1.0),
    )
    agent.start(background=False)
    calls: list[str] = []
    real_build = agent.driver.build

    def counting_build(consumer: str, amounts: dict[str, dict[str, int]]) -> None:
        calls.append(consumer)
        real_build(consumer, amounts)

    agent.driver.build = counting_build  # type: ignore[method-assign]
    url = served.enter_context(LoopbackServer(create_agent_app(agent)))
    client = HttpAgentClient(url, timeout=0.3)
    served.callback(client.close)
    directory = AgentDirectory()
    directory.add([agent.uuid], client)
    result = Conductor(store, Scheduler(store), directory).build(_request())
    assert result.request.status == RequestStatus.ACTIVE, result.request.history
    assert calls == list(result.request.consumers)
    assert_hosts_match_the_ledger(store, [agent])
