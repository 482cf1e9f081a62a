"""The candidate engine (issue 10) on a real SQLite store: Placement's
wide-tree shapes answer right and complete, dead ends cost few search steps
(``stats.nodes`` is deterministic: no timing here), and on small random
trees the engine finds exactly what trying every combination finds."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable

import pytest

from claimant.model import Inventory, Provider, new_uuid
from claimant.scheduler.candidates import (
    CandidateRequest,
    CandidateResult,
    GroupSpec,
    find_allocation_candidates,
)
from claimant.store import Store

ROOT_GROUP = GroupSpec(resources={"DISK_GB": 20, "MEMORY_MB": 2048, "VCPU": 2})


def wide_trees(store: Store, computes: int, pfs: int, vfs: int) -> dict[str, list[str]]:
    """Placement's TestWideTreeAllocationCandidateExplosion trees: root uuid -> PF uuids."""
    if "CUSTOM_VF" not in {rc.name for rc in store.list_resource_classes()}:
        from claimant.model import ResourceClass

        store.create_resource_class(ResourceClass("CUSTOM_VF"))
    out: dict[str, list[str]] = {}
    for i in range(computes):
        root = store.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"compute{i}-{new_uuid()[:8]}",
                inventories={
                    "VCPU": Inventory("VCPU", 8),
                    "MEMORY_MB": Inventory("MEMORY_MB", 4096),
                    "DISK_GB": Inventory("DISK_GB", 500),
                },
            )
        )
        out[root.uuid] = [
            store.create_provider(
                Provider(
                    uuid=new_uuid(),
                    name=f"{root.name}:PF{j}",
                    parent_uuid=root.uuid,
                    inventories={"CUSTOM_VF": Inventory("CUSTOM_VF", vfs)},
                )
            ).uuid
            for j in range(pfs)
        ]
    return out


def vf_request(groups: int, limit: int | None, policy: str = "none") -> CandidateRequest:
    return CandidateRequest(
        groups=(
            ROOT_GROUP,
            *(
                GroupSpec(suffix=str(g), resources={"CUSTOM_VF": 1}, granular=True)
                for g in range(groups)
            ),
        ),
        group_policy=policy,
        limit=limit,
    )


def check_valid(store: Store, result: CandidateResult, groups: int) -> None:
    """Every candidate fits, uses one tree, and no two are equal."""
    keys = set()
    usages = {p.uuid: store.get_usage(p.uuid) for p in store.list_providers()}
    for a in result.allocation_requests:
        assert set(a.mappings) == {"", *map(str, range(groups))}
        for u, amounts in a.allocations.items():
            pu = usages[u]
            for rc, n in amounts.items():
                assert pu.usages[rc].used + n <= pu.usages[rc].capacity
        roots = {usages[u].provider.root_uuid for u in a.allocations}
        assert roots == {a.anchor}
        key = (
            frozenset((u, tuple(sorted(r.items()))) for u, r in a.allocations.items()),
            frozenset(a.mappings.items()),
        )
        assert key not in keys
        keys.add(key)


# name, computes, pfs, vfs per pf, groups, limit, expected candidates
SHAPES = [
    ("8x8", 1, 8, 1, 8, 1000, 1000),
    ("21x8", 1, 21, 1, 8, 1000, 1000),
    ("21x21", 1, 21, 1, 21, 1000, 1000),
    ("21x8 two computes", 2, 21, 1, 8, 1000, 1000),
    ("32x32 two computes", 2, 32, 1, 32, 1000, 1000),
    ("64x64 two computes", 2, 64, 1, 64, 10, 10),
    ("2 computes x 8 PFs x 8 VFs, 4 groups", 2, 8, 8, 4, 1000, 1000),
    ("2 computes x 8 PFs x 8 VFs, 2 groups, all", 2, 8, 8, 2, 1000, 128),
]


@pytest.mark.parametrize(
    ("name", "computes", "pfs", "vfs", "groups", "limit", "expected"),
    SHAPES,
    ids=[s[0] for s in SHAPES],
)
def test_wide_tree_shapes(
    store: Store,
    name: str,
    computes: int,
    pfs: int,
    vfs: int,
    groups: int,
    limit: int,
    expected: int,
) -> None:
    """Issue 10: 8 groups over 8 single-VF children took > 60 s (every
    combination of groups was built, then filtered)."""
    trees = wide_trees(store, computes, pfs, vfs)
    result = find_allocation_candidates(store, vf_request(groups, limit))
    assert len(result.allocation_requests) == expected
    check_valid(store, result, groups)
    # A limit leaves candidates on every compute (round-robin over trees).
    assert {a.anchor for a in result.allocation_requests} == set(trees)
    # Every candidate is found in a bounded number of steps.
    assert result.stats.nodes <= 40 * expected * (groups + 1)
    # Summaries: every provider of the trees used.
    assert {pu.provider.uuid for pu in result.summaries} == set(trees) | {
        u for pfs_ in trees.values() for u in pfs_
    }


def test_every_candidate_without_limit(store: Store) -> None:
    """5 groups over 5 single-VF children: exactly 5! candidates, each an
    assignment of groups to distinct children."""
    wide_trees(store, 1, 5, 1)
    result = find_allocation_candidates(store, vf_request(5, None))
    assert len(result.allocation_requests) == math.factorial(5)
    check_valid(store, result, 5)


@pytest.mark.parametrize("n", [8, 64])
def test_one_device_short_is_found_quickly(store: Store, n: int) -> None:
    """Placement's TestAlmostFittingRoot: n groups, n-1 devices. No candidate,
    and the dead ends are not walked factorially."""
    wide_trees(store, 1, n - 1, 1)
    result = find_allocation_candidates(store, vf_request(n, 10000))
    assert result.allocation_requests == []
    assert result.stats.nodes <= 10 * n * n


def test_one_device_short_behind_a_trait(store: Store) -> None:
    """The overall-capacity pre-check cannot see it (the devices are there,
    one of them lacks the trait); the symmetry rule still keeps it small."""
    store.create_trait("CUSTOM_FAST")
    trees = wide_trees(store, 1, 8, 1)
    [pfs] = trees.values()
    for u in pfs[:7]:
        store.set_traits(u, None, ["CUSTOM_FAST"])
    groups = tuple(
        GroupSpec(
            suffix=str(g),
            resources={"CUSTOM_VF": 1},
            required=(frozenset({"CUSTOM_FAST"}),),
            granular=True,
        )
        for g in range(8)
    )
    result = find_allocation_candidates(
        store, CandidateRequest(groups=(ROOT_GROUP, *groups), group_policy="none", limit=1000)
    )
    assert result.allocation_requests == []
    assert result.stats.nodes <= 1000


def test_isolate_and_same_subtree(store: Store) -> None:
    """Two NUMA nodes with a PF each under one compute; same_subtree keeps a
    VF group with the VCPU group's NUMA node."""
    from claimant.model import ResourceClass

    store.create_resource_class(ResourceClass("CUSTOM_VF"))
    root = store.create_provider(Provider(uuid=new_uuid(), name="cn"))
    numa = [
        store.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"numa{i}",
                parent_uuid=root.uuid,
                inventories={"VCPU": Inventory("VCPU", 4)},
            )
        )
        for i in range(2)
    ]
    pfs = [
        store.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"pf{i}",
                parent_uuid=numa[i].uuid,
                inventories={"CUSTOM_VF": Inventory("CUSTOM_VF", 2)},
            )
        )
        for i in range(2)
    ]
    req = CandidateRequest(
        groups=(
            GroupSpec(suffix="cpu", resources={"VCPU": 2}, granular=True),
            GroupSpec(suffix="nic", resources={"CUSTOM_VF": 1}, granular=True),
        ),
        group_policy="isolate",
        same_subtrees=(frozenset({"cpu", "nic"}),),
    )
    got = {
        (a.mappings["cpu"], a.mappings["nic"])
        for a in find_allocation_candidates(store, req).allocation_requests
    }
    assert got == {((numa[i].uuid,), (pfs[i].uuid,)) for i in range(2)}


# -- the engine against trying every combination -------------------------------
def brute_force(store: Store, req: CandidateRequest) -> set[tuple[object, ...]]:
    """Every granular group on any one provider, checked whole: the obvious,
    exponential algorithm, on trees small enough for it."""
    providers = [pu for pu in _all_usages(store)]
    out = set()
    for combo in itertools.product(providers, repeat=len(req.groups)):
        if len({pu.provider.root_uuid for pu in combo}) != 1:
            continue
        if req.group_policy == "isolate" and len({pu.provider.uuid for pu in combo}) != len(combo):
            continue
        amounts: dict[tuple[str, str], int] = {}
        ok = True
        for g, pu in zip(req.groups, combo, strict=True):
            if not g.traits_ok(pu.provider.traits):
                ok = False
            for rc, n in g.resources.items():
                inv = pu.provider.inventories.get(rc)
                if inv is None or not (inv.min_unit <= n <= inv.max_unit):
                    ok = False
                amounts[(pu.provider.uuid, rc)] = amounts.get((pu.provider.uuid, rc), 0) + n
        if not ok:
            continue
        by_uuid = {pu.provider.uuid: pu for pu in combo}
        if any(
            by_uuid[u].usages[rc].used + n > by_uuid[u].usages[rc].capacity
            or n > by_uuid[u].provider.inventories[rc].max_unit
            for (u, rc), n in amounts.items()
        ):
            continue
        out.add(
            (
                frozenset(amounts.items()),
                frozenset(
                    (g.suffix, pu.provider.uuid) for g, pu in zip(req.groups, combo, strict=True)
                ),
            )
        )
    return out


def _all_usages(store: Store) -> Iterable:  # type: ignore[type-arg]
    return [store.get_usage(p.uuid) for p in store.list_providers()]


def engine_keys(result: CandidateResult) -> set[tuple[object, ...]]:
    return {
        (
            frozenset(((u, rc), n) for u, r in a.allocations.items() for rc, n in r.items()),
            frozenset((s, us[0]) for s, us in a.mappings.items()),
        )
        for a in result.allocation_requests
    }


@pytest.mark.parametrize("seed", range(12))
def test_engine_matches_brute_force(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    from claimant.model import ResourceClass

    store.create_resource_class(ResourceClass("CUSTOM_VF"))
    store.create_trait("CUSTOM_A")
    for t in range(2):
        root = store.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"r{t}",
                inventories={"VCPU": Inventory("VCPU", rng.randint(1, 4))},
            )
        )
        for c in range(rng.randint(1, 4)):
            child = store.create_provider(
                Provider(
                    uuid=new_uuid(),
                    name=f"r{t}c{c}",
                    parent_uuid=root.uuid,
                    traits=frozenset({"CUSTOM_A"}) if rng.random() < 0.5 else frozenset(),
                    inventories={
                        "CUSTOM_VF": Inventory("CUSTOM_VF", rng.randint(1, 3), max_unit=2),
                        **({"VCPU": Inventory("VCPU", 2)} if rng.random() < 0.3 else {}),
                    },
                )
            )
            if rng.random() < 0.3:
                from claimant.store import ClaimSpec

                store.claim(ClaimSpec(child.uuid, child.generation, {"CUSTOM_VF": 1}, new_uuid()))
    groups = tuple(
        GroupSpec(
            suffix=str(g),
            resources={rng.choice(["CUSTOM_VF", "CUSTOM_VF", "VCPU"]): rng.randint(1, 2)},
            required=(frozenset({"CUSTOM_A"}),) if rng.random() < 0.3 else (),
            granular=True,
        )
        for g in range(rng.randint(2, 4))
    )
    for policy in ("none", "isolate"):
        req = CandidateRequest(groups=groups, group_policy=policy)
        assert engine_keys(find_allocation_candidates(store, req)) == brute_force(store, req)


def test_search_stops_at_the_deadline(store: Store) -> None:
    """The search checks claimant.model.deadline: a cancelled request stops it."""
    from claimant.model import deadline
    from claimant.model.errors import DeadlineExceeded

    wide_trees(store, 1, 8, 1)
    with deadline.deadline(60, "candidates") as d:
        assert d is not None
        d.cancel()
        with pytest.raises(DeadlineExceeded):
            find_allocation_candidates(store, vf_request(8, 1000))
