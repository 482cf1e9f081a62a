"""find_candidates: every condition a request group can put on one provider."""

from __future__ import annotations

from typing import Any

import pytest

from claimant.model import (
    AttributeConstraint,
    AttributeSpec,
    Provider,
    ResourceType,
    Strategy,
    new_uuid,
)
from claimant.store import CandidateQuery, Store

from .builders import FakeClock, allocs, generation, group, inv, make_provider, take


def found(store: Store, **kw: Any) -> list[str]:
    """Uuids of the candidates, in the order the store returned them."""
    query_kw = {k: kw.pop(k) for k in list(kw) if k in CandidateQuery.__slots__}
    return [
        pu.provider.uuid for pu in store.find_candidates(CandidateQuery(group(**kw), **query_kw))
    ]


def found_set(store: Store, **kw: Any) -> set[str]:
    result = found(store, **kw)
    assert len(result) == len(set(result)), "a candidate was returned twice"
    return set(result)


def test_amounts_against_free(store: Store) -> None:
    p = make_provider(store, vcpu=8, memory_mb=1024)
    q = make_provider(store, vcpu=2)
    take(store, p, {"VCPU": 5})
    assert found_set(store, resources={"VCPU": 2}) == {p.uuid, q.uuid}
    assert found_set(store, resources={"VCPU": 3}) == {p.uuid}
    assert found_set(store, resources={"VCPU": 4}) == set()
    assert found_set(store, resources={"VCPU": 1, "MEMORY_MB": 1024}) == {p.uuid}
    assert found_set(store, resources={"VCPU": 1, "MEMORY_MB": 1025}) == set()
    assert found_set(store, resources={"DISK_GB": 1}) == set()


def test_usages_are_reported(store: Store) -> None:
    p = make_provider(store, vcpu=8, memory_mb=1024)
    take(store, p, {"VCPU": 3, "MEMORY_MB": 100})
    [pu] = store.find_candidates(CandidateQuery(group(resources={"VCPU": 1})))
    assert pu.provider.uuid == p.uuid
    assert pu.provider.generation == 1
    assert (pu.usages["VCPU"].capacity, pu.usages["VCPU"].used) == (8, 3)
    assert pu.free("MEMORY_MB") == 924


def test_capacity_uses_reserved_and_ratio(store: Store) -> None:
    p = make_provider(store, inventories={"VCPU": inv("VCPU", 8, reserved=2, allocation_ratio=2.0)})
    assert found_set(store, resources={"VCPU": 12}) == {p.uuid}
    assert found_set(store, resources={"VCPU": 13}) == set()


@pytest.mark.parametrize(
    ("amount", "fits"),
    [
        pytest.param(1, False, id="below-min_unit"),
        pytest.param(2, True, id="min_unit"),
        pytest.param(3, False, id="off-step"),
        pytest.param(6, True, id="max_unit"),
        pytest.param(8, False, id="above-max_unit"),
    ],
)
def test_units(store: Store, amount: int, fits: bool) -> None:
    p = make_provider(
        store, inventories={"VCPU": inv("VCPU", 16, min_unit=2, max_unit=6, step_size=2)}
    )
    assert found_set(store, resources={"VCPU": amount}) == ({p.uuid} if fits else set())


TRAIT_CASES = [
    pytest.param({"required_traits": frozenset({"CUSTOM_X"})}, {"xy", "x"}, id="required"),
    pytest.param(
        {"required_traits": frozenset({"CUSTOM_X", "CUSTOM_Y"})}, {"xy"}, id="required-all"
    ),
    pytest.param({"forbidden_traits": frozenset({"CUSTOM_X"})}, {"y", "none"}, id="forbidden"),
    pytest.param(
        {"any_traits": (frozenset({"CUSTOM_X", "CUSTOM_Y"}),)}, {"xy", "x", "y"}, id="any-of"
    ),
    pytest.param(
        {"any_traits": (frozenset({"CUSTOM_X"}), frozenset({"CUSTOM_Y"}))},
        {"xy"},
        id="any-of-every-set",
    ),
    pytest.param(
        {
            "required_traits": frozenset({"CUSTOM_X"}),
            "forbidden_traits": frozenset({"CUSTOM_Y"}),
        },
        {"x"},
        id="required-and-forbidden",
    ),
]


@pytest.mark.parametrize(("conditions", "expected"), TRAIT_CASES)
def test_traits(store: Store, conditions: dict[str, Any], expected: set[str]) -> None:
    store.create_trait("CUSTOM_X")
    store.create_trait("CUSTOM_Y")
    providers = {
        "xy": make_provider(store, traits=("CUSTOM_X", "CUSTOM_Y")),
        "x": make_provider(store, traits=("CUSTOM_X",)),
        "y": make_provider(store, traits=("CUSTOM_Y",)),
        "none": make_provider(store),
    }
    want = {providers[k].uuid for k in expected}
    assert found_set(store, **conditions) == want


AGG_A, AGG_B, AGG_C = (new_uuid() for _ in range(3))

AGGREGATE_CASES = [
    pytest.param({"member_of": (frozenset({AGG_A, AGG_B}),)}, {"a", "b", "ac"}, id="any-of"),
    pytest.param({"member_of": (frozenset({AGG_A}), frozenset({AGG_C}))}, {"ac"}, id="all-sets"),
    pytest.param(
        {"member_of": (frozenset({AGG_A, AGG_B}), frozenset({AGG_C}))}, {"ac"}, id="mixed"
    ),
    pytest.param({"forbidden_aggregates": frozenset({AGG_A})}, {"b", "none"}, id="forbidden"),
    pytest.param(
        {"member_of": (frozenset({AGG_A}),), "forbidden_aggregates": frozenset({AGG_C})},
        {"a"},
        id="member-but-not",
    ),
]


@pytest.mark.parametrize(("conditions", "expected"), AGGREGATE_CASES)
def test_aggregates(store: Store, conditions: dict[str, Any], expected: set[str]) -> None:
    providers = {
        "a": make_provider(store, aggregates=(AGG_A,)),
        "b": make_provider(store, aggregates=(AGG_B,)),
        "ac": make_provider(store, aggregates=(AGG_A, AGG_C)),
        "none": make_provider(store),
    }
    assert found_set(store, **conditions) == {providers[k].uuid for k in expected}


LAB = ResourceType(
    "lab",
    attributes=(
        AttributeSpec("arch", "string"),
        AttributeSpec("ram", "integer"),
        AttributeSpec("speed", "number"),
        AttributeSpec("fast", "boolean"),
    ),
)
LAB_PROVIDERS: dict[str, dict[str, Any]] = {
    "p1": {"arch": "x86_64", "ram": 128, "speed": 2.5, "fast": True},
    "p2": {"arch": "aarch64", "ram": 256, "speed": 3.0, "fast": False},
    "p3": {"arch": "x86_64", "ram": 512},
    "p4": {},
}
ATTRIBUTE_CASES = [
    ("arch", "==", "x86_64", {"p1", "p3"}),
    # A provider without the attribute is "not equal" (the model's rule).
    ("arch", "!=", "x86_64", {"p2", "p4"}),
    ("ram", "<", 256, {"p1"}),
    ("ram", "<=", 256, {"p1", "p2"}),
    ("ram", ">", 256, {"p3"}),
    ("ram", ">=", 256, {"p2", "p3"}),
    ("ram", "==", 512, {"p3"}),
    ("ram", "in", (128, 512), {"p1", "p3"}),
    ("arch", "in", ("aarch64", "ppc64le"), {"p2"}),
    ("arch", "<", "b", {"p2"}),
    ("speed", ">", 2.6, {"p2"}),
    ("speed", "<=", 2.5, {"p1"}),
    ("fast", "==", True, {"p1"}),
    ("fast", "!=", True, {"p2", "p3", "p4"}),
]


@pytest.mark.parametrize(
    ("name", "op", "value", "expected"),
    [pytest.param(*case, id=f"{case[0]}{case[1]}{case[2]}") for case in ATTRIBUTE_CASES],
)
def test_attribute_constraints(
    store: Store, name: str, op: str, value: Any, expected: set[str]
) -> None:
    constraint = AttributeConstraint(name, op, value)
    # The table must agree with the model's own rule.
    assert {k for k, attrs in LAB_PROVIDERS.items() if constraint.matches(attrs.get(name))} == (
        expected
    )
    store.create_resource_type(LAB)
    providers = {
        key: make_provider(store, type="lab", attributes=attrs)
        for key, attrs in LAB_PROVIDERS.items()
    }
    want = {providers[k].uuid for k in expected}
    assert found_set(store, attributes=(constraint,)) == want


def test_several_attribute_constraints_all_hold(store: Store) -> None:
    store.create_resource_type(LAB)
    providers = {
        key: make_provider(store, type="lab", attributes=attrs)
        for key, attrs in LAB_PROVIDERS.items()
    }
    both = (AttributeConstraint("arch", "==", "x86_64"), AttributeConstraint("ram", ">", 200))
    assert found_set(store, attributes=both) == {providers["p3"].uuid}


def test_in_tree_and_roots(store: Store) -> None:
    a = make_provider(store)
    a1 = make_provider(store, parent=a)
    b = make_provider(store)
    b1 = make_provider(store, parent=b)
    c = make_provider(store)
    everyone = {a.uuid, a1.uuid, b.uuid, b1.uuid, c.uuid}
    assert found_set(store) == everyone
    assert found_set(store, in_tree=a.uuid) == {a.uuid, a1.uuid}
    assert found_set(store, in_tree=b1.uuid) == {b.uuid, b1.uuid}
    assert found_set(store, roots=frozenset({b.uuid, c.uuid})) == {b.uuid, b1.uuid, c.uuid}
    assert found_set(store, roots=frozenset()) == set()
    assert found_set(store, roots=None) == everyone


def test_provider_type(store: Store) -> None:
    compute = make_provider(store)
    metal = make_provider(
        store, type="baremetal", inventories={"VCPU": inv("VCPU", 8)}, attributes={"cpus": 8}
    )
    assert found_set(store) == {compute.uuid, metal.uuid}
    assert found_set(store, provider_type="baremetal") == {metal.uuid}
    assert found_set(store, provider_type="compute") == {compute.uuid}
    assert found_set(store, provider_type="network") == set()


def test_disabled_and_excluded(store: Store) -> None:
    on = make_provider(store)
    off = make_provider(store, enabled=False)
    other = make_provider(store)
    assert found_set(store) == {on.uuid, other.uuid}
    assert found_set(store, exclude=frozenset({other.uuid})) == {on.uuid}
    store.update_provider(off.uuid, off.generation, enabled=True)
    store.update_provider(on.uuid, on.generation, enabled=False)
    assert found_set(store) == {off.uuid, other.uuid}


def test_heartbeat_after(store: Store) -> None:
    fresh = make_provider(store)
    stale = make_provider(store)
    unmanaged = make_provider(store)
    store.heartbeat(fresh.uuid, at=1000.0)
    store.heartbeat(stale.uuid, at=100.0)
    assert found_set(store, heartbeat_after=500.0) == {fresh.uuid, unmanaged.uuid}
    assert found_set(store, heartbeat_after=50.0) == {fresh.uuid, stale.uuid, unmanaged.uuid}
    assert found_set(store) == {fresh.uuid, stale.uuid, unmanaged.uuid}
    store.heartbeat(stale.uuid, at=600.0)
    assert found_set(store, heartbeat_after=500.0) == {fresh.uuid, stale.uuid, unmanaged.uuid}


def ordering_fixture(store: Store) -> dict[str, Provider]:
    a = make_provider(store, name="a", vcpu=4, memory_mb=2048)
    b = make_provider(store, name="b", vcpu=16, memory_mb=4096)
    c = make_provider(store, name="c", vcpu=8, memory_mb=3072)
    take(store, b, {"MEMORY_MB": 3000})  # b: 1096 MB free
    return {"a": a, "b": b, "c": c}


@pytest.mark.parametrize(
    ("strategy", "sort_class", "expected"),
    [
        pytest.param(Strategy.SPREAD, None, "cab", id="spread-memory"),
        pytest.param(Strategy.PACK, None, "bac", id="pack-memory"),
        pytest.param(Strategy.SPREAD, "VCPU", "bca", id="spread-vcpu"),
        pytest.param(Strategy.PACK, "VCPU", "acb", id="pack-vcpu"),
    ],
)
def test_ordering(store: Store, strategy: Strategy, sort_class: str | None, expected: str) -> None:
    providers = ordering_fixture(store)
    got = found(
        store,
        resources={"VCPU": 1, "MEMORY_MB": 512},
        strategy=strategy,
        sort_class=sort_class,
    )
    assert got == [providers[k].uuid for k in expected]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(Strategy.SPREAD, [5, 4], id="spread"),
        pytest.param(Strategy.PACK, [1, 2], id="pack"),
    ],
)
def test_limit_keeps_the_best(store: Store, strategy: Strategy, expected: list[int]) -> None:
    by_size = {n: make_provider(store, vcpu=n) for n in (3, 1, 5, 2, 4)}
    got = found(store, resources={"VCPU": 1}, strategy=strategy, limit=2)
    assert got == [by_size[n].uuid for n in expected]


def test_live_claims_count_expired_do_not(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    take(store, p, {"VCPU": 3}, ttl=10)
    assert found_set(store, resources={"VCPU": 2}) == set()
    clock.advance(5)
    assert found_set(store, resources={"VCPU": 2}) == set()
    clock.advance(6)
    assert found_set(store, resources={"VCPU": 4}) == {p.uuid}
    [pu] = store.find_candidates(CandidateQuery(group(resources={"VCPU": 1})))
    assert pu.usages["VCPU"].used == 0


def test_confirmed_claims_keep_counting(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p, {"VCPU": 3}, ttl=10)
    store.confirm_claim(c.uuid)
    clock.advance(3600)
    assert found_set(store, resources={"VCPU": 2}) == set()
    assert found_set(store, resources={"VCPU": 1}) == {p.uuid}


def test_candidates_follow_every_change(store: Store, clock: FakeClock) -> None:
    """A backend that keeps a search index must keep it true after every kind of write."""
    agg = new_uuid()
    store.create_trait("CUSTOM_T")
    p = make_provider(store, vcpu=4)

    def fits(vcpu: int, **kw: Any) -> bool:
        return found_set(store, resources={"VCPU": vcpu}, **kw) == {p.uuid}

    assert fits(4)
    c = take(store, p, {"VCPU": 3}, ttl=10)
    assert (fits(1), fits(2)) == (True, False)
    store.release_claim(c.uuid)
    assert fits(4)

    consumer = new_uuid()
    store.write_allocations([allocs(consumer, {p.uuid: {"VCPU": 2}})])
    assert (fits(2), fits(3)) == (True, False)
    store.set_inventories(p.uuid, generation(store, p.uuid), {"VCPU": inv("VCPU", 8)})
    assert (fits(6), fits(7)) == (True, False)
    store.write_allocations([allocs(consumer, {})])
    assert fits(8)

    c = take(store, p, {"VCPU": 5}, ttl=10)
    store.confirm_claim(c.uuid)
    clock.advance(11)
    assert (fits(3), fits(4)) == (True, False)
    store.release_claim(c.uuid)
    take(store, p, {"VCPU": 5}, ttl=10)
    clock.advance(11)
    assert fits(8)
    store.expire_claims()
    assert fits(8)

    assert not fits(1, required_traits=frozenset({"CUSTOM_T"}))
    store.set_traits(p.uuid, generation(store, p.uuid), ["CUSTOM_T"])
    assert fits(1, required_traits=frozenset({"CUSTOM_T"}))
    assert not fits(1, forbidden_traits=frozenset({"CUSTOM_T"}))

    assert not fits(1, member_of=(frozenset({agg}),))
    store.set_aggregates(p.uuid, generation(store, p.uuid), [agg])
    assert fits(1, member_of=(frozenset({agg}),))
    assert not fits(1, forbidden_aggregates=frozenset({agg}))

    assert not fits(1, attributes=(AttributeConstraint("cpu_arch", "==", "aarch64"),))
    store.update_provider(p.uuid, generation(store, p.uuid), attributes={"cpu_arch": "aarch64"})
    assert fits(1, attributes=(AttributeConstraint("cpu_arch", "==", "aarch64"),))

    other = make_provider(store, vcpu=None)
    assert not fits(1, in_tree=other.uuid)
    store.update_provider(p.uuid, generation(store, p.uuid), parent_uuid=other.uuid)
    assert fits(1, in_tree=other.uuid)
    assert fits(1, roots=frozenset({other.uuid}))

    store.update_provider(p.uuid, generation(store, p.uuid), enabled=False)
    assert not fits(1)
    store.update_provider(p.uuid, generation(store, p.uuid), enabled=True)
    assert fits(1)
    store.set_inventories(p.uuid, generation(store, p.uuid), {})
    assert not fits(1)


def test_expired_claims_do_not_skew_the_order(store: Store, clock: FakeClock) -> None:
    a = make_provider(store, vcpu=8)
    b = make_provider(store, vcpu=4)
    take(store, a, {"VCPU": 6}, ttl=10)
    assert found(store, resources={"VCPU": 1}) == [b.uuid, a.uuid]
    clock.advance(11)
    assert found(store, resources={"VCPU": 1}) == [a.uuid, b.uuid]
    assert found(store, resources={"VCPU": 1}, strategy=Strategy.PACK) == [b.uuid, a.uuid]
