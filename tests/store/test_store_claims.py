"""Claims: compare-and-set writes into a provider's ledger, confirm, release, expiry."""

from __future__ import annotations

import pytest

from claimant.model import (
    ClaimNotActive,
    ClaimStatus,
    GenerationConflict,
    InsufficientCapacity,
    InvalidInput,
    NotFound,
    new_uuid,
)
from claimant.store import ClaimSpec, Store

from .builders import FakeClock, free, generation, inv, make_provider, reasons_text, take, used


def test_claim_writes_and_bumps_generation(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=8, memory_mb=1024)
    consumer, request = new_uuid(), new_uuid()
    c = store.claim(
        ClaimSpec(
            provider_uuid=p.uuid,
            expected_generation=0,
            amounts={"VCPU": 2, "MEMORY_MB": 512},
            consumer_uuid=consumer,
            request_uuid=request,
            group="web",
            project_id="proj",
            user_id="usr",
            ttl=60,
        )
    )
    assert c.provider_uuid == p.uuid
    assert c.consumer_uuid == consumer
    assert c.amounts == {"VCPU": 2, "MEMORY_MB": 512}
    assert c.status is ClaimStatus.CLAIMED
    assert c.expires_at == pytest.approx(clock.now + 60)
    got = store.get_claim(c.uuid)
    assert got.evolve(created_at=0.0, expires_at=0.0) == c.evolve(created_at=0.0, expires_at=0.0)
    assert got.expires_at == pytest.approx(c.expires_at)
    assert generation(store, p.uuid) == 1
    assert (free(store, p.uuid), free(store, p.uuid, "MEMORY_MB")) == (6, 512)
    assert (got.request_uuid, got.group, got.project_id, got.user_id) == (
        request,
        "web",
        "proj",
        "usr",
    )


def test_claim_with_given_uuid(store: Store) -> None:
    p = make_provider(store)
    cu = new_uuid()
    c = take(store, p, claim_uuid=cu)
    assert c.uuid == cu
    assert store.get_claim(cu).provider_uuid == p.uuid


def test_claim_stale_generation(store: Store) -> None:
    p = make_provider(store, vcpu=8)
    take(store, p, {"VCPU": 1})
    spec = ClaimSpec(p.uuid, 0, {"VCPU": 1}, consumer_uuid=new_uuid())
    with pytest.raises(GenerationConflict):
        store.claim(spec)
    assert (generation(store, p.uuid), used(store, p.uuid)) == (1, 1)
    assert len(store.list_claims(provider_uuid=p.uuid)) == 1


@pytest.mark.parametrize(
    ("amounts", "mentions"),
    [
        pytest.param({"VCPU": 9}, "VCPU", id="too-big"),
        pytest.param({"VCPU": 1, "MEMORY_MB": 2048}, "MEMORY_MB", id="one-class-too-big"),
        pytest.param({"DISK_GB": 1}, "DISK_GB", id="class-not-on-provider"),
        pytest.param({"VCPU": 3}, "VCPU", id="step-size"),
    ],
)
def test_claim_that_does_not_fit(store: Store, amounts: dict[str, int], mentions: str) -> None:
    p = make_provider(
        store,
        inventories={"VCPU": inv("VCPU", 8, step_size=2), "MEMORY_MB": inv("MEMORY_MB", 1024)},
    )
    with pytest.raises(InsufficientCapacity) as err:
        store.claim(ClaimSpec(p.uuid, 0, amounts, consumer_uuid=new_uuid()))
    assert mentions in reasons_text(err.value)
    assert generation(store, p.uuid) == 0
    assert store.list_claims(provider_uuid=p.uuid) == []


def test_claim_counts_other_claims(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    take(store, p, {"VCPU": 3})
    with pytest.raises(InsufficientCapacity):
        take(store, p, {"VCPU": 2})
    take(store, p, {"VCPU": 1})
    assert free(store, p.uuid) == 0


def test_claim_unknown_provider(store: Store) -> None:
    with pytest.raises(NotFound):
        store.claim(ClaimSpec(new_uuid(), 0, {"VCPU": 1}, consumer_uuid=new_uuid()))


@pytest.mark.parametrize(
    "amounts",
    [
        pytest.param({"VCPU": -1}, id="negative"),
        pytest.param({"VCPU": 0}, id="zero"),
        pytest.param({}, id="empty"),
    ],
)
def test_claim_bad_amounts(store: Store, amounts: dict[str, int]) -> None:
    p = make_provider(store, vcpu=4)
    with pytest.raises(InvalidInput):
        store.claim(ClaimSpec(p.uuid, 0, amounts, consumer_uuid=new_uuid()))
    assert (generation(store, p.uuid), free(store, p.uuid)) == (0, 4)


def test_confirm_is_idempotent(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p, {"VCPU": 2}, ttl=10)
    confirmed = store.confirm_claim(c.uuid)
    assert confirmed.status is ClaimStatus.CONFIRMED
    assert confirmed.expires_at is None
    assert store.confirm_claim(c.uuid).status is ClaimStatus.CONFIRMED
    clock.advance(3600)
    assert store.confirm_claim(c.uuid).status is ClaimStatus.CONFIRMED
    assert store.get_claim(c.uuid).status is ClaimStatus.CONFIRMED
    assert used(store, p.uuid) == 2
    assert store.expire_claims() == 0
    assert [x.uuid for x in store.list_claims(status=ClaimStatus.CONFIRMED)] == [c.uuid]


def test_confirm_expired_claim(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p, {"VCPU": 2}, ttl=10)
    clock.advance(11)
    with pytest.raises(ClaimNotActive):
        store.confirm_claim(c.uuid)
    assert used(store, p.uuid) == 0


def test_confirm_swept_claim(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p, {"VCPU": 2}, ttl=10)
    clock.advance(11)
    assert store.expire_claims() == 1
    with pytest.raises(ClaimNotActive):
        store.confirm_claim(c.uuid)


def test_confirm_released_claim(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p)
    store.release_claim(c.uuid)
    with pytest.raises(ClaimNotActive):
        store.confirm_claim(c.uuid)
    assert used(store, p.uuid) == 0


def test_release(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    keep = take(store, p, {"VCPU": 1})
    c = take(store, p, {"VCPU": 2})
    store.release_claim(c.uuid)
    assert used(store, p.uuid) == 1
    assert [x.uuid for x in store.list_claims(provider_uuid=p.uuid)] == [keep.uuid]
    with pytest.raises(NotFound):
        store.release_claim(c.uuid)
    with pytest.raises(NotFound):
        store.release_claim(new_uuid())
    assert used(store, p.uuid) == 1


def test_release_confirmed_allocation(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    c = take(store, p, {"VCPU": 2})
    store.confirm_claim(c.uuid)
    store.release_claim(c.uuid)
    assert used(store, p.uuid) == 0
    assert store.list_claims() == []


def test_expiry(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4)
    short = take(store, p, {"VCPU": 3}, ttl=10)
    long = take(store, p, {"VCPU": 1}, ttl=100)
    clock.advance(9)
    assert used(store, p.uuid) == 4
    clock.advance(2)
    # expired but not swept: already counts for nothing
    assert used(store, p.uuid) == 1
    assert [x.uuid for x in store.list_claims()] == [long.uuid]
    assert store.list_claims(provider_uuid=p.uuid, status=ClaimStatus.CLAIMED) == [
        store.get_claim(long.uuid)
    ]
    try:
        got = store.get_claim(short.uuid)
    except NotFound:
        pass
    else:
        assert not got.is_live(clock.now)
    with pytest.raises(NotFound):
        store.release_claim(short.uuid)
    # the freed room can be claimed again
    take(store, p, {"VCPU": 3})
    assert used(store, p.uuid) == 4


def test_expire_claims_counts(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=8)
    for _ in range(3):
        take(store, p, ttl=10)
    kept = take(store, p, ttl=100)
    confirmed = take(store, p, ttl=10)
    store.confirm_claim(confirmed.uuid)
    assert store.expire_claims() == 0
    clock.advance(50)
    assert store.expire_claims() == 3
    assert store.expire_claims() == 0
    assert {x.uuid for x in store.list_claims()} == {kept.uuid, confirmed.uuid}
    assert used(store, p.uuid) == 2


def test_list_claims_filters(store: Store) -> None:
    p, q = make_provider(store), make_provider(store)
    c1, c2, r1 = new_uuid(), new_uuid(), new_uuid()
    a = take(store, p, consumer=c1, request_uuid=r1, group="g1")
    b = take(store, q, consumer=c1, request_uuid=r1, group="g1")
    c = take(store, p, consumer=c2, group="g2")
    store.confirm_claim(c.uuid)

    def listed(**kw: object) -> set[str]:
        claims = store.list_claims(**kw)  # type: ignore[arg-type]
        assert len(claims) == len({x.uuid for x in claims})
        return {x.uuid for x in claims}

    assert listed() == {a.uuid, b.uuid, c.uuid}
    assert listed(provider_uuid=p.uuid) == {a.uuid, c.uuid}
    assert listed(consumer_uuid=c1) == {a.uuid, b.uuid}
    assert listed(request_uuid=r1) == {a.uuid, b.uuid}
    assert listed(group="g2") == {c.uuid}
    assert listed(status=ClaimStatus.CLAIMED) == {a.uuid, b.uuid}
    assert listed(status=ClaimStatus.CONFIRMED) == {c.uuid}
    assert listed(provider_uuid=p.uuid, consumer_uuid=c1) == {a.uuid}
    assert listed(provider_uuid=new_uuid()) == set()


def test_providers_of_consumers(store: Store, clock: FakeClock) -> None:
    p, q, r = make_provider(store), make_provider(store), make_provider(store)
    c1, c2, c3 = new_uuid(), new_uuid(), new_uuid()
    take(store, p, consumer=c1)
    store.confirm_claim(take(store, q, consumer=c1).uuid)
    take(store, r, consumer=c2, ttl=10)
    assert store.providers_of_consumers([c1]) == {p.uuid, q.uuid}
    assert store.providers_of_consumers([c1, c2, c3]) == {p.uuid, q.uuid, r.uuid}
    assert store.providers_of_consumers([]) == set()
    clock.advance(11)
    assert store.providers_of_consumers([c2]) == set()


def test_providers_of_group(store: Store, clock: FakeClock) -> None:
    p, q, r = make_provider(store), make_provider(store), make_provider(store)
    c1, c2, c3, c4 = (new_uuid() for _ in range(4))
    take(store, p, consumer=c1, group="web")
    take(store, p, consumer=c2, group="web")
    store.confirm_claim(take(store, q, consumer=c3, group="web").uuid)
    take(store, q, consumer=c4, group="db")
    take(store, r, consumer=new_uuid(), group="web", ttl=10)
    clock.advance(11)
    assert store.providers_of_group("web") == {p.uuid: 2, q.uuid: 1}
    assert store.providers_of_group("db") == {q.uuid: 1}
    assert store.providers_of_group("nobody") == {}


def test_heartbeat_does_not_fail_a_claim(store: Store) -> None:
    p = make_provider(store, vcpu=4)
    spec = ClaimSpec(p.uuid, 0, {"VCPU": 1}, consumer_uuid=new_uuid())
    store.heartbeat(p.uuid, at=1000.0)
    store.claim(spec)
    assert used(store, p.uuid) == 1


def test_expired_claims_hold_nothing_back(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=4, memory_mb=1024)
    take(store, p, {"VCPU": 4, "MEMORY_MB": 1024}, ttl=10)
    clock.advance(11)
    # shrinking and removing classes is no longer blocked ...
    g = generation(store, p.uuid)
    store.set_inventories(p.uuid, g, {"VCPU": inv("VCPU", 1)})
    # ... nor is deleting the provider
    store.delete_provider(p.uuid)
    with pytest.raises(NotFound):
        store.get_provider(p.uuid)
