"""Issue 12: the store URL's replication per data centre and the consistency
it implies, checked when the store is opened (no node needed). The race
across two real DCs is tests/cluster/test_live_cells.py."""

from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel

from claimant.model import InvalidInput
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore
from claimant.store.cassandra.schema import keyspace_cql


def _open(query: str) -> CassandraStore:
    st = open_store(f"cassandra://127.0.0.1/ks?{query}")
    assert isinstance(st, CassandraStore)
    return st


def test_per_dc_replication_is_parsed() -> None:
    st = _open("rf=dc1:3,dc2:2&dc=dc2")
    assert st.replication == {"dc1": 3, "dc2": 2}
    assert st.rf == 5
    assert st.dc == "dc2"
    assert st.dcs == ["dc1", "dc2"]


@pytest.mark.parametrize(
    ("query", "serial", "consistency"),
    [
        # One DC: as before, except that claims are SERIAL even with dc.
        ("rf=1", ConsistencyLevel.SERIAL, ConsistencyLevel.QUORUM),
        ("rf=3&dc=dc1", ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_QUORUM),
        ("rf=dc1:3&dc=dc1", ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_QUORUM),
        ("rf=3&dc=dc1&serial=LOCAL_SERIAL", ConsistencyLevel.LOCAL_SERIAL, None),
        # Several DCs: one Paxos group, plain reads see the other DCs' writes.
        ("rf=dc1:1,dc2:1&dc=dc1", ConsistencyLevel.SERIAL, ConsistencyLevel.QUORUM),
        ("rf=dc1:1,dc2:1", ConsistencyLevel.SERIAL, ConsistencyLevel.QUORUM),
        ("rf=dc1:1,dc2:1&serial=serial", ConsistencyLevel.SERIAL, ConsistencyLevel.QUORUM),
        # An explicit plain consistency is the operator's choice.
        (
            "rf=dc1:3,dc2:3&dc=dc1&consistency=LOCAL_QUORUM",
            ConsistencyLevel.SERIAL,
            ConsistencyLevel.LOCAL_QUORUM,
        ),
        # The explicit, unsafe opt-in (the tests that show the hazard use it).
        (
            "rf=dc1:1,dc2:1&dc=dc1&serial=LOCAL_SERIAL_UNSAFE",
            ConsistencyLevel.LOCAL_SERIAL,
            ConsistencyLevel.QUORUM,
        ),
    ],
)
def test_consistency_levels(query: str, serial: int, consistency: int | None) -> None:
    st = _open(query)
    assert st.serial == serial
    if consistency is not None:
        assert st.consistency == consistency


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("rf=dc1:1,dc2:1&dc=dc1&serial=LOCAL_SERIAL", "replicas in 2 data centres"),
        ("rf=dc1:1,dc2:1&serial=local_serial", "could both take a provider's last unit"),
        ("rf=dc1:1,dc2:1&dc=dc3", "dc 'dc3' is not among the data centres of rf (dc1, dc2)"),
        ("rf=dc1:1,dc1:2", "data centre dc1 twice"),
        ("rf=dc1:0,dc2:1", "rf (dc1) must be between 1 and 20"),
        ("rf=dc1:x", "rf (dc1) must be an integer"),
        ("rf=dc1:1,dc2", "give N, or DC:N for each data centre"),
        ("rf=dc1:1,", "give N, or DC:N for each data centre"),
        ("rf=d'c:1", "give N, or DC:N for each data centre"),
        ("rf=0", "rf must be between 1 and 20"),
        ("serial=QUORUM", "serial must be one of SERIAL, LOCAL_SERIAL, LOCAL_SERIAL_UNSAFE"),
        ("consistency=SERIAL", "consistency must be one of"),
    ],
)
def test_bad_replication_is_a_clear_error(query: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        _open(query)
    assert needle in str(err.value)
    assert err.value.code == "invalid_input"


@pytest.mark.parametrize(
    ("rf", "dc", "replication"),
    [
        (1, None, "{'class': 'SimpleStrategy', 'replication_factor': 1}"),
        (3, "dc1", "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"),
        (
            {"dc1": 1, "dc2": 1},
            "dc1",
            "{'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}",
        ),
        (
            {"east": 3, "west": 2},
            None,
            "{'class': 'NetworkTopologyStrategy', 'east': 3, 'west': 2}",
        ),
    ],
)
def test_keyspace_cql(rf: int | dict[str, int], dc: str | None, replication: str) -> None:
    assert keyspace_cql("claimant", rf, dc) == (
        f"CREATE KEYSPACE IF NOT EXISTS claimant WITH replication = {replication}"
    )
