"""Per-node configuration: cassandra.yaml, JVM command line, logback.xml.

Everything here is pure (no I/O besides ``write_node_files``) so it can be
tested table-driven without a JVM.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claimant.cluster import CLUSTER_NAME, MAX_NODES, ClusterError, yamlout

NATIVE_PORT = 9042
STORAGE_PORT = 7000
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
# Marker put on every node's command line, so a pid found in the state file
# can be told apart from an unrelated process that reused the number.
NODE_MARKER = "-Dclaimant.cluster.node="

# The DC of a one-DC cluster is SimpleSnitch's fixed name: clusters made
# before --dcs existed keep their snitch and their keyspaces (replication
# {'datacenter1': N}) keep meaning the same. Several DCs are dc1..dcD.
SINGLE_DC = "datacenter1"

_HEAP = re.compile(r"^[1-9][0-9]*[mMgG]$")
_BASE = re.compile(r"^127\.0\.0\.([0-9]{1,3})$")
DEFAULT_BASE_ADDRESS = "127.0.0.1"


def parse_heap(heap: str) -> str:
    """Validate a JVM heap size such as ``512m`` or ``1g``."""
    if not _HEAP.match(heap):
        raise ClusterError(f"invalid heap size {heap!r}: use e.g. 512m or 1g")
    amount = int(heap[:-1]) * (1024 if heap[-1] in "gG" else 1)
    if amount < 256:
        raise ClusterError(f"heap {heap} is too small: Cassandra needs at least 256m")
    return heap.lower()


def parse_base_address(address: str, node_count: int = 1) -> int:
    """The last byte of node 1's address ``127.0.0.X``; nodes take X, X+1, ..."""
    m = _BASE.match(address.strip())
    last = int(m.group(1)) if m else 0
    if not m or not 1 <= last <= 255 - node_count:
        raise ClusterError(
            f"invalid base address {address!r}: use 127.0.0.X, with X+{node_count - 1} <= 254"
        )
    return last


def dc_names(dcs: int) -> list[str]:
    """The data centres of a cluster (or deployment) of ``dcs`` DCs."""
    return [SINGLE_DC] if dcs == 1 else [f"dc{d}" for d in range(1, dcs + 1)]


def dc_of(index: int, dcs: int) -> str:
    """Node (or host) ``index`` (1-based) goes to DC ``(index-1) % dcs + 1``:
    round-robin, so nodes 1..D are the first of each DC and -n 2 --dcs 2
    puts node 1 in dc1 and node 2 in dc2."""
    return dc_names(dcs)[(index - 1) % dcs]


def check_dcs(dcs: int, node_count: int) -> None:
    if not 1 <= dcs <= node_count:
        raise ClusterError(
            f"--dcs {dcs}: need between 1 and {node_count} data centres for {node_count}"
            " node(s) (every DC gets at least one node)"
        )


def dc_sizes(node_count: int, dcs: int) -> dict[str, int]:
    """{dc: number of its nodes}, in DC order."""
    sizes = dict.fromkeys(dc_names(dcs), 0)
    for i in range(1, node_count + 1):
        sizes[dc_of(i, dcs)] += 1
    return sizes


def replication(node_count: int, dcs: int) -> dict[str, int]:
    """{dc: min(its nodes, 3)}: the RF per DC of keyspaces on every node."""
    return {dc: min(n, 3) for dc, n in dc_sizes(node_count, dcs).items()}


@dataclass(frozen=True)
class NodeSpec:
    """Where node ``index`` (1-based) lives: its address, ports, directories."""

    index: int
    root: Path  # DIR/nodeI
    base: int = 1  # node 1 is 127.0.0.<base>
    dcs: int = 1  # data centres in the cluster

    @classmethod
    def of(cls, cluster_dir: Path, index: int, base: int = 1, dcs: int = 1) -> NodeSpec:
        if not 1 <= index <= MAX_NODES:
            raise ClusterError(f"node index must be 1..{MAX_NODES}, got {index}")
        return cls(index=index, root=cluster_dir / f"node{index}", base=base, dcs=dcs)

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def dc(self) -> str:
        return dc_of(self.index, self.dcs)

    @property
    def rack(self) -> str:
        return "rack1"  # one rack per DC (SimpleSnitch's name too)

    @property
    def address(self) -> str:
        # Linux routes all of 127.0.0.0/8 to lo, so every node gets its own
        # loopback address and the standard ports, like ccm does.
        return f"127.0.0.{self.base + self.index - 1}"

    @property
    def jmx_port(self) -> int:
        # JMX "local" mode always binds 127.0.0.1, whatever listen_address is,
        # so nodes need distinct ports there (ccm's 7100, 7200, ...); keyed by
        # the address, so clusters on different base addresses never clash.
        return 7000 + 100 * (self.base + self.index - 1)

    @property
    def ports(self) -> list[tuple[str, int, str]]:
        """(address, port, purpose) of every socket the node will listen on."""
        return [
            (self.address, NATIVE_PORT, "CQL native transport"),
            (self.address, STORAGE_PORT, "internode storage"),
            ("127.0.0.1", self.jmx_port, "JMX"),
        ]

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def yaml_path(self) -> Path:
        return self.conf_dir / "cassandra.yaml"

    @property
    def rackdc_path(self) -> Path:
        return self.conf_dir / "cassandra-rackdc.properties"

    @property
    def logback_path(self) -> Path:
        return self.conf_dir / "logback.xml"

    @property
    def system_log(self) -> Path:
        return self.log_dir / "system.log"

    @property
    def stdout_log(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def storage_dirs(self) -> dict[str, Path]:
        d = self.data_dir
        return {
            "data": d / "data",
            "commitlog": d / "commitlog",
            "hints": d / "hints",
            "saved_caches": d / "saved_caches",
            "cdc_raw": d / "cdc_raw",
        }


def seeds_for(node_count: int, base: int = 1, dcs: int = 1) -> list[str]:
    """Seed list: the first node of each DC, i.e. nodes 1..D (a seed never
    bootstraps, the rest join via it); one seed is plenty on one machine,
    but a DC whose only seed is in another DC could not restart alone."""
    return [f"127.0.0.{base + i}:{STORAGE_PORT}" for i in range(min(dcs, node_count))]


def snitch(dcs: int) -> str:
    # One DC keeps SimpleSnitch (see SINGLE_DC); several need DC names from
    # each node's cassandra-rackdc.properties.
    return "SimpleSnitch" if dcs == 1 else "GossipingPropertyFileSnitch"


def rackdc_properties(node: NodeSpec) -> str:
    return (
        "# Written by `claimant cluster`; regenerated on every start. Do not edit.\n"
        f"dc={node.dc}\nrack={node.rack}\n"
    )


# The settings every node shares, after its own (cassandra_yaml); split out
# only to keep cassandra_yaml short: the order is the rendered file's.
_LWT_STORAGE_AND_SIZING: dict[str, Any] = {
    # --- lightweight transactions -------------------------------------
    # Paxos v2 (4.1+): 2 round trips per conditional write instead of 4,
    # and linearizable reads at SERIAL. The 5.0 default is still v1.
    "paxos_variant": "v2",
    # Keep system.paxos until Paxos repair has proven a quorum of replicas
    # applied the commit; this is what makes commit consistency ANY /
    # LOCAL_QUORUM safe under v2 (saves one more round trip). Cost:
    # system.paxos is only purged by repair (`nodetool repair --paxos-only`
    # or incremental repair). Never switch back to `legacy` afterwards.
    "paxos_state_purging": "repaired",
    "cas_contention_timeout": "1000ms",
    "write_request_timeout": "2000ms",
    "read_request_timeout": "5000ms",
    # --- 5.0 storage formats ------------------------------------------
    # NONE = no 4.x compatibility: newest sstable/commitlog/messaging
    # versions; needed for SAI on new tables and for the BTI format.
    "storage_compatibility_mode": "NONE",
    "sstable": {"selected_format": "bti"},
    "memtable": {
        "configurations": {
            "skiplist": {"class_name": "SkipListMemtable"},
            "trie": {"class_name": "TrieMemtable"},
            "default": {"inherits": "trie"},
        }
    },
    "default_compaction": {
        "class_name": "UnifiedCompactionStrategy",
        "parameters": {"base_shard_count": 1},
    },
    # --- small machine ------------------------------------------------
    "concurrent_compactors": 1,
    "memtable_heap_space": "64MiB",
    "memtable_offheap_space": "64MiB",
    "key_cache_size": "16MiB",
    "counter_cache_size": "0MiB",
    "prepared_statements_cache_size": "16MiB",
    # Cassandra 5.0's scan read-ahead leaks direct buffers under many
    # concurrent range/SAI scans (CASSANDRA-21671): a dev node died with
    # "Cannot reserve ... bytes of direct buffer memory". A read-ahead no
    # larger than the chunk turns the scan reader off.
    "compressed_read_ahead_buffer_size": "0KiB",
    # A dev cluster is dropped and recreated often; snapshots on every
    # DROP/TRUNCATE would only eat the disk.
    "auto_snapshot": False,
}


def cassandra_yaml(
    node: NodeSpec,
    node_count: int,
    *,
    auto_bootstrap: bool,
    cluster_name: str = CLUSTER_NAME,
) -> dict[str, Any]:
    """The cassandra.yaml of one node, as a mapping (see ``render_yaml``)."""
    dirs = node.storage_dirs
    return {
        "cluster_name": cluster_name,
        # 16 vnodes with the replica-aware allocator: an even ring without the
        # 256-token overhead of old releases.
        "num_tokens": 16,
        # "local": of the node's own DC, where its keyspaces' RF is counted.
        "allocate_tokens_for_local_replication_factor": min(
            dc_sizes(node_count, node.dcs)[node.dc], 3
        ),
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        # Brand-new cluster nodes have no data to stream; bootstrapping them
        # would only serialise and slow the start. Restarts ignore the flag.
        "auto_bootstrap": auto_bootstrap,
        "data_file_directories": [str(dirs["data"])],
        "commitlog_directory": str(dirs["commitlog"]),
        "hints_directory": str(dirs["hints"]),
        "saved_caches_directory": str(dirs["saved_caches"]),
        "cdc_raw_directory": str(dirs["cdc_raw"]),
        "heap_dump_path": str(node.root / "heapdump"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "32MiB",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": ",".join(seeds_for(node_count, node.base, node.dcs))}],
            }
        ],
        "listen_address": node.address,
        "rpc_address": node.address,
        "storage_port": STORAGE_PORT,
        "native_transport_port": NATIVE_PORT,
        "start_native_transport": True,
        "endpoint_snitch": snitch(node.dcs),
        "authenticator": {"class_name": "AllowAllAuthenticator"},
        "authorizer": {"class_name": "AllowAllAuthorizer"},
        **copy.deepcopy(_LWT_STORAGE_AND_SIZING),
    }


def _finalize(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}


def render_yaml(config: dict[str, Any]) -> str:
    header = "# Written by `claimant cluster`; regenerated on every start. Do not edit.\n"
    return header + yamlout.dump(_finalize(config))


def jvm_options(
    node: NodeSpec,
    lib_dir: Path,
    heap: str,
    *,
    ring_delay_ms: int = 1000,
) -> list[str]:
    """The java command line (without the ``java`` itself) for one node."""
    jars = sorted(lib_dir.glob("*.jar"))
    jamm = [j for j in jars if j.name.startswith("jamm-")]
    opts: list[str] = [
        f"{NODE_MARKER}{node.root}",
        # Small fixed heap: several nodes share one machine; Xms=Xmx avoids
        # resize pauses. G1 is what 5.0 ships for Java 17.
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-Xss256k",
        "-XX:+UseG1GC",
        "-XX:+ParallelRefProcEnabled",
        "-XX:MaxTenuringThreshold=1",
        "-XX:MaxGCPauseMillis=300",
        "-XX:+UseTLAB",
        "-XX:+ResizeTLAB",
        "-XX:+UseStringDeduplication",
        # No hsperfdata mmap: its writes can stall GC on a busy disk.
        "-XX:+PerfDisableSharedMem",
        # Die on OOM instead of limping on: a dead node shows as down.
        "-XX:+CrashOnOutOfMemoryError",
        f"-XX:ErrorFile={node.log_dir}/hs_err_%p.log",
        f"-Xlog:gc=info:file={node.log_dir}/gc.log:time,uptime:filecount=3,filesize=10M",
        "-Djava.net.preferIPv4Stack=true",
        # Java 17 module system: Cassandra reaches into JDK internals (Unsafe,
        # direct buffers, JMX, attach). Without these it stops with "unable
        # to access required classes" (conf/jvm17-server.options).
        "-Djdk.attach.allowAttachSelf=true",
        *_module_flags(),
        # Netty: direct buffers through Unsafe, and the pre-4.1.75 allocator
        # defaults that 5.0 is tuned for.
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dio.netty.allocator.useCacheForAllThreads=true",
        "-Dio.netty.allocator.maxOrder=11",
        "-Dchronicle.analytics.disable=true",
        # Exact object sizes for memtable accounting (falls back to Unsafe
        # estimates without the agent).
        *[f"-javaagent:{j}" for j in jamm[:1]],
        # JMX only on 127.0.0.1, one port per node (nodetool -p PORT).
        f"-Dcassandra.jmx.local.port={node.jmx_port}",
        "-Djava.rmi.server.hostname=127.0.0.1",
        f"-Dcassandra.config=file://{node.yaml_path}",
        f"-Dlogback.configurationFile=file://{node.logback_path}",
        # Read by GossipingPropertyFileSnitch only (a URL, like the yaml's).
        f"-Dcassandra-rackdc.properties=file://{node.rackdc_path}",
        f"-Dcassandra.logdir={node.log_dir}",
        f"-Dcassandra.storagedir={node.data_dir}",
        f"-Dcassandra.triggers_dir={node.root / 'triggers'}",
        # Keep stdout open (it goes to stdout.log, where JVM crashes land).
        "-Dcassandra-foreground=true",
        # Fast start: the defaults wait 30 s for the ring and poll gossip
        # until it has been stable for several rounds; on one machine the
        # ring is known within a second.
        f"-Dcassandra.ring_delay_ms={ring_delay_ms}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        # NOT -Dcassandra.superuser_setup_delay_ms=0: it is also the retry
        # delay of the role setup task, which then spins (and logs) in a
        # tight loop while any other node is down.
        "-cp",
        ":".join(str(j) for j in jars),
        MAIN_CLASS,
    ]
    return opts


_EXPORTS = [
    "java.base/jdk.internal.misc",
    "java.base/java.lang.ref",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.management/com.sun.jmx.remote.security",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "jdk.unsupported/sun.misc",
    "jdk.attach/sun.tools.attach",
    "jdk.compiler/com.sun.tools.javac.file",
]
_OPENS = [
    "java.base/java.io",
    "java.base/java.lang",
    "java.base/java.lang.module",
    "java.base/java.lang.reflect",
    "java.base/java.nio",
    "java.base/java.util",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.util.jar",
    "java.base/sun.nio.ch",
    "jdk.compiler/com.sun.tools.javac",
    "jdk.management/com.sun.management.internal",
]


def _module_flags() -> list[str]:
    flags: list[str] = []
    for target in _EXPORTS:
        flags += ["--add-exports", f"{target}=ALL-UNNAMED"]
    for target in _OPENS:
        flags += ["--add-opens", f"{target}=ALL-UNNAMED"]
    return flags


TOOLS_LOGBACK = """<configuration>
  <!-- nodetool: warnings and errors only, on stderr. -->
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %date{HH:mm:ss.SSS} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR" /></root>
</configuration>
"""


def nodetool_command(java: str, node: NodeSpec, lib_dir: Path, args: list[str]) -> list[str]:
    """``nodetool -h 127.0.0.1 -p JMX ARGS`` from the same jars (JMX is local-only)."""
    logback = node.conf_dir / "logback-tools.xml"
    return [
        java,
        "-Xmx128m",
        *_module_flags(),
        f"-Dlogback.configurationFile=file://{logback}",
        f"-Dcassandra.logdir={node.log_dir}",
        "-cp",
        ":".join(str(j) for j in sorted(lib_dir.glob("*.jar"))),
        "org.apache.cassandra.tools.NodeTool",
        "-h",
        "127.0.0.1",
        "-p",
        str(node.jmx_port),
        *args,
    ]


def logback_xml(node: NodeSpec) -> str:
    log = node.log_dir
    return f"""<configuration scan="false">
  <!-- Written by `claimant cluster`. INFO to system.log, rolled at 20 MB. -->
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{log}/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{log}/system.log.%i.zip</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>5</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>20MB</maxFileSize>
    </triggeringPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <appender name="ASYNCLOG" class="ch.qos.logback.classic.AsyncAppender">
    <queueSize>1024</queueSize>
    <discardingThreshold>0</discardingThreshold>
    <includeCallerData>true</includeCallerData>
    <appender-ref ref="SYSTEMLOG" />
  </appender>
  <root level="INFO">
    <appender-ref ref="ASYNCLOG" />
  </root>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
</configuration>
"""


def write_node_files(
    node: NodeSpec,
    node_count: int,
    *,
    auto_bootstrap: bool,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Create the node's directories and (re)write its configuration files;
    ``overrides`` replace keys of the yaml (logins, TLS: security.py)."""
    for path in [node.conf_dir, node.log_dir, node.root / "triggers", *node.storage_dirs.values()]:
        path.mkdir(parents=True, exist_ok=True)
    config = cassandra_yaml(node, node_count, auto_bootstrap=auto_bootstrap)
    config.update(overrides or {})
    # 0600: with TLS it holds the keystore's password.
    fd = os.open(node.yaml_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render_yaml(config))
    node.yaml_path.chmod(0o600)
    node.logback_path.write_text(logback_xml(node))
    node.rackdc_path.write_text(rackdc_properties(node))
    (node.conf_dir / "logback-tools.xml").write_text(TOOLS_LOGBACK)
