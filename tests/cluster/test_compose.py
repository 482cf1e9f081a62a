"""The multi-host docker-compose writer."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.cluster import cluster
from claimant.cluster import ClusterError, compose

yaml = pytest.importorskip("yaml")

IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("index", "seeds"),
    [(1, "10.0.0.1,10.0.0.2"), (2, "10.0.0.1,10.0.0.2"), (3, "10.0.0.1,10.0.0.2")],
)
def test_cassandra_service_per_host(tmp_path: Path, index: int, seeds: str) -> None:
    compose.write_deployment(tmp_path, 3, IPS)
    doc = _load(tmp_path / f"host{index}" / "docker-compose.yml")
    svc = doc["services"]["cassandra"]
    env = svc["environment"]
    me = IPS[index - 1]
    assert svc["image"] == "cassandra:5.0"
    assert svc["network_mode"] == "host"
    assert env["CASSANDRA_SEEDS"] == seeds
    for var in (
        "CASSANDRA_LISTEN_ADDRESS",
        "CASSANDRA_BROADCAST_ADDRESS",
        "CASSANDRA_RPC_ADDRESS",
        "CASSANDRA_BROADCAST_RPC_ADDRESS",
    ):
        assert env[var] == me
    assert env["CASSANDRA_DC"] == "datacenter1"
    assert env["CASSANDRA_CLUSTER_NAME"] == "claimant"
    assert "-Dcassandra.settings.paxos_variant=v2" in env["JVM_EXTRA_OPTS"].split()
    assert "-Dcassandra.settings.storage_compatibility_mode=NONE" in env["JVM_EXTRA_OPTS"]
    assert "./cassandra/data:/var/lib/cassandra" in svc["volumes"]
    assert "./cassandra/log:/var/log/cassandra" in svc["volumes"]
    assert (tmp_path / f"host{index}" / "cassandra" / "data").is_dir()


def test_claimant_service(tmp_path: Path) -> None:
    compose.write_deployment(tmp_path, 3, IPS)
    svc = _load(tmp_path / "host2" / "docker-compose.yml")["services"]["claimant"]
    cmd = svc["command"]
    assert cmd[0] == "serve"
    assert cmd[cmd.index("--store") + 1] == "cassandra://10.0.0.1,10.0.0.2,10.0.0.3/claimant?rf=3"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--auth") + 1] == "tokens"
    assert cmd[cmd.index("--token-file") + 1] == "/etc/claimant/tokens.json"
    assert svc["depends_on"]["cassandra"]["condition"] == "service_healthy"
    tokens = tmp_path / "host2" / "secrets" / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    entry = next(iter(json.loads(tokens.read_text())["tokens"].values()))
    assert entry["role"] == "admin"
    # Every host gets the same token file.
    assert tokens.read_text() == (tmp_path / "host1" / "secrets" / "tokens.json").read_text()
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["claimant"]' in dockerfile


@pytest.mark.parametrize(("count", "rf"), [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_rf_and_placeholders(tmp_path: Path, count: int, rf: int) -> None:
    compose.write_deployment(tmp_path, count, ["192.168.1.10"])
    doc = _load(tmp_path / "host1" / "docker-compose.yml")
    env = doc["services"]["cassandra"]["environment"]
    assert env["CASSANDRA_LISTEN_ADDRESS"] == "192.168.1.10"
    store = doc["services"]["claimant"]["command"][2]
    assert store.endswith(f"/claimant?rf={rf}")
    if count > 1:
        assert "${HOST2_IP:?" in store
        env_file = (tmp_path / "host1" / ".env").read_text().splitlines()
        assert env_file[0] == "HOST1_IP=192.168.1.10"
        assert env_file[1] == "HOST2_IP="


@pytest.mark.parametrize(
    ("count", "ips"), [(2, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]), (2, ["not-an-ip"])]
)
def test_bad_host_ips(tmp_path: Path, count: int, ips: list[str]) -> None:
    with pytest.raises(ClusterError):
        compose.write_deployment(tmp_path, count, ips)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    compose.write_deployment(tmp_path, 1, [])
    with pytest.raises(ClusterError):
        compose.write_deployment(tmp_path, 1, [])
    compose.write_deployment(tmp_path, 1, [], overwrite=True)


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    args = ["compose", "-n", "3", "--out", str(out)]
    for ip in IPS:
        args += ["--host-ip", ip]
    result = CliRunner().invoke(cluster, args)
    assert result.exit_code == 0, result.output
    assert str(out / "host3" / "docker-compose.yml") in result.output
    again = CliRunner().invoke(cluster, args)
    assert again.exit_code == 1
    assert "Traceback" not in again.output


def _compose_ids(user: str) -> tuple[int, int]:
    """``${CLAIMANT_UID:-1000}:${CLAIMANT_GID:-1000}`` as compose resolves it
    with no .env override."""
    m = re.fullmatch(r"\$\{CLAIMANT_UID:-(\d+)\}:\$\{CLAIMANT_GID:-(\d+)\}", user)
    assert m, user
    return int(m.group(1)), int(m.group(2))


def test_claimant_container_can_read_its_token_file(tmp_path: Path) -> None:
    # Issue 9: the 0600 token file belonged to the operator while the image
    # ran as nobody, so `claimant serve` could not read it.
    compose.write_deployment(tmp_path, 2, IPS[:2])
    for host in ("host1", "host2"):
        svc = _load(tmp_path / host / "docker-compose.yml")["services"]["claimant"]
        tokens = tmp_path / host / "secrets" / "tokens.json"
        st = tokens.stat()
        assert "user" in svc, "the container would run as the image's nobody"
        assert _compose_ids(svc["user"]) == (st.st_uid, st.st_gid)
        assert stat.S_IMODE(st.st_mode) == 0o600  # the owner only; others still cannot
        assert st.st_uid != 0, "the API server would run as root"
    readme = (tmp_path / "README.md").read_text()
    assert "CLAIMANT_UID" in readme
