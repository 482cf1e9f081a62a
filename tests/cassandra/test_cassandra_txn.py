"""Multi-provider writes on Cassandra are one transaction (issue 8, scenario 1):
whatever runs between their provider writes, and wherever the writing process
dies, every consumer ends with all of one write or all of the other, no
generation moves backwards and no capacity is lost or counted twice.

Each test runs a second store object (another service process) at a precise
point inside a write: right after its N-th provider transaction applied."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra import WriteTimeout, WriteType

from claimant.model import (
    ClaimantError,
    ConsumerAllocations,
    Inventory,
    Provider,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import ClaimSpec, open_store
from claimant.store.cassandra import CassandraStore
from claimant.store.cassandra import queries as q

pytestmark = pytest.mark.cassandra

Holding = dict[str, dict[str, int]]


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def providers(st: CassandraStore, n: int, vcpu: int) -> list[str]:
    """``n`` new providers, in the order a multi-provider write visits them."""
    made = [
        st.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"p-{new_uuid()[:8]}",
                inventories={"VCPU": Inventory("VCPU", vcpu)},
            )
        ).uuid
        for _ in range(n)
    ]
    return sorted(made)


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


def check_usage(st: CassandraStore, uuids: list[str], capacity: int) -> None:
    for p in uuids:
        held = sum(c.amounts["VCPU"] for c in st.list_claims(provider_uuid=p))
        usage = st.get_usage(p).usages["VCPU"]
        assert usage.used == held <= capacity


@pytest.fixture
def other(cstore: CassandraStore) -> Iterator[CassandraStore]:
    """A second service process's store on the same keyspace and clock."""
    st = open_store(cstore.url)
    assert isinstance(st, CassandraStore)
    st.clock = cstore.clock
    try:
        yield st
    finally:
        st.close()


class AfterProviderWrite:
    """Runs ``action`` once, right after the ``n``-th provider transaction of
    ``st`` applied."""

    def __init__(
        self, st: CassandraStore, monkeypatch: pytest.MonkeyPatch, n: int, action: Callable[[], Any]
    ) -> None:
        self.real = st._cas
        self.n, self.count = n, 0
        self.action: Callable[[], Any] | None = action
        monkeypatch.setattr(st, "_cas", self.cas)

    def cas(self, *args: Any, **kwargs: Any) -> bool:
        applied = bool(self.real(*args, **kwargs))
        if applied:
            self.count += 1
            if self.count == self.n and self.action is not None:
                action, self.action = self.action, None
                action()
        return applied


def attempt(fn: Callable[[], Any]) -> bool:
    """Whether ``fn`` was acknowledged (a definite failure is False)."""
    try:
        fn()
    except StoreUnavailable:
        raise
    except ClaimantError:
        return False
    return True


def test_capacity_taken_mid_move_never_drops_the_old_allocation(
    cstore: CassandraStore, other: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old allocation was given back on A, a stealer took A and B, the
    write failed on B: the undo on A could not be forced and the consumer was
    left with nothing while the client got 409."""
    a, b = providers(cstore, 2, vcpu=2)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 2}}, None)])
    seen: dict[str, int] = {}
    stolen: list[bool] = []

    def steal() -> None:
        for p in (a, b):
            seen[p] = other.get_provider(p).generation
            spec = ClaimSpec(p, seen[p], {"VCPU": 2}, consumer_uuid=new_uuid())
            stolen.append(attempt(lambda spec=spec: other.claim(spec)))

    AfterProviderWrite(cstore, monkeypatch, 1, steal)
    moved = attempt(lambda: cstore.write_allocations([alloc(x, {b: {"VCPU": 2}}, 1)]))

    assert stolen, "the stealer never ran"
    assert holding(cstore, x) == ({b: {"VCPU": 2}} if moved else {a: {"VCPU": 2}})
    consumer = cstore.get_consumer(x)
    assert consumer is not None and consumer.generation == (2 if moved else 1)
    check_usage(cstore, [a, b], 2)
    for p, gen in seen.items():
        assert cstore.get_provider(p).generation >= gen, "a generation went backwards"


def test_two_writers_on_one_consumer_do_not_interleave(
    cstore: CassandraStore, other: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both PUTs carried generation 1: at most one may win, and the consumer
    holds exactly the winner's allocations (the loser's undo used to
    resurrect the old entry next to the winner's)."""
    a, b, c = providers(cstore, 3, vcpu=4)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 1}}, None)])
    second: list[bool] = []
    AfterProviderWrite(
        cstore,
        monkeypatch,
        1,
        lambda: second.append(
            attempt(lambda: other.write_allocations([alloc(x, {c: {"VCPU": 1}}, 1)]))
        ),
    )
    first = attempt(lambda: cstore.write_allocations([alloc(x, {b: {"VCPU": 1}}, 1)]))

    assert second, "the second writer never ran"
    assert first + second[0] <= 1, "two writes with the same consumer generation both won"
    want: Holding = {a: {"VCPU": 1}}
    if first:
        want = {b: {"VCPU": 1}}
    elif second[0]:
        want = {c: {"VCPU": 1}}
    assert holding(cstore, x) == want
    consumer = cstore.get_consumer(x)
    assert consumer is not None and consumer.generation == 1 + first + second[0]
    check_usage(cstore, [a, b, c], 4)


def test_delete_is_not_undone_by_a_racing_put(
    cstore: CassandraStore, other: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DELETE that answered success: whatever a racing PUT (generation 1)
    got, the only serial orders are PUT-then-DELETE (nothing left) or
    DELETE-then-PUT (the PUT fails: the consumer is gone)."""
    a, b, c = providers(cstore, 3, vcpu=4)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 1}, b: {"VCPU": 1}}, None)])
    put: list[bool] = []
    AfterProviderWrite(
        cstore,
        monkeypatch,
        1,
        lambda: put.append(
            attempt(lambda: other.write_allocations([alloc(x, {c: {"VCPU": 1}}, 1)]))
        ),
    )
    deleted = attempt(lambda: cstore.remove_consumer_allocations(x))

    assert put, "the PUT never ran"
    if deleted:
        assert holding(cstore, x) == {}
        assert cstore.get_consumer(x) is None
    else:
        assert put[0] and holding(cstore, x) == {c: {"VCPU": 1}}
    check_usage(cstore, [a, b, c], 4)


CRASHER = Path(__file__).with_name("crasher.py")


@pytest.mark.parametrize("after", [1, 2, 3, 5])
def test_writer_killed_between_provider_writes_is_all_or_nothing(
    cstore: CassandraStore, after: int
) -> None:
    """SIGKILL right after the writer's ``after``-th provider transaction; a
    fresh store (a new process) must then see all of the move or none of it,
    once the sweeper has run past the transaction's deadline."""
    p = providers(cstore, 4, vcpu=4)
    x = new_uuid()
    old: Holding = {p[0]: {"VCPU": 1}, p[2]: {"VCPU": 2}}
    new: Holding = {p[1]: {"VCPU": 2}, p[3]: {"VCPU": 1}}
    cstore.write_allocations([alloc(x, old, None)])
    body = json.dumps(
        {
            "consumer_uuid": x,
            "project_id": "project-a",
            "user_id": "user-a",
            "allocations": new,
            "expected_generation": 1,
        }
    )
    run = subprocess.run(
        [sys.executable, str(CRASHER), cstore.url, str(after), body],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, -9), run.stderr

    fresh = open_store(cstore.url)
    assert isinstance(fresh, CassandraStore)
    # Far past any deadline the dead writer set: its transaction is abandoned.
    fresh.clock = FixedClock(time.time() + 3600)
    try:
        fresh.expire_claims()
        got = holding(fresh, x)
        assert got in (old, new), f"half a write survived the crash: {got}"
        consumer = fresh.get_consumer(x)
        assert consumer is not None and consumer.generation == (1 if got == old else 2)
        check_usage(fresh, p, 4)
        # Nothing is still reserved: every unit not held can be claimed.
        for uuid in p:
            usage = fresh.get_usage(uuid)
            free = usage.free("VCPU")
            if free:
                fresh.claim(ClaimSpec(uuid, usage.provider.generation, {"VCPU": free}, new_uuid()))
    finally:
        fresh.close()


def test_confirm_whose_locator_write_fails_is_still_releasable(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim row is confirmed but the locator keeps the claim's TTL if its
    rewrite is lost: the allocation could not be released by uuid a day later."""
    (p,) = providers(cstore, 1, vcpu=4)
    claim = cstore.claim(ClaimSpec(p, 0, {"VCPU": 1}, consumer_uuid=new_uuid()))
    real = cstore._run
    failed: list[str] = []

    def run(cql: str, params: Any = (), **kw: Any) -> Any:
        if cql == q.WRITE_LOCATOR and not failed:
            failed.append(cql)
            raise StoreUnavailable("injected: locator write timed out")
        return real(cql, params, **kw)

    monkeypatch.setattr(cstore, "_run", run)
    cstore.confirm_claim(claim.uuid)
    monkeypatch.undo()

    assert failed, "the locator write was never attempted"
    rows = cstore._run(
        "SELECT TTL(provider_uuid) AS ttl FROM claim_locator WHERE claim_uuid = ?", [claim.uuid]
    )
    assert rows and rows[0].ttl is None, "a confirmed allocation's locator still expires"
    cstore.release_claim(claim.uuid)
    assert cstore.get_usage(p).usages["VCPU"].used == 0


def test_multi_consumer_post_is_all_or_nothing(
    cstore: CassandraStore, other: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /allocations moving two consumers (a Nova migration): capacity
    stolen on one target mid-write leaves both consumers as they were."""
    a, b, c, d = providers(cstore, 4, vcpu=2)
    x, y = new_uuid(), new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 1}}, None), alloc(y, {b: {"VCPU": 1}}, None)])

    def steal() -> None:
        # What the write freed on its first provider, and its targets.
        for p in (a, c, d):
            usage = other.get_usage(p)
            free = usage.free("VCPU")
            if free:
                spec = ClaimSpec(p, usage.provider.generation, {"VCPU": free}, new_uuid())
                attempt(lambda spec=spec: other.claim(spec))

    AfterProviderWrite(cstore, monkeypatch, 1, steal)
    moved = attempt(
        lambda: cstore.write_allocations(
            [alloc(x, {c: {"VCPU": 1}}, 1), alloc(y, {d: {"VCPU": 2}}, 1)]
        )
    )

    if moved:
        assert (holding(cstore, x), holding(cstore, y)) == ({c: {"VCPU": 1}}, {d: {"VCPU": 2}})
    else:
        assert (holding(cstore, x), holding(cstore, y)) == ({a: {"VCPU": 1}}, {b: {"VCPU": 1}})
    for consumer in (x, y):
        got = cstore.get_consumer(consumer)
        assert got is not None and got.generation == 1 + moved
    check_usage(cstore, [a, b, c, d], 2)


def test_consumer_deleted_and_made_again_mid_write_is_a_conflict(
    cstore: CassandraStore, other: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generation 1 again after a DELETE and a new PUT, but on another
    provider: a write planned on the first incarnation must not leave the
    consumer holding both its own and the new one's allocations."""
    a, b, c = providers(cstore, 3, vcpu=4)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 1}}, None)])
    ran: list[str] = []

    def between_plan_and_lock(phase: str, txn: str) -> None:
        if phase == "record" and not ran:
            ran.append(txn)
            other.remove_consumer_allocations(x)
            other.write_allocations([alloc(x, {c: {"VCPU": 1}}, None)])

    monkeypatch.setattr(cstore, "txn_hook", between_plan_and_lock)
    moved = attempt(lambda: cstore.write_allocations([alloc(x, {b: {"VCPU": 1}}, 1)]))

    assert ran
    assert holding(cstore, x) == ({b: {"VCPU": 1}} if moved else {c: {"VCPU": 1}})
    check_usage(cstore, [a, b, c], 4)


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
def test_lost_reply_of_the_commit_is_settled_not_guessed(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch, applied: bool
) -> None:
    """The commit LWT's reply is lost (CAS write timeout): a SERIAL read of the
    record settles it, and the write is acknowledged exactly once."""
    a, b = providers(cstore, 2, vcpu=4)
    x = new_uuid()
    cstore.write_allocations([alloc(x, {a: {"VCPU": 1}}, None)])
    session = cstore._use_keyspace()
    real = session.execute
    lost: list[bool] = []

    def execute(stmt: Any, *args: Any, **kwargs: Any) -> Any:
        query = getattr(getattr(stmt, "prepared_statement", None), "query_string", "")
        if query == q.DECIDE_TXN and not lost:
            lost.append(True)
            if applied:
                real(stmt, *args, **kwargs)
            raise WriteTimeout("injected: commit reply lost", write_type=WriteType.CAS)
        return real(stmt, *args, **kwargs)

    monkeypatch.setattr(session, "execute", execute)
    cstore.write_allocations([alloc(x, {b: {"VCPU": 1}}, 1)])
    monkeypatch.undo()

    assert lost
    assert holding(cstore, x) == {b: {"VCPU": 1}}
    consumer = cstore.get_consumer(x)
    assert consumer is not None and consumer.generation == 2
    check_usage(cstore, [a, b], 4)
