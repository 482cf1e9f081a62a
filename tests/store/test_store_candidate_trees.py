"""candidate_trees (issue 10): the trees that may host a request spread over
a tree and sharing providers, whole, a page at a time, and no others."""

from __future__ import annotations

import pytest

from claimant.model import ResourceClass
from claimant.scheduler.candidates import CandidateRequest, GroupSpec, find_allocation_candidates
from claimant.store import Store, TreeQuery

from .builders import FakeClock, inv, make_provider, take

SHARES = "MISC_SHARES_VIA_AGGREGATE"
AGG = "5e1b3b8a-4c42-4d8e-9d3c-9a3a4b1f0001"


def roots_of(store: Store, needs: dict[str, int], **kw: object) -> list[str]:
    return store.candidate_trees(TreeQuery(needs, **kw)).roots  # type: ignore[arg-type]


def test_whole_trees_that_have_every_class(store: Store) -> None:
    store.create_resource_class(ResourceClass("CUSTOM_VF"))
    cn = make_provider(store, vcpu=8)
    numa = make_provider(store, vcpu=None, parent=cn)  # no inventory: still part of the tree
    pf = make_provider(
        store, vcpu=None, inventories={"CUSTOM_VF": inv("CUSTOM_VF", 4)}, parent=numa
    )
    other = make_provider(store, vcpu=8)  # no VF anywhere in its tree
    page = store.candidate_trees(TreeQuery({"VCPU": 2, "CUSTOM_VF": 1}))
    assert page.roots == [cn.uuid]
    assert page.after is None
    assert {pu.provider.uuid for pu in page.providers} == {cn.uuid, numa.uuid, pf.uuid}
    by_uuid = {pu.provider.uuid: pu for pu in page.providers}
    assert by_uuid[pf.uuid].provider.parent_uuid == numa.uuid
    assert by_uuid[pf.uuid].provider.root_uuid == cn.uuid
    assert by_uuid[pf.uuid].usages["CUSTOM_VF"].capacity == 4
    assert other.uuid in roots_of(store, {"VCPU": 2})


def test_room_counts_claims_until_they_expire(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    take(store, p, {"VCPU": 3}, ttl=30)
    assert roots_of(store, {"VCPU": 2}) == []
    page = store.candidate_trees(TreeQuery({"VCPU": 1}))
    assert page.roots == [p.uuid]
    assert page.providers[0].usages["VCPU"].used == 3
    clock.advance(31)
    assert roots_of(store, {"VCPU": 2}) == [p.uuid]


def test_pages_in_root_order(store: Store) -> None:
    made = sorted(make_provider(store, vcpu=8).uuid for _ in range(5))
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = store.candidate_trees(TreeQuery({"VCPU": 1}, max_roots=2, after=after))
        pages += 1
        assert len(page.roots) <= 2
        seen += page.roots
        if page.after is None:
            break
        assert page.after == page.roots[-1]
        after = page.after
    assert seen == made
    assert pages == 3


def test_sharing_providers_come_with_the_trees_they_serve(store: Store) -> None:
    ss = make_provider(store, vcpu=None, disk_gb=1000, traits=(SHARES,), aggregates=(AGG,))
    cn = make_provider(store, vcpu=8, aggregates=(AGG,))
    page = store.candidate_trees(TreeQuery({"VCPU": 1, "DISK_GB": 100}))
    # cn gets its disk from ss; a backend may add trees (never drop one).
    assert cn.uuid in page.roots
    assert {cn.uuid, ss.uuid} <= {pu.provider.uuid for pu in page.providers}
    # Without room on the sharing provider, nothing serves DISK_GB.
    assert cn.uuid not in roots_of(store, {"VCPU": 1, "DISK_GB": 2000})


def test_no_needs_no_trees(store: Store) -> None:
    make_provider(store, vcpu=8)
    page = store.candidate_trees(TreeQuery({}))
    assert (page.roots, page.providers, page.after) == ([], [], None)


def test_has_nested_providers(store: Store) -> None:
    root = make_provider(store, vcpu=8)
    assert not store.has_nested_providers()
    child = make_provider(store, vcpu=2, parent=root)
    assert store.has_nested_providers()
    store.delete_provider(child.uuid)
    assert not store.has_nested_providers()


def test_has_sharing_providers(store: Store) -> None:
    plain = make_provider(store, vcpu=8)
    assert not store.has_sharing_providers()
    ss = make_provider(store, vcpu=None, disk_gb=1000, traits=(SHARES,), aggregates=(AGG,))
    assert store.has_sharing_providers()
    store.delete_provider(ss.uuid)
    assert not store.has_sharing_providers()
    moved = store.set_traits(plain.uuid, plain.generation, [SHARES])
    assert store.has_sharing_providers()
    store.set_traits(plain.uuid, moved.generation, [])
    assert not store.has_sharing_providers()


def test_flat_candidates_never_read_every_provider(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: Placement's flat-cloud shortcut learned whether sharing
    providers exist by listing every provider (127 ms per request with
    1,000 providers on Cassandra)."""
    made = {make_provider(store, vcpu=8).uuid for _ in range(3)}

    def every_provider(*args: object, **kwargs: object) -> None:
        raise AssertionError("the candidate engine listed every provider")

    monkeypatch.setattr(store, "list_providers", every_provider)
    req = CandidateRequest(groups=(GroupSpec(resources={"VCPU": 2}),), limit=10)
    found = find_allocation_candidates(store, req)
    assert {a.anchor for a in found.allocation_requests} == made


def test_flat_cloud(store: Store) -> None:
    root = make_provider(store, vcpu=8)
    assert store.flat_cloud()
    child = make_provider(store, vcpu=2, parent=root)
    assert not store.flat_cloud()
    store.delete_provider(child.uuid)
    assert store.flat_cloud()
    ss = make_provider(store, vcpu=None, disk_gb=1000, traits=(SHARES,), aggregates=(AGG,))
    assert not store.flat_cloud()
    store.delete_provider(ss.uuid)
    assert store.flat_cloud()
