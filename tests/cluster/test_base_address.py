"""`claimant cluster up --base-address`: a cluster beside the dev node on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import ClusterError, config
from claimant.cluster.launcher import Cluster, NodeState, State


@pytest.mark.parametrize(
    ("base", "index", "address", "jmx"),
    [
        pytest.param(1, 1, "127.0.0.1", 7100, id="default-node1"),
        pytest.param(1, 3, "127.0.0.3", 7300, id="default-node3"),
        pytest.param(31, 1, "127.0.0.31", 10100, id="base31-node1"),
        pytest.param(31, 3, "127.0.0.33", 10300, id="base31-node3"),
    ],
)
def test_addresses_and_jmx_ports(
    tmp_path: Path, base: int, index: int, address: str, jmx: int
) -> None:
    node = config.NodeSpec.of(tmp_path, index, base)
    assert node.address == address
    assert node.jmx_port == jmx
    assert (address, 9042, "CQL native transport") in node.ports


def test_yaml_listens_and_seeds_on_the_base(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 2, 31)
    y = config.cassandra_yaml(node, 3, auto_bootstrap=False)
    assert y["listen_address"] == y["rpc_address"] == "127.0.0.32"
    assert y["seed_provider"][0]["parameters"] == [{"seeds": "127.0.0.31:7000"}]


@pytest.mark.parametrize(
    ("address", "count", "ok"),
    [
        pytest.param("127.0.0.31", 3, True, id="ok"),
        pytest.param(" 127.0.0.21 ", 1, True, id="spaces"),
        pytest.param("127.0.0.253", 3, False, id="no-room-for-3"),
        pytest.param("127.0.0.0", 1, False, id="network-address"),
        pytest.param("10.0.0.1", 1, False, id="not-loopback"),
        pytest.param("127.0.1.1", 1, False, id="other-subnet"),
        pytest.param("localhost", 1, False, id="a-name"),
    ],
)
def test_parse_base_address(address: str, count: int, ok: bool) -> None:
    if ok:
        assert config.parse_base_address(address, count) == int(address.strip().split(".")[-1])
    else:
        with pytest.raises(ClusterError, match="invalid base address"):
            config.parse_base_address(address, count)


def test_state_remembers_the_base(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "c")
    c.dir.mkdir()
    nodes = [NodeState(index=i) for i in (1, 2, 3)]
    c.save(
        State(version="5.0.8", heap="512m", node_count=3, nodes=nodes, base_address="127.0.0.31")
    )
    again = Cluster(tmp_path / "c")
    assert again.contact_points() == ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
    assert again.spec(2).jmx_port == 10200


def test_state_files_from_before_the_option_stay_on_127_0_0_1(tmp_path: Path) -> None:
    d = tmp_path / "old"
    d.mkdir()
    (d / "cluster.json").write_text(
        '{"version": "5.0.8", "heap": "512m", "node_count": 2, "created": 0, '
        '"nodes": [{"index": 1, "pid": null, "auto_bootstrap": false, "started_once": true}, '
        '{"index": 2, "pid": null, "auto_bootstrap": false, "started_once": true}]}'
    )
    assert Cluster(d).contact_points() == ["127.0.0.1", "127.0.0.2"]


def test_up_refuses_another_base_for_an_existing_cluster(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "c")
    c.dir.mkdir()
    c.save(State(version="5.0.8", heap="512m", node_count=1, nodes=[NodeState(index=1)]))
    with pytest.raises(ClusterError, match=r"holds a cluster on 127\.0\.0\.1"):
        c.up(1, base_address="127.0.0.21", timeout=5)


def test_cli_rejects_a_bad_base_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cluster, ["up", "--dir", str(tmp_path / "c"), "--base-address", "10.0.0.1"]
    )
    assert result.exit_code == 1
    assert "invalid base address '10.0.0.1'" in result.output
    assert not (tmp_path / "c").exists()
