"""Issue 12, test (a): two real data centres, one service per DC, many
clients through BOTH racing for the last 10 units of one provider: exactly
10 win and the provider is never over capacity.

2 DCs x 1 node from the launcher on 127.0.0.4 (dc1) and 127.0.0.5 (dc2),
beside the dev node on 127.0.0.1, which this test never touches; destroyed
at the end (slow: two JVMs from scratch)::

    pytest -m slow tests/cluster/test_live_cells.py

The second test shows the hazard the default avoids: the same race with
``serial=LOCAL_SERIAL_UNSAFE`` (what ``dc=`` used to imply) runs one Paxos
group per DC and overcommits.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from cassandra import ConsistencyLevel

from claimant.cluster import ClusterError
from claimant.cluster import node as proc
from claimant.cluster.config import NodeSpec
from claimant.cluster.launcher import Cluster
from claimant.model import (
    ClaimantError,
    Conflict,
    ConsumerAllocations,
    InvalidInput,
    Inventory,
    Provider,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore

pytestmark = [pytest.mark.slow, pytest.mark.cassandra]

BASE = "127.0.0.4"
CLIENTS = 64
UNITS = 10
# The hazard is a race: a few rounds make it all but certain to show.
HAZARD_ROUNDS = 5


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        proc.find_java()
    except ClusterError as exc:
        pytest.skip(str(exc))
    directory = tmp_path_factory.mktemp("cells")
    for i in (1, 2):
        spec = NodeSpec.of(directory, i, base=4)
        busy = [f"{a}:{p}" for a, p, _ in spec.ports if proc.port_in_use(a, p)]
        if busy:
            pytest.skip(f"{', '.join(busy)} busy (another cluster on {spec.address})")
    # Never a directory given from outside: this cluster is destroyed at the end.
    c = Cluster(directory / "dcs")
    try:
        c.up(2, dcs=2, base_address=BASE, heap="512m", timeout=900, echo=print)
        yield c
    finally:
        c.destroy(timeout=120)


def _stores(cells: Cluster, keyspace: str, extra: str = "") -> list[CassandraStore]:
    """One store (one service) per DC: the launcher's URL, ``dc`` its own."""
    url = cells.store_url().replace("/claimant?", f"/{keyspace}?") + "&timeout=20" + extra
    assert "rf=dc1:1,dc2:1&dc=dc1" in url
    stores = []
    for dc in ("dc1", "dc2"):
        st = open_store(url.replace("dc=dc1", f"dc={dc}"))
        assert isinstance(st, CassandraStore)
        stores.append(st)
    stores[0].drop()
    stores[0].migrate()
    return stores


def _provider(st: CassandraStore) -> str:
    return st.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"last-units-{new_uuid()[:8]}",
            inventories={"VCPU": Inventory("VCPU", UNITS)},
        )
    ).uuid


def _race(stores: list[CassandraStore], provider: str) -> tuple[Counter[str], list[str]]:
    """CLIENTS threads, alternately through each DC's store, each asking for
    one unit; their outcomes and the consumers told they got it."""
    outcomes: Counter[str] = Counter()
    placed: list[str] = []
    guard = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        st = stores[i % len(stores)]
        consumer = new_uuid()
        write = ConsumerAllocations(
            consumer_uuid=consumer,
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
            if outcome == "placed":
                placed.append(consumer)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, placed


def _held(st: CassandraStore, provider: str, consumers: list[str]) -> int:
    """Units the acknowledged consumers hold on the provider, as the store
    reads them back (each consumer's own allocation record)."""
    return sum(1 for c in consumers if provider in st.providers_of_consumers([c]))


def test_last_units_through_two_dcs_exactly_ten_win(cells: Cluster) -> None:
    stores = _stores(cells, "cells_race")
    try:
        assert [st.dcs for st in stores] == [["dc1", "dc2"]] * 2
        provider = _provider(stores[0])
        outcomes, placed = _race(stores, provider)
        print(f"{CLIENTS} clients through dc1 and dc2: {dict(outcomes)}")
        assert outcomes["placed"] == UNITS, outcomes
        assert outcomes["placed"] + outcomes["conflict"] == CLIENTS, outcomes
        for st in stores:  # both DCs read the same, full, never over
            assert st.get_usage(provider).usages["VCPU"].used == UNITS
            assert _held(st, provider, placed) == UNITS
    finally:
        for st in stores:
            st.close()


def test_local_serial_refused_on_the_keyspace_as_it_is(cells: Cluster) -> None:
    """The URL says nothing of dc1 (rf=1, the default) but the keyspace, made
    by another service, spans both DCs: LOCAL_SERIAL is refused when the
    store connects, and the plain consistency becomes QUORUM."""
    made = _stores(cells, "cells_check")
    for st in made:
        st.close()
    hosts = ",".join(cells.contact_points())
    refused = open_store(f"cassandra://{hosts}/cells_check?dc=dc2&serial=LOCAL_SERIAL")
    assert isinstance(refused, CassandraStore)
    with pytest.raises(InvalidInput) as err:
        refused.list_resource_classes()
    assert "replicas in 2 data centres (dc1, dc2)" in str(err.value)
    st = open_store(f"cassandra://{hosts}/cells_check?dc=dc2")
    assert isinstance(st, CassandraStore)
    try:
        st.list_resource_classes()
        assert st.dcs == ["dc1", "dc2"]
        assert (st.serial, st.consistency) == (ConsistencyLevel.SERIAL, ConsistencyLevel.QUORUM)
    finally:
        st.close()
        made[0].drop()


def test_local_serial_across_dcs_overcommits(cells: Cluster) -> None:
    """The old default (LOCAL_SERIAL with ``dc``), now only reachable by the
    explicit unsafe name: each DC's Paxos group decides on its own. A race,
    so not certain in one round; the rounds stop at the first overcommit."""
    stores = _stores(cells, "cells_hazard", "&serial=LOCAL_SERIAL_UNSAFE")
    try:
        rounds = []
        for _ in range(HAZARD_ROUNDS):
            provider = _provider(stores[0])
            outcomes, placed = _race(stores, provider)
            rounds.append(dict(outcomes))
            if outcomes["placed"] > UNITS:
                held = _held(stores[0], provider, placed)
                print(f"LOCAL_SERIAL across 2 DCs: {dict(outcomes)}, {held} units held of {UNITS}")
                break
        else:
            pytest.skip(f"no overcommit in {HAZARD_ROUNDS} rounds (a race): {rounds}")
        assert held > UNITS, rounds
    finally:
        for st in stores:
            st.close()
