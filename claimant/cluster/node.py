"""One Cassandra JVM process: find java, check ports, spawn, probe, stop."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from claimant.cluster import ClusterError, cql
from claimant.cluster.config import NATIVE_PORT, NODE_MARKER, NodeSpec, jvm_options

# Java releases Cassandra 5.0 runs on (build.xml's java.supported).
SUPPORTED_JAVA = (11, 17)


def find_java() -> str:
    """``$CLAIMANT_JAVA``, ``$JAVA_HOME/bin/java`` or ``java`` on PATH."""
    candidates = [os.environ.get("CLAIMANT_JAVA")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ClusterError(
        "java not found: install a Java 17 JDK (e.g. apt-get install openjdk-17-jdk-headless) "
        "or point CLAIMANT_JAVA / JAVA_HOME at one"
    )


def java_major(java: str) -> int:
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterError(f"cannot run {java} -version: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        raise ClusterError(f"cannot tell the Java version of {java}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(java: str) -> None:
    major = java_major(java)
    if major not in SUPPORTED_JAVA:
        raise ClusterError(
            f"{java} is Java {major}; Cassandra 5.0 runs on Java "
            f"{' or '.join(map(str, SUPPORTED_JAVA))} (set CLAIMANT_JAVA or JAVA_HOME)"
        )


def port_in_use(address: str, port: int) -> bool:
    """True if something listens on (or overlaps) ``address:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # REUSEADDR so that TIME_WAIT leftovers of a node that just stopped do
        # not count; a listening socket (ours or a wildcard one) still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ClusterError(
                    f"address {address} is not configured on this machine "
                    "(on macOS: sudo ifconfig lo0 alias " + address + ")"
                ) from exc
            return True
    return False


def check_ports(node: NodeSpec) -> None:
    taken = [(a, p, what) for a, p, what in node.ports if port_in_use(a, p)]
    if taken:
        desc = ", ".join(f"{a}:{p} ({what})" for a, p, what in taken)
        raise ClusterError(
            f"{node.name}: port already in use: {desc}. Another Cassandra or another "
            "`claimant cluster` directory is running; stop it first"
        )


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def pid_alive(pid: int | None, node: NodeSpec) -> bool:
    """Is ``pid`` a live JVM of this very node (not a zombie, not a reused pid)?"""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        # Reap it if it is our own dead child (tests keep the CLI process alive).
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust kill(0)
        return True
    if _proc_state(pid) in ("Z", "X", None):
        return False
    marker = f"{NODE_MARKER}{node.root}".encode()
    # cmdline reads empty while the process is inside execve (just spawned,
    # or the java launcher re-exec'ing itself): retry for a moment.
    for _ in range(30):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        if cmdline:
            return marker in cmdline.split(b"\0")
        time.sleep(0.01)
    return False


def spawn(java: str, node: NodeSpec, lib_dir: Path, heap: str) -> int:
    """Start the node's JVM detached from us; return its pid."""
    node.log_dir.mkdir(parents=True, exist_ok=True)
    args = [java, *jvm_options(node, lib_dir, heap)]
    with open(node.stdout_log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {node.name}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=node.root,
            # Own session: no SIGINT/SIGHUP from the terminal that ran `up`,
            # so the node outlives the CLI.
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def cql_ready(address: str, timeout: float = 2.0, access: cql.Access | None = None) -> bool:
    """Does the node answer a real CQL query (or check a login, which reads
    the roles table: before its roles are set up, ours is refused)?"""
    try:
        rows = cql.query(
            address, "SELECT release_version FROM system.local", timeout=timeout, access=access
        )
    except cql.AuthError:
        return access is not None and access.user is not None
    except (OSError, cql.CQLError):
        return False
    return bool(rows)


def log_tail(node: NodeSpec, lines: int = 25) -> str:
    parts = []
    for path in (node.system_log, node.stdout_log):
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(parts) or f"(no log under {node.log_dir})"


def wait_for_cql(
    node: NodeSpec, pid: int, timeout: float, access: cql.Access | None = None
) -> float:
    """Block until the node answers CQL; return seconds waited."""
    start = time.monotonic()
    while True:
        if not pid_alive(pid, node):
            raise ClusterError(f"{node.name} ({node.address}) died during start.\n{log_tail(node)}")
        if cql_ready(node.address, access=access):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise ClusterError(
                f"{node.name} ({node.address}) did not answer CQL on port {NATIVE_PORT} "
                f"within {timeout:.0f}s (it is still running, pid {pid}).\n{log_tail(node)}"
            )
        time.sleep(0.5)


def terminate(
    pids: dict[int, int],
    nodes: dict[int, NodeSpec],
    timeout: float,
    echo: Callable[[str], None] | None = None,
) -> dict[int, str]:
    """SIGTERM every live pid, wait, SIGKILL stragglers; {index: outcome}."""
    outcome: dict[int, str] = {}
    waiting: dict[int, int] = {}
    for index, pid in pids.items():
        if not pid_alive(pid, nodes[index]):
            outcome[index] = "not running"
            continue
        # SIGTERM runs Cassandra's shutdown hook: drain (flush memtables),
        # so the next start replays no commitlog.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        waiting[index] = pid
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for index, pid in list(waiting.items()):
            if not pid_alive(pid, nodes[index]):
                outcome[index] = "stopped"
                del waiting[index]
        time.sleep(0.2)
    for index, pid in waiting.items():
        if echo:
            echo(f"{nodes[index].name} did not stop within {timeout:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10
        while pid_alive(pid, nodes[index]) and time.monotonic() < kill_deadline:
            time.sleep(0.1)
        outcome[index] = "killed"
    return outcome
