"""Scheduling against a real SQLite store: selection, strategy, hints,
count and all-or-nothing, multi-group requests, diagnostics."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from claimant.model import (
    AttributeConstraint,
    GroupPolicy,
    GroupPolicyKind,
    Hints,
    InvalidInput,
    NoValidHost,
    RequestGroup,
    RequestStatus,
    Strategy,
    new_uuid,
)
from claimant.plugins import PluginOptions
from claimant.scheduler import Filter, FilterResult, PlacementContext, ScheduleResult
from claimant.store import Store
from tests.plugin_dist import plugin_dist

from .builders import grp, host, names, req, scheduler, used


def _hosts(result: ScheduleResult, store: Store) -> list[str]:
    return [store.get_provider(p.providers[0]).name for p in result.placements]


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        pytest.param(RequestGroup(resources={"VCPU": 12}), "big", id="only-big-fits"),
        pytest.param(
            RequestGroup(resources={"VCPU": 1}, required_traits=frozenset({"CUSTOM_GPU"})),
            "gpu",
            id="required-trait",
        ),
        pytest.param(
            RequestGroup(
                resources={"VCPU": 1},
                forbidden_traits=frozenset({"CUSTOM_GPU", "CUSTOM_SLOW"}),
            ),
            "big",
            id="forbidden-traits",
        ),
        pytest.param(
            RequestGroup(
                resources={"VCPU": 1},
                attributes=(AttributeConstraint("cpu_arch", "==", "aarch64"),),
            ),
            "arm",
            id="attribute-equals",
        ),
        pytest.param(
            RequestGroup(resources={"VCPU": 1}, member_of=(frozenset({"agg-b"}),)),
            "gpu",
            id="member-of-aggregate",
        ),
    ],
)
def test_selects_only_providers_that_fit(store: Store, group: RequestGroup, expected: str) -> None:
    host(store, "big", vcpu=16, aggregates=("agg-a",), attributes={"cpu_arch": "x86_64"})
    host(store, "gpu", vcpu=4, traits=("CUSTOM_GPU",), aggregates=("agg-b",))
    host(store, "arm", vcpu=4, traits=("CUSTOM_SLOW",), attributes={"cpu_arch": "aarch64"})
    result = scheduler(store, host_subset_size=1).schedule(req(group))
    assert _hosts(result, store) == [expected]
    [placement] = result.placements
    assert [c.uuid for c in placement.claims] == list(result.request.claims)
    assert result.request.status == RequestStatus.SCHEDULED
    saved = store.get_request(result.request.uuid)
    assert saved.status == RequestStatus.SCHEDULED
    assert saved.claims == result.request.claims
    assert saved.history[-1]["event"] == "scheduled"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(Strategy.SPREAD, "empty", id="spread-picks-emptiest"),
        pytest.param(Strategy.PACK, "fullest", id="pack-picks-fullest-that-fits"),
    ],
)
def test_spread_and_pack(store: Store, strategy: Strategy, expected: str) -> None:
    # Free memory differs; "full" is too small for the request.
    for name, free_mb in (("empty", 8192), ("half", 4096), ("fullest", 1024), ("full", 256)):
        host(store, name, vcpu=8, memory_mb=free_mb)
    result = scheduler(store, host_subset_size=1).schedule(
        req(grp(VCPU=1, MEMORY_MB=512), hints=Hints(strategy=strategy))
    )
    assert _hosts(result, store) == [expected]


def _tree(store: Store) -> tuple[Any, Any, Any]:
    root = host(store, "root", vcpu=None, memory_mb=4096)
    big = host(store, "numa-big", vcpu=8, memory_mb=None, parent=root)
    small = host(store, "numa-small", vcpu=4, memory_mb=None, parent=root)
    return root, big, small


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(GroupPolicy.NONE, ["numa-big", "numa-big"], id="none-shares-a-provider"),
        pytest.param(GroupPolicy.ISOLATE, ["numa-big", "numa-small"], id="isolate"),
    ],
)
def test_group_policy(store: Store, policy: GroupPolicy, expected: list[str]) -> None:
    _tree(store)
    result = scheduler(store, host_subset_size=1).schedule(
        req(grp("a", VCPU=2), grp("b", VCPU=2), group_policy=policy)
    )
    [placement] = result.placements
    assert names(store, placement.providers) == expected
    assert [c.amounts for c in placement.claims] == [{"VCPU": 2}, {"VCPU": 2}]


def test_isolate_with_no_second_provider_fails(store: Store) -> None:
    host(store, "only", vcpu=8)
    with pytest.raises(NoValidHost):
        scheduler(store).schedule(
            req(grp("a", VCPU=1), grp("b", VCPU=1), group_policy=GroupPolicy.ISOLATE)
        )
    assert store.list_claims() == []


def test_two_groups_on_one_provider_must_fit_together(store: Store) -> None:
    host(store, "a", vcpu=4, memory_mb=None)
    host(store, "b", vcpu=8, memory_mb=None)
    result = scheduler(store, host_subset_size=1, weighers={}).schedule(
        req(grp("x", VCPU=3), grp("y", VCPU=3))
    )
    # "a" alone cannot hold 3 + 3, whatever the order the store returned.
    assert names(store, result.placements[0].providers) == ["b", "b"]


def test_later_group_stays_in_the_first_groups_tree(store: Store) -> None:
    # Two hosts; only host-2 has a GPU child with room: the instance lands there.
    for i, gpus in ((1, 0), (2, 1)):
        root = host(store, f"host-{i}", vcpu=8, memory_mb=8192)
        if gpus:
            host(store, f"gpu-{i}", inventories={"VGPU": gpus}, parent=root)
    result = scheduler(store, host_subset_size=2).schedule(
        req(grp("compute", VCPU=1, MEMORY_MB=512), grp("gpu", VGPU=1))
    )
    assert names(store, result.placements[0].providers) == ["host-2", "gpu-2"]


def test_shared_storage_group_with_member_of(store: Store) -> None:
    host(store, "compute-1", vcpu=8, aggregates=("rack-1",))
    pool = host(store, "pool-1", inventories={"DISK_GB": 100}, aggregates=("rack-1",))
    storage = RequestGroup(
        name="storage", resources={"DISK_GB": 40}, member_of=(frozenset({"rack-1"}),)
    )
    result = scheduler(store).schedule(req(grp("compute", VCPU=2), storage, count=2))
    for p in result.placements:
        assert names(store, p.providers) == ["compute-1", "pool-1"]
    assert used(store, pool, "DISK_GB") == 80
    # A third would not fit on the pool: nothing taken on the compute host either.
    with pytest.raises(NoValidHost, match="storage"):
        scheduler(store).schedule(req(grp("compute", VCPU=2), storage))
    assert used(store, pool, "DISK_GB") == 80
    assert len(store.list_claims()) == 4


@pytest.mark.parametrize(
    ("all_or_nothing", "placed", "status"),
    [
        pytest.param(True, 0, RequestStatus.FAILED, id="all-or-nothing-releases-everything"),
        pytest.param(False, 2, RequestStatus.PARTIAL, id="partial-keeps-what-it-placed"),
    ],
)
def test_count_with_all_or_nothing(
    store: Store, all_or_nothing: bool, placed: int, status: RequestStatus
) -> None:
    a = host(store, "a", vcpu=4)
    b = host(store, "b", vcpu=4)
    request = req(grp(VCPU=3), count=3, all_or_nothing=all_or_nothing)
    sched = scheduler(store)
    if all_or_nothing:
        with pytest.raises(NoValidHost) as err:
            sched.schedule(request)
        assert err.value.details["placed"] == 2
        assert err.value.details["count"] == 3
    else:
        result = sched.schedule(request)
        assert len(result.placements) == placed
        assert result.request.history[-1]["event"] == "partial"
        assert "instance 3 of 3" in result.request.history[-1]["message"]
    saved = store.get_request(request.uuid)
    assert saved.status == status
    assert len(saved.claims) == placed
    assert len(store.list_claims(request_uuid=request.uuid)) == placed
    assert used(store, a) + used(store, b) == 3 * placed


def test_consumers_given_are_used_in_order(store: Store) -> None:
    host(store, "a", vcpu=8)
    consumers = (new_uuid(), new_uuid())
    result = scheduler(store).schedule(req(count=2, consumers=consumers))
    assert tuple(p.consumer_uuid for p in result.placements) == consumers
    for p in result.placements:
        assert {c.consumer_uuid for c in p.claims} == {p.consumer_uuid}


@pytest.mark.parametrize(
    ("policy", "count", "ok"),
    [
        pytest.param(GroupPolicyKind.AFFINITY, 3, True, id="affinity-all-on-one"),
        pytest.param(GroupPolicyKind.ANTI_AFFINITY, 3, True, id="anti-affinity-all-apart"),
        pytest.param(GroupPolicyKind.ANTI_AFFINITY, 4, False, id="anti-affinity-too-many"),
    ],
)
def test_server_group_in_one_request(
    store: Store, policy: GroupPolicyKind, count: int, ok: bool
) -> None:
    for name in ("a", "b", "c"):
        host(store, name, vcpu=8)
    request = req(hints=Hints(group="web", group_policy=policy), count=count)
    if not ok:
        with pytest.raises(NoValidHost) as err:
            scheduler(store).schedule(request)
        rejected = err.value.details["groups"][0]["rejected"]
        assert rejected["AntiAffinityFilter"]["count"] == 3
        assert "already has 1 member(s) on this host" in str(rejected)
        assert store.list_claims() == []
        return
    hosts = _hosts(scheduler(store).schedule(request), store)
    assert len(set(hosts)) == (1 if policy == GroupPolicyKind.AFFINITY else count)


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(GroupPolicyKind.AFFINITY, id="affinity-follows-earlier-member"),
        pytest.param(GroupPolicyKind.ANTI_AFFINITY, id="anti-affinity-avoids-earlier-member"),
    ],
)
def test_server_group_across_requests(store: Store, policy: GroupPolicyKind) -> None:
    for name in ("a", "b", "c", "d"):
        host(store, name, vcpu=8)
    hints = Hints(group="db", group_policy=policy)
    first = _hosts(scheduler(store, seed=1).schedule(req(hints=hints)), store)
    for seed in range(2, 5):
        later = _hosts(scheduler(store, seed=seed).schedule(req(hints=hints)), store)
        if policy == GroupPolicyKind.AFFINITY:
            assert later == first
        else:
            assert later[0] not in first
            first += later


@pytest.mark.parametrize(
    ("hint", "same"),
    [
        pytest.param("same_host", True, id="same-host"),
        pytest.param("different_host", False, id="different-host"),
    ],
)
def test_same_and_different_host(store: Store, hint: str, same: bool) -> None:
    for name in ("a", "b", "c"):
        host(store, name, vcpu=8)
    first = scheduler(store).schedule(req())
    consumer = first.placements[0].consumer_uuid
    where = first.placements[0].providers[0]
    for seed in range(4):
        result = scheduler(store, seed=seed).schedule(req(hints=Hints(**{hint: (consumer,)})))
        assert (result.placements[0].providers[0] == where) is same


def test_same_host_with_unknown_consumer_says_so(store: Store) -> None:
    host(store, "a")
    with pytest.raises(NoValidHost, match="none of the 1 named consumer"):
        scheduler(store).schedule(req(hints=Hints(same_host=(new_uuid(),))))


def test_stale_heartbeat_is_skipped(store: Store) -> None:
    dead = host(store, "dead", vcpu=16)
    alive = host(store, "alive", vcpu=2)
    store.heartbeat(dead.uuid, at=time.time() - 3600)
    store.heartbeat(alive.uuid, at=time.time())
    result = scheduler(store, host_subset_size=2).schedule(req())
    assert _hosts(result, store) == ["alive"]
    result = scheduler(store, host_subset_size=1, heartbeat_timeout=None).schedule(req())
    assert _hosts(result, store) == ["dead"]


def test_build_failures_push_a_provider_down(store: Store) -> None:
    bad = host(store, "bad", vcpu=8)
    host(store, "good", vcpu=8)
    sched = scheduler(store, host_subset_size=1)
    sched.record_build_failure(bad.uuid)
    assert _hosts(sched.schedule(req()), store) == ["good"]
    # Same free capacity again (one claim each) once "good" took one: still "good".
    assert _hosts(sched.schedule(req()), store) == ["good"]
    sched.record_build_success(bad.uuid)
    assert _hosts(sched.schedule(req()), store) == ["bad"]


@pytest.mark.parametrize(
    ("setup", "group", "expect"),
    [
        pytest.param(
            {"vcpu": 8},
            RequestGroup(resources={"VCPU": 20}),
            ["with enough free capacity", "VCPU: requested 20, used 0, capacity 8"],
            id="too-big",
        ),
        pytest.param(
            {"vcpu": 8},
            RequestGroup(resources={"VCPU": 1}, required_traits=frozenset({"HW_CPU_X86_AVX2"})),
            ["no provider that matches the group's traits"],
            id="missing-trait",
        ),
        pytest.param(
            {"vcpu": 8},
            RequestGroup(resources={"VGPU": 1}),
            ["no provider that matches"],
            id="class-nobody-has",
        ),
    ],
)
def test_no_valid_host_explains_the_store(
    store: Store, setup: dict[str, Any], group: RequestGroup, expect: list[str]
) -> None:
    host(store, "h", **setup)
    request = req(group)
    with pytest.raises(NoValidHost) as err:
        scheduler(store).schedule(request)
    assert err.value.code == "no_valid_host"
    text = err.value.details["groups"][0]["store"]
    for part in expect:
        assert part in text
        assert part in err.value.message
    saved = store.get_request(request.uuid)
    assert saved.status == RequestStatus.FAILED
    assert saved.history[-1]["event"] == "failed"
    assert saved.history[-1]["details"]["groups"][0]["queries"] == 1


class RackFilter(Filter):
    """A plugin of a test's own (test_custom_filter_plugin registers it)."""

    NAME = "TestRackFilter"

    class Options(PluginOptions):
        rack: str

    def __init__(self, rack: str) -> None:
        self.rack = rack

    def filter(self, candidate: Any, ctx: PlacementContext) -> FilterResult:
        rack = candidate.provider.attributes.get("availability_zone")
        if rack == self.rack:
            return FilterResult.ok()
        return FilterResult.reject(f"zone is {rack!r}, want {self.rack!r}")


def test_custom_filter_plugin(store: Store, tmp_path: Path) -> None:
    with plugin_dist(tmp_path, {"claimant.filters": {RackFilter.NAME: f"{__name__}:RackFilter"}}):
        host(store, "z1", attributes={"availability_zone": "z1"})
        host(store, "z2", attributes={"availability_zone": "z2"})
        sched = scheduler(
            store, filters=["TestRackFilter"], options={"TestRackFilter": {"rack": "z2"}}
        )
        assert _hosts(sched.schedule(req()), store) == ["z2"]
        sched = scheduler(
            store, filters=["TestRackFilter"], options={"TestRackFilter": {"rack": "z9"}}
        )
        with pytest.raises(NoValidHost) as err:
            sched.schedule(req())
        rejected = err.value.details["groups"][0]["rejected"]["TestRackFilter"]
        assert rejected["count"] == 2
        assert "want 'z9'" in rejected["examples"][0]
        with pytest.raises(InvalidInput, match="rack: Field required"):
            scheduler(store, filters=["TestRackFilter"])
    with pytest.raises(InvalidInput, match="unknown filter 'TestRackFilter'"):
        scheduler(store, filters=["TestRackFilter"])


def test_max_claims_per_provider_filter(store: Store) -> None:
    host(store, "a", vcpu=64)
    host(store, "b", vcpu=8)
    sched = scheduler(
        store,
        host_subset_size=1,
        filters=["MaxClaimsPerProviderFilter"],
        options={"MaxClaimsPerProviderFilter": {"max_claims": 2}},
    )
    hosts = _hosts(sched.schedule(req(count=4)), store)
    assert sorted(hosts) == ["a", "a", "b", "b"]
    with pytest.raises(NoValidHost, match="2 rejected by MaxClaimsPerProviderFilter"):
        sched.schedule(req())


@pytest.mark.parametrize(
    "request_kw",
    [
        pytest.param({"hints": Hints(group_policy=GroupPolicyKind.AFFINITY)}, id="policy-no-group"),
        pytest.param({"hints": Hints(same_host=("nope",))}, id="same-host-not-uuid"),
        pytest.param({"count": 0}, id="count-zero"),
        pytest.param({"count": 2, "consumers": (new_uuid(),)}, id="consumers-count-mismatch"),
        pytest.param({"groups": (RequestGroup(resources={}),)}, id="empty-group"),
    ],
)
def test_bad_requests_are_invalid_input(store: Store, request_kw: dict[str, Any]) -> None:
    host(store, "a")
    groups = request_kw.pop("groups", (grp(),))
    with pytest.raises(InvalidInput):
        scheduler(store).schedule(req(*groups, **request_kw))
    assert store.list_claims() == []


@pytest.mark.parametrize(
    ("count", "placed", "queries"),
    [
        pytest.param(4, 4, 1, id="leftover-candidates-serve-later-instances"),
        pytest.param(8, 8, 1, id="leftovers-track-what-was-claimed"),
        # Slots run out: the store is asked again, then twice more to explain
        # (the closest providers; disabled or stale ones that would fit).
        pytest.param(9, 8, 4, id="requery-when-leftovers-run-out"),
    ],
)
def test_count_reuses_candidates_without_overcommit(
    store: Store, count: int, placed: int, queries: int
) -> None:
    # 3 + 3 + 2 slots of 3 VCPU.
    hosts = [host(store, n, vcpu=v) for n, v in (("a", 9), ("b", 9), ("c", 6))]
    result = scheduler(store).schedule(req(grp(VCPU=3), count=count, all_or_nothing=False))
    assert len(result.placements) == placed
    assert (result.stats.queries, result.stats.conflicts) == (queries, 0)
    for p in hosts:
        u = store.get_usage(p.uuid).usages["VCPU"]
        assert u.used <= u.capacity
    assert sum(used(store, p) for p in hosts) == 3 * placed


def test_no_valid_host_names_stale_and_disabled_hosts(any_store: Store) -> None:
    """Issue 11: a request only a dead host could take said "closest: ..."
    and never mentioned the dead (or the disabled) host."""
    store = any_store
    dead = host(store, "dead", vcpu=16)
    off = host(store, "off", vcpu=16)
    alive = host(store, "alive", vcpu=3)
    store.heartbeat(dead.uuid, at=time.time() - 3600)
    store.heartbeat(alive.uuid, at=time.time())
    store.update_provider(off.uuid, None, enabled=False)
    with pytest.raises(NoValidHost) as err:
        scheduler(store).schedule(req(grp(VCPU=8)))
    message = err.value.message
    assert "closest: alive" in message
    assert re.search(r"dead \(stale: last heartbeat 36\d\d s ago \(timeout 60 s\)\)", message)
    assert "off (disabled)" in message
