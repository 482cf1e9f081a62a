"""Providers: create, read, list, compare-and-set updates, trees, delete."""

from __future__ import annotations

import pytest

from claimant.model import (
    AlreadyExists,
    AttributeSpec,
    ClaimantError,
    GenerationConflict,
    InUse,
    InvalidInput,
    NotFound,
    Provider,
    ResourceType,
    new_uuid,
)
from claimant.store import ProviderFilter, Store

from .builders import FakeClock, allocs, generation, group, inv, make_provider, take

# -- create / get -----------------------------------------------------------


def test_create_round_trips_everything(store: Store) -> None:
    agg = new_uuid()
    p = make_provider(
        store,
        name="cn1",
        vcpu=16,
        memory_mb=4096,
        traits=("HW_CPU_X86_AVX2", "CUSTOM_RACK_A"),
        aggregates=(agg,),
        attributes={"cpu_arch": "x86_64", "numa_nodes": 2},
    )
    assert p.generation == 0
    assert p.root_uuid == p.uuid
    got = store.get_provider(p.uuid)
    assert got.uuid == p.uuid
    assert got.name == "cn1"
    assert got.type == "compute"
    assert got.parent_uuid is None
    assert got.root_uuid == p.uuid
    assert got.generation == 0
    assert got.enabled
    assert got.traits == {"HW_CPU_X86_AVX2", "CUSTOM_RACK_A"}
    assert got.aggregates == {agg}
    assert got.attributes == {"cpu_arch": "x86_64", "numa_nodes": 2}
    assert got.inventories == {"VCPU": inv("VCPU", 16), "MEMORY_MB": inv("MEMORY_MB", 4096)}
    assert got.heartbeat_at is None


def test_inventory_fields_round_trip(store: Store) -> None:
    full = inv("VCPU", 32, reserved=2, min_unit=2, max_unit=16, step_size=2, allocation_ratio=1.5)
    p = make_provider(store, inventories={"VCPU": full})
    got = store.get_provider(p.uuid).inventories["VCPU"]
    assert got == full
    assert store.get_usage(p.uuid).capacity("VCPU") == 45


def test_child_gets_parents_root(store: Store) -> None:
    root = make_provider(store)
    child = make_provider(store, parent=root, vcpu=None)
    grandchild = make_provider(store, parent=child, vcpu=None)
    assert (child.parent_uuid, child.root_uuid) == (root.uuid, root.uuid)
    got = store.get_provider(grandchild.uuid)
    assert (got.parent_uuid, got.root_uuid) == (child.uuid, root.uuid)


def test_create_duplicate_uuid_or_name(store: Store) -> None:
    p = make_provider(store, name="taken")
    with pytest.raises(AlreadyExists):
        store.create_provider(Provider(uuid=p.uuid, name="other"))
    with pytest.raises(AlreadyExists):
        store.create_provider(Provider(uuid=new_uuid(), name="taken"))
    assert [q.uuid for q in store.list_providers()] == [p.uuid]


def test_create_with_unknown_parent(store: Store) -> None:
    with pytest.raises(NotFound):
        make_provider(store, parent=new_uuid())
    assert store.list_providers() == []


def test_create_with_unknown_trait(store: Store) -> None:
    with pytest.raises(NotFound):
        store.create_provider(
            Provider(uuid=new_uuid(), name="x", traits=frozenset({"CUSTOM_NEVER_CREATED"}))
        )
    assert store.list_providers() == []


def test_create_with_unknown_type(store: Store) -> None:
    with pytest.raises((NotFound, InvalidInput)):
        store.create_provider(Provider(uuid=new_uuid(), name="x", type="no_such_type"))
    assert store.list_providers() == []


def test_get_unknown_provider(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_provider(new_uuid())
    with pytest.raises(NotFound):
        store.get_usage(new_uuid())


# -- list -------------------------------------------------------------------


def uuids(providers: list[Provider]) -> set[str]:
    return {p.uuid for p in providers}


def test_list_filters(store: Store) -> None:
    a = make_provider(store, name="a")
    a1 = make_provider(store, name="a1", parent=a, vcpu=None)
    b = make_provider(store, name="b")
    assert uuids(store.list_providers()) == {a.uuid, a1.uuid, b.uuid}
    assert uuids(store.list_providers(ProviderFilter())) == {a.uuid, a1.uuid, b.uuid}
    assert uuids(store.list_providers(ProviderFilter(uuid=b.uuid))) == {b.uuid}
    assert uuids(store.list_providers(ProviderFilter(name="a1"))) == {a1.uuid}
    assert store.list_providers(ProviderFilter(name="zzz")) == []
    assert uuids(store.list_providers(ProviderFilter(in_tree=a.uuid))) == {a.uuid, a1.uuid}
    # Any member names its tree, as in Placement.
    assert uuids(store.list_providers(ProviderFilter(in_tree=a1.uuid))) == {a.uuid, a1.uuid}
    assert uuids(store.list_providers(ProviderFilter(in_tree=b.uuid, name="a"))) == set()


def test_list_by_group(store: Store) -> None:
    agg1, agg2, agg3 = new_uuid(), new_uuid(), new_uuid()
    big = make_provider(store, vcpu=16, traits=("CUSTOM_SSD",), aggregates=(agg1,))
    small = make_provider(store, vcpu=2, traits=("CUSTOM_SSD",), aggregates=(agg2,))
    plain = make_provider(store, vcpu=16, aggregates=(agg3,))
    take(store, big, {"VCPU": 10})

    def listed(**kw: object) -> set[str]:
        return uuids(store.list_providers(ProviderFilter(group=group(**kw))))

    assert listed(resources={"VCPU": 2}) == {big.uuid, small.uuid, plain.uuid}
    # resources mean "has this much free": big has 6 left
    assert listed(resources={"VCPU": 8}) == {plain.uuid}
    assert listed(required_traits=frozenset({"CUSTOM_SSD"})) == {big.uuid, small.uuid}
    assert listed(forbidden_traits=frozenset({"CUSTOM_SSD"})) == {plain.uuid}
    assert listed(member_of=(frozenset({agg1, agg3}),)) == {big.uuid, plain.uuid}
    assert listed(forbidden_aggregates=frozenset({agg1})) == {small.uuid, plain.uuid}


# -- update -----------------------------------------------------------------


def test_update_is_compare_and_set(store: Store) -> None:
    p = make_provider(store, name="old", attributes={"cpu_arch": "x86_64"})
    q = store.update_provider(p.uuid, 0, name="new")
    assert (q.name, q.generation) == ("new", 1)
    q = store.update_provider(p.uuid, 1, attributes={"cpu_arch": "aarch64"}, enabled=False)
    assert q.generation == 2
    got = store.get_provider(p.uuid)
    assert (got.name, got.attributes, got.enabled, got.generation) == (
        "new",
        {"cpu_arch": "aarch64"},
        False,
        2,
    )

    with pytest.raises(GenerationConflict):
        store.update_provider(p.uuid, 1, name="lost")
    assert store.get_provider(p.uuid) == got


def test_update_without_generation_is_unconditional(store: Store) -> None:
    p = make_provider(store)
    store.update_provider(p.uuid, 0, name="one")
    q = store.update_provider(p.uuid, None, name="two")
    assert (q.name, q.generation) == ("two", 2)


def test_update_name_clash_and_unknown(store: Store) -> None:
    make_provider(store, name="a")
    b = make_provider(store, name="b")
    with pytest.raises(AlreadyExists):
        store.update_provider(b.uuid, 0, name="a")
    assert store.get_provider(b.uuid).name == "b"
    assert generation(store, b.uuid) == 0
    with pytest.raises(NotFound):
        store.update_provider(new_uuid(), 0, name="c")


def test_reparent_moves_the_subtree(store: Store) -> None:
    a = make_provider(store, name="a")
    b = make_provider(store, name="b")
    c = make_provider(store, name="c", parent=a)
    d = make_provider(store, name="d", parent=c)

    moved = store.update_provider(c.uuid, c.generation, parent_uuid=b.uuid)
    assert (moved.parent_uuid, moved.root_uuid) == (b.uuid, b.uuid)
    assert store.get_provider(d.uuid).root_uuid == b.uuid
    assert uuids(store.list_providers(ProviderFilter(in_tree=b.uuid))) == {b.uuid, c.uuid, d.uuid}

    made_root = store.update_provider(c.uuid, moved.generation, parent_uuid=None)
    assert (made_root.parent_uuid, made_root.root_uuid) == (None, c.uuid)
    assert store.get_provider(d.uuid).root_uuid == c.uuid


@pytest.mark.parametrize("target", ["self", "child", "grandchild"])
def test_reparent_refuses_cycles(store: Store, target: str) -> None:
    a = make_provider(store, name="a")
    b = make_provider(store, name="b", parent=a)
    c = make_provider(store, name="c", parent=b)
    new_parent = {"self": a, "child": b, "grandchild": c}[target]
    with pytest.raises(InvalidInput):
        store.update_provider(a.uuid, 0, parent_uuid=new_parent.uuid)
    got = store.get_provider(a.uuid)
    assert (got.parent_uuid, got.root_uuid, got.generation) == (None, a.uuid, 0)


def test_reparent_to_unknown_parent(store: Store) -> None:
    a = make_provider(store)
    with pytest.raises(NotFound):
        store.update_provider(a.uuid, 0, parent_uuid=new_uuid())
    assert store.get_provider(a.uuid).parent_uuid is None


# -- delete -----------------------------------------------------------------


def test_delete(store: Store) -> None:
    p = make_provider(store)
    store.delete_provider(p.uuid)
    with pytest.raises(NotFound):
        store.get_provider(p.uuid)
    with pytest.raises(NotFound):
        store.delete_provider(p.uuid)
    assert store.list_providers() == []


def test_delete_with_children_is_in_use(store: Store) -> None:
    root = make_provider(store)
    child = make_provider(store, parent=root)
    with pytest.raises(InUse):
        store.delete_provider(root.uuid)
    store.delete_provider(child.uuid)
    store.delete_provider(root.uuid)


def test_delete_with_claim_is_in_use(store: Store) -> None:
    p = make_provider(store)
    c = take(store, p)
    with pytest.raises(InUse):
        store.delete_provider(p.uuid)
    store.release_claim(c.uuid)
    store.delete_provider(p.uuid)


def test_delete_with_allocation_is_in_use(store: Store) -> None:
    p = make_provider(store)
    consumer = new_uuid()
    store.write_allocations([allocs(consumer, {p.uuid: {"VCPU": 2}})])
    with pytest.raises(InUse):
        store.delete_provider(p.uuid)
    store.write_allocations([allocs(consumer, {})])
    store.delete_provider(p.uuid)


# -- inventories, traits, aggregates, heartbeat ------------------------------


def test_set_inventories_bumps_by_one(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    q = store.set_inventories(p.uuid, 0, {"VCPU": inv("VCPU", 8), "DISK_GB": inv("DISK_GB", 100)})
    assert q.generation == 1
    got = store.get_provider(p.uuid)
    assert got.generation == 1
    assert got.inventories == {"VCPU": inv("VCPU", 8), "DISK_GB": inv("DISK_GB", 100)}
    assert store.get_usage(p.uuid).capacity("DISK_GB") == 100


def test_set_inventories_stale_generation_changes_nothing(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    store.set_traits(p.uuid, 0, ["HW_CPU_X86_AVX2"])
    with pytest.raises(GenerationConflict):
        store.set_inventories(p.uuid, 0, {"VCPU": inv("VCPU", 1)})
    got = store.get_provider(p.uuid)
    assert (got.inventories, got.generation) == ({"VCPU": inv("VCPU", 4)}, 1)


def test_set_inventories_unknown_class(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    with pytest.raises((NotFound, InvalidInput)):
        store.set_inventories(p.uuid, 0, {"CUSTOM_NEVER": inv("CUSTOM_NEVER", 1)})
    assert store.get_provider(p.uuid).inventories == {"VCPU": inv("VCPU", 4)}


def test_set_inventories_on_unknown_provider(store: Store) -> None:
    with pytest.raises(NotFound):
        store.set_inventories(new_uuid(), 0, {"VCPU": inv("VCPU", 1)})


def test_remove_class_in_use(store: Store) -> None:
    p = make_provider(store, vcpu=4, memory_mb=1024)
    take(store, p, {"VCPU": 1})
    g = generation(store, p.uuid)
    with pytest.raises(InUse):
        store.set_inventories(p.uuid, g, {"MEMORY_MB": inv("MEMORY_MB", 1024)})
    got = store.get_provider(p.uuid)
    assert set(got.inventories) == {"VCPU", "MEMORY_MB"}
    assert got.generation == g
    # the unused class may go
    store.set_inventories(p.uuid, g, {"VCPU": inv("VCPU", 4)})


@pytest.mark.parametrize(
    ("new_total", "allow", "ok"),
    [
        pytest.param(3, False, True, id="shrink-to-usage"),
        pytest.param(2, False, False, id="shrink-below-usage"),
        pytest.param(2, True, True, id="shrink-below-usage-allowed"),
        pytest.param(16, False, True, id="grow"),
    ],
)
def test_shrink_below_usage(store: Store, new_total: int, allow: bool, ok: bool) -> None:
    p = make_provider(store, vcpu=8)
    take(store, p, {"VCPU": 3})
    g = generation(store, p.uuid)
    new = {"VCPU": inv("VCPU", new_total)}
    if ok:
        store.set_inventories(p.uuid, g, new, allow_overcapacity=allow)
        assert store.get_provider(p.uuid).inventories == new
        assert generation(store, p.uuid) == g + 1
    else:
        with pytest.raises(InUse):
            store.set_inventories(p.uuid, g, new, allow_overcapacity=allow)
        assert store.get_provider(p.uuid).inventories == {"VCPU": inv("VCPU", 8)}
        assert generation(store, p.uuid) == g


def test_reserved_counts_against_usage(store: Store) -> None:
    p = make_provider(store, vcpu=8)
    take(store, p, {"VCPU": 6})
    g = generation(store, p.uuid)
    with pytest.raises(InUse):
        store.set_inventories(p.uuid, g, {"VCPU": inv("VCPU", 8, reserved=3)})
    store.set_inventories(p.uuid, g, {"VCPU": inv("VCPU", 8, reserved=1, allocation_ratio=2.0)})
    assert store.get_usage(p.uuid).capacity("VCPU") == 14


def test_set_traits(store: Store) -> None:
    p = make_provider(store, traits=("HW_CPU_X86_AVX2",))
    store.create_trait("CUSTOM_A")
    q = store.set_traits(p.uuid, 0, ["CUSTOM_A", "HW_CPU_X86_SSE"])
    assert q.generation == 1
    assert store.get_provider(p.uuid).traits == {"CUSTOM_A", "HW_CPU_X86_SSE"}

    with pytest.raises(GenerationConflict):
        store.set_traits(p.uuid, 0, [])
    with pytest.raises(NotFound):
        store.set_traits(p.uuid, 1, ["CUSTOM_A", "CUSTOM_NEVER_CREATED"])
    got = store.get_provider(p.uuid)
    assert (got.traits, got.generation) == ({"CUSTOM_A", "HW_CPU_X86_SSE"}, 1)


def test_set_aggregates(store: Store) -> None:
    a1, a2 = new_uuid(), new_uuid()
    p = make_provider(store, aggregates=(a1,))
    q = store.set_aggregates(p.uuid, 0, [a1, a2])
    assert q.generation == 1
    assert store.get_provider(p.uuid).aggregates == {a1, a2}
    with pytest.raises(GenerationConflict):
        store.set_aggregates(p.uuid, 0, [])
    got = store.get_provider(p.uuid)
    assert (got.aggregates, got.generation) == ({a1, a2}, 1)
    store.set_aggregates(p.uuid, 1, [])
    assert store.get_provider(p.uuid).aggregates == set()


def test_heartbeat_does_not_bump_generation(store: Store) -> None:
    p = make_provider(store)
    store.heartbeat(p.uuid, at=1000.0)
    got = store.get_provider(p.uuid)
    assert (got.heartbeat_at, got.generation) == (1000.0, 0)
    store.heartbeat(p.uuid, at=2000.0)
    assert store.get_provider(p.uuid).heartbeat_at == 2000.0
    # A writer that read generation 0 before the heartbeats still wins.
    store.set_traits(p.uuid, 0, ["HW_CPU_X86_AVX2"])


def test_heartbeat_defaults_to_store_clock(store: Store, clock: FakeClock) -> None:
    p = make_provider(store)
    store.heartbeat(p.uuid)
    assert store.get_provider(p.uuid).heartbeat_at == pytest.approx(clock.now)


def test_heartbeat_unknown_provider(store: Store) -> None:
    with pytest.raises(NotFound):
        store.heartbeat(new_uuid(), at=1.0)


def test_no_driver_error_leaks(store: Store) -> None:
    # Garbage in must come back as one of claimant's errors.
    for call in (
        lambda: store.get_provider("not-a-uuid"),
        lambda: store.get_usage(""),
        lambda: store.release_claim("not-a-uuid"),
        lambda: store.get_request("'; DROP TABLE providers; --"),
    ):
        with pytest.raises(ClaimantError):
            call()
    assert store.list_providers() == []


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"numa_nodes": "two"}, id="string-for-integer"),
        pytest.param({"numa_nodes": True}, id="boolean-for-integer"),
        pytest.param({"cpu_arch": 64}, id="integer-for-string"),
        pytest.param({"no_such_attribute": 1}, id="undeclared"),
    ],
)
def test_attributes_are_checked_against_the_type(
    store: Store, attributes: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput):
        store.create_provider(Provider(uuid=new_uuid(), name="x", attributes=attributes))
    assert store.list_providers() == []
    p = make_provider(store, attributes={"numa_nodes": 2})
    with pytest.raises(InvalidInput):
        store.update_provider(p.uuid, 0, attributes=attributes)
    got = store.get_provider(p.uuid)
    assert (got.attributes, got.generation) == ({"numa_nodes": 2}, 0)


def test_required_attributes(store: Store) -> None:
    store.create_resource_type(
        ResourceType("gpu_box", attributes=(AttributeSpec("gpu_model", "string", required=True),))
    )
    with pytest.raises(InvalidInput):
        make_provider(store, type="gpu_box")
    assert make_provider(store, type="gpu_box", attributes={"gpu_model": "a100"}).generation == 0
