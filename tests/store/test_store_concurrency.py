"""The invariant under concurrency: no provider is ever over capacity, and no
claim is lost or counted twice."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from claimant.model import (
    ClaimNotActive,
    GenerationConflict,
    InsufficientCapacity,
    InUse,
    NotFound,
    new_uuid,
)
from claimant.store import ClaimSpec, Store

from .builders import FakeClock, generation, inv, make_provider, used
from .workers import Holding, Tally, churn_allocations, hammer, hammer_in_process

CAPACITY = 4


def check_ledgers(store: Store, providers: list[str], tallies: list[Tally]) -> None:
    won = {uuid: (provider, amount) for t in tallies for uuid, provider, amount in t.won}
    assert len(won) == sum(len(t.won) for t in tallies), "a claim uuid was handed out twice"
    assert won, "no claim succeeded at all"
    released = {uuid for t in tallies for uuid in t.released}
    live = store.list_claims()
    listed = Counter(c.uuid for c in live)
    assert [u for u, n in listed.items() if n > 1] == [], "a claim is listed twice"
    assert set(listed) == set(won) - released, "a claim was lost or a released one came back"
    for provider in providers:
        mine = [c for c in live if c.provider_uuid == provider]
        assert all(won[c.uuid] == (provider, c.amounts["VCPU"]) for c in mine)
        held = sum(c.amounts["VCPU"] for c in mine)
        assert used(store, provider) == held
        assert held <= CAPACITY


def test_threads_never_overcommit(store: Store) -> None:
    providers = [make_provider(store, vcpu=CAPACITY).uuid for _ in range(3)]
    n_threads = 16
    tallies: list[Tally] = [Tally() for _ in range(n_threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def run(i: int) -> None:
        try:
            start.wait()
            tallies[i] = hammer(store, providers, seed=i, rounds=20)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    check_ledgers(store, providers, tallies)


def test_claims_and_allocations_race(store: Store) -> None:
    """Schedulers claiming while Placement clients write allocations, on the same providers."""
    providers = [make_provider(store, vcpu=CAPACITY).uuid for _ in range(3)]
    tallies: list[Tally] = [Tally() for _ in range(4)]
    holds: list[dict[str, Holding]] = [{} for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def claimer(i: int) -> None:
        try:
            start.wait()
            tallies[i] = hammer(store, providers, seed=100 + i, rounds=15)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    def writer(i: int) -> None:
        try:
            start.wait()
            holds[i] = churn_allocations(store, providers, seed=200 + i, rounds=15)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

    expected = {c: h for part in holds for c, h in part.items()}
    for consumer, hold in expected.items():
        # all of a write or none of it, never half
        entries = store.list_claims(consumer_uuid=consumer)
        assert {e.provider_uuid: e.amounts for e in entries} == hold
        assert len(entries) == len(hold)
        assert (store.get_consumer(consumer) is None) == (not hold)
    won = {uuid for t in tallies for uuid, _, _ in t.won}
    released = {uuid for t in tallies for uuid in t.released}
    claims = {c.uuid for c in store.list_claims() if c.consumer_uuid not in expected}
    assert claims == won - released
    for provider in providers:
        held = sum(c.amounts["VCPU"] for c in store.list_claims(provider_uuid=provider))
        assert used(store, provider) == held <= CAPACITY


def test_processes_never_overcommit(store: Store) -> None:
    providers = [make_provider(store, vcpu=CAPACITY).uuid for _ in range(2)]
    # spawn, not fork: each process must open the store from its URL like a real scheduler.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        tallies = pool.starmap(
            hammer_in_process, [(store.url, providers, seed, 15) for seed in range(4)]
        )
    check_ledgers(store, providers, tallies)


TTL = 10.0
START = 1_700_000_000.0


class LedgerMachine(RuleBasedStateMachine):
    """Drives one store and a tiny model side by side; they must always agree."""

    store: Store
    clock: FakeClock

    # Providers and claims are kept in creation order, never sorted by their
    # random uuids, so that Hypothesis replays pick the same objects.
    def __init__(self) -> None:
        super().__init__()
        self.store.reset()
        # Every example starts at the same instant so replays are deterministic.
        self.clock.now = START
        self.capacity: dict[str, int] = {}
        # claim uuid -> (provider, amount, expires_at or None once confirmed)
        self.claims: dict[str, tuple[str, int, float | None]] = {}

    def live(self, uuid: str) -> bool:
        expires_at = self.claims[uuid][2]
        return expires_at is None or expires_at > self.clock.now

    def model_used(self, provider: str) -> int:
        return sum(a for u, (p, a, _) in self.claims.items() if p == provider and self.live(u))

    @initialize(total=st.integers(1, 6))
    def first_provider(self, total: int) -> None:
        self.add_provider(total)

    @rule(total=st.integers(1, 6))
    def add_provider(self, total: int) -> None:
        if len(self.capacity) < 3:
            self.capacity[make_provider(self.store, vcpu=total).uuid] = total

    @rule(i=st.integers(0, 2), total=st.integers(1, 6))
    def change_inventory(self, i: int, total: int) -> None:
        p = list(self.capacity)[i % len(self.capacity)]
        g = generation(self.store, p)
        if total < self.model_used(p):
            with pytest.raises(InUse):
                self.store.set_inventories(p, g, {"VCPU": inv("VCPU", total)})
        else:
            self.store.set_inventories(p, g, {"VCPU": inv("VCPU", total)})
            self.capacity[p] = total
            assert generation(self.store, p) == g + 1

    @rule(i=st.integers(0, 2), amount=st.integers(1, 4), stale=st.booleans())
    def claim(self, i: int, amount: int, stale: bool) -> None:
        p = list(self.capacity)[i % len(self.capacity)]
        g = generation(self.store, p)
        stale = stale and g > 0
        spec = ClaimSpec(
            p, g - 1 if stale else g, {"VCPU": amount}, consumer_uuid=new_uuid(), ttl=TTL
        )
        fits = self.model_used(p) + amount <= self.capacity[p]
        if stale and fits:
            with pytest.raises(GenerationConflict):
                self.store.claim(spec)
        elif stale:
            # Stale and too big: either answer is true.
            with pytest.raises((GenerationConflict, InsufficientCapacity)):
                self.store.claim(spec)
        elif not fits:
            with pytest.raises(InsufficientCapacity):
                self.store.claim(spec)
        else:
            c = self.store.claim(spec)
            self.claims[c.uuid] = (p, amount, self.clock.now + TTL)
            assert generation(self.store, p) == g + 1

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from(list(self.claims)))
        p, amount, _ = self.claims[uuid]
        if self.live(uuid):
            self.store.confirm_claim(uuid)
            self.claims[uuid] = (p, amount, None)
        else:
            # The contract says ClaimNotActive; once a sweep removed the entry a
            # backend may only know NotFound. test_store_claims pins the exact code.
            with pytest.raises((ClaimNotActive, NotFound)):
                self.store.confirm_claim(uuid)

    @precondition(lambda self: any(self.live(u) for u in self.claims))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from([u for u in self.claims if self.live(u)]))
        self.store.release_claim(uuid)
        del self.claims[uuid]
        with pytest.raises(NotFound):
            self.store.release_claim(uuid)

    @rule(seconds=st.sampled_from([1.0, 5.0, 11.0]), sweep=st.booleans())
    def tick(self, seconds: float, sweep: bool) -> None:
        self.clock.advance(seconds)
        if not sweep:
            return
        dead = [u for u in self.claims if not self.live(u)]
        # Reads may sweep lazily, so some of them may be gone already.
        assert 0 <= self.store.expire_claims() <= len(dead)
        for u in dead:
            del self.claims[u]
        assert self.store.expire_claims() == 0

    @invariant()
    def ledgers_match_the_model(self) -> None:
        for p, capacity in self.capacity.items():
            held = self.model_used(p)
            assert used(self.store, p) == held <= capacity
            listed = self.store.list_claims(provider_uuid=p)
            assert sorted(c.uuid for c in listed) == sorted(
                u for u, (q, _, _) in self.claims.items() if q == p and self.live(u)
            )


def test_state_machine(store: Store, clock: FakeClock) -> None:
    machine = type("BoundLedgerMachine", (LedgerMachine,), {"store": store, "clock": clock})
    # Each example starts with reset(); on Cassandra that is a TRUNCATE per table.
    examples = 8 if store.url.startswith("cassandra") else 50
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples, stateful_step_count=20, deadline=None, database=None
        ),
    )
