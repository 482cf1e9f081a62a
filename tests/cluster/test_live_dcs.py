"""Two real data centres from the launcher (slow: two JVMs from scratch).

On 127.0.0.4 and 127.0.0.5 (``--base-address``; tests/addresses.py), beside the dev node on
127.0.0.1, which this test never touches.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import DEFAULT_VERSION, config, cql, jars
from claimant.cluster import node as proc
from claimant.cluster.config import NodeSpec
from tests.addresses import LIVE_DCS

BASE = LIVE_DCS.base
ADDRESSES = LIVE_DCS.addresses
# Generous: two JVMs start one after the other on a loaded 2-core machine.
TIMEOUT = "600"


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cluster, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _status(directory: Path) -> list[dict]:
    return json.loads(_invoke("status", "--json", "--dir", str(directory)))["nodes"]


def _ring(directory: Path) -> dict[str, tuple[str, str]]:
    """{address: (dc, 'UN'/'DN'/...)} as node 1's `nodetool status` sees it."""
    # Run directly, not through the CLI command: that one hands the terminal
    # to nodetool, so CliRunner would not capture its output.
    spec = NodeSpec.of(directory, 1, base=LIVE_DCS.first, dcs=2)
    cmd = config.nodetool_command(proc.find_java(), spec, jars.resolve(DEFAULT_VERSION), ["status"])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    ring: dict[str, tuple[str, str]] = {}
    dc = ""
    for line in out.splitlines():
        if m := re.match(r"Datacenter: (\S+)", line):
            dc = m.group(1)
        elif m := re.match(r"([UD][NLJM])\s+(\S+)", line):
            ring[m.group(2)] = (dc, m.group(1))
    return ring


def _ring_becomes(directory: Path, want: dict[str, tuple[str, str]]) -> dict:
    """Poll `nodetool status` until it shows ``want`` (gossip takes a few
    seconds to mark a node down or up); bounded, returns the last ring."""
    deadline = time.monotonic() + 120
    ring = _ring(directory)
    while ring != want and time.monotonic() < deadline:
        time.sleep(2)
        ring = _ring(directory)
    return ring


@pytest.mark.slow
def test_two_data_centres(tmp_path: Path) -> None:
    for i, address in enumerate(ADDRESSES, start=1):
        spec = NodeSpec.of(tmp_path, i, base=LIVE_DCS.first)
        busy = [f"{a}:{p}" for a, p, _ in spec.ports if proc.port_in_use(a, p)]
        if busy:
            pytest.skip(f"{', '.join(busy)} busy (another cluster on {address})")
    directory = tmp_path / "dcs"
    d = str(directory)
    try:
        out = _invoke(
            "up", "-n", "2", "--dcs", "2", "--base-address", BASE, "--dir", d,
            "--heap", "512m", "--timeout", TIMEOUT,
        )  # fmt: skip
        assert "cassandra://127.0.0.4,127.0.0.5/claimant?rf=dc1:1,dc2:1&dc=dc1" in out
        nodes = _status(directory)
        assert [(n["address"], n["dc"], n["state"]) for n in nodes] == [
            ("127.0.0.4", "dc1", "up"),
            ("127.0.0.5", "dc2", "up"),
        ]
        for address, dc in zip(ADDRESSES, ("dc1", "dc2"), strict=True):
            local = cql.query(address, "SELECT data_center, rack FROM system.local")
            assert (local[0]["data_center"], local[0]["rack"]) == (dc, "rack1")
        both_up = {"127.0.0.4": ("dc1", "UN"), "127.0.0.5": ("dc2", "UN")}
        assert _ring_becomes(directory, both_up) == both_up

        stopped = _invoke("stop", "--dc", "dc2", "--dir", d)
        assert "node2: stopped" in stopped and "node1" not in stopped
        assert [n["state"] for n in _status(directory)] == ["up", "down"]
        dc2_down = {"127.0.0.4": ("dc1", "UN"), "127.0.0.5": ("dc2", "DN")}
        assert _ring_becomes(directory, dc2_down) == dc2_down

        _invoke("start", "--dc", "dc2", "--dir", d, "--timeout", TIMEOUT)
        assert [n["state"] for n in _status(directory)] == ["up", "up"]
        assert _ring_becomes(directory, both_up) == both_up
    finally:
        _invoke("destroy", "--yes", "--dir", d)
    assert not directory.exists()
