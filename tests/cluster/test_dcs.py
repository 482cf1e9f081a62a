"""Several data centres (`cluster up --dcs`, `compose --dcs`): config, state,
stop/start by DC, with the fake java of conftest (no JVM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import ClusterError, compose, config, security
from claimant.cluster.launcher import Cluster, State

yaml = pytest.importorskip("yaml")


@pytest.mark.parametrize(
    ("count", "dcs", "placement"),
    [
        (1, 1, ["datacenter1"]),
        (3, 1, ["datacenter1"] * 3),
        (2, 2, ["dc1", "dc2"]),
        (5, 2, ["dc1", "dc2", "dc1", "dc2", "dc1"]),
        (3, 3, ["dc1", "dc2", "dc3"]),
    ],
)
def test_nodes_go_round_robin(count: int, dcs: int, placement: list[str]) -> None:
    assert [config.dc_of(i, dcs) for i in range(1, count + 1)] == placement
    sizes = config.dc_sizes(count, dcs)
    assert list(sizes) == config.dc_names(dcs)
    assert sizes == {dc: placement.count(dc) for dc in sizes}


@pytest.mark.parametrize(("dcs", "count"), [(0, 2), (3, 2), (2, 1)])
def test_every_dc_needs_a_node(dcs: int, count: int) -> None:
    with pytest.raises(ClusterError, match="data centres"):
        config.check_dcs(dcs, count)


def test_one_dc_keeps_simple_snitch(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 2)
    doc = config.cassandra_yaml(node, 3, auto_bootstrap=False)
    assert doc["endpoint_snitch"] == "SimpleSnitch"
    assert doc["seed_provider"][0]["parameters"] == [{"seeds": "127.0.0.1:7000"}]
    assert config.rackdc_properties(node).splitlines()[1:] == ["dc=datacenter1", "rack=rack1"]


@pytest.mark.parametrize(
    ("index", "dc", "address", "local_rf"),
    [(1, "dc1", "127.0.0.4", 2), (2, "dc2", "127.0.0.5", 1), (3, "dc1", "127.0.0.6", 2)],
)
def test_two_dcs_yaml_and_rackdc(
    tmp_path: Path, index: int, dc: str, address: str, local_rf: int
) -> None:
    node = config.NodeSpec.of(tmp_path, index, base=4, dcs=2)
    assert (node.dc, node.address) == (dc, address)
    doc = yaml.safe_load(config.render_yaml(config.cassandra_yaml(node, 3, auto_bootstrap=False)))
    assert doc["endpoint_snitch"] == "GossipingPropertyFileSnitch"
    # The first node of each DC is a seed.
    assert doc["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.4:7000,127.0.0.5:7000"
    # dc1 has nodes 1 and 3, dc2 node 2 only.
    assert doc["allocate_tokens_for_local_replication_factor"] == local_rf
    config.write_node_files(node, 3, auto_bootstrap=False)
    lines = node.rackdc_path.read_text().splitlines()
    assert [ln for ln in lines if not ln.startswith("#")] == [f"dc={dc}", "rack=rack1"]
    options = config.jvm_options(node, tmp_path, "512m")
    assert f"-Dcassandra-rackdc.properties=file://{node.rackdc_path}" in options


def test_state_files_from_before_dcs_mean_one() -> None:
    raw = json.loads(State(version="5.0.8", heap="512m", node_count=1).to_json())
    del raw["dcs"]
    assert State.from_json(json.dumps(raw)).dcs == 1


@pytest.mark.parametrize(
    ("count", "dcs", "replication"),
    [
        (1, 1, "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"),
        (5, 1, "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"),
        (3, 2, "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}"),
    ],
)
def test_auth_roles_go_to_every_dc(count: int, dcs: int, replication: str) -> None:
    statement = security.auth_replication_cql(config.replication(count, dcs))
    assert statement == f"ALTER KEYSPACE system_auth WITH replication = {replication}"


def test_up_status_stop_start_by_dc(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CASSANDRA_PEERS", "127.0.2.1,127.0.2.2,127.0.2.3")
    d = str(fake_env / "c")
    run = CliRunner()
    up = run.invoke(cluster, ["up", "-n", "3", "--dcs", "2", "--dir", d, "--timeout", "30"])
    assert up.exit_code == 0, up.output
    # Replicas per DC (nodes 1 and 3 in dc1), this service in dc1.
    assert "cassandra://127.0.2.1,127.0.2.2,127.0.2.3/claimant?rf=dc1:2,dc2:1&dc=dc1" in up.output

    def states() -> list[tuple[str, str]]:
        out = run.invoke(cluster, ["status", "--json", "--dir", d])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.output)
        assert doc["dcs"] == 2
        return [(n["dc"], n["state"]) for n in doc["nodes"]]

    assert states() == [("dc1", "up"), ("dc2", "up"), ("dc1", "up")]
    table = run.invoke(cluster, ["status", "--dir", d])
    assert table.exit_code == 0 and "dc2" in table.output

    stop = run.invoke(cluster, ["stop", "--dc", "dc1", "--dir", d, "--timeout", "10"])
    assert stop.exit_code == 0, stop.output
    assert stop.output.split() == ["node1:", "stopped", "node3:", "stopped"]
    assert states() == [("dc1", "down"), ("dc2", "up"), ("dc1", "down")]

    start = run.invoke(cluster, ["start", "--dc", "dc1", "--dir", d, "--timeout", "30"])
    assert start.exit_code == 0, start.output
    assert states() == [("dc1", "up"), ("dc2", "up"), ("dc1", "up")]

    # Bad input: one line, exit 1, the cluster untouched.
    for args, message in [
        (["stop", "--dc", "dc3"], "no data centre 'dc3': this cluster has dc1, dc2"),
        (["start", "--dc", "datacenter1"], "no data centre 'datacenter1'"),
        (["stop", "--dc", "dc2", "--node", "2"], "give --node or --dc, not both"),
        (["up", "-n", "3", "--dcs", "3"], "cluster of 2 data centre(s)"),
    ]:
        result = run.invoke(cluster, [*args, "--dir", d])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    assert states() == [("dc1", "up"), ("dc2", "up"), ("dc1", "up")]
    # Resuming without --dcs keeps the cluster's DCs.
    again = run.invoke(cluster, ["up", "-n", "3", "--dir", d, "--timeout", "30"])
    assert again.exit_code == 0, again.output
    assert Cluster(Path(d)).load().dcs == 2


def test_up_refuses_more_dcs_than_nodes(tmp_path: Path) -> None:
    d = tmp_path / "c"
    result = CliRunner().invoke(cluster, ["up", "-n", "2", "--dcs", "3", "--dir", str(d)])
    assert result.exit_code == 1
    assert "--dcs 3: need between 1 and 2 data centres" in result.output
    assert not d.exists()


def _env(out: Path, host: int) -> dict[str, str]:
    doc = yaml.safe_load((out / f"host{host}" / "docker-compose.yml").read_text())
    return doc["services"]["cassandra"]["environment"]


def test_compose_dcs(tmp_path: Path) -> None:
    ips = ["10.0.0.1", "10.0.1.1", "10.0.0.2", "10.0.1.2"]
    compose.write_deployment(tmp_path, 4, ips, dcs=2)
    assert [_env(tmp_path, i)["CASSANDRA_DC"] for i in (1, 2, 3, 4)] == ["dc1", "dc2"] * 2
    for i in (1, 2, 3, 4):
        assert _env(tmp_path, i)["CASSANDRA_SEEDS"] == "10.0.0.1,10.0.1.1"
        assert _env(tmp_path, i)["CASSANDRA_ENDPOINT_SNITCH"] == "GossipingPropertyFileSnitch"
    assert "dc1: hosts 1, 3; dc2: hosts 2, 4" in (tmp_path / "README.md").read_text()
    # Each host's service names its own DC; the replication is the same.
    for i, dc in ((1, "dc1"), (2, "dc2"), (4, "dc2")):
        doc = yaml.safe_load((tmp_path / f"host{i}" / "docker-compose.yml").read_text())
        store = doc["services"]["claimant"]["command"][2]
        assert store == f"cassandra://{','.join(ips)}/claimant?rf=dc1:2,dc2:2&dc={dc}"


def test_compose_three_dcs_seed_each(tmp_path: Path) -> None:
    compose.write_deployment(tmp_path, 3, [], dcs=3)
    seeds = _env(tmp_path, 1)["CASSANDRA_SEEDS"].split(",")
    assert len(seeds) == 3
    assert [_env(tmp_path, i)["CASSANDRA_DC"] for i in (1, 2, 3)] == ["dc1", "dc2", "dc3"]


def test_compose_cli_dcs(tmp_path: Path) -> None:
    run = CliRunner()
    out = tmp_path / "one"
    assert run.invoke(cluster, ["compose", "-n", "2", "--out", str(out)]).exit_code == 0
    assert _env(out, 2)["CASSANDRA_DC"] == "datacenter1"
    out = tmp_path / "two"
    result = run.invoke(cluster, ["compose", "-n", "2", "--dcs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _env(out, 2)["CASSANDRA_DC"] == "dc2"
    bad = run.invoke(cluster, ["compose", "-n", "2", "--dcs", "3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1
    assert "need between 1 and 2 data centres" in bad.output
