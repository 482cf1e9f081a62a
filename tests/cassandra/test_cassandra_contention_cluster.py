"""Issue 8, scenario 5 on a real cluster: 3 nodes, RF 3, node 2 stopped, 64
clients racing for the last 10 units of one provider. Each gets a success or
a definite conflict; a 503 only when a quorum is really unreachable (here it
is not: 2 of 3 replicas are up).

Starts its own 3 nodes on 127.0.0.21-23 (the dev node owns 127.0.0.1, the
failover test .11-13) in a temporary directory and destroys them at the end:
``CLAIMANT_TEST_CASSANDRA=127.0.0.1 pytest -m slow tests/cassandra -k contention``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.cluster import config as cluster_config
from claimant.cluster.launcher import Cluster
from claimant.model import Inventory, Provider, new_uuid
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore

pytestmark = [pytest.mark.slow, pytest.mark.cassandra]

BASE = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    mp = pytest.MonkeyPatch()
    spec = cluster_config.NodeSpec
    mp.setattr(spec, "address", property(lambda s: f"127.0.0.{BASE + s.index}"))
    mp.setattr(spec, "jmx_port", property(lambda s: 7000 + 100 * (BASE + s.index)))
    mp.setattr(
        cluster_config,
        "seeds_for",
        lambda *_: [f"127.0.0.{BASE + 1}:{cluster_config.STORAGE_PORT}"],
    )
    # Never a directory given from outside: this cluster is destroyed at the end.
    c = Cluster(Path(tmp_path_factory.mktemp("contention3")))
    try:
        c.up(3, heap="512m", timeout=900, echo=print)
        yield c
    finally:
        c.destroy(timeout=120)
        mp.undo()


def test_last_units_with_a_node_down_are_success_or_conflict(cluster: Cluster) -> None:
    # The race itself lives with the single-node test (same assertions).
    from test_cassandra_contention import CLIENTS, UNITS, race  # type: ignore[import-not-found]

    hosts = ",".join(cluster.contact_points())
    url = f"cassandra://{hosts}/claimant_contention?rf=3&timeout=5"
    setup = open_store(url)
    assert isinstance(setup, CassandraStore)
    setup.drop()
    setup.migrate()
    try:
        provider = setup.create_provider(
            Provider(
                uuid=new_uuid(),
                name="last-units",
                inventories={"VCPU": Inventory("VCPU", UNITS)},
            )
        ).uuid
        cluster.stop(2, timeout=120)
        outcomes = race([setup], provider)
        print(f"{CLIENTS} clients, node 2 down: {dict(outcomes)}")
        assert outcomes["placed"] == UNITS, outcomes
        assert outcomes["placed"] + outcomes["conflict"] == CLIENTS, outcomes
        assert setup.get_usage(provider).usages["VCPU"].used == UNITS
    finally:
        setup.close()
