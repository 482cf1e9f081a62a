"""Who owns which loopback address: every test that starts real Cassandra
nodes (or binds a node's ports) has a block of 127.0.0.N of its own, so no
two of them collide when they run at the same time, in one suite, two
suites or two worktrees. Before this table live_auth (default suite) and
live_cells (slow) both used 127.0.0.5: run together they broke each other
(issue 13). ``tests/test_addresses.py`` checks the blocks never overlap.

A node's JMX port is ``7000 + 100 * N`` on 127.0.0.1 (``NodeSpec.jmx_port``),
so distinct addresses mean distinct JMX ports; all of them lie below Linux's
ephemeral range (32768+), where the suite's servers get their free ports.
The fake launcher nodes (tests/cluster/conftest.py) serve on 127.0.2.I with
JMX 17000 + 100 * I: the ports real nodes on 127.0.0.101-103 would take, so
that block is reserved.

Free for a developer's own clusters: 127.0.0.20, 127.0.0.26-29 and
127.0.0.34-99.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Block:
    first: int  # last octet of node 1's address
    count: int
    owner: str

    @property
    def base(self) -> str:
        """The first address: the launcher's ``--base-address``."""
        return f"127.0.0.{self.first}"

    @property
    def octets(self) -> range:
        return range(self.first, self.first + self.count)

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.{n}" for n in self.octets]


# scripts/test's node (CLAIMANT_TEST_CASSANDRA); the launcher's default.
DEV_NODE = Block(1, 1, "scripts/test, scripts/cassandra-node")
# The one deliberate overlap: this test checks the launcher's default
# addresses, 127.0.0.1-3, so it skips while the dev node runs.
LIVE = Block(1, 3, "tests/cluster/test_live.py")
LIVE_DCS = Block(4, 2, "tests/cluster/test_live_dcs.py")
SIM_CELLS = Block(6, 2, "tests/sim/test_cells.py (claimant sim --cells)")
TORTURE_CELLS = Block(8, 2, "tests/torture/test_run.py, two cells")
LIVE_CELLS = Block(10, 2, "tests/cluster/test_live_cells.py")
# The only one in the default (CI) suite.
LIVE_AUTH = Block(12, 1, "tests/cluster/test_live_auth.py")
BENCH_CELLS = Block(14, 2, "bench/bench_cells.py (its default --base-address)")
CONTENTION_CLUSTER = Block(21, 3, "tests/cassandra/test_cassandra_contention_cluster.py")
LIVE_DC_DOWN = Block(24, 2, "tests/cluster/test_live_dc_down.py")
TORTURE_NODES = Block(31, 3, "tests/torture/test_run.py, three nodes")
FAKE_JMX = Block(101, 3, "tests/cluster/conftest.py: the fake nodes' JMX ports")
# Binds 9042 only, to see `sim --cells` refuse a taken address.
SIM_TAKEN = Block(201, 1, "tests/sim/test_cells.py (a taken address)")

ALL = [
    DEV_NODE,
    LIVE,
    LIVE_DCS,
    SIM_CELLS,
    TORTURE_CELLS,
    LIVE_CELLS,
    LIVE_AUTH,
    BENCH_CELLS,
    CONTENTION_CLUSTER,
    LIVE_DC_DOWN,
    TORTURE_NODES,
    FAKE_JMX,
    SIM_TAKEN,
]
