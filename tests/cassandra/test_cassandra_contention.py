"""Many clients racing for the last units of one provider get a success or a
definite conflict, never a 503, while a quorum is up (issue 8, scenario 5).

The Placement API runs one store object per service process: 64 client
threads in one process, and 4 processes' store objects of 16 threads each."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from claimant.model import (
    ClaimantError,
    Conflict,
    ConsumerAllocations,
    Inventory,
    Provider,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore

pytestmark = pytest.mark.cassandra

CLIENTS = 64
UNITS = 10


def race(stores: list[CassandraStore], provider: str) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    guard = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        st = stores[i % len(stores)]
        write = ConsumerAllocations(
            consumer_uuid=new_uuid(),
            project_id="project-a",
            user_id="user-a",
            allocations={provider: {"VCPU": 1}},
            expected_generation=None,
        )
        start.wait()
        try:
            st.write_allocations([write])
            outcome = "placed"
        except Conflict:
            outcome = "conflict"
        except StoreUnavailable as exc:
            outcome = f"503: {exc}"
        except ClaimantError as exc:  # anything else is a finding too
            outcome = f"{type(exc).__name__}: {exc}"
        with guard:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize("processes", [1, 4])
def test_racing_for_the_last_units_is_success_or_conflict(
    cstore: CassandraStore, processes: int
) -> None:
    provider = cstore.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"p-{new_uuid()[:8]}",
            inventories={"VCPU": Inventory("VCPU", UNITS)},
        )
    ).uuid
    stores = [cstore]
    for _ in range(processes - 1):
        st = open_store(cstore.url)
        assert isinstance(st, CassandraStore)
        st.clock = cstore.clock
        stores.append(st)
    try:
        outcomes = race(stores, provider)
    finally:
        for st in stores[1:]:
            st.close()
    assert outcomes["placed"] == UNITS, outcomes
    assert outcomes["placed"] + outcomes["conflict"] == CLIENTS, outcomes
    assert cstore.get_usage(provider).usages["VCPU"].used == UNITS
