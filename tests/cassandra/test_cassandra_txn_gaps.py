"""What a writer that died mid-transaction leaves, as the rest of the store
meets it (issue 8, the protocol's known limits): locks nobody else names are
the sweeper's; every reader sees a committed transaction whole; and request
records are written plainly once their uuid is claimed.

The writer is a real subprocess (crasher.py) SIGKILLed at a phase of its
transaction."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from claimant.model import (
    ConsumerAllocations,
    Inventory,
    Provider,
    Request,
    RequestGroup,
    RequestStatus,
    new_uuid,
)
from claimant.store import ClaimSpec, open_store
from claimant.store.cassandra import CassandraStore
from claimant.store.cassandra import queries as q

pytestmark = pytest.mark.cassandra

CRASHER = Path(__file__).with_name("crasher.py")
Holding = dict[str, dict[str, int]]


def providers(st: CassandraStore, n: int, vcpu: int) -> list[str]:
    return sorted(
        st.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"p-{new_uuid()[:8]}",
                inventories={"VCPU": Inventory("VCPU", vcpu)},
            )
        ).uuid
        for _ in range(n)
    )


def crash_at(st: CassandraStore, phase: str, consumer: str, target: Holding, gen: Any) -> None:
    """A writer process moving ``consumer`` to ``target``, killed right after
    ``phase`` of its transaction (always a transaction: a write to one
    provider would otherwise take the fast path, test_cassandra_fast.py)."""
    body = json.dumps(
        {
            "consumer_uuid": consumer,
            "project_id": "project-a",
            "user_id": "user-a",
            "allocations": target,
            "expected_generation": gen,
        }
    )
    run = subprocess.run(
        [sys.executable, str(CRASHER), st.url + "&fast_writes=false", phase, body],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -9, f"the writer was not killed: {run.stdout} {run.stderr}"


def raw_lock(st: CassandraStore, consumer: str) -> str | None:
    """The consumer's lock as stored (a plain read resolves nothing)."""
    rows = st._run(q.GET_CONSUMER, [consumer], serial=True)
    return rows[0].txn if rows else None


def fresh_store(st: CassandraStore, now: float) -> CassandraStore:
    """Another service process, its clock at ``now``."""
    fresh = open_store(st.url)
    assert isinstance(fresh, CassandraStore)
    fresh.clock = lambda: now
    return fresh


@pytest.mark.parametrize("existing", [True, False], ids=["existing-consumer", "new-consumer"])
def test_sweeper_resolves_locks_of_a_writer_dead_before_any_pending_part(
    cstore: CassandraStore, existing: bool
) -> None:
    """Killed after locking the consumer, before its first pending part: no
    provider names the transaction, so the sweeper never met it and the lock
    stayed until a reader or writer of that very consumer came by."""
    p = providers(cstore, 2, vcpu=4)
    x = new_uuid()
    if existing:
        cstore.write_allocations(
            [
                ConsumerAllocations(
                    x, "project-a", "user-a", {p[0]: {"VCPU": 1}}, expected_generation=None
                )
            ]
        )
    crash_at(cstore, "locked", x, {p[1]: {"VCPU": 2}}, 1 if existing else None)
    txn = raw_lock(cstore, x)
    assert txn is not None, "the writer died before locking"

    fresh = fresh_store(cstore, time.time() + 3600)
    try:
        fresh.expire_claims()
        assert raw_lock(fresh, x) is None, "the sweeper left the dead writer's lock"
        rows = fresh._run(q.READ_TXN, [txn], serial=True)
        assert rows and rows[0].status == "aborted"
        consumer = fresh.get_consumer(x)
        if existing:
            assert consumer is not None and consumer.generation == 1
            assert {c.provider_uuid for c in fresh.list_claims(consumer_uuid=x)} == {p[0]}
        else:
            assert consumer is None
        # The consumer can be written again at once.
        fresh.write_allocations(
            [
                ConsumerAllocations(
                    x,
                    "project-a",
                    "user-a",
                    {p[1]: {"VCPU": 3}},
                    expected_generation=1 if existing else None,
                )
            ]
        )
    finally:
        fresh.close()


def _by_request(st: CassandraStore, ids: dict[str, str]) -> Any:
    return {c.provider_uuid for c in st.list_claims(request_uuid=ids["request"])}


def _by_group(st: CassandraStore, ids: dict[str, str]) -> Any:
    return {c.provider_uuid for c in st.list_claims(group=ids["group"])}


def _providers_of(st: CassandraStore, ids: dict[str, str]) -> Any:
    return st.providers_of_consumers([ids["consumer"]])


def _usage(st: CassandraStore, ids: dict[str, str]) -> Any:
    return st.usages_by_project("project-a")


READERS: dict[str, Callable[[CassandraStore, dict[str, str]], Any]] = {
    "list_claims-by-request": _by_request,
    "list_claims-by-group": _by_group,
    "providers_of_consumers": _providers_of,
    "usages_by_project": _usage,
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_sees_a_transaction_committed_by_a_writer_that_died(
    cstore: CassandraStore, reader: str
) -> None:
    """Killed right after the commit LWT, nothing rolled forward: these
    readers went to the entries index and showed the old allocation after
    the move had committed."""
    p = providers(cstore, 2, vcpu=4)
    x, request, group = new_uuid(), new_uuid(), "g-" + new_uuid()[:8]
    claim = cstore.claim(
        ClaimSpec(
            p[0],
            0,
            {"VCPU": 1},
            consumer_uuid=x,
            request_uuid=request,
            group=group,
            project_id="project-a",
            user_id="user-a",
        )
    )
    cstore.confirm_claim(claim.uuid)
    ids = {"consumer": x, "request": request, "group": group}
    read = READERS[reader]
    before = read(cstore, ids)

    crash_at(cstore, "committed", x, {p[1]: {"VCPU": 2}}, "any")
    assert raw_lock(cstore, x) is not None, "the writer died before committing"

    # A fresh process, well within the transaction's deadline: committed is
    # committed, no sweeper needed.
    fresh = fresh_store(cstore, time.time())
    try:
        got = read(fresh, ids)
        expected = {
            "list_claims-by-request": set(),
            "list_claims-by-group": set(),
            "providers_of_consumers": {p[1]},
            "usages_by_project": {"unknown": {"VCPU": 2, "consumer_count": 1}},
        }[reader]
        assert got != before
        assert got == expected, f"{reader} shows a stale write after its commit"
    finally:
        fresh.close()


def test_save_after_create_is_not_shadowed_by_the_creating_lwt(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client clock behind the coordinators': the create's LWT carried the
    (later) Paxos timestamp, so the next plain save of the record lost to it
    and the request stayed pending."""
    cluster = cstore._use_keyspace().cluster
    real = cluster.timestamp_generator
    monkeypatch.setattr(
        cluster, "timestamp_generator", lambda: real() - 60_000_000
    )  # 60 s behind, still monotonic
    request = Request(
        uuid=new_uuid(), groups=(RequestGroup(name="", resources={"VCPU": 1}),), project_id="p"
    )
    created = cstore.create_request(request)
    cstore.save_request(created.evolve(status=RequestStatus.ACTIVE))
    assert cstore.get_request(request.uuid).status is RequestStatus.ACTIVE


def test_claim_confirmed_during_a_write_of_its_consumer_waits_for_it(
    cstore: CassandraStore,
) -> None:
    """A native claim of consumer x confirmed (and answered) while a Placement
    PUT of x was pending: the PUT then committed over the allocations it had
    seen, and x held the PUT's allocation plus the claim, though the confirm
    was acknowledged before the PUT's commit (a serial order would have
    replaced it)."""
    p = providers(cstore, 3, vcpu=4)
    x = new_uuid()
    cstore.write_allocations(
        [
            ConsumerAllocations(
                x, "project-a", "user-a", {p[0]: {"VCPU": 1}}, expected_generation=None
            )
        ]
    )
    claim = cstore.claim(ClaimSpec(p[2], 0, {"VCPU": 1}, consumer_uuid=x))
    other = open_store(cstore.url)
    assert isinstance(other, CassandraStore)
    other.clock = cstore.clock
    events: list[str] = []
    errors: list[BaseException] = []

    def confirm() -> None:
        try:
            other.confirm_claim(claim.uuid)
            events.append("confirmed")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=confirm)

    def hook(phase: str, txn: str) -> None:
        if phase == "pending":
            thread.start()
            # Long enough for a confirm that does not wait to finish first;
            # one that waits is not hurried by it.
            thread.join(timeout=3)
        elif phase == "committed":
            events.append("committed")

    cstore.txn_hook = hook
    try:
        cstore.write_allocations(
            [
                ConsumerAllocations(
                    x, "project-a", "user-a", {p[1]: {"VCPU": 2}}, expected_generation=1
                )
            ]
        )
    finally:
        cstore.txn_hook = None
        thread.join()
        other.close()
    assert not errors, errors
    got = {c.provider_uuid: c.amounts for c in cstore.list_claims(consumer_uuid=x)}
    if events.index("confirmed") < events.index("committed"):
        assert got == {p[1]: {"VCPU": 2}}, "a confirm acknowledged before the write survived it"
    else:
        assert got == {p[1]: {"VCPU": 2}, p[2]: {"VCPU": 1}}
