"""Multi-provider allocation writes are all or nothing, on every backend, while
other writers take and give back capacity under them (issue 8, scenario 1).

Movers write consumers from one provider pair to another with the consumer
generation they read (as Placement's PUT /allocations), sometimes delete them,
while stealers claim and release the capacity the moves free. Each consumer
belongs to one mover, so its last acknowledged write is what it must hold."""

from __future__ import annotations

import contextlib
import random
import threading
from dataclasses import dataclass, field

from claimant.model import (
    ClaimantError,
    ClaimStatus,
    Conflict,
    ConsumerAllocations,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import ClaimSpec, Store, open_store

from .builders import make_provider, used

CAPACITY = 4
Holding = dict[str, dict[str, int]]


@dataclass
class MoverLog:
    """What one mover's consumers must hold: the last acknowledged write, or
    None when a write's outcome is unknown (then old or new is right)."""

    expected: dict[str, Holding | None] = field(default_factory=dict)
    acked: int = 0
    refused: int = 0


def mover(store: Store, providers: list[str], seed: int, rounds: int) -> MoverLog:
    rng = random.Random(seed)
    log = MoverLog({new_uuid(): {} for _ in range(2)})
    for _ in range(rounds):
        consumer = rng.choice(sorted(log.expected))
        held = log.expected[consumer]
        current = store.get_consumer(consumer)
        try:
            if held and rng.random() < 0.15:
                store.remove_consumer_allocations(consumer)
                target: Holding = {}
            else:
                target = {p: {"VCPU": rng.randint(1, 2)} for p in rng.sample(providers, 2)}
                store.write_allocations(
                    [
                        ConsumerAllocations(
                            consumer_uuid=consumer,
                            project_id="project-a",
                            user_id="user-a",
                            allocations=target,
                            expected_generation=current.generation if current else None,
                        )
                    ]
                )
        except Conflict:
            log.refused += 1
            continue
        except StoreUnavailable:
            log.expected[consumer] = None
            continue
        log.expected[consumer] = target
        log.acked += 1
    return log


def stealer(store: Store, providers: list[str], seed: int, stop: threading.Event) -> None:
    """Grabs whatever is free, holds it a moment, gives it back."""
    rng = random.Random(seed)
    held: list[str] = []
    while not stop.is_set():
        if held and (len(held) > 2 or rng.random() < 0.2):
            with contextlib.suppress(ClaimantError):
                store.release_claim(held.pop(rng.randrange(len(held))))
            continue
        provider = rng.choice(providers)
        try:
            usage = store.get_usage(provider)
            n = usage.free("VCPU")
            if n <= 0:
                continue
            claim = store.claim(
                ClaimSpec(
                    provider,
                    usage.provider.generation,
                    {"VCPU": 1},
                    consumer_uuid=new_uuid(),
                )
            )
        except ClaimantError:
            continue
        held.append(claim.uuid)
    for uuid in held:
        store.release_claim(uuid)


def check_ledger(store: Store, providers: list[str], logs: list[MoverLog]) -> None:
    for log in logs:
        for consumer, expected in log.expected.items():
            entries = store.list_claims(consumer_uuid=consumer)
            assert all(e.status == ClaimStatus.CONFIRMED for e in entries)
            holding = {e.provider_uuid: e.amounts for e in entries}
            assert len(entries) == len(holding), f"{consumer} holds two entries on one provider"
            if expected is None:
                continue
            assert holding == expected, f"consumer {consumer} lost its acknowledged write"
            assert (store.get_consumer(consumer) is None) == (not expected)
    for provider in providers:
        held = sum(c.amounts["VCPU"] for c in store.list_claims(provider_uuid=provider))
        assert used(store, provider) == held <= CAPACITY


def run_race(store: Store, stealer_stores: list[Store], rounds: int) -> list[MoverLog]:
    providers = [make_provider(store, vcpu=CAPACITY).uuid for _ in range(3)]
    logs: list[MoverLog] = [MoverLog() for _ in range(4)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def run_mover(i: int) -> None:
        try:
            logs[i] = mover(store, providers, seed=300 + 7 * i, rounds=rounds)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    def run_stealer(i: int, st: Store) -> None:
        try:
            stealer(st, providers, seed=400 + i, stop=stop)
        except BaseException as exc:
            errors.append(exc)

    movers = [threading.Thread(target=run_mover, args=(i,)) for i in range(len(logs))]
    stealers = [
        threading.Thread(target=run_stealer, args=(i, st)) for i, st in enumerate(stealer_stores)
    ]
    for t in [*stealers, *movers]:
        t.start()
    for t in movers:
        t.join()
    stop.set()
    for t in stealers:
        t.join()
    if errors:
        raise errors[0]
    assert sum(log.acked for log in logs) > 0, "no write was acknowledged at all"
    check_ledger(store, providers, logs)
    return logs


def test_moves_under_stealers_end_as_acknowledged(store: Store) -> None:
    """One store object shared by every thread (one service process)."""
    run_race(store, [store, store, store], rounds=80)


def test_moves_under_stealers_of_other_processes(store: Store) -> None:
    """Stealers with store objects of their own, as other service processes
    would have: nothing in-process orders them against the movers."""
    others = [open_store(store.url) for _ in range(3)]
    try:
        run_race(store, others, rounds=80)
    finally:
        for st in others:
            st.close()
