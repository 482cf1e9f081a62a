"""cassandra.yaml, JVM options and logback generation: pure functions, no JVM."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from claimant.cluster import ClusterError, config, yamlout

yaml = pytest.importorskip("yaml")


@pytest.mark.parametrize(
    ("index", "count", "address", "jmx", "rf"),
    [
        (1, 1, "127.0.0.1", 7100, 1),
        (1, 3, "127.0.0.1", 7100, 3),
        (2, 3, "127.0.0.2", 7200, 3),
        (3, 3, "127.0.0.3", 7300, 3),
        (5, 5, "127.0.0.5", 7500, 3),
        (2, 2, "127.0.0.2", 7200, 2),
    ],
)
def test_yaml_per_node(
    tmp_path: Path, index: int, count: int, address: str, jmx: int, rf: int
) -> None:
    node = config.NodeSpec.of(tmp_path, index)
    assert node.address == address
    assert node.jmx_port == jmx
    doc = yaml.safe_load(
        config.render_yaml(config.cassandra_yaml(node, count, auto_bootstrap=False))
    )
    assert doc["listen_address"] == address
    assert doc["rpc_address"] == address
    assert doc["native_transport_port"] == 9042
    assert doc["storage_port"] == 7000
    assert doc["allocate_tokens_for_local_replication_factor"] == rf
    # Node 1 is the only seed, on every node.
    seeds = doc["seed_provider"][0]["parameters"][0]["seeds"]
    assert seeds == "127.0.0.1:7000"
    assert doc["seed_provider"][0]["class_name"].endswith("SimpleSeedProvider")
    root = tmp_path / f"node{index}"
    assert doc["data_file_directories"] == [str(root / "data" / "data")]
    for key, sub in [
        ("commitlog_directory", "commitlog"),
        ("hints_directory", "hints"),
        ("saved_caches_directory", "saved_caches"),
        ("cdc_raw_directory", "cdc_raw"),
    ]:
        assert doc[key] == str(root / "data" / sub)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("paxos_variant", "v2"),
        ("paxos_state_purging", "repaired"),
        ("storage_compatibility_mode", "NONE"),
        ("commitlog_sync", "periodic"),
        ("endpoint_snitch", "SimpleSnitch"),
        ("partitioner", "org.apache.cassandra.dht.Murmur3Partitioner"),
        ("cluster_name", "claimant"),
        ("num_tokens", 16),
        ("auto_snapshot", False),
        ("start_native_transport", True),
    ],
)
def test_yaml_fixed_keys(tmp_path: Path, key: str, value: object) -> None:
    node = config.NodeSpec.of(tmp_path, 1)
    doc = yaml.safe_load(config.render_yaml(config.cassandra_yaml(node, 3, auto_bootstrap=True)))
    assert doc[key] == value


@pytest.mark.parametrize("auto_bootstrap", [True, False])
def test_auto_bootstrap_is_passed_through(tmp_path: Path, auto_bootstrap: bool) -> None:
    node = config.NodeSpec.of(tmp_path, 2)
    text = config.render_yaml(config.cassandra_yaml(node, 3, auto_bootstrap=auto_bootstrap))
    assert yaml.safe_load(text)["auto_bootstrap"] is auto_bootstrap


def test_nested_yaml_sections(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 1)
    doc = yaml.safe_load(config.render_yaml(config.cassandra_yaml(node, 1, auto_bootstrap=False)))
    assert doc["memtable"]["configurations"]["default"] == {"inherits": "trie"}
    assert doc["sstable"] == {"selected_format": "bti"}
    assert doc["authenticator"] == {"class_name": "AllowAllAuthenticator"}


@pytest.mark.parametrize("index", [0, 10, -1])
def test_node_index_bounds(tmp_path: Path, index: int) -> None:
    with pytest.raises(ClusterError):
        config.NodeSpec.of(tmp_path, index)


def test_nodes_never_share_a_socket(tmp_path: Path) -> None:
    sockets = [s[:2] for i in range(1, 10) for s in config.NodeSpec.of(tmp_path, i).ports]
    assert len(sockets) == len(set(sockets))


@pytest.mark.parametrize(
    ("heap", "expected"),
    [("512m", "512m"), ("1g", "1g"), ("768M", "768m"), ("2G", "2g"), ("256m", "256m")],
)
def test_parse_heap_ok(heap: str, expected: str) -> None:
    assert config.parse_heap(heap) == expected


@pytest.mark.parametrize("heap", ["512", "m", "0m", "128m", "1.5g", "512k", "", "-1g"])
def test_parse_heap_bad(heap: str) -> None:
    with pytest.raises(ClusterError):
        config.parse_heap(heap)


def _fake_lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ["cassandra-all-5.0.8.jar", "jamm-0.4.0.jar", "guava-32.0.1-jre.jar"]:
        (lib / name).write_bytes(b"")
    return lib


def test_jvm_options(tmp_path: Path) -> None:
    lib = _fake_lib(tmp_path)
    node = config.NodeSpec.of(tmp_path / "c", 2)
    opts = config.jvm_options(node, lib, "512m")
    assert opts[-1] == config.MAIN_CLASS
    assert opts[-3] == "-cp"
    assert opts[-2].split(":") == [str(p) for p in sorted(lib.glob("*.jar"))]
    assert opts[0] == f"{config.NODE_MARKER}{node.root}"
    for flag in [
        "-Xms512m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dio.netty.tryReflectionSetAccessible=true",
        f"-javaagent:{lib / 'jamm-0.4.0.jar'}",
        "-Dcassandra.jmx.local.port=7200",
        f"-Dcassandra.config=file://{node.yaml_path}",
        f"-Dlogback.configurationFile=file://{node.logback_path}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.ring_delay_ms=1000",
        "-Dcassandra-foreground=true",
    ]:
        assert flag in opts, flag
    # Java 17 needs these or Cassandra refuses to start.
    pairs = {(opts[i], opts[i + 1]) for i in range(len(opts) - 1)}
    for kind, target in [
        ("--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"),
        ("--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED"),
        ("--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED"),
        ("--add-opens", "java.base/java.lang=ALL-UNNAMED"),
        ("--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED"),
    ]:
        assert (kind, target) in pairs
    # The role-setup retry delay must not be zero (it would spin).
    assert not any(o.startswith("-Dcassandra.superuser_setup_delay_ms") for o in opts)


def test_write_node_files(tmp_path: Path) -> None:
    node = config.NodeSpec.of(tmp_path, 1)
    config.write_node_files(node, 1, auto_bootstrap=False)
    for path in node.storage_dirs.values():
        assert path.is_dir()
    assert yaml.safe_load(node.yaml_path.read_text())["cluster_name"] == "claimant"
    logback = node.logback_path.read_text()
    assert f"<file>{node.log_dir}/system.log</file>" in logback


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        ("v2", "v2"),
        ("NONE", "NONE"),
        ("yes", '"yes"'),
        ("off", '"off"'),
        ("512m", '"512m"'),
        ("7000:7000", '"7000:7000"'),
        ("a: b", '"a: b"'),
        ("${HOST1_IP}", '"${HOST1_IP}"'),
        ("/var/lib/cassandra", "/var/lib/cassandra"),
        ("", '""'),
        ("x #y", '"x #y"'),
    ],
)
def test_yaml_scalars(value: object, text: str) -> None:
    assert yamlout.scalar(value) == text


def test_yaml_round_trip() -> None:
    data = {
        "a": [{"b": 1, "c": ["x", "y"]}, "z"],
        "d": {"e": {"f": "g: h"}, "empty": {}, "none": []},
        "n": None,
    }
    assert yaml.safe_load(yamlout.dump(data)) == data


def test_nodetool_command(tmp_path: Path) -> None:
    lib = _fake_lib(tmp_path)
    node = config.NodeSpec.of(tmp_path / "c", 3)
    cmd = config.nodetool_command("java", node, lib, ["repair", "--paxos-only"])
    assert cmd[0] == "java"
    i = cmd.index("org.apache.cassandra.tools.NodeTool")
    assert cmd[i + 1 :] == ["-h", "127.0.0.1", "-p", "7300", "repair", "--paxos-only"]
    assert ("--add-opens", "java.base/java.lang=ALL-UNNAMED") in set(pairwise(cmd))


def test_auth_and_tls_settings_reach_the_yaml(tmp_path: Path) -> None:
    # Issue 9: `cluster up --auth --tls`.
    from claimant.cluster import security

    security.make_password(tmp_path)
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    security.keystore_password_path(tmp_path).write_text("kspw\n")
    node = config.NodeSpec.of(tmp_path, 1)
    overrides = security.yaml_settings(tmp_path, auth=True, tls=True)
    config.write_node_files(node, 1, auto_bootstrap=False, overrides=overrides)
    written = yaml.safe_load(node.yaml_path.read_text())
    assert written["authenticator"] == {"class_name": "PasswordAuthenticator"}
    assert written["authorizer"] == {"class_name": "CassandraAuthorizer"}
    tls = written["client_encryption_options"]
    assert (tls["enabled"], tls["optional"], tls["keystore_password"]) == (True, False, "kspw")
    assert tls["keystore"] == str(security.keystore_path(tmp_path))
    assert node.yaml_path.stat().st_mode & 0o077 == 0  # it holds the keystore password
    assert security.password_path(tmp_path).stat().st_mode & 0o077 == 0
    plain = security.yaml_settings(tmp_path, auth=False, tls=False)
    assert plain == {}
