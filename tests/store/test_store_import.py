"""Bulk import (``claimant import placement``): state as given, generations
included; resumable; the ordinary checks still apply afterwards."""

from __future__ import annotations

import pytest

from claimant.model import (
    AlreadyExists,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    InsufficientCapacity,
    InvalidInput,
    NotFound,
    Provider,
    new_uuid,
)
from claimant.store import ImportedConsumer, Store

from .builders import allocs, generation, inv, used


def _tree(store: Store) -> tuple[Provider, Provider, Provider]:
    store.create_trait("CUSTOM_GOLD")
    root = Provider(
        uuid=new_uuid(),
        name="host-1",
        generation=7,
        inventories={
            "VCPU": inv("VCPU", 8, allocation_ratio=4.0),
            "MEMORY_MB": inv("MEMORY_MB", 4096),
        },
        traits=frozenset({"CUSTOM_GOLD", "HW_CPU_X86_AVX2"}),
        aggregates=frozenset({"2f5a3b1e-6f5c-4c55-9d55-1f3f6c0b0a01"}),
        created_at=1000.0,
        updated_at=2000.0,
    )
    numa = Provider(
        uuid=new_uuid(),
        name="host-1_NUMA0",
        parent_uuid=root.uuid,
        generation=3,
        inventories={"PCPU": inv("PCPU", 4)},
        created_at=1001.0,
    )
    gpu = Provider(
        uuid=new_uuid(),
        name="host-1_NUMA0_GPU0",
        parent_uuid=numa.uuid,
        generation=12,
        inventories={"VGPU": inv("VGPU", 2)},
    )
    return root, numa, gpu


def test_providers_keep_their_generations_and_trees(store: Store) -> None:
    root, numa, gpu = _tree(store)
    # children may come in the same call as their parents, after them
    assert store.import_providers([root, numa, gpu]) == 3
    got = {p.uuid: p for p in store.list_providers()}
    assert [got[p.uuid].generation for p in (root, numa, gpu)] == [7, 3, 12]
    assert got[gpu.uuid].parent_uuid == numa.uuid
    assert {got[p.uuid].root_uuid for p in (root, numa, gpu)} == {root.uuid}
    assert got[root.uuid].inventories == root.inventories
    assert got[root.uuid].traits == root.traits
    assert got[root.uuid].aggregates == root.aggregates
    assert got[root.uuid].created_at == 1000.0
    # a compare-and-set against the imported generation works as usual
    bumped = store.set_traits(root.uuid, 7, ["CUSTOM_GOLD"])
    assert bumped.generation == 8


def test_import_providers_is_resumable_and_checked(store: Store) -> None:
    root, numa, gpu = _tree(store)
    assert store.import_providers([root]) == 1
    assert store.import_providers([root, numa]) == 1  # root already there: left alone
    with pytest.raises(AlreadyExists):
        store.import_providers([Provider(uuid=new_uuid(), name="host-1")])
    with pytest.raises(NotFound):
        store.import_providers([Provider(uuid=new_uuid(), name="orphan", parent_uuid=new_uuid())])
    with pytest.raises(NotFound):
        store.import_providers(
            [Provider(uuid=new_uuid(), name="x", traits=frozenset({"CUSTOM_NOPE"}))]
        )
    with pytest.raises(NotFound):
        store.import_providers(
            [
                Provider(
                    uuid=new_uuid(), name="y", inventories={"CUSTOM_NOPE": inv("CUSTOM_NOPE", 1)}
                )
            ]
        )
    assert store.import_providers([gpu]) == 1
    assert len(store.list_providers()) == 3


def test_allocations_keep_consumer_generations_without_bumps(store: Store) -> None:
    root, numa, gpu = _tree(store)
    store.import_providers([root, numa, gpu])
    instance, migration = new_uuid(), new_uuid()
    written = store.import_allocations(
        [
            ImportedConsumer(
                Consumer(instance, "project-a", "user-a", "INSTANCE", 4),
                {root.uuid: {"VCPU": 2, "MEMORY_MB": 1024}, gpu.uuid: {"VGPU": 1}},
                created_at=1500.0,
            ),
            ImportedConsumer(
                Consumer(migration, "project-a", "user-b", "MIGRATION", 1),
                {numa.uuid: {"PCPU": 2}},
            ),
        ]
    )
    assert written == 2
    assert [generation(store, p.uuid) for p in (root, numa, gpu)] == [7, 3, 12]
    c = store.get_consumer(instance)
    assert c is not None
    assert (c.project_id, c.user_id, c.consumer_type, c.generation) == (
        "project-a",
        "user-a",
        "INSTANCE",
        4,
    )
    assert store.get_consumer(migration).consumer_type == "MIGRATION"  # type: ignore[union-attr]
    held = store.list_claims(consumer_uuid=instance, status=ClaimStatus.CONFIRMED)
    assert {(h.provider_uuid, tuple(sorted(h.amounts.items()))) for h in held} == {
        (root.uuid, (("MEMORY_MB", 1024), ("VCPU", 2))),
        (gpu.uuid, (("VGPU", 1),)),
    }
    assert used(store, root.uuid, "MEMORY_MB") == 1024
    assert used(store, numa.uuid, "PCPU") == 2
    usages = store.usages_by_project("project-a")
    assert usages["INSTANCE"]["VCPU"] == 2
    assert usages["MIGRATION"]["PCPU"] == 2
    # resumed: nothing is written twice
    again = ImportedConsumer(
        Consumer(instance, "project-a", "user-a", "INSTANCE", 4), {root.uuid: {"VCPU": 2}}
    )
    assert store.import_allocations([again]) == 0
    assert used(store, root.uuid, "VCPU") == 2
    # Placement-style writes go on from the imported generations
    store.write_allocations([allocs(instance, {root.uuid: {"VCPU": 1}}, expected_generation=4)])
    assert store.get_consumer(instance).generation == 5  # type: ignore[union-attr]
    assert generation(store, root.uuid) == 8


def test_imported_allocations_may_exceed_capacity_but_need_inventory(store: Store) -> None:
    p = Provider(uuid=new_uuid(), name="shrunk", inventories={"VCPU": inv("VCPU", 2)})
    store.import_providers([p])
    # an operator shrank the inventory below its usage (Placement allows it)
    store.import_allocations(
        [ImportedConsumer(Consumer(new_uuid(), "p", "u", "INSTANCE", 1), {p.uuid: {"VCPU": 3}})]
    )
    assert used(store, p.uuid) == 3
    with pytest.raises(InvalidInput):
        store.import_allocations(
            [ImportedConsumer(Consumer(new_uuid(), "p", "u"), {p.uuid: {"DISK_GB": 1}})]
        )
    with pytest.raises(NotFound):
        store.import_allocations(
            [ImportedConsumer(Consumer(new_uuid(), "p", "u"), {new_uuid(): {"VCPU": 1}})]
        )
    with pytest.raises(InvalidInput):
        store.import_allocations(
            [ImportedConsumer(Consumer(new_uuid(), "p", "u"), {p.uuid: {"VCPU": 0}})]
        )
    # nothing more fits until enough is given back
    with pytest.raises(InsufficientCapacity):
        store.write_allocations([ConsumerAllocations(new_uuid(), "p", "u", {p.uuid: {"VCPU": 1}})])
