"""The Placement-compatibility methods: the same checks, Placement's generations."""

from __future__ import annotations

import pytest

from claimant.model import AlreadyExists, ClaimStatus, InvalidInput, NotFound, new_uuid
from claimant.store import Store

from .builders import allocs, generation, make_provider, take, used


def test_update_quietly_renames_without_a_bump(store: Store) -> None:
    make_provider(store, name="taken")
    p = make_provider(store, name="old")
    q = store.update_provider_quietly(p.uuid, name="new")
    assert (q.name, q.generation) == ("new", 0)
    assert (store.get_provider(p.uuid).name, generation(store, p.uuid)) == ("new", 0)
    with pytest.raises(AlreadyExists):
        store.update_provider_quietly(p.uuid, name="taken")
    with pytest.raises(NotFound):
        store.update_provider_quietly(new_uuid(), name="x")
    assert store.get_provider(p.uuid).name == "new"


def test_update_quietly_reparents_with_the_checks(store: Store) -> None:
    a = make_provider(store)
    b = make_provider(store)
    c = make_provider(store, parent=a)
    moved = store.update_provider_quietly(c.uuid, parent_uuid=b.uuid)
    assert (moved.parent_uuid, moved.root_uuid, moved.generation) == (b.uuid, b.uuid, 0)
    with pytest.raises(InvalidInput):
        store.update_provider_quietly(b.uuid, parent_uuid=c.uuid)
    with pytest.raises(NotFound):
        store.update_provider_quietly(b.uuid, parent_uuid=new_uuid())
    got = store.get_provider(b.uuid)
    assert (got.parent_uuid, got.root_uuid, got.generation) == (None, b.uuid, 0)


def test_remove_consumer_allocations(store: Store) -> None:
    p, q = make_provider(store), make_provider(store)
    consumer, other = new_uuid(), new_uuid()
    store.write_allocations(
        [
            allocs(consumer, {p.uuid: {"VCPU": 2}, q.uuid: {"VCPU": 1}}),
            allocs(other, {p.uuid: {"VCPU": 3}}),
        ]
    )
    live_claim = take(store, q, {"VCPU": 1}, consumer=consumer)
    gp, gq = generation(store, p.uuid), generation(store, q.uuid)

    assert store.remove_consumer_allocations(consumer) is True
    assert store.get_consumer(consumer) is None
    assert (used(store, p.uuid), used(store, q.uuid)) == (3, 1)
    assert (generation(store, p.uuid), generation(store, q.uuid)) == (gp, gq)
    # only confirmed allocations go; a live claim of the same consumer stays
    assert [c.uuid for c in store.list_claims(consumer_uuid=consumer)] == [live_claim.uuid]
    assert store.list_claims(consumer_uuid=consumer, status=ClaimStatus.CONFIRMED) == []
    assert store.get_consumer(other) is not None

    assert store.remove_consumer_allocations(consumer) is False
    assert store.remove_consumer_allocations(new_uuid()) is False
