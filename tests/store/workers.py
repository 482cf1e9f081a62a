"""The claim/release loop the concurrency tests run, in threads or processes.

It lives in its own module so ``multiprocessing`` (spawn) can import it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from claimant.model import (
    ConsumerAllocations,
    GenerationConflict,
    InsufficientCapacity,
    new_uuid,
)
from claimant.store import ClaimSpec, Store, open_store


@dataclass
class Tally:
    """What one worker did: every claim it won (uuid, provider, amount) and released."""

    won: list[tuple[str, str, int]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    conflicts: int = 0


def hammer(store: Store, providers: list[str], seed: int, rounds: int, retries: int = 30) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    held: list[str] = []
    for _ in range(rounds):
        if held and rng.random() < 0.35:
            claim_uuid = held.pop(rng.randrange(len(held)))
            store.release_claim(claim_uuid)
            tally.released.append(claim_uuid)
            continue
        provider = rng.choice(providers)
        amount = rng.randint(1, 2)
        for _attempt in range(retries):
            gen = store.get_usage(provider).provider.generation
            spec = ClaimSpec(provider, gen, {"VCPU": amount}, consumer_uuid=new_uuid())
            try:
                claim = store.claim(spec)
            except GenerationConflict:
                tally.conflicts += 1
                continue
            except InsufficientCapacity:
                # Full: give something back so the others keep churning.
                if held:
                    claim_uuid = held.pop(rng.randrange(len(held)))
                    store.release_claim(claim_uuid)
                    tally.released.append(claim_uuid)
                break
            held.append(claim.uuid)
            tally.won.append((claim.uuid, provider, amount))
            break
    return tally


Holding = dict[str, dict[str, int]]


def churn_allocations(
    store: Store, providers: list[str], seed: int, rounds: int
) -> dict[str, Holding]:
    """Placement-style writes for two consumers of our own, often spanning two
    providers; returns what each consumer should hold at the end."""
    rng = random.Random(seed)
    holds: dict[str, Holding] = {new_uuid(): {} for _ in range(2)}
    for _ in range(rounds):
        consumer = rng.choice(sorted(holds))
        target: Holding = {}
        if not holds[consumer] or rng.random() > 0.3:
            for provider in rng.sample(providers, rng.randint(1, 2)):
                target[provider] = {"VCPU": rng.randint(1, 2)}
        current = store.get_consumer(consumer)
        write = ConsumerAllocations(
            consumer_uuid=consumer,
            project_id="project-a",
            user_id="user-a",
            allocations=target,
            expected_generation=current.generation if current else None,
        )
        try:
            store.write_allocations([write])
        except (InsufficientCapacity, GenerationConflict):
            # Not written: the consumer must still hold exactly what it held.
            continue
        holds[consumer] = target
    return holds


def hammer_in_process(url: str, providers: list[str], seed: int, rounds: int) -> Tally:
    store = open_store(url)
    try:
        return hammer(store, providers, seed, rounds)
    finally:
        store.close()
