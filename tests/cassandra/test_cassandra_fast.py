"""The one-provider fast path of an allocation write (issue 10): a consumer
whose allocations, old and new, are on one provider is written by three LWTs
(lock, provider, release) instead of a six-LWT transaction, with the same
guarantees: consumer generations checked, no overcommit, and a writer that
dies or stalls anywhere leaves all of its write or none of it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from claimant.model import (
    ClaimantError,
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    Inventory,
    Provider,
    new_uuid,
)
from claimant.store import ClaimSpec, open_store
from claimant.store.cassandra import CassandraStore

pytestmark = pytest.mark.cassandra

Holding = dict[str, dict[str, int]]
CRASHER = Path(__file__).with_name("crasher.py")


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def provider(st: CassandraStore, vcpu: int) -> str:
    return st.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"p-{new_uuid()[:8]}",
            inventories={"VCPU": Inventory("VCPU", vcpu)},
        )
    ).uuid


def alloc(consumer: str, target: Holding, generation: int | str | None) -> ConsumerAllocations:
    return ConsumerAllocations(
        consumer_uuid=consumer,
        project_id="project-a",
        user_id="user-a",
        allocations=target,
        expected_generation=generation,
    )


def holding(st: CassandraStore, consumer: str) -> Holding:
    return {c.provider_uuid: c.amounts for c in st.list_claims(consumer_uuid=consumer)}


def used(st: CassandraStore, p: str) -> int:
    usage = st.get_usage(p).usages["VCPU"]
    held = sum(c.amounts["VCPU"] for c in st.list_claims(provider_uuid=p))
    assert usage.used == held
    return usage.used


def counted(st: CassandraStore) -> dict[str, int]:
    return {k: st.stats[k] for k in ("fast", "txns")}


def test_one_provider_writes_take_the_fast_path(cstore: CassandraStore) -> None:
    p, q = provider(cstore, 8), provider(cstore, 8)
    x = new_uuid()
    before = counted(cstore)
    cstore.write_allocations([alloc(x, {p: {"VCPU": 2}}, None)])
    assert counted(cstore) == {"fast": before["fast"] + 1, "txns": before["txns"]}
    assert holding(cstore, x) == {p: {"VCPU": 2}}
    consumer = cstore.get_consumer(x)
    assert consumer is not None and consumer.generation == 1
    assert consumer.project_id == "project-a"
    assert cstore.get_provider(p).generation == 1
    # Replacing it on the same provider: fast again, old entry gone.
    cstore.write_allocations([alloc(x, {p: {"VCPU": 5}}, 1)])
    assert holding(cstore, x) == {p: {"VCPU": 5}}
    assert used(cstore, p) == 5
    assert cstore.get_consumer(x).generation == 2  # type: ignore[union-attr]
    assert counted(cstore)["fast"] == before["fast"] + 2
    # A move to another provider is a transaction.
    cstore.write_allocations([alloc(x, {q: {"VCPU": 3}}, 2)])
    assert counted(cstore)["txns"] == before["txns"] + 1
    assert holding(cstore, x) == {q: {"VCPU": 3}}
    assert used(cstore, p) == 0
    # "any" reads the generation it locks at.
    cstore.write_allocations([alloc(x, {q: {"VCPU": 1}}, "any")])
    assert cstore.get_consumer(x).generation == 4  # type: ignore[union-attr]
    assert counted(cstore)["fast"] == before["fast"] + 3


def test_fast_path_checks_consumer_generation_and_capacity(cstore: CassandraStore) -> None:
    p = provider(cstore, 4)
    x, y = new_uuid(), new_uuid()
    cstore.write_allocations([alloc(x, {p: {"VCPU": 3}}, None)])
    with pytest.raises(ConsumerGenerationConflict):
        cstore.write_allocations([alloc(x, {p: {"VCPU": 1}}, None)])
    with pytest.raises(ConsumerGenerationConflict):
        cstore.write_allocations([alloc(x, {p: {"VCPU": 1}}, 7)])
    with pytest.raises(InsufficientCapacity):
        cstore.write_allocations([alloc(y, {p: {"VCPU": 2}}, None)])
    assert cstore.get_consumer(y) is None
    assert holding(cstore, x) == {p: {"VCPU": 3}}
    assert used(cstore, p) == 3
    # A stale provider generation is a conflict, nothing written.
    with pytest.raises(GenerationConflict):
        cstore.write_allocations(
            [
                ConsumerAllocations(
                    y, "project-a", "user-a", {p: {"VCPU": 1}}, None, provider_generations={p: 0}
                )
            ]
        )
    assert cstore.get_consumer(y) is None


def test_capacity_taken_between_check_and_write_is_refused(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process takes the last units after the writer checked the
    provider and locked its consumer: the provider's LWT conditions on the
    version it checked, so the writer re-reads, refuses, and unlocks."""
    p = provider(cstore, 4)
    x = new_uuid()
    rival = open_store(cstore.url)
    assert isinstance(rival, CassandraStore)
    rival.clock = cstore.clock

    def hook(phase: str, txn: str) -> None:
        if phase == "fast-locked":
            usage = rival.get_usage(p)
            rival.claim(ClaimSpec(p, usage.provider.generation, {"VCPU": 3}, new_uuid()))

    monkeypatch.setattr(cstore, "txn_hook", hook)
    try:
        with pytest.raises(InsufficientCapacity):
            cstore.write_allocations([alloc(x, {p: {"VCPU": 2}}, None)])
        assert cstore.get_consumer(x) is None
        assert used(cstore, p) == 3
        monkeypatch.setattr(cstore, "txn_hook", None)
        cstore.write_allocations([alloc(x, {p: {"VCPU": 1}}, None)])
        assert used(cstore, p) == 4
    finally:
        rival.close()


def test_stalled_writer_is_fenced_and_never_applies(
    cstore: CassandraStore, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer stalls after locking its consumer until past its deadline;
    another process meets the lock, fences the provider and releases the
    consumer. When the writer wakes up its LWT must not apply: it is told
    nothing was written, and the other process's write of the consumer stands."""
    p = provider(cstore, 4)
    x = new_uuid()
    other = open_store(cstore.url)
    assert isinstance(other, CassandraStore)
    other_clock = FakeClock(clock.now)
    other.clock = other_clock

    def stall(phase: str, txn: str) -> None:
        if phase == "fast-locked":
            other_clock.advance(3600)
            assert other.get_consumer(x) is None  # meets the lock: fences, aborts
            other.write_allocations([alloc(x, {p: {"VCPU": 1}}, None)])

    monkeypatch.setattr(cstore, "txn_hook", stall)
    try:
        with pytest.raises(GenerationConflict):
            cstore.write_allocations([alloc(x, {p: {"VCPU": 3}}, None)])
        monkeypatch.setattr(cstore, "txn_hook", None)
        assert holding(cstore, x) == {p: {"VCPU": 1}}
        assert cstore.get_consumer(x).generation == 1  # type: ignore[union-attr]
        assert used(cstore, p) == 1
    finally:
        other.close()


@pytest.mark.parametrize("phase", ["fast-locked", "fast-committed"])
def test_writer_killed_mid_fast_write_is_all_or_nothing(cstore: CassandraStore, phase: str) -> None:
    """SIGKILL after the consumer's lock (nothing on the provider yet) or
    after the provider's LWT (the consumer not yet released): a fresh process
    sees none of the write, or all of it."""
    p = provider(cstore, 4)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {p: {"VCPU": 1}}, None)])
    body = json.dumps(
        {
            "consumer_uuid": x,
            "project_id": "project-b",
            "user_id": "user-a",
            "allocations": {p: {"VCPU": 3}},
            "expected_generation": 1,
        }
    )
    run = subprocess.run(
        [sys.executable, str(CRASHER), cstore.url, phase, body],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -9, run.stderr
    fresh = open_store(cstore.url)
    assert isinstance(fresh, CassandraStore)
    try:
        if phase == "fast-committed":
            # Committed: the first reader finishes it, deadline or not.
            fresh.clock = FakeClock(time.time())
            consumer = fresh.get_consumer(x)
            assert consumer is not None and consumer.generation == 2
            assert consumer.project_id == "project-b"
            assert holding(fresh, x) == {p: {"VCPU": 3}}
            assert used(fresh, p) == 3
        else:
            fresh.clock = FakeClock(time.time() + 3600)
            fresh.expire_claims()
            consumer = fresh.get_consumer(x)
            assert consumer is not None and consumer.generation == 1
            assert consumer.project_id == "project-a"
            assert holding(fresh, x) == {p: {"VCPU": 1}}
            assert used(fresh, p) == 1
        # The consumer is free to write again, and nothing is left reserved.
        g = fresh.get_consumer(x).generation  # type: ignore[union-attr]
        fresh.write_allocations([alloc(x, {p: {"VCPU": 4}}, g)])
        assert used(fresh, p) == 4
    finally:
        fresh.close()


def test_racing_fast_writes_never_overcommit(cstore: CassandraStore) -> None:
    """Two store objects (two processes), 16 threads, for the last 6 units of
    one provider; and two writes of one new consumer on two providers: one
    wins, the other is a generation conflict."""
    p = provider(cstore, 6)
    stores = [cstore, open_store(cstore.url)]
    assert isinstance(stores[1], CassandraStore)
    stores[1].clock = cstore.clock
    results: list[str] = []

    def one(i: int) -> None:
        try:
            stores[i % 2].write_allocations([alloc(new_uuid(), {p: {"VCPU": 1}}, None)])
            results.append("ok")
        except ClaimantError as exc:
            results.append(type(exc).__name__)

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count("ok") <= 6
        assert used(cstore, p) == results.count("ok")
        q1, q2 = provider(cstore, 4), provider(cstore, 4)
        x = new_uuid()
        outcomes: list[str] = []

        def write(i: int, target: str) -> None:
            try:
                stores[i].write_allocations([alloc(x, {target: {"VCPU": 1}}, None)])
                outcomes.append("ok")
            except ConsumerGenerationConflict:
                outcomes.append("conflict")

        racers = [
            threading.Thread(target=write, args=(0, q1)),
            threading.Thread(target=write, args=(1, q2)),
        ]
        for t in racers:
            t.start()
        for t in racers:
            t.join()
        assert sorted(outcomes) == ["conflict", "ok"]
        assert len(holding(cstore, x)) == 1
        assert used(cstore, q1) + used(cstore, q2) == 1
    finally:
        stores[1].close()
