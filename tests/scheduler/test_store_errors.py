"""A store error mid-request gives back every claim the request took, and the
request's record says exactly what it still holds (issue 8, scenario 3).

The outage is injected with ``FaultyStore`` around a real store of each
backend: the claims that did go through are real ledger entries."""

from __future__ import annotations

import pytest

from claimant.model import NoValidHost, RequestGroup, RequestStatus, StoreUnavailable
from claimant.store import Store
from tests.faults import FaultyStore

from .builders import grp, host, req, scheduler, used


def _compute_and_pool(store: Store) -> tuple[str, str]:
    a = host(store, "compute", vcpu=8, aggregates=("r1",))
    p = host(store, "pool", inventories={"DISK_GB": 100}, aggregates=("r1",))
    return a.uuid, p.uuid


def _two_groups() -> tuple[RequestGroup, RequestGroup]:
    disk = RequestGroup(name="disk", resources={"DISK_GB": 10}, member_of=(frozenset({"r1"}),))
    return grp("cpu", VCPU=2), disk


def test_outage_on_the_second_group_releases_the_first_claim(any_store: Store) -> None:
    a, p = _compute_and_pool(any_store)
    faulty = FaultyStore(any_store, claim={2})
    request = req(*_two_groups())
    with pytest.raises(StoreUnavailable):
        scheduler(faulty).schedule(request)  # type: ignore[arg-type]
    assert faulty.calls["claim"] == 2
    assert any_store.list_claims(request_uuid=request.uuid) == []
    assert used(any_store, a) == 0
    assert used(any_store, p, "DISK_GB") == 0
    saved = any_store.get_request(request.uuid)
    assert saved.status == RequestStatus.FAILED
    assert saved.claims == ()
    assert saved.history[-1]["event"] == "error"


def test_outage_on_a_later_instance_releases_every_earlier_claim(any_store: Store) -> None:
    _compute_and_pool(any_store)
    faulty = FaultyStore(any_store, claim={4})
    request = req(*_two_groups(), count=3)
    with pytest.raises(StoreUnavailable):
        scheduler(faulty).schedule(request)  # type: ignore[arg-type]
    assert any_store.list_claims(request_uuid=request.uuid) == []
    assert any_store.get_request(request.uuid).claims == ()


def test_a_claim_that_cannot_be_released_stays_on_the_record(any_store: Store) -> None:
    # The store is down for the release too: the claim is held until its TTL,
    # and the failed request's record must say so rather than claim nothing.
    _compute_and_pool(any_store)
    faulty = FaultyStore(any_store, claim={2}, release_claim={1})
    request = req(*_two_groups())
    with pytest.raises(StoreUnavailable):
        scheduler(faulty).schedule(request)  # type: ignore[arg-type]
    held = any_store.list_claims(request_uuid=request.uuid)
    assert len(held) == 1
    saved = any_store.get_request(request.uuid)
    assert saved.status == RequestStatus.FAILED
    assert saved.claims == (held[0].uuid,)
    assert held[0].expires_at is not None


def test_an_error_while_querying_releases_earlier_instances(any_store: Store) -> None:
    host(any_store, "a", vcpu=8)
    host(any_store, "b", vcpu=8)
    # Two groups confined to one host: the second query of instance 1 fails.
    faulty = FaultyStore(any_store, find_candidates={3})
    request = req(grp("one", VCPU=1), grp("two", VCPU=1), count=2)
    with pytest.raises(StoreUnavailable):
        scheduler(faulty).schedule(request)  # type: ignore[arg-type]
    assert any_store.list_claims(request_uuid=request.uuid) == []
    assert any_store.get_request(request.uuid).claims == ()


def test_place_is_pure_and_honours_exclude(any_store: Store) -> None:
    # place() writes claims and nothing else: no request record appears.
    a = host(any_store, "a", vcpu=8, memory_mb=16384)
    b = host(any_store, "b", vcpu=8)
    request = req(grp("cpu", VCPU=1))
    result = scheduler(any_store, host_subset_size=1).place(request, exclude={a.uuid})
    assert [p.providers for p in result.placements] == [[b.uuid]]
    assert any_store.list_requests() == []
    with pytest.raises(NoValidHost):
        scheduler(any_store).place(req(grp("cpu", VCPU=1)), exclude={a.uuid, b.uuid})
    assert [c.provider_uuid for c in any_store.list_claims()] == [b.uuid]
