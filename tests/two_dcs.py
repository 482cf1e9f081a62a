"""Shared set-up of the slow tests that need a real cluster of two DCs
(tests/cluster, tests/torture) or the sim's one JSON line (tests/sim,
tests/cluster)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.cluster import ClusterError
from claimant.cluster import node as proc
from claimant.cluster.config import NodeSpec
from claimant.cluster.launcher import Cluster
from tests.addresses import Block


@contextlib.contextmanager
def two_dcs(
    tmp_path_factory: pytest.TempPathFactory, block: Block, name: str, reuse: str | None = None
) -> Iterator[Cluster]:
    """2 DCs x 1 node from the launcher on ``block``'s first two addresses,
    destroyed at the end. Skips without Java, or while another cluster holds
    those addresses. The environment variable ``reuse``, when set, names a
    2-DC cluster already up, used instead and left as it is."""
    given = os.environ.get(reuse) if reuse else None
    if given:
        yield Cluster(Path(given))
        return
    try:
        proc.find_java()
    except ClusterError as exc:
        pytest.skip(str(exc))
    directory = tmp_path_factory.mktemp(name)
    for i in (1, 2):
        spec = NodeSpec.of(directory, i, base=block.first)
        busy = [f"{a}:{p}" for a, p, _ in spec.ports if proc.port_in_use(a, p)]
        if busy:
            pytest.skip(f"{', '.join(busy)} busy (another cluster on {spec.address})")
    c = Cluster(directory / "dcs")
    try:
        c.up(2, dcs=2, base_address=block.base, heap="512m", timeout=900, echo=print)
        yield c
    finally:
        c.destroy(timeout=120)


def sim_json(args: list[str]) -> dict[str, Any]:
    """``claimant sim ARGS --json`` in-process: exit 0 and its one JSON line."""
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("{")]
    data: dict[str, Any] = json.loads(line)
    return data
