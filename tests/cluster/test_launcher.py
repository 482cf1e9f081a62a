"""Lifecycle, state file and error paths, with a fake `java` (no JVM needed).

The fake serves CQL on 127.0.2.I instead of 127.0.0.I (and JMX ports are
moved) so these tests run beside a real node on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import ClusterError, config
from claimant.cluster import node as proc
from claimant.cluster.launcher import Cluster, NodeState, State, store_url
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore

FAKE = Path(__file__).with_name("fake_cassandra.py")  # the conftest's fake java


def test_up_status_stop_start_destroy(fake_env: Path) -> None:
    d = fake_env / "c"
    c = Cluster(d)
    state = c.up(1, timeout=20)
    assert state.node_count == 1
    assert [s.state for s in c.status()] == ["up"]
    pid = c.status()[0].pid
    assert pid and proc.pid_alive(pid, c.spec(1))
    # Idempotent: a second `up` leaves the running node alone.
    c.up(1, timeout=20)
    assert c.status()[0].pid == pid
    assert c.stop() == {1: "stopped"}
    assert [s.state for s in c.status()] == ["down"]
    c.start(timeout=20)
    assert [s.state for s in c.status()] == ["up"]
    reloaded = State.from_json((d / "cluster.json").read_text())
    assert reloaded.nodes[0].started_once is True
    c.destroy(timeout=5)
    assert not d.exists()


def test_three_nodes_and_single_node_ops(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CASSANDRA_PEERS", "127.0.2.1,127.0.2.2,127.0.2.3")
    c = Cluster(fake_env / "c3")
    c.up(3, timeout=20)
    assert c.contact_points() == ["127.0.2.1", "127.0.2.2", "127.0.2.3"]
    assert c.stop(3) == {3: "stopped"}
    assert [s.state for s in c.status()] == ["up", "up", "down"]
    c.start(3, timeout=20)
    assert [s.state for s in c.status()] == ["up", "up", "up"]
    # Nodes of a brand-new cluster start with auto_bootstrap false, later true.
    assert "auto_bootstrap: true" in c.spec(3).yaml_path.read_text()


def test_ring_that_never_forms_times_out(fake_env: Path) -> None:
    # No FAKE_CASSANDRA_PEERS: every node claims to see no peer.
    with pytest.raises(ClusterError, match="ring did not form"):
        Cluster(fake_env / "c2").up(2, timeout=3)


def test_node_dying_during_start_shows_log(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CASSANDRA_MODE", "die")
    result = CliRunner().invoke(cluster, ["up", "-n", "1", "--dir", str(fake_env / "d")])
    assert result.exit_code == 1
    assert "died during start" in result.output
    assert "encountered during startup: fake" in result.output
    assert "Traceback" not in result.output


def test_sigkill_after_timeout(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CASSANDRA_MODE", "ignore-term")
    c = Cluster(fake_env / "k")
    c.up(1, timeout=20)
    began = time.monotonic()
    assert c.stop(timeout=1) == {1: "killed"}
    assert time.monotonic() - began < 10
    assert [s.state for s in c.status()] == ["down"]


def test_different_node_count_is_refused(fake_env: Path) -> None:
    c = Cluster(fake_env / "n")
    c.up(1, timeout=20)
    with pytest.raises(ClusterError, match="1-node cluster"):
        c.up(2, timeout=20)


def test_port_taken(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 9)  # 127.0.0.9: free even beside a dev node
    with socket.socket() as holder:
        holder.bind((node.address, 9042))
        holder.listen(1)
        with pytest.raises(ClusterError, match=r"127\.0\.0\.9:9042"):
            proc.check_ports(node)


def test_java_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMANT_JAVA", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    d = tmp_path / "nojava"
    result = CliRunner().invoke(cluster, ["up", "-n", "1", "--dir", str(d)])
    assert result.exit_code == 1
    assert "java not found" in result.output
    assert "Traceback" not in result.output
    assert not d.exists()  # nothing left behind


def test_mvn_missing(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMANT_CASSANDRA_CACHE", str(fake_env / "empty-cache"))
    monkeypatch.setenv("PATH", str(fake_env / "bin"))
    result = CliRunner().invoke(cluster, ["up", "--dir", str(fake_env / "m")])
    assert result.exit_code == 1
    assert "Maven (mvn)" in result.output


@pytest.mark.parametrize(
    ("version", "ok"), [("17.0.15", True), ("11.0.2", True), ("21.0.1", False)]
)
def test_java_version_check(tmp_path: Path, version: str, ok: bool) -> None:
    java = tmp_path / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(0o755)
    if ok:
        proc.check_java(str(java))
    else:
        with pytest.raises(ClusterError, match="Java 21"):
            proc.check_java(str(java))


def test_terminate_real_processes(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 1)
    marker = f"{config.NODE_MARKER}{node.root}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True
    )
    assert proc.pid_alive(child.pid, node)
    # Same pid, other node: a reused pid must not count as ours.
    assert not proc.pid_alive(child.pid, config.NodeSpec.of(tmp_path, 2))
    assert proc.terminate({1: child.pid}, {1: node}, timeout=5) == {1: "stopped"}
    assert not proc.pid_alive(child.pid, node)
    assert proc.terminate({1: child.pid}, {1: node}, timeout=5) == {1: "not running"}


def test_status_without_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(cluster, ["status", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no cluster in" in result.output


def test_destroy_refuses_foreign_dir(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(cluster, ["destroy", "--yes", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert (tmp_path / "precious.txt").exists()


def test_destroy_asks(fake_env: Path) -> None:
    d = fake_env / "ask"
    Cluster(d).up(1, timeout=20)
    result = CliRunner().invoke(cluster, ["destroy", "--dir", str(d)], input="n\n")
    assert result.exit_code == 1  # aborted
    assert d.exists()
    result = CliRunner().invoke(cluster, ["destroy", "--dir", str(d)], input="y\n")
    assert result.exit_code == 0, result.output
    assert not d.exists()


def test_state_round_trip() -> None:
    state = State(
        version="5.0.8",
        heap="512m",
        node_count=2,
        nodes=[NodeState(index=1, pid=42, started_once=True), NodeState(index=2)],
    )
    assert State.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    ("addresses", "url"),
    [
        (["127.0.0.1"], "cassandra://127.0.0.1/claimant?rf=1"),
        (["127.0.0.1", "127.0.0.2"], "cassandra://127.0.0.1,127.0.0.2/claimant?rf=2"),
        (
            ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
            "cassandra://127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4/claimant?rf=3",
        ),
    ],
)
def test_store_url(addresses: list[str], url: str) -> None:
    assert store_url(addresses) == url


@pytest.mark.parametrize(
    ("count", "dcs", "query"),
    [
        (2, 2, "rf=dc1:1,dc2:1&dc=dc1"),
        (5, 2, "rf=dc1:3,dc2:2&dc=dc1"),
        (3, 3, "rf=dc1:1,dc2:1,dc3:1&dc=dc1"),
    ],
)
def test_store_url_per_dc(count: int, dcs: int, query: str) -> None:
    addresses = [f"127.0.0.{i}" for i in range(1, count + 1)]
    url = store_url(addresses, dcs=dcs)
    assert url == f"cassandra://{','.join(addresses)}/claimant?{query}"
    # ... and the store takes it.
    st = open_store(url)
    assert isinstance(st, CassandraStore)
    assert st.dc == "dc1" and st.replication is not None and len(st.replication) == dcs


def test_cli_up_prints_url(fake_env: Path) -> None:
    d = fake_env / "cli"
    result = CliRunner().invoke(cluster, ["up", "-n", "1", "--dir", str(d), "--timeout", "20"])
    assert result.exit_code == 0, result.output
    assert "store URL:      cassandra://127.0.2.1/claimant?rf=1" in result.output
    out = CliRunner().invoke(cluster, ["url", "--dir", str(d)])
    assert out.output.strip() == "cassandra://127.0.2.1/claimant?rf=1"
    status = CliRunner().invoke(cluster, ["status", "--dir", str(d), "--check"])
    assert status.exit_code == 0
    CliRunner().invoke(cluster, ["stop", "--dir", str(d)])
    status = CliRunner().invoke(cluster, ["status", "--dir", str(d), "--check", "--json"])
    assert status.exit_code == 1
    assert '"state": "down"' in status.output


def test_env_dir_default(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMANT_CLUSTER_DIR", str(fake_env / "from-env"))
    result = CliRunner().invoke(cluster, ["status"])
    assert str(fake_env / "from-env") in result.output


def test_no_leftover_processes(fake_env: Path) -> None:
    # Sanity: the fixture's teardown of earlier tests left no fake listening.
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    leftovers = [line for line in out.splitlines() if str(FAKE) in line and str(fake_env) in line]
    assert leftovers == []
    assert os.environ.get("CLAIMANT_JAVA")


def test_auth_is_not_added_to_a_plain_cluster(fake_env: Path) -> None:
    # Issue 9: --auth/--tls are fixed when a cluster is made.
    c = Cluster(fake_env / "plain")
    c.up(1, timeout=20)
    for flag in ("auth", "tls"):
        with pytest.raises(ClusterError, match=f"made without --{flag}"):
            c.up(1, timeout=20, **{flag: True})
    assert "user=" not in c.store_url()


def test_old_state_files_mean_no_auth() -> None:
    raw = json.loads(State(version="5.0.8", heap="512m", node_count=1).to_json())
    del raw["auth"], raw["tls"]
    state = State.from_json(json.dumps(raw))
    assert (state.auth, state.tls) == (False, False)
