"""``Store.claim_and_record``: a placement's last claim and its request's
only record, both or neither (issue 10: on SQLite one transaction, so a
placement is one write)."""

from __future__ import annotations

import pytest

from claimant.model import (
    AlreadyExists,
    GenerationConflict,
    InsufficientCapacity,
    NotFound,
    Request,
    RequestGroup,
    RequestStatus,
    new_uuid,
)
from claimant.store import ClaimSpec, Store
from claimant.store.sqlite import SQLiteStore

from .builders import generation, make_provider, used


def _spec(store: Store, provider: str, vcpu: int = 2, *, gen: int | None = None) -> ClaimSpec:
    return ClaimSpec(
        provider_uuid=provider,
        expected_generation=generation(store, provider) if gen is None else gen,
        amounts={"VCPU": vcpu},
        consumer_uuid=new_uuid(),
        claim_uuid=new_uuid(),
    )


def _record(spec: ClaimSpec, uuid: str | None = None) -> Request:
    return Request(
        uuid=uuid or new_uuid(),
        groups=(RequestGroup(resources={"VCPU": 2}),),
        status=RequestStatus.SCHEDULED,
        consumers=(spec.consumer_uuid,),
        claims=(spec.claim_uuid or "",),
        created_at=1.0,
    )


def test_both_are_written(store: Store) -> None:
    p = make_provider(store, vcpu=8)
    spec = _spec(store, p.uuid)
    claim, saved = store.claim_and_record(spec, lambda c: _record(spec))
    assert claim.uuid == spec.claim_uuid
    assert used(store, p.uuid) == 2
    assert store.get_request(saved.uuid).claims == (claim.uuid,)
    assert store.get_request(saved.uuid).status is RequestStatus.SCHEDULED


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("stale generation", GenerationConflict),
        ("does not fit", InsufficientCapacity),
        ("no such provider", NotFound),
    ],
)
def test_a_refused_claim_records_nothing(store: Store, case: str, error: type) -> None:
    p = make_provider(store, vcpu=8)
    gen = generation(store, p.uuid)
    spec = {
        "stale generation": lambda: _spec(store, p.uuid, gen=gen + 1),
        "does not fit": lambda: _spec(store, p.uuid, vcpu=9),
        "no such provider": lambda: ClaimSpec(new_uuid(), 0, {"VCPU": 1}, new_uuid()),
    }[case]()
    record = _record(spec)
    with pytest.raises(error):
        store.claim_and_record(spec, lambda c: record)
    with pytest.raises(NotFound):
        store.get_request(record.uuid)
    assert used(store, p.uuid) == 0


def test_a_taken_uuid_leaves_no_claim(store: Store) -> None:
    p = make_provider(store, vcpu=8)
    first = _spec(store, p.uuid)
    _, saved = store.claim_and_record(first, lambda c: _record(first))
    second = _spec(store, p.uuid)
    with pytest.raises(AlreadyExists):
        store.claim_and_record(second, lambda c: _record(second, saved.uuid))
    assert used(store, p.uuid) == 2
    assert [c.uuid for c in store.list_claims(provider_uuid=p.uuid)] == [first.claim_uuid]
    assert store.get_request(saved.uuid).claims == (first.claim_uuid,)


def test_on_sqlite_it_is_one_transaction(store: Store) -> None:
    if not isinstance(store, SQLiteStore):
        pytest.skip("SQLite's transactions")
    p = make_provider(store, vcpu=8)
    spec = _spec(store, p.uuid)
    begun: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(lambda sql: begun.append(sql) if sql.startswith("BEGIN") else None)
    try:
        store.claim_and_record(spec, lambda c: _record(spec))
    finally:
        conn.set_trace_callback(None)
    assert begun == ["BEGIN IMMEDIATE"]
