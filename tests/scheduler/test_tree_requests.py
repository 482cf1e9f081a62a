"""Native requests whose groups span a provider tree (issue 10): a group with
``span=tree`` may take each class from a different provider of one tree, as
the Placement API's unnumbered group does, through the candidate engine.
Real stores; a race is a second scheduler claiming between our query and
our claim."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from claimant.model import (
    Claim,
    ClaimStatus,
    GroupPolicy,
    InvalidInput,
    Inventory,
    NoValidHost,
    Provider,
    RequestGroup,
    RequestStatus,
    Span,
)
from claimant.model.types import AttributeConstraint
from claimant.scheduler import Scheduler
from claimant.store import ClaimSpec, Store
from claimant.store.sqlite import SQLiteStore

from .builders import host, req, scheduler, used


def gpu_host(
    store: Store, *, numa: int = 2, gpus: int = 2, vgpus: int = 1, vcpu: int = 4
) -> tuple[Provider, list[Provider], list[Provider]]:
    """A compute root with no inventory of its own, NUMA children holding
    VCPU/MEMORY_MB and GPU children holding VGPU."""
    root = host(store, inventories={})
    numas = [
        host(store, f"{root.name}:numa{i}", vcpu=vcpu, memory_mb=4096, parent=root)
        for i in range(numa)
    ]
    gs = [
        host(store, f"{root.name}:gpu{i}", inventories={"VGPU": vgpus}, parent=root)
        for i in range(gpus)
    ]
    return root, numas, gs


def vm(span: Span = Span.TREE, vcpu: int = 2, vgpu: int = 1) -> RequestGroup:
    return RequestGroup(resources={"VCPU": vcpu, "MEMORY_MB": 1024, "VGPU": vgpu}, span=span)


def split(store: Store, claims: list[Claim]) -> dict[str, dict[str, int]]:
    """Provider name -> amounts claimed there."""
    return {store.get_provider(c.provider_uuid).name: dict(c.amounts) for c in claims}


def test_one_group_without_span_finds_no_single_provider(any_store: Store) -> None:
    """The reported symptom: no one provider has VCPU and VGPU."""
    gpu_host(any_store)
    with pytest.raises(NoValidHost):
        scheduler(any_store).schedule(req(vm(Span.PROVIDER)))


def test_span_tree_group_is_placed_across_children(any_store: Store) -> None:
    _, numas, gpus = gpu_host(any_store)
    result = scheduler(any_store).schedule(req(vm()))
    (placement,) = result.placements
    amounts = split(any_store, placement.claims)
    # Each class may come from a different child (Placement's rule), never the root.
    assert all(":numa" in k or ":gpu" in k for k in amounts)
    totals: dict[str, int] = {}
    for a in amounts.values():
        for rc, n in a.items():
            totals[rc] = totals.get(rc, 0) + n
    assert totals == {"VCPU": 2, "MEMORY_MB": 1024, "VGPU": 1}
    assert {rc for k, a in amounts.items() if ":gpu" in k for rc in a} == {"VGPU"}
    uuids = [c.provider_uuid for c in placement.claims]
    assert uuids == sorted(uuids)
    assert sum(used(any_store, p, "VGPU") for p in gpus) == 1
    assert sum(used(any_store, p) for p in numas) == 2
    saved = any_store.get_request(result.request.uuid)
    assert saved.status == RequestStatus.SCHEDULED
    assert saved.groups[0].span == Span.TREE
    assert saved.claims == tuple(c.uuid for c in placement.claims)


def test_tree_requests_fill_the_tree_and_never_exceed_it(any_store: Store) -> None:
    _, numas, gpus = gpu_host(any_store, numa=2, gpus=2, vcpu=2)
    sched = scheduler(any_store)
    result = sched.schedule(req(vm(), count=2))
    assert len(result.placements) == 2
    assert [used(any_store, p, "VGPU") for p in gpus] == [1, 1]
    assert [used(any_store, p) for p in numas] == [2, 2]
    with pytest.raises(NoValidHost) as exc:
        sched.schedule(req(vm()))
    assert exc.value.code == "no_valid_host"
    assert [used(any_store, p, "VGPU") for p in gpus] == [1, 1]


@pytest.mark.parametrize(
    ("policy", "placed"),
    [
        pytest.param(GroupPolicy.NONE, True, id="none-shares-the-gpu"),
        pytest.param(GroupPolicy.ISOLATE, False, id="isolate-needs-two-gpus"),
    ],
)
def test_group_policy_between_granular_groups(
    any_store: Store, policy: GroupPolicy, placed: bool
) -> None:
    """Two one-provider groups of a VGPU each and a spanning group: the only
    GPU holds two VGPUs, so isolate (distinct providers) cannot fit."""
    gpu_host(any_store, gpus=1, vgpus=2)
    request = req(
        RequestGroup(resources={"VCPU": 1}, span=Span.TREE),
        RequestGroup(name="g1", resources={"VGPU": 1}),
        RequestGroup(name="g2", resources={"VGPU": 1}),
        group_policy=policy,
    )
    if placed:
        result = scheduler(any_store).schedule(request)
        amounts = split(any_store, result.placements[0].claims)
        assert next(v for k, v in amounts.items() if ":gpu" in k) == {"VGPU": 2}
    else:
        with pytest.raises(NoValidHost):
            scheduler(any_store).schedule(request)


def test_isolate_places_granular_groups_on_distinct_gpus(any_store: Store) -> None:
    _, _, gpus = gpu_host(any_store, gpus=2, vgpus=2)
    request = req(
        RequestGroup(resources={"VCPU": 1}, span=Span.TREE),
        RequestGroup(name="g1", resources={"VGPU": 1}),
        RequestGroup(name="g2", resources={"VGPU": 1}),
        group_policy=GroupPolicy.ISOLATE,
    )
    scheduler(any_store).schedule(request)
    assert [used(any_store, p, "VGPU") for p in gpus] == [1, 1]


def test_same_subtree_keeps_cpu_under_the_numa_node_of_its_gpu(any_store: Store) -> None:
    """root -> numa0 (no GPU), numa1 -> gpu1: with same_subtree both
    instances' VCPU must come from numa1, the NUMA node above the GPU."""
    root = host(any_store, inventories={})
    numa0 = host(any_store, "numa0", vcpu=4, parent=root)
    numa1 = host(any_store, "numa1", vcpu=4, parent=root)
    gpu1 = host(any_store, "gpu1", inventories={"VGPU": 2}, parent=numa1)
    request = req(
        RequestGroup(name="cpu", resources={"VCPU": 2}),
        RequestGroup(name="gpu", resources={"VGPU": 1}),
        same_subtree=(frozenset({"cpu", "gpu"}),),
        count=2,
    )
    result = scheduler(any_store, host_subset_size=10).schedule(request)
    assert len(result.placements) == 2
    assert (used(any_store, numa0), used(any_store, numa1)) == (0, 4)
    assert used(any_store, gpu1, "VGPU") == 2
    saved = any_store.get_request(request.uuid)
    assert saved.same_subtree == (frozenset({"cpu", "gpu"}),)


@pytest.mark.parametrize(
    "same_subtree",
    [
        pytest.param((frozenset({"cpu", "nope"}),), id="unknown-group"),
        pytest.param((frozenset({""}),), id="unnamed-group"),
        pytest.param((frozenset(),), id="empty"),
    ],
)
def test_bad_same_subtree(same_subtree: tuple[frozenset[str], ...]) -> None:
    request = req(
        RequestGroup(resources={"VCPU": 1}),
        RequestGroup(name="cpu", resources={"VCPU": 1}),
        same_subtree=same_subtree,
    )
    with pytest.raises(InvalidInput, match="same_subtree"):
        request.validate()


def test_attributes_are_refused_in_a_tree_request() -> None:
    request = req(
        vm(),
        RequestGroup(
            name="disk",
            resources={"DISK_GB": 1},
            attributes=(AttributeConstraint("ram_gb", ">=", 1),),
        ),
    )
    with pytest.raises(InvalidInput, match="span=tree"):
        request.validate()


# -- races ------------------------------------------------------------------------
NUMA_UUID = "10000000-0000-4000-8000-000000000001"
GPU_UUID = "20000000-0000-4000-8000-000000000002"


class RivalStore(SQLiteStore):
    """Before our first claim on a provider ``race_on`` accepts, a second
    scheduler (its own store object on the same file) places a request in
    that provider's tree that takes its last VGPU."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.rival: Scheduler | None = None
        self.race_on: Callable[[str], bool] = lambda uuid: True
        self.rival_claims: list[Claim] = []
        self.claims_seen: list[str] = []

    def claim(self, spec: ClaimSpec) -> Claim:
        self.claims_seen.append(spec.provider_uuid)
        if self.rival is not None and self.race_on(spec.provider_uuid):
            rival, self.rival = self.rival, None
            tree = self.get_provider(spec.provider_uuid).root_uuid
            result = rival.schedule(req(vm(vcpu=1).evolve(in_tree=tree)))
            self.rival_claims.extend(result.placements[0].claims)
        return super().claim(spec)


def numa_and_gpu(store: Store) -> None:
    """A tree of fixed uuids: its NUMA claim (lower uuid) is written first, so
    losing its GPU must give the NUMA claim back."""
    root = host(store, inventories={})
    for uuid, name, inv in (
        (NUMA_UUID, "numa", {"VCPU": 4, "MEMORY_MB": 4096}),
        (GPU_UUID, "gpu", {"VGPU": 1}),
    ):
        store.create_provider(
            Provider(
                uuid=uuid,
                name=name,
                parent_uuid=root.uuid,
                inventories={rc: Inventory(rc, n) for rc, n in inv.items()},
            )
        )


def test_lost_race_on_one_child_releases_the_others(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    store = RivalStore(path)
    store.migrate()
    numa_and_gpu(store)
    other = SQLiteStore(path)
    store.rival = scheduler(other, seed=3)
    store.race_on = lambda uuid: uuid == GPU_UUID
    request = req(vm())
    with pytest.raises(NoValidHost):
        scheduler(store).schedule(request)
    assert store.claims_seen[:2] == [NUMA_UUID, GPU_UUID]
    # Only the rival's claims remain: its VCPU on the NUMA node, the VGPU.
    assert used(store, GPU_UUID, "VGPU") == 1
    assert used(store, NUMA_UUID) == 1
    assert {c.provider_uuid for c in store.rival_claims} == {NUMA_UUID, GPU_UUID}
    saved = store.get_request(request.uuid)
    assert saved.status == RequestStatus.FAILED
    assert saved.claims == ()
    other.close()
    store.close()


def test_lost_race_moves_on_to_another_tree(tmp_path: Path) -> None:
    """The rival takes the last VGPU of whichever tree we claim first; we
    give back what we took there and are placed on the other tree."""
    path = str(tmp_path / "race2.db")
    store = RivalStore(path)
    store.migrate()
    numa_and_gpu(store)
    _, _, gpus = gpu_host(store, numa=1, gpus=1)
    other = SQLiteStore(path)
    store.rival = scheduler(other, seed=3)
    result = scheduler(store).schedule(req(vm()))
    assert result.stats.conflicts == 1
    ours = {c.provider_uuid for c in result.placements[0].claims}
    theirs = {c.provider_uuid for c in store.rival_claims}
    assert not ours & theirs
    assert used(store, GPU_UUID, "VGPU") == 1
    assert used(store, gpus[0], "VGPU") == 1
    # Nothing of ours is left in the rival's tree.
    assert {store.get_provider(u).root_uuid for u in ours} != {
        store.get_provider(u).root_uuid for u in theirs
    }
    mine = store.list_claims(consumer_uuid=result.placements[0].consumer_uuid)
    assert {c.provider_uuid for c in mine} == ours
    other.close()
    store.close()


def test_schedulers_in_threads_never_overcommit_a_tree(any_store: Store) -> None:
    """Six schedulers at once want one VGPU each; the tree has two."""
    _, numas, gpus = gpu_host(any_store, numa=2, gpus=2, vcpu=8)
    ok: list[list[Claim]] = []
    failed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        sched = scheduler(any_store, seed=seed, max_claim_retries=20)
        try:
            result = sched.schedule(req(vm()))
        except NoValidHost as exc:
            with lock:
                failed.append(exc.message)
            return
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            ok.append(result.placements[0].claims)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (len(ok), len(failed)) == (2, 4)
    assert [used(any_store, p, "VGPU") for p in gpus] == [1, 1]
    assert sum(used(any_store, p) for p in numas) == 4
    held = {c.uuid for c in any_store.list_claims(status=ClaimStatus.CLAIMED)}
    assert held == {c.uuid for claims in ok for c in claims}


def test_excluded_provider_is_not_used(any_store: Store) -> None:
    """The conductor's reschedule excludes a provider an instance failed on."""
    _, _, gpus = gpu_host(any_store, gpus=2)
    sched = scheduler(any_store)
    result = sched.place(req(vm()), exclude={gpus[0].uuid})
    assert gpus[1].uuid in result.placements[0].providers
    assert gpus[0].uuid not in result.placements[0].providers
    with pytest.raises(NoValidHost):  # gpu1 is full now, gpu0 still excluded
        sched.place(req(vm()), exclude={gpus[0].uuid})
