"""Requests are first-class records: what goes in comes back, through the codec."""

from __future__ import annotations

import threading

import pytest

from claimant.model import (
    AlreadyExists,
    AttributeConstraint,
    GroupPolicy,
    GroupPolicyKind,
    Hints,
    NotFound,
    Request,
    RequestGroup,
    RequestStatus,
    Strategy,
    new_uuid,
)
from claimant.model.codec import request_to_dict
from claimant.store import Store


def full_request() -> Request:
    agg = new_uuid()
    return Request(
        uuid=new_uuid(),
        groups=(
            RequestGroup(
                name="",
                resources={"VCPU": 2, "MEMORY_MB": 2048},
                required_traits=frozenset({"HW_CPU_X86_AVX2"}),
                forbidden_traits=frozenset({"CUSTOM_SLOW"}),
                any_traits=(frozenset({"CUSTOM_A", "CUSTOM_B"}),),
                attributes=(
                    AttributeConstraint("cpu_arch", "in", ("x86_64", "aarch64")),
                    AttributeConstraint("numa_nodes", ">=", 2),
                ),
                member_of=(frozenset({agg}),),
                forbidden_aggregates=frozenset({new_uuid()}),
                provider_type="compute",
            ),
            RequestGroup(name="gpu", resources={"VGPU": 1}, in_tree=new_uuid()),
        ),
        project_id="proj",
        user_id="usr",
        group_policy=GroupPolicy.ISOLATE,
        hints=Hints(
            group="web",
            group_policy=GroupPolicyKind.ANTI_AFFINITY,
            same_host=(new_uuid(),),
            different_host=(new_uuid(), new_uuid()),
            strategy=Strategy.PACK,
        ),
        count=2,
        all_or_nothing=False,
        consumers=(new_uuid(), new_uuid()),
        claims=(new_uuid(),),
        history=({"event": "created", "at": 1.5}, {"event": "scheduled", "at": 2.5}),
        created_at=1.5,
        updated_at=2.5,
    )


def test_round_trip(store: Store) -> None:
    request = full_request()
    saved = store.save_request(request)
    got = store.get_request(request.uuid)
    assert request_to_dict(got) == request_to_dict(saved)
    # the store may stamp times; everything else is what was given
    ignore = {"created_at": 0.0, "updated_at": 0.0}
    assert request_to_dict(got) | ignore == request_to_dict(request) | ignore


def test_minimal_request(store: Store) -> None:
    request = Request(uuid=new_uuid(), groups=(RequestGroup(resources={"VCPU": 1}),))
    store.save_request(request)
    got = store.get_request(request.uuid)
    assert got.groups == request.groups
    assert got.hints == Hints()
    assert got.status is RequestStatus.PENDING


def test_save_replaces(store: Store) -> None:
    request = full_request()
    store.save_request(request)
    store.save_request(request.evolve(status=RequestStatus.SCHEDULED, claims=("a", "b")))
    got = store.get_request(request.uuid)
    assert (got.status, got.claims) == (RequestStatus.SCHEDULED, ("a", "b"))
    assert [r.uuid for r in store.list_requests()] == [request.uuid]


def test_unknown_request(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_request(new_uuid())


def test_list_by_status_and_limit(store: Store) -> None:
    pending = [store.save_request(full_request()) for _ in range(3)]
    active = store.save_request(full_request().evolve(status=RequestStatus.ACTIVE))
    assert {r.uuid for r in store.list_requests()} == {r.uuid for r in [*pending, active]}
    assert {r.uuid for r in store.list_requests(status="pending")} == {r.uuid for r in pending}
    assert [r.uuid for r in store.list_requests(status="active")] == [active.uuid]
    assert store.list_requests(status="failed") == []
    limited = store.list_requests(limit=2)
    assert len(limited) == 2
    assert {r.uuid for r in limited} <= {r.uuid for r in [*pending, active]}


def test_create_is_insert_if_absent(store: Store) -> None:
    request = full_request()
    created = store.create_request(request)
    assert request_to_dict(store.get_request(request.uuid)) == request_to_dict(created)
    with pytest.raises(AlreadyExists):
        store.create_request(request.evolve(status=RequestStatus.FAILED, count=1))
    # The first record is untouched; save_request still replaces it.
    assert store.get_request(request.uuid).status is RequestStatus.PENDING
    store.save_request(created.evolve(status=RequestStatus.ACTIVE))
    assert store.get_request(request.uuid).status is RequestStatus.ACTIVE


def test_concurrent_creates_of_one_uuid_have_one_winner(store: Store) -> None:
    request = full_request()
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        try:
            store.create_request(request.evolve(user_id=f"user-{i}"))
            what = f"created user-{i}"
        except AlreadyExists:
            what = "already exists"
        with lock:
            outcomes.append(what)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if o.startswith("created")]
    assert len(won) == 1, outcomes
    assert outcomes.count("already exists") == 3
    assert f"created {store.get_request(request.uuid).user_id}" == won[0]


def test_list_by_project(store: Store) -> None:
    # Issue 9: the API listed a non-admin's requests by filtering the newest
    # 5,000 of every project; the store filters by project itself now.
    mine = [store.save_request(full_request().evolve(project_id="projA")) for _ in range(2)]
    theirs = [store.save_request(full_request().evolve(project_id="projB")) for _ in range(3)]
    listed = store.list_requests(project_id="projA")
    assert {r.uuid for r in listed} == {r.uuid for r in mine}
    assert {r.project_id for r in store.list_requests(project_id="projB")} == {"projB"}
    assert len(store.list_requests(project_id="projB", limit=2)) == 2
    assert store.list_requests(project_id="projC") == []
    active = store.save_request(theirs[0].evolve(status=RequestStatus.ACTIVE))
    assert [r.uuid for r in store.list_requests(status="active", project_id="projB")] == [
        active.uuid
    ]
    assert store.list_requests(status="active", project_id="projA") == []
