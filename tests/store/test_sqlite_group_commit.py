"""SQLite's hot path (issue 10). Group commit: writes that queue while another
writer holds the lock are committed together, in ONE transaction, and each
keeps its own outcome; ordering is made deterministic by holding SQLite's
write lock from another connection until every write is queued. Packed reads:
providers come back as JSON built by SQLite, and still read back exactly."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claimant.model import (
    ConsumerAllocations,
    GenerationConflict,
    InsufficientCapacity,
    Request,
    RequestGroup,
    new_uuid,
)
from claimant.store import CandidateQuery, ClaimSpec
from claimant.store.sqlite import SQLiteStore

from .builders import allocs, generation, make_provider, used

WAIT = 30.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = SQLiteStore(str(tmp_path / "group.db"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


class Writers:
    """Threads that each run one store write while the lock is held elsewhere,
    recording the statements their connections run."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.statements: list[str] = []
        self.outcomes: dict[str, object] = {}
        self.threads: list[threading.Thread] = []
        self.began = threading.Event()

    def start(self, name: str, write: Callable[[], Any]) -> None:
        def run() -> None:
            conn = self.store._conn()  # this thread's connection: trace it

            def trace(sql: str) -> None:
                self.statements.append(sql)
                if sql == "BEGIN IMMEDIATE":
                    self.began.set()

            conn.set_trace_callback(trace)
            try:
                self.outcomes[name] = write()
            except Exception as exc:
                self.outcomes[name] = exc
            finally:
                conn.set_trace_callback(None)

        t = threading.Thread(target=run)
        self.threads.append(t)
        t.start()

    def queued(self) -> int:
        with self.store._pending_lock:
            return len(self.store._pending)

    def wait_queued(self, n: int) -> None:
        # Bounded polling for a state, not a timing assertion.
        done = threading.Event()
        for _ in range(int(WAIT / 0.01)):
            if self.queued() >= n:
                return
            done.wait(0.01)
        raise AssertionError(f"only {self.queued()} of {n} writes queued")

    def join(self) -> None:
        for t in self.threads:
            t.join(WAIT)
            assert not t.is_alive()


def spec(store: SQLiteStore, uuid: str, vcpu: int = 1, gen: int | None = None) -> ClaimSpec:
    return ClaimSpec(
        provider_uuid=uuid,
        expected_generation=generation(store, uuid) if gen is None else gen,
        amounts={"VCPU": vcpu},
        consumer_uuid=new_uuid(),
    )


def hold_lock(store: SQLiteStore) -> sqlite3.Connection:
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (another process, in production)
    return holder


def test_writes_queued_behind_the_lock_commit_in_one_transaction(store: SQLiteStore) -> None:
    providers = [make_provider(store, vcpu=4) for _ in range(4)]
    specs = [spec(store, p.uuid) for p in providers]
    holder = hold_lock(store)
    w = Writers(store)
    try:
        w.start("a", lambda: store.claim(specs[0]))
        assert w.began.wait(WAIT), "the first claim never reached BEGIN IMMEDIATE"
        for i, s in enumerate(specs[1:], start=1):
            w.start(f"c{i}", lambda s=s: store.claim(s))
        w.wait_queued(4)
    finally:
        holder.execute("COMMIT")
        holder.close()
    w.join()
    for name, outcome in w.outcomes.items():
        assert not isinstance(outcome, Exception), (name, outcome)
    assert len(w.outcomes) == 4
    assert w.statements.count("BEGIN IMMEDIATE") == 1
    assert w.statements.count("COMMIT") == 1
    for p in providers:
        assert used(store, p.uuid) == 1
        assert generation(store, p.uuid) == p.generation + 1


def test_a_failed_write_in_a_group_leaves_no_trace_and_spares_the_others(
    store: SQLiteStore,
) -> None:
    p = make_provider(store, vcpu=4)
    consumer = new_uuid()
    store.write_allocations([allocs(consumer, {p.uuid: {"VCPU": 2}})])
    before = store.get_consumer(consumer)
    assert before is not None
    ok_claim = spec(store, p.uuid)
    stale_claim = spec(store, p.uuid, gen=p.generation)  # generation moved on since
    # Gives back the consumer's 2 VCPU, writes 5: over capacity, checked last,
    # after the write already changed rows.
    too_big: ConsumerAllocations = allocs(consumer, {p.uuid: {"VCPU": 5}})
    request = Request(uuid=new_uuid(), groups=(RequestGroup(resources={"VCPU": 1}),))

    holder = hold_lock(store)
    w = Writers(store)
    try:
        w.start("claim", lambda: store.claim(ok_claim))
        assert w.began.wait(WAIT)
        w.start("too_big", lambda: store.write_allocations([too_big]))
        w.wait_queued(2)
        w.start("stale", lambda: store.claim(stale_claim))
        w.wait_queued(3)
        w.start("request", lambda: store.create_request(request))
        w.wait_queued(4)
    finally:
        holder.execute("COMMIT")
        holder.close()
    w.join()

    assert w.statements.count("COMMIT") == 1
    assert not isinstance(w.outcomes["claim"], Exception), w.outcomes["claim"]
    assert isinstance(w.outcomes["too_big"], InsufficientCapacity), w.outcomes["too_big"]
    assert isinstance(w.outcomes["stale"], GenerationConflict), w.outcomes["stale"]
    assert not isinstance(w.outcomes["request"], Exception), w.outcomes["request"]
    # The failed allocation write rolled back whole: the consumer still holds 2.
    assert used(store, p.uuid) == 2 + 1
    assert store.get_consumer(consumer) == before
    assert store.get_request(request.uuid).uuid == request.uuid
    assert generation(store, p.uuid) == ok_claim.expected_generation + 1


def test_a_lone_failed_write_rolls_back(store: SQLiteStore) -> None:
    p = make_provider(store, vcpu=4)
    consumer = new_uuid()
    store.write_allocations([allocs(consumer, {p.uuid: {"VCPU": 2}})])
    with pytest.raises(InsufficientCapacity):
        store.write_allocations([allocs(consumer, {p.uuid: {"VCPU": 5}})])
    assert used(store, p.uuid) == 2
    assert store.list_claims(consumer_uuid=consumer)[0].amounts == {"VCPU": 2}


def test_times_read_back_exactly(store: SQLiteStore) -> None:
    """Candidates come back packed in JSON; SQLite 3.40 writes REALs into JSON
    with 15 digits, which would round a timestamp."""
    p = make_provider(store, vcpu=4)
    at = 1796130103.6293604
    store.heartbeat(p.uuid, at=at)
    found = store.find_candidates(CandidateQuery(group=RequestGroup(resources={"VCPU": 1})))
    assert found[0].provider.heartbeat_at == at
    assert found[0].provider == store.get_provider(p.uuid)


def test_a_ratio_reads_back_exactly(store: SQLiteStore) -> None:
    """Inventories come back packed in JSON too: a ratio rounded to 15 digits
    could move a claim's capacity check by a unit."""
    from claimant.model import Inventory

    ratio = 0.1 + 0.2  # 0.30000000000000004: 17 digits
    p = make_provider(store, inventories={"VCPU": Inventory("VCPU", 10, allocation_ratio=ratio)})
    assert store.get_provider(p.uuid).inventories["VCPU"].allocation_ratio == ratio
    found = store.find_candidates(CandidateQuery(group=RequestGroup(resources={"VCPU": 1})))
    assert found[0].provider.inventories["VCPU"].allocation_ratio == ratio
    capacity = store.get_usage(p.uuid).usages["VCPU"].capacity
    store.claim(spec(store, p.uuid, vcpu=capacity))
    assert used(store, p.uuid) == capacity
