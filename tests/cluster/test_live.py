"""Against real Cassandra JVMs.

* ``cassandra``: `cluster status` of the running cluster whose directory is in
  $CLAIMANT_TEST_CLUSTER_DIR (CI starts one with scripts/cassandra-node).
* ``slow``: a real 3-node cluster from scratch (about a minute on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import cql
from claimant.cluster import node as proc


def _status(directory: Path) -> dict:
    result = CliRunner().invoke(cluster, ["status", "--json", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.cassandra
def test_status_of_running_cluster(cassandra_cluster_dir: Path) -> None:
    directory = str(cassandra_cluster_dir)
    status = _status(cassandra_cluster_dir)
    assert status["nodes"], status
    for n in status["nodes"]:
        assert n["state"] == "up", n
        assert n["pid"]
        rows = cql.query(n["address"], "SELECT release_version FROM system.local")
        assert rows[0]["release_version"] == status["version"]
    check = CliRunner().invoke(cluster, ["status", "--check", "--dir", directory])
    assert check.exit_code == 0


@pytest.mark.slow
def test_three_real_nodes(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        if proc.port_in_use(f"127.0.0.{i}", 9042):
            pytest.skip(f"127.0.0.{i}:9042 is busy (another cluster is running)")
    driver = pytest.importorskip("cassandra.cluster")
    directory = tmp_path / "c3"
    run = CliRunner()
    try:
        up = run.invoke(cluster, ["up", "-n", "3", "--dir", str(directory), "--heap", "512m"])
        assert up.exit_code == 0, up.output
        assert "cassandra://127.0.0.1,127.0.0.2,127.0.0.3/claimant?rf=3" in up.output
        assert [n["state"] for n in _status(directory)["nodes"]] == ["up"] * 3

        session_cluster = driver.Cluster(["127.0.0.1"])
        session = session_cluster.connect()
        session.execute(
            "CREATE KEYSPACE live_test WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"
        )
        session.execute("CREATE TABLE live_test.t (k int PRIMARY KEY, v int)")
        insert = "INSERT INTO live_test.t (k, v) VALUES (1, 1) IF NOT EXISTS"
        assert session.execute(insert).one()[0]
        session_cluster.shutdown()

        stop = run.invoke(cluster, ["stop", "--node", "3", "--dir", str(directory)])
        assert stop.exit_code == 0, stop.output
        assert [n["state"] for n in _status(directory)["nodes"]] == ["up", "up", "down"]

        start = run.invoke(cluster, ["start", "--node", "3", "--dir", str(directory)])
        assert start.exit_code == 0, start.output
        assert [n["state"] for n in _status(directory)["nodes"]] == ["up"] * 3

        # Data survives a full stop/start.
        assert run.invoke(cluster, ["stop", "--dir", str(directory)]).exit_code == 0
        assert run.invoke(cluster, ["start", "--dir", str(directory)]).exit_code == 0
        session_cluster = driver.Cluster(["127.0.0.3"])
        rows = session_cluster.connect().execute("SELECT v FROM live_test.t WHERE k = 1").all()
        session_cluster.shutdown()
        assert [r.v for r in rows] == [1]
    finally:
        destroy = run.invoke(cluster, ["destroy", "--yes", "--dir", str(directory)])
        assert destroy.exit_code == 0, destroy.output
    assert not directory.exists()
