"""Issue 13: no two tests that start real Cassandra nodes share an address or
a JMX port (live_auth, in the default suite, and the slow live_cells both
used 127.0.0.5; run at once, JMX 7500 was "address in use")."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from claimant.cluster.config import NodeSpec
from tests import addresses
from tests.addresses import ALL, DEV_NODE, LIVE, Block
from tests.cluster import test_live_auth, test_live_cells, test_live_dcs

# test_live.py checks the launcher's default addresses and skips while the
# dev node holds 127.0.0.1: the one overlap the table allows.
ALLOWED = {frozenset({DEV_NODE.owner, LIVE.owner})}
NAMES = {id(v): k for k, v in vars(addresses).items() if isinstance(v, Block)}


def _jmx_ports(block: Block) -> set[int]:
    return {
        NodeSpec.of(Path("unused"), i, base=block.first).jmx_port for i in range(1, block.count + 1)
    }


def _pairs() -> list[tuple[Block, Block]]:
    return [
        (a, b)
        for a, b in itertools.combinations(ALL, 2)
        if frozenset({a.owner, b.owner}) not in ALLOWED
    ]


@pytest.mark.parametrize(("a", "b"), _pairs(), ids=lambda b: NAMES[id(b)])
def test_blocks_share_no_address_and_no_jmx_port(a: Block, b: Block) -> None:
    assert not set(a.octets) & set(b.octets)
    assert not _jmx_ports(a) & _jmx_ports(b)


def test_every_block_is_listed_once() -> None:
    named = [v for v in vars(addresses).values() if isinstance(v, Block)]
    assert sorted(named, key=lambda b: b.first) == sorted(ALL, key=lambda b: b.first)
    assert len({b.owner for b in ALL}) == len(ALL)


def test_jmx_ports_stay_below_the_ephemeral_range() -> None:
    # The suite's servers bind port 0 (Linux: 32768 and up); a node's JMX
    # port must never be one of them.
    for block in ALL:
        assert block.first >= 1 and block.octets[-1] <= 254
        assert max(_jmx_ports(block)) < 32768


def test_the_live_tests_use_their_own_blocks() -> None:
    used = {
        "live_auth": [test_live_auth.ADDRESS],
        "live_cells": [
            NodeSpec.of(Path("unused"), i, base=int(test_live_cells.BASE.rsplit(".", 1)[1])).address
            for i in (1, 2)
        ],
        "live_dcs": list(test_live_dcs.ADDRESSES),
    }
    for (a, mine), (b, theirs) in itertools.combinations(used.items(), 2):
        assert not set(mine) & set(theirs), f"{a} and {b} share {set(mine) & set(theirs)}"
    assert used["live_auth"] == addresses.LIVE_AUTH.addresses
    assert used["live_cells"] == addresses.LIVE_CELLS.addresses
    assert used["live_dcs"] == addresses.LIVE_DCS.addresses
