"""A local cluster: its directory, state file and lifecycle (up/start/stop/...)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from claimant.cluster import (
    DEFAULT_HEAP,
    DEFAULT_VERSION,
    MAX_NODES,
    ClusterError,
    config,
    cql,
    jars,
    security,
)
from claimant.cluster import node as proc
from claimant.cluster.config import DEFAULT_BASE_ADDRESS, NATIVE_PORT, NodeSpec

STATE_FILE = "cluster.json"
Echo = Callable[[str], None]


def default_dir() -> Path:
    return Path(platformdirs.user_data_dir("claimant")) / "cluster"


def store_url(
    addresses: list[str], keyspace: str = "claimant", options: str = "", dcs: int = 1
) -> str:
    """``options``: more query options, each starting with ``&``.

    One DC: ``rf`` = min(nodes, 3). Several: the replication per DC
    (``rf=dc1:1,dc2:1``, each min(its nodes, 3)) and ``dc=dc1``, the DC of the
    first contact point; a service in another DC changes ``dc`` to its own.
    The store makes claims SERIAL across the DCs (docs/cassandra.md)."""
    if dcs > 1:
        per_dc = config.replication(len(addresses), dcs)
        rf = ",".join(f"{dc}:{n}" for dc, n in per_dc.items()) + f"&dc={config.dc_of(1, dcs)}"
    else:
        rf = str(min(len(addresses), 3))
    return f"cassandra://{','.join(addresses)}/{keyspace}?rf={rf}{options}"


@dataclass
class NodeState:
    index: int
    pid: int | None = None
    # False only for the nodes of a brand-new cluster (nothing to stream).
    auto_bootstrap: bool = False
    started_once: bool = False


@dataclass
class State:
    version: str
    heap: str
    node_count: int
    created: float = field(default_factory=time.time)
    nodes: list[NodeState] = field(default_factory=list)
    # Node 1's address; state files written before the option default to it.
    base_address: str = DEFAULT_BASE_ADDRESS
    # PasswordAuthenticator with a generated role; TLS-only native port.
    auth: bool = False
    tls: bool = False
    # Data centres, nodes round-robin over them (config.dc_of); 1 = SimpleSnitch.
    dcs: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        raw = json.loads(text)
        nodes = [NodeState(**n) for n in raw.pop("nodes")]
        return cls(nodes=nodes, **raw)


@dataclass(frozen=True)
class NodeStatus:
    index: int
    address: str
    pid: int | None
    state: str  # "up" (answers CQL), "starting" (process alive, no CQL yet) or "down"
    dc: str
    jmx_port: int
    log: Path


def _noop(_: str) -> None:
    pass


class Cluster:
    def __init__(self, directory: Path) -> None:
        self.dir = directory.expanduser().absolute()
        self._base: int | None = None  # from the state file, or from up()
        self._dcs = 1  # likewise
        self._access: cql.Access | None = None  # how our CQL client logs in

    # ---- state ------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def exists(self) -> bool:
        return self.state_path.is_file()

    def load(self) -> State:
        if not self.exists():
            raise ClusterError(
                f"no cluster in {self.dir} (no {STATE_FILE}); create one with "
                f"`claimant cluster up -n N --dir {self.dir}`"
            )
        try:
            state = State.from_json(self.state_path.read_text())
        except (ValueError, TypeError, KeyError) as exc:
            raise ClusterError(f"corrupt state file {self.state_path}: {exc}") from exc
        self._base = config.parse_base_address(state.base_address, state.node_count)
        self._dcs = state.dcs
        return state

    def access(self, state: State) -> cql.Access:
        if self._access is None:
            self._access = security.access(self.dir, auth=state.auth, tls=state.tls)
        return self._access

    def store_url(self) -> str:
        """The URL claimant connects with: logins and TLS included, no secret."""
        state = self.load()
        options = security.url_options(self.dir, auth=state.auth, tls=state.tls)
        addresses = [self.spec(n.index).address for n in state.nodes]
        return store_url(addresses, options=options, dcs=state.dcs)

    def save(self, state: State) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.state_path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise CLI invocations on one directory (two `up`s at once)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ClusterError(
                    f"another `claimant cluster` command is working on {self.dir}"
                ) from exc
            yield

    def spec(self, index: int) -> NodeSpec:
        if self._base is None:
            self._base = 1
            if self.exists():
                self.load()
        return NodeSpec.of(self.dir, index, self._base, self._dcs)

    # ---- queries ----------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        state = self.load()
        out = []
        for ns in state.nodes:
            spec = self.spec(ns.index)
            alive = proc.pid_alive(ns.pid, spec)
            if not alive:
                st = "down"
            elif proc.cql_ready(spec.address, timeout=2.0, access=self.access(state)):
                st = "up"
            else:
                st = "starting"
            out.append(
                NodeStatus(
                    index=ns.index,
                    address=spec.address,
                    pid=ns.pid if alive else None,
                    state=st,
                    dc=spec.dc,
                    jmx_port=spec.jmx_port,
                    log=spec.system_log,
                )
            )
        return out

    def contact_points(self) -> list[str]:
        return [self.spec(n.index).address for n in self.load().nodes]

    # ---- lifecycle --------------------------------------------------------
    def up(
        self,
        count: int,
        *,
        version: str = DEFAULT_VERSION,
        heap: str = DEFAULT_HEAP,
        timeout: float = 180.0,
        echo: Echo = _noop,
        base_address: str | None = None,
        auth: bool = False,
        tls: bool = False,
        dcs: int | None = None,
    ) -> State:
        """Create (or resume) a cluster of ``count`` nodes and wait for CQL.

        ``base_address``: node 1's address, 127.0.0.X (default 127.0.0.1);
        node I is 127.0.0.(X+I-1). ``auth``, ``tls``: see security.py; a
        cluster made without them keeps running without them. ``dcs``: data
        centres (default 1, or what the cluster in DIR has)."""
        if not 1 <= count <= MAX_NODES:
            raise ClusterError(f"-n must be between 1 and {MAX_NODES}")
        if dcs is not None:
            config.check_dcs(dcs, count)
        jars.check_version(version)
        heap = config.parse_heap(heap)
        if base_address is not None:
            config.parse_base_address(base_address, count)
        fresh_dir = not self.dir.exists()
        try:
            return self._up(count, version, heap, timeout, echo, base_address, auth, tls, dcs)
        except ClusterError:
            if fresh_dir and not self.exists():
                shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _up(
        self,
        count: int,
        version: str,
        heap: str,
        timeout: float,
        echo: Echo,
        base_address: str | None,
        auth: bool,
        tls: bool,
        dcs: int | None,
    ) -> State:
        with self.locked():
            if self.exists():
                state = self.load()
                if base_address is not None and base_address.strip() != state.base_address:
                    raise ClusterError(
                        f"{self.dir} holds a cluster on {state.base_address}; destroy it "
                        f"before asking for {base_address}"
                    )
                if state.node_count != count:
                    raise ClusterError(
                        f"{self.dir} holds a {state.node_count}-node cluster; use "
                        f"`claimant cluster start` or destroy it before asking for {count}"
                    )
                if dcs is not None and state.dcs != dcs:
                    raise ClusterError(
                        f"{self.dir} holds a cluster of {state.dcs} data centre(s); destroy it"
                        f" before asking for {dcs}"
                    )
                if state.version != version:
                    raise ClusterError(f"{self.dir} holds Cassandra {state.version}, not {version}")
                missing = [
                    f
                    for f, want, have in (("--auth", auth, state.auth), ("--tls", tls, state.tls))
                    if want and not have
                ]
                if missing:
                    raise ClusterError(
                        f"{self.dir} holds a cluster made without {' and '.join(missing)};"
                        " destroy it first"
                    )
                state.heap = heap
            else:
                if self.dir.exists() and any(p.name != ".lock" for p in self.dir.iterdir()):
                    raise ClusterError(
                        f"{self.dir} exists, is not empty and has no {STATE_FILE}; "
                        "choose another --dir"
                    )
                base = (base_address or DEFAULT_BASE_ADDRESS).strip()
                state = State(
                    version=version,
                    heap=heap,
                    node_count=count,
                    nodes=[NodeState(index=i, auto_bootstrap=False) for i in range(1, count + 1)],
                    base_address=base,
                    auth=auth,
                    tls=tls,
                    dcs=dcs or 1,
                )
                self._base = config.parse_base_address(base, count)
                self._dcs = state.dcs
                # Fail before writing anything if the cluster cannot start at all.
                java, _ = self._preflight(state, echo)
                self._make_secrets(state, java)
                self.save(state)
            self._start(state, list(state.nodes), timeout, echo)
            self._secure(state, timeout, echo)
            self._wait_for_ring(state, timeout, echo)
            return state

    def _make_secrets(self, state: State, java: str) -> None:
        if state.auth:
            security.make_password(self.dir)
        if state.tls:
            addresses = [self.spec(n.index).address for n in state.nodes]
            security.make_keystore(java, self.dir, addresses)

    def _secure(self, state: State, timeout: float, echo: Echo) -> None:
        """With --auth: the default superuser gives way to ours (once)."""
        if not state.auth:
            return
        seed = self.spec(state.nodes[0].index).address
        replication = config.replication(state.node_count, state.dcs)
        security.replace_default_role(seed, self.access(state), replication, timeout)
        echo(f"logins: role {security.ROLE}, password in {security.password_path(self.dir)}")

    def start(
        self,
        index: int | None = None,
        *,
        timeout: float = 180.0,
        echo: Echo = _noop,
        dc: str | None = None,
    ) -> State:
        """Start every stopped node, or node ``index``, or every node of ``dc``."""
        with self.locked():
            state = self.load()
            self._start(state, self._select(state, index, dc), timeout, echo)
            if index is None and dc is None:
                self._secure(state, timeout, echo)
                self._wait_for_ring(state, timeout, echo)
            return state

    def _preflight(self, state: State, echo: Echo) -> tuple[str, Path]:
        java = proc.find_java()
        proc.check_java(java)
        for ns in state.nodes:
            spec = self.spec(ns.index)
            if not proc.pid_alive(ns.pid, spec):
                proc.check_ports(spec)
        return java, jars.resolve(state.version, echo=echo)

    def _start(self, state: State, targets: list[NodeState], timeout: float, echo: Echo) -> None:
        java = proc.find_java()
        proc.check_java(java)
        lib = jars.resolve(state.version, echo=echo)
        to_spawn: list[NodeState] = []
        for ns in targets:
            spec = self.spec(ns.index)
            if not proc.pid_alive(ns.pid, spec):
                proc.check_ports(spec)
                to_spawn.append(ns)
            elif proc.cql_ready(spec.address, access=self.access(state)):
                echo(f"{spec.name} ({spec.address}) already up, pid {ns.pid}")
            else:
                echo(f"{spec.name} ({spec.address}) is running (pid {ns.pid}); waiting for CQL")
                proc.wait_for_cql(spec, ns.pid or 0, timeout, self.access(state))
        # Nodes that have run before own their tokens: start them all at once
        # (one by one, each would wait up to 10 s for the others to connect,
        # block_for_peers_timeout_in_secs). Brand-new nodes go strictly one
        # after the other, seed first, so each allocates tokens against the
        # ring it can already see.
        known = [ns for ns in to_spawn if ns.started_once]
        fresh = [ns for ns in to_spawn if not ns.started_once]
        if known:
            self._spawn_and_wait(state, known, java, lib, timeout, echo)
        for ns in fresh:
            self._spawn_and_wait(state, [ns], java, lib, timeout, echo)

    def _spawn_and_wait(
        self,
        state: State,
        group: list[NodeState],
        java: str,
        lib: Path,
        timeout: float,
        echo: Echo,
    ) -> None:
        began = time.monotonic()
        for ns in group:
            spec = self.spec(ns.index)
            # After its first start a node must bootstrap normally should its
            # data ever be wiped, instead of silently joining empty.
            config.write_node_files(
                spec,
                state.node_count,
                auto_bootstrap=ns.auto_bootstrap or ns.started_once,
                overrides=security.yaml_settings(self.dir, auth=state.auth, tls=state.tls),
            )
            ns.pid = proc.spawn(java, spec, lib, state.heap)
            self.save(state)
            echo(f"{spec.name} ({spec.address}) starting, pid {ns.pid} ...")
        for ns in group:
            spec = self.spec(ns.index)
            proc.wait_for_cql(
                spec,
                ns.pid or 0,
                max(1.0, timeout - (time.monotonic() - began)),
                self.access(state),
            )
            ns.started_once = True
            self.save(state)
            echo(f"{spec.name} ({spec.address}) up in {time.monotonic() - began:.1f}s")

    def _wait_for_ring(self, state: State, timeout: float, echo: Echo) -> None:
        """Every node must know every other one (system.peers) before we return."""
        if state.node_count == 1:
            return
        deadline = time.monotonic() + timeout
        addresses = {self.spec(n.index).address for n in state.nodes}
        while True:
            missing: dict[str, set[str]] = {}
            for address in sorted(addresses):
                try:
                    rows = cql.query(
                        address, "SELECT peer FROM system.peers_v2", access=self.access(state)
                    )
                except (OSError, cql.CQLError):
                    missing[address] = addresses - {address}
                    continue
                seen = {str(r["peer"]) for r in rows}
                if not (addresses - {address}) <= seen:
                    missing[address] = addresses - {address} - seen
            if not missing:
                return
            if time.monotonic() > deadline:
                desc = "; ".join(f"{a} lacks {sorted(m)}" for a, m in missing.items())
                raise ClusterError(f"the ring did not form within {timeout:.0f}s: {desc}")
            time.sleep(0.5)

    def stop(
        self,
        index: int | None = None,
        *,
        timeout: float = 60.0,
        echo: Echo = _noop,
        dc: str | None = None,
    ) -> dict[int, str]:
        """Stop every node, or node ``index``, or every node of ``dc``."""
        with self.locked():
            state = self.load()
            targets = self._select(state, index, dc)
            specs = {n.index: self.spec(n.index) for n in targets}
            pids = {n.index: n.pid or 0 for n in targets}
            outcome = proc.terminate(pids, specs, timeout, echo)
            for ns in targets:
                ns.pid = None
            self.save(state)
            return outcome

    def destroy(self, *, timeout: float = 60.0, echo: Echo = _noop) -> None:
        if self.exists():
            self.stop(timeout=timeout, echo=echo)
        elif self.dir.exists() and any(p.name != ".lock" for p in self.dir.iterdir()):
            # Refuse to rm -rf a directory we did not create.
            raise ClusterError(f"{self.dir} holds no {STATE_FILE}; not removing it")
        shutil.rmtree(self.dir, ignore_errors=True)

    def repair(self, keyspace: str, *, timeout: float = 3600.0, echo: Echo = _noop) -> None:
        """``nodetool repair -pr KEYSPACE`` on every node in turn: each repairs
        its primary ranges with every replica (all DCs), so together they
        cover every range once. Every node must be up (docs/cells.md)."""
        state = self.load()
        down = [f"node{n.index} ({n.dc})" for n in self.status() if n.state != "up"]
        if down:
            raise ClusterError(f"repair needs every node up; not up: {', '.join(down)}")
        java = proc.find_java()
        lib = jars.resolve(state.version, echo=echo)
        for ns in state.nodes:
            spec = self.spec(ns.index)
            tools = spec.conf_dir / "logback-tools.xml"
            if not tools.is_file():
                tools.write_text(config.TOOLS_LOGBACK)
            cmd = config.nodetool_command(java, spec, lib, ["repair", "-pr", keyspace])
            echo(f"node{ns.index} ({spec.address}, {spec.dc}): nodetool repair -pr {keyspace}")
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise ClusterError(
                    f"repair on node{ns.index} did not finish in {timeout:.0f}s"
                ) from None
            if done.returncode != 0:
                said = (done.stderr.strip() or done.stdout.strip()).splitlines()
                raise ClusterError(
                    f"repair on node{ns.index} failed (nodetool exit {done.returncode})"
                    + (f": {said[-1]}" if said else "")
                )

    def _select(self, state: State, only: int | None, dc: str | None = None) -> list[NodeState]:
        if only is not None and dc is not None:
            raise ClusterError("give --node or --dc, not both")
        if dc is not None:
            names = config.dc_names(state.dcs)
            if dc not in names:
                raise ClusterError(f"no data centre {dc!r}: this cluster has {', '.join(names)}")
            return [ns for ns in state.nodes if self.spec(ns.index).dc == dc]
        if only is None:
            return list(state.nodes)
        for ns in state.nodes:
            if ns.index == only:
                return [ns]
        raise ClusterError(f"no node {only}: this cluster has nodes 1..{state.node_count}")


def describe(addresses: list[str], url: str | None = None) -> list[str]:
    """Lines telling a user how to connect."""
    return [
        f"contact points: {', '.join(f'{a}:{NATIVE_PORT}' for a in addresses)}",
        f"store URL:      {url or store_url(addresses)}",
    ]
