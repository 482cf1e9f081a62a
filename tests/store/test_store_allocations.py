"""Placement's allocation model: consumers, write_allocations, usages, reshape."""

from __future__ import annotations

import pytest

from claimant.model import (
    ClaimStatus,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    NotFound,
    new_uuid,
)
from claimant.store import ReshapeSpec, Store

from .builders import allocs, generation, inv, make_provider, take, used


def test_new_consumer(store: Store) -> None:
    p = make_provider(store, vcpu=8, memory_mb=1024)
    c = new_uuid()
    store.write_allocations(
        [
            allocs(
                c,
                {p.uuid: {"VCPU": 2, "MEMORY_MB": 256}},
                project_id="proj",
                user_id="usr",
                consumer_type="INSTANCE",
                expected_generation=None,
            )
        ]
    )
    consumer = store.get_consumer(c)
    assert consumer is not None
    assert (consumer.uuid, consumer.project_id, consumer.user_id, consumer.consumer_type) == (
        c,
        "proj",
        "usr",
        "INSTANCE",
    )
    assert (used(store, p.uuid), used(store, p.uuid, "MEMORY_MB")) == (2, 256)
    assert generation(store, p.uuid) == 1
    [entry] = store.list_claims(consumer_uuid=c)
    assert entry.status is ClaimStatus.CONFIRMED
    assert entry.expires_at is None
    assert (entry.provider_uuid, entry.amounts) == (p.uuid, {"VCPU": 2, "MEMORY_MB": 256})
    assert store.providers_of_consumers([c]) == {p.uuid}


def test_unknown_consumer(store: Store) -> None:
    assert store.get_consumer(new_uuid()) is None


def test_consumer_generation_is_checked_and_bumped(store: Store) -> None:
    p = make_provider(store, vcpu=8)
    c = new_uuid()
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 1}}, expected_generation=None)])
    g0 = store.get_consumer(c).generation  # type: ignore[union-attr]

    for wrong in (None, g0 + 1, g0 - 1):
        with pytest.raises(ConsumerGenerationConflict):
            store.write_allocations([allocs(c, {p.uuid: {"VCPU": 5}}, expected_generation=wrong)])
    assert used(store, p.uuid) == 1
    assert store.get_consumer(c).generation == g0  # type: ignore[union-attr]

    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 2}}, expected_generation=g0)])
    assert store.get_consumer(c).generation == g0 + 1  # type: ignore[union-attr]
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 3}}, expected_generation="any")])
    assert store.get_consumer(c).generation == g0 + 2  # type: ignore[union-attr]
    assert used(store, p.uuid) == 3


def test_write_replaces_and_bumps_every_touched_provider(store: Store) -> None:
    p, q, bystander = make_provider(store), make_provider(store), make_provider(store)
    c = new_uuid()
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 2}})])
    gp, gq = generation(store, p.uuid), generation(store, q.uuid)
    store.write_allocations([allocs(c, {q.uuid: {"VCPU": 3}})])
    assert (used(store, p.uuid), used(store, q.uuid)) == (0, 3)
    assert (generation(store, p.uuid), generation(store, q.uuid)) == (gp + 1, gq + 1)
    assert generation(store, bystander.uuid) == 0
    assert {x.provider_uuid for x in store.list_claims(consumer_uuid=c)} == {q.uuid}


def test_provider_generations_are_checked(store: Store) -> None:
    p, q = make_provider(store), make_provider(store)
    store.set_traits(q.uuid, 0, ["HW_CPU_X86_AVX2"])
    c = new_uuid()
    with pytest.raises(GenerationConflict):
        store.write_allocations(
            [
                allocs(
                    c,
                    {p.uuid: {"VCPU": 1}, q.uuid: {"VCPU": 1}},
                    provider_generations={p.uuid: 0, q.uuid: 0},
                )
            ]
        )
    assert store.get_consumer(c) is None
    assert (used(store, p.uuid), generation(store, p.uuid)) == (0, 0)
    store.write_allocations(
        [allocs(c, {p.uuid: {"VCPU": 1}, q.uuid: {"VCPU": 1}}, provider_generations={q.uuid: 1})]
    )
    assert (used(store, p.uuid), used(store, q.uuid)) == (1, 1)


@pytest.mark.parametrize(
    "second",
    [
        pytest.param({"VCPU": 5}, id="other-provider-too-big"),
        pytest.param({"DISK_GB": 1}, id="class-not-on-provider"),
    ],
)
def test_batch_is_all_or_nothing(store: Store, second: dict[str, int]) -> None:
    p = make_provider(store, vcpu=8)
    q = make_provider(store, vcpu=4)
    c1, c2 = new_uuid(), new_uuid()
    with pytest.raises(InsufficientCapacity):
        store.write_allocations([allocs(c1, {p.uuid: {"VCPU": 2}}), allocs(c2, {q.uuid: second})])
    assert store.get_consumer(c1) is None
    assert store.get_consumer(c2) is None
    assert (used(store, p.uuid), generation(store, p.uuid)) == (0, 0)
    assert (used(store, q.uuid), generation(store, q.uuid)) == (0, 0)
    assert store.list_claims() == []


def test_batch_counts_itself(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    c1, c2 = new_uuid(), new_uuid()
    with pytest.raises(InsufficientCapacity):
        store.write_allocations(
            [allocs(c1, {p.uuid: {"VCPU": 3}}), allocs(c2, {p.uuid: {"VCPU": 2}})]
        )
    assert used(store, p.uuid) == 0
    store.write_allocations([allocs(c1, {p.uuid: {"VCPU": 2}}), allocs(c2, {p.uuid: {"VCPU": 2}})])
    assert used(store, p.uuid) == 4


def test_allocations_count_against_claims(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    take(store, p, {"VCPU": 3})
    with pytest.raises(InsufficientCapacity):
        store.write_allocations([allocs(new_uuid(), {p.uuid: {"VCPU": 2}})])
    store.write_allocations([allocs(new_uuid(), {p.uuid: {"VCPU": 1}})])
    with pytest.raises(InsufficientCapacity):
        take(store, p, {"VCPU": 1})


def test_moving_within_capacity(store: Store) -> None:
    # Replacing a consumer's own allocation frees it first (a resize in place).
    p = make_provider(store, vcpu=4)
    c = new_uuid()
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 3}})])
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 4}})])
    assert used(store, p.uuid) == 4


def test_unknown_provider(store: Store) -> None:
    c = new_uuid()
    with pytest.raises(NotFound):
        store.write_allocations([allocs(c, {new_uuid(): {"VCPU": 1}})])
    assert store.get_consumer(c) is None


def test_empty_allocations_delete_the_consumer(store: Store) -> None:
    p = make_provider(store)
    c = new_uuid()
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 2}})])
    g = generation(store, p.uuid)
    store.write_allocations([allocs(c, {})])
    assert store.get_consumer(c) is None
    assert used(store, p.uuid) == 0
    assert generation(store, p.uuid) == g + 1
    assert store.list_claims(consumer_uuid=c) == []
    # a deleted consumer is new again
    store.write_allocations([allocs(c, {p.uuid: {"VCPU": 1}}, expected_generation=None)])
    assert used(store, p.uuid) == 1


def test_usages_by_project(store: Store) -> None:
    p = make_provider(store, vcpu=32, memory_mb=8192)
    store.write_allocations(
        [
            allocs(new_uuid(), {p.uuid: {"VCPU": 2, "MEMORY_MB": 512}}, consumer_type="INSTANCE"),
            allocs(new_uuid(), {p.uuid: {"VCPU": 1}}, consumer_type="INSTANCE", user_id="u2"),
            allocs(new_uuid(), {p.uuid: {"VCPU": 4}}, consumer_type="MIGRATION"),
            allocs(new_uuid(), {p.uuid: {"VCPU": 8}}, project_id="other"),
        ]
    )
    by_type = store.usages_by_project("project-a")
    assert by_type["INSTANCE"]["VCPU"] == 3
    assert by_type["INSTANCE"]["MEMORY_MB"] == 512
    assert by_type["MIGRATION"]["VCPU"] == 4
    assert store.usages_by_project("project-a", consumer_type="all")["all"]["VCPU"] == 7
    only = store.usages_by_project("project-a", consumer_type="MIGRATION")
    assert set(only) == {"MIGRATION"}
    assert only["MIGRATION"]["VCPU"] == 4
    assert store.usages_by_project("project-a", user_id="u2")["INSTANCE"]["VCPU"] == 1
    assert store.usages_by_project("other", consumer_type="all")["all"]["VCPU"] == 8
    assert store.usages_by_project("nobody", consumer_type="all").get("all", {}).get("VCPU", 0) == 0


def reshape_fixture(store: Store) -> tuple[str, str, str]:
    """A root whose VCPU is used by one consumer, and an empty child to move it to."""
    root = make_provider(store, vcpu=8, memory_mb=1024)
    child = make_provider(store, parent=root, vcpu=None)
    c = new_uuid()
    store.write_allocations([allocs(c, {root.uuid: {"VCPU": 4, "MEMORY_MB": 128}})])
    return root.uuid, child.uuid, c


def test_reshape_moves_inventory_and_allocations(store: Store) -> None:
    root, child, c = reshape_fixture(store)
    groot, gchild = generation(store, root), generation(store, child)
    gc = store.get_consumer(c).generation  # type: ignore[union-attr]
    store.reshape(
        ReshapeSpec(
            inventories={
                root: (groot, {"MEMORY_MB": inv("MEMORY_MB", 1024)}),
                child: (gchild, {"VCPU": inv("VCPU", 8)}),
            },
            allocations=[
                allocs(
                    c,
                    {root: {"MEMORY_MB": 128}, child: {"VCPU": 4}},
                    expected_generation=gc,
                )
            ],
        )
    )
    assert set(store.get_provider(root).inventories) == {"MEMORY_MB"}
    assert store.get_provider(child).inventories == {"VCPU": inv("VCPU", 8)}
    assert used(store, child) == 4
    assert used(store, root, "MEMORY_MB") == 128
    assert store.get_consumer(c).generation == gc + 1  # type: ignore[union-attr]
    assert generation(store, root) > groot
    assert generation(store, child) > gchild


@pytest.mark.parametrize(
    ("break_it", "error"),
    [
        pytest.param("child-generation", GenerationConflict, id="stale-provider-generation"),
        pytest.param("consumer-generation", ConsumerGenerationConflict, id="stale-consumer"),
        pytest.param("too-big", InsufficientCapacity, id="allocation-over-new-inventory"),
    ],
)
def test_failed_reshape_changes_nothing(
    store: Store, break_it: str, error: type[Exception]
) -> None:
    root, child, c = reshape_fixture(store)
    before = {uuid: store.get_provider(uuid) for uuid in (root, child)}
    consumer_before = store.get_consumer(c)
    claims_before = store.list_claims()
    gc = consumer_before.generation  # type: ignore[union-attr]
    gchild = before[child].generation
    amount = 4
    if break_it == "child-generation":
        gchild += 1
    elif break_it == "consumer-generation":
        gc += 1
    else:
        amount = 9
    with pytest.raises(error):
        store.reshape(
            ReshapeSpec(
                inventories={
                    root: (before[root].generation, {"MEMORY_MB": inv("MEMORY_MB", 1024)}),
                    child: (gchild, {"VCPU": inv("VCPU", 8)}),
                },
                allocations=[
                    allocs(
                        c,
                        {root: {"MEMORY_MB": 128}, child: {"VCPU": amount}},
                        expected_generation=gc,
                    )
                ],
            )
        )
    assert {uuid: store.get_provider(uuid) for uuid in (root, child)} == before
    assert store.get_consumer(c) == consumer_before
    assert store.list_claims() == claims_before
    assert used(store, root) == 4
