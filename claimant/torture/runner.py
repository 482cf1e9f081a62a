"""One torture run: start the real processes, run clients and the nemesis,
sample, quiesce, wait out the claim TTL, check, stop everything.

Everything a run creates is named after its run id (providers, traits), so
a store that already holds data is left alone and only the run's own
providers and requests are checked.

With cells (data centres of one Cassandra keyspace), each service and agent
gets the store URL with ``dc=`` its cell, round-robin, and the checker reads
each provider through a store in the provider's home cell (see ``_read``).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from claimant.torture import nemesis as nem
from claimant.torture.checker import NEMESIS, Report, check_final, check_sample
from claimant.torture.history import History, Op, Outcome
from claimant.torture.processes import Proc, ProcessError, claimant_argv, free_port
from claimant.torture.proxy import ProxyThread, ReplyProxy
from claimant.torture.snapshot import (
    Instance,
    Snapshot,
    parse_instances,
    read_requests,
    read_snapshot,
)
from claimant.torture.workload import Client, Topology

ADMIN = {"X-Auth-Token": "admin"}
# Busy timeout given to every process when ``store-errors`` runs on SQLite
# without one in the URL: the lock holder must outlast it, and SQLite's
# default here (30 s) would make each fault half a minute long.
STORE_ERRORS_BUSY_TIMEOUT = 2.0
# Starts of a process that exits while starting (see Run._ready).
SETUP_ATTEMPTS = 3
# How long the first service, which creates the schema, may take to answer.
MIGRATE_TIMEOUT = 600.0
# How long a Cassandra node (or a DC's nodes) may take to start again.
NODE_START_TIMEOUT = 300.0


class SetupError(Exception):
    """The run could not start (exit 2)."""


@dataclass
class TortureConfig:
    store_url: str
    seconds: float
    nemeses: list[str]
    seed: int = 0
    cluster_dir: Path | None = None
    clients: int = 6
    services: int = 2
    shared_providers: int = 4
    build_providers: int = 2
    consumers: int = 8
    claim_ttl: float = 8.0
    expire_interval: float = 1.0
    sample_every: float = 10.0
    client_timeout: float = 10.0
    workdir: Path | None = None
    mix: str = "mixed"  # workload.MIXES
    shared_vcpu: int = 12
    # Data centres to run one service (at least) in each; None: those of the
    # cluster in ``cluster_dir`` when it has several, else no cells.
    cells: list[str] | None = None


@dataclass
class Deployment:
    services: list[Proc] = field(default_factory=list)
    conductor: Proc | None = None
    agents: list[Proc] = field(default_factory=list)
    build_agents: dict[str, str] = field(default_factory=dict)  # agent name -> direct url
    proxies: list[ReplyProxy] = field(default_factory=list)
    proxy_thread: ProxyThread | None = None

    def all(self) -> list[Proc]:
        return [*self.services, *([self.conductor] if self.conductor else []), *self.agents]

    def stop(self) -> None:
        for p in self.all():
            p.stop()
        if self.proxy_thread is not None:
            self.proxy_thread.close()


def sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite:"):
        return None
    if url.startswith("sqlite:///"):
        return "/" + url[len("sqlite:///") :].split("?")[0]
    parts = urlsplit(url)
    return (parts.netloc + parts.path) or None


def _with_busy_timeout(url: str) -> tuple[str, float]:
    options = parse_qs(urlsplit(url).query)
    if "busy_timeout" in options:
        return url, float(options["busy_timeout"][-1])
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}busy_timeout={STORE_ERRORS_BUSY_TIMEOUT:g}", STORE_ERRORS_BUSY_TIMEOUT


def url_option(url: str, key: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(key)
    return values[-1] if values else None


def with_option(url: str, key: str, value: str) -> str:
    """``url`` with query option ``key`` set to ``value`` (replaced if present).

    Edited as text, not re-encoded: ``rf=dc1:1,dc2:1`` stays readable in the
    processes' command lines and logs."""
    base, sep, query = url.partition("?")
    items = [i for i in query.split("&") if i and i.split("=", 1)[0] != key] if sep else []
    return f"{base}?{'&'.join([*items, f'{key}={value}'])}"


def cell_of(index: int, cells: list[str]) -> str | None:
    """Process ``index`` (0-based) of a kind lives in this cell: round-robin."""
    return cells[index % len(cells)] if cells else None


def cell_outcomes(ops: list[Op], service_cell: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per cell, the outcomes of the client operations its services answered
    (``via``, the service's URL): all of them, and those that began and ended
    while a DC fault held *another* DC down (what the cell did on its own)."""
    windows = [
        (str(o.value["dc"]), o.invoked, o.completed if o.completed is not None else float("inf"))
        for o in ops
        if o.process == NEMESIS and "dc" in o.value
    ]
    out: dict[str, dict[str, Counter[str]]] = {
        cell: {"all": Counter(), "other_dc_faulted": Counter()}
        for cell in sorted(set(service_cell.values()))
    }
    for o in ops:
        cell = service_cell.get(str(o.result.get("via", ""))) if o.process != NEMESIS else None
        if cell is None:
            continue
        outcome = o.outcome.value if o.outcome else Outcome.INFO.value
        out[cell]["all"][outcome] += 1
        end = o.completed if o.completed is not None else float("inf")
        if any(dc != cell and lo <= o.invoked and end <= hi for dc, lo, hi in windows):
            out[cell]["other_dc_faulted"][outcome] += 1
    return {cell: {k: dict(c) for k, c in parts.items()} for cell, parts in out.items()}


def _agent_toml(name: str, trait: str, vcpu: int, memory_mb: int) -> str:
    return (
        "[provider]\n"
        f'name = "{name}"\n'
        f'traits = ["{trait}"]\n'
        "[provider.inventories]\n"
        f"VCPU = {vcpu}\n"
        f"MEMORY_MB = {memory_mb}\n"
        "[driver]\n"
        'name = "fake"\n'
        "build_time = 0.1\n"
        "[agent]\n"
        "heartbeat_interval = 2\n"
        "resync_interval = 5\n"
    )


class Run:
    def __init__(self, cfg: TortureConfig, echo: Callable[[str], None] = lambda _: None) -> None:
        self.cfg = cfg
        self.echo = echo
        self.run_id = secrets.token_hex(3)
        self.history = History()
        self.dep = Deployment()
        self.report = Report()
        self.url = cfg.store_url
        self.busy_timeout = 0.0
        self.sqlite = sqlite_path(cfg.store_url)
        if nem.STORE_ERRORS in cfg.nemeses and self.sqlite is not None:
            self.url, self.busy_timeout = _with_busy_timeout(cfg.store_url)
        self.cluster: Any = None
        self.cells: list[str] = []
        self.service_cells: dict[str, str] = {}  # service URL -> its cell
        # What the checker reads through, per cell (None: no cells); see _read.
        self.check_urls: dict[str | None, str] = {None: self.url}
        self.homes: dict[str, str | None] = {}  # provider uuid -> its home cell
        self.setup_restarts: list[str] = []
        self.samples = 0
        self.samples_skipped = 0
        self.topology: Topology | None = None
        self.providers: list[str] = []
        self.nemesis: nem.Nemesis | None = None
        self.clients: list[Client] = []
        self.workdir: Path | None = None

    # ---- setup -----------------------------------------------------------------
    def _workdir(self) -> Path:
        if self.cfg.workdir is not None:
            d = self.cfg.workdir / f"torture-{self.run_id}"
        else:
            d = Path(tempfile.mkdtemp(prefix=f"claimant-torture-{self.run_id}-"))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _check_config(self) -> None:
        node_faults = set(self.cfg.nemeses) & nem.NEEDS_CLUSTER
        cassandra_store_errors = nem.STORE_ERRORS in self.cfg.nemeses and self.sqlite is None
        if (node_faults or cassandra_store_errors) and self.cfg.cluster_dir is None:
            raise SetupError(
                f"{', '.join(sorted(node_faults) or [nem.STORE_ERRORS])} on Cassandra needs "
                "--cluster-dir (the launcher's directory of the nodes to fault)"
            )
        if self.cfg.cluster_dir is not None:
            from claimant.cluster import ClusterError
            from claimant.cluster.launcher import Cluster

            self.cluster = Cluster(self.cfg.cluster_dir)
            try:
                self.cluster.load()
            except ClusterError as exc:
                raise SetupError(str(exc)) from exc
        self._resolve_cells()

    def _resolve_cells(self) -> None:
        from claimant.cluster import config as cluster_config

        dc_faults = sorted(set(self.cfg.nemeses) & nem.NEEDS_DCS)
        cluster_dcs = (
            cluster_config.dc_names(self.cluster.load().dcs) if self.cluster is not None else []
        )
        if dc_faults and len(cluster_dcs) < 2:
            raise SetupError(
                f"{', '.join(dc_faults)} needs a cluster of two or more data centres "
                "(claimant cluster up -n N --dcs D)"
            )
        cells = list(self.cfg.cells or [])
        if self.cfg.cells is None and len(cluster_dcs) > 1:
            cells = cluster_dcs
        if not cells:
            return
        if self.sqlite is not None:
            raise SetupError("cells are data centres of a Cassandra store; this store is SQLite")
        rf = url_option(self.url, "rf") or ""
        replicated = {part.split(":", 1)[0] for part in rf.split(",") if ":" in part}
        missing = [c for c in cells if c not in replicated]
        if missing:
            raise SetupError(
                f"the store URL's rf must replicate to every cell (e.g. rf=dc1:1,dc2:1); "
                f"it names none in {', '.join(missing)}"
            )
        self.cells = cells
        # QUORUM: every DC's replicas, reconciled, wherever the store lets a
        # plain read span DCs (a replica in a DC that was down or paused may
        # lack commits another DC acknowledged until hints or repair bring
        # them; one such read could show a released claim beside the claim
        # that replaced it, an overcommit that never was).
        self.check_urls = {c: with_option(self.url_in(c), "consistency", "QUORUM") for c in cells}

    def url_in(self, cell: str | None) -> str:
        """The store URL of a process in ``cell``."""
        return with_option(self.url, "dc", cell) if cell else self.url

    def setup(self) -> None:
        self._check_config()
        work = self._workdir()
        self.workdir = work
        self.echo(f"run {self.run_id}: logs in {work}")
        service_urls = self._start_services(work)
        shared_trait = f"CUSTOM_TORTURE_{self.run_id.upper()}_SHARED"
        build_trait = f"CUSTOM_TORTURE_{self.run_id.upper()}_BUILD"
        for trait in (shared_trait, build_trait):
            self._create_trait(service_urls[0], trait)
        conductor_url = self._start_conductor(work)
        shared, build = self._start_agents(work, conductor_url, shared_trait, build_trait)
        self._wait_for_agents(conductor_url, build)
        self.providers = shared + build
        self.topology = Topology(
            service_urls=service_urls,
            conductor_url=conductor_url,
            shared=shared,
            build=build,
            shared_trait=shared_trait,
            build_trait=build_trait,
            consumers=[str(uuidlib.uuid4()) for _ in range(self.cfg.consumers)],
            timeout=self.cfg.client_timeout,
            mix=self.cfg.mix,
        )

    def _start_services(self, work: Path) -> list[str]:
        """``claimant serve`` processes; their base URLs."""
        ttl = self.cfg.claim_ttl
        dep = self.dep
        # At least one service per cell, so clients reach every cell.
        for i in range(max(self.cfg.services, len(self.cells))):
            cell = cell_of(i, self.cells)
            port = free_port()
            argv = claimant_argv(
                "serve",
                "--claim-ttl",
                str(ttl),
                "--store",
                self.url_in(cell),
                "--port",
                str(port),
                "--expire-interval",
                str(self.cfg.expire_interval),
                "--no-access-log",
                "--log-level",
                "warning",
            )
            name = f"service-{i + 1}" + (f"-{cell}" if cell else "")
            p = Proc(name, argv, work / f"{name}.log", f"http://127.0.0.1:{port}/healthz")
            if cell:
                self.service_cells[f"http://127.0.0.1:{port}"] = cell
            p.start()
            # One at a time: the first migrates the schema, the rest find it done.
            # Each schema change waits for every node to agree on it, which on a
            # multi-DC cluster on a loaded machine took over two minutes.
            self._ready(p, MIGRATE_TIMEOUT if i == 0 else 120)
            dep.services.append(p)
        return [p.ready_url.rsplit("/", 1)[0] for p in dep.services]

    def _start_conductor(self, work: Path) -> str:
        """``claimant conductor serve``; its URL."""
        ttl = self.cfg.claim_ttl
        dep = self.dep
        cport = free_port()
        conductor_url = f"http://127.0.0.1:{cport}"
        dep.conductor = Proc(
            "conductor",
            claimant_argv(
                "conductor",
                "serve",
                "--claim-ttl",
                str(ttl),
                "--store",
                # One conductor, in the first cell: builds stop while that
                # cell is down (one conductor per cell is the loop's work).
                self.url_in(cell_of(0, self.cells)),
                "--port",
                str(cport),
                "--log-level",
                "warning",
            ),
            work / "conductor.log",
            f"{conductor_url}/v1/agents",
        )
        dep.conductor.start()
        self._ready(dep.conductor, 120)
        return conductor_url

    def _start_agents(
        self, work: Path, conductor_url: str, shared_trait: str, build_trait: str
    ) -> tuple[list[str], list[str]]:
        """The shared and the build agents, each behind its reply proxy; the
        uuids of their providers."""
        from claimant.agent.config import provider_uuid_for

        dep = self.dep
        dep.proxy_thread = ProxyThread()
        shared: list[str] = []
        build: list[str] = []
        plan = [("s", shared_trait, self.cfg.shared_vcpu, 8192)] * self.cfg.shared_providers + [
            ("b", build_trait, 8, 4096)
        ] * self.cfg.build_providers
        counts: Counter[str] = Counter()
        for k, (kind, trait, vcpu, mem) in enumerate(plan):
            counts[kind] += 1
            name = f"torture-{self.run_id}-{kind}{counts[kind]}"
            config = work / f"{name}.toml"
            config.write_text(_agent_toml(name, trait, vcpu, mem))
            port, pport = free_port(), free_port()
            proxy = dep.proxy_thread.add(ReplyProxy(pport, port))
            # Only the build agents hear from the conductor: only their
            # proxies carry anything a fault could lose or delay.
            if kind == "b":
                dep.proxies.append(proxy)
            p = Proc(
                name,
                claimant_argv(
                    "agent",
                    "run",
                    "--config",
                    str(config),
                    "--store",
                    # Interleaved over the plan: shared and build agents in every cell.
                    self.url_in(cell_of(k, self.cells)),
                    "--port",
                    str(port),
                    "--conductor",
                    conductor_url,
                    "--advertise",
                    f"http://127.0.0.1:{pport}",
                    "--log-level",
                    "warning",
                ),
                work / f"{name}.log",
                f"http://127.0.0.1:{port}/state",
            )
            p.start()
            dep.agents.append(p)
            (shared if kind == "s" else build).append(provider_uuid_for(name))
            # An agent's provider is homed in the agent's cell (it creates it).
            self.homes[provider_uuid_for(name)] = cell_of(k, self.cells)
            if kind == "b":
                dep.build_agents[name] = f"http://127.0.0.1:{port}"
        for p in dep.agents:
            self._ready(p, 120)
        return shared, build

    def _ready(self, p: Proc, timeout: float) -> None:
        """Wait until ``p`` answers; one that exits while starting is started
        again, a few times. ``serve`` and ``agent run`` exit when their first
        store calls fail, which a loaded cluster does now and then (a CAS
        timeout, a host briefly marked down); the run tests faults injected
        later, not that, so it goes on and reports it (``setup_restarts``)."""
        for attempt in range(SETUP_ATTEMPTS):
            try:
                p.wait_ready(timeout)
                return
            except ProcessError:
                if p.alive() or attempt + 1 == SETUP_ATTEMPTS:
                    raise
            self.setup_restarts.append(p.name)
            self.echo(f"{p.name} exited while starting; starting it again (see {p.log})")
            time.sleep(5)
            p.start()

    def _create_trait(self, service: str, trait: str) -> None:
        # A 503 is retried: a loaded multi-DC cluster refuses a write now and
        # then, and the setup is not what the run tests (see _ready).
        status, text = 0, ""
        for attempt in range(SETUP_ATTEMPTS):
            if attempt:
                time.sleep(5)
            try:
                r = httpx.put(f"{service}/v1/traits/{trait}", headers=ADMIN, timeout=30)
            except httpx.HTTPError as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
                continue
            if r.status_code in (201, 204):
                return
            status, text = r.status_code, r.text[:200]
            if r.status_code < 500:
                break
        raise SetupError(f"could not create trait {trait}: {status} {text}")

    def _wait_for_agents(self, conductor_url: str, build: list[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                known = httpx.get(f"{conductor_url}/v1/agents", timeout=5).json()["agents"]
                if all(u in known for u in build):
                    return
            time.sleep(0.3)
        raise SetupError("the build agents did not announce themselves to the conductor in 60s")

    # ---- the run -----------------------------------------------------------------
    @contextlib.contextmanager
    def _store(self) -> Iterator[dict[str | None, Any]]:
        """The checker's stores, one per cell (or one, keyed None)."""
        from claimant.store import open_store

        stores: dict[str | None, Any] = {}
        try:
            for cell, url in self.check_urls.items():
                stores[cell] = open_store(url)
            yield stores
        finally:
            for store in stores.values():
                store.close()

    def _settle_homes(self, stores: dict[str | None, Any]) -> None:
        """Where the store records a provider's home cell, that one wins."""
        from claimant.model import ClaimantError

        first = next(iter(stores.values()))
        for puuid in self.providers:
            with contextlib.suppress(ClaimantError):
                cell = getattr(first.get_provider(puuid), "cell", None)
                if cell in stores and cell is not None:
                    self.homes[puuid] = cell

    def _read(self, stores: dict[str | None, Any]) -> Snapshot:
        """Each provider read through a store of its home cell: there every
        acknowledged compare-and-set on it is on a replica, whether the store
        makes them in one cell (LOCAL_SERIAL) or across all (SERIAL)."""
        if len(stores) == 1:
            return read_snapshot(next(iter(stores.values())), self.providers)
        parts = [
            read_snapshot(store, [p for p in self.providers if self.homes.get(p) == cell])
            for cell, store in stores.items()
        ]
        return Snapshot(
            at=min(s.at for s in parts),
            providers={k: v for s in parts for k, v in s.providers.items()},
            entries=[e for s in parts for e in s.entries],
        )

    def _sample(self, stores: dict[str | None, Any]) -> None:
        from claimant.model import ClaimantError

        try:
            snap = self._read(stores)
        except ClaimantError:
            self.samples_skipped += 1  # the store is being faulted; the next sample will do
            return
        self.samples += 1
        check_sample(snap, self.report)

    def _progress(self, elapsed: float, faults: int) -> None:
        ops = [o for o in self.history.ops() if o.process != NEMESIS]
        c = Counter(o.outcome.value if o.outcome else "pending" for o in ops)
        self.echo(
            f"{elapsed:5.0f}s  ops {len(ops)}  ok {c['ok']}  fail {c['fail']}  "
            f"info {c['info']}  faults {faults}  violations {len(self.report.violations)}"
        )

    def execute(self) -> None:
        if self.topology is None:
            raise SetupError("setup() first")
        stop = threading.Event()
        rng = random.Random(self.cfg.seed)
        clients = [
            Client(f"c{i}", self.topology, self.history, random.Random(rng.random()), stop)
            for i in range(self.cfg.clients)
        ]
        self.nemesis = nem.Nemesis(
            self.cfg.nemeses,
            nem.Targets(
                services=self.dep.services,
                agents=self.dep.agents,
                conductor=self.dep.conductor,
                proxies=self.dep.proxies,
                sqlite_path=self.sqlite,
                busy_timeout=self.busy_timeout,
                cluster=self.cluster,
            ),
            self.history,
            random.Random(rng.random()),
            echo=self.echo,
            node_start_timeout=NODE_START_TIMEOUT,
        )
        self.clients = clients
        threads = [threading.Thread(target=c.run, name=c.name, daemon=True) for c in clients]
        threads.append(
            threading.Thread(target=self.nemesis.run, args=(stop,), name="nemesis", daemon=True)
        )
        began = time.monotonic()
        for t in threads:
            t.start()
        with self._store() as store:
            if self.cells:
                self._settle_homes(store)
            next_sample = began + self.cfg.sample_every
            while (now := time.monotonic()) < began + self.cfg.seconds:
                time.sleep(min(1.0, began + self.cfg.seconds - now))
                if time.monotonic() >= next_sample:
                    self._sample(store)
                    self._progress(time.monotonic() - began, self.nemesis.faults)
                    next_sample += self.cfg.sample_every
            stop.set()
            self.echo("stopping clients and the nemesis ...")
            for t in threads:
                # The nemesis may be starting nodes again (a stopped DC): give
                # it the launcher's start timeout, or the final start below
                # would find the cluster directory locked.
                extra = NODE_START_TIMEOUT if t.name == "nemesis" else 0
                t.join(timeout=self.cfg.client_timeout * 3 + 120 + extra)
            self.nemesis.heal()
            if self.cluster is not None:
                self.cluster.start(timeout=NODE_START_TIMEOUT)
            for p in self.dep.all():
                if not p.alive():
                    p.start()
                p.wait_ready(120)
            self.stopped_at = time.time()
            self.history.close_pending()
            # Every claim of the run was written before stopped_at (plus the
            # last unknown ones still in a service): past this, none may be live.
            wait = self.cfg.claim_ttl + 2 * self.cfg.expire_interval + 2.0
            self.echo(f"waiting {wait:.0f}s for the claim TTL to pass ...")
            time.sleep(wait)
            self.final = self._final_snapshot_retrying(store)
            check_final(self.history.ops(), self.final, self.report, after_ttl=True)

    def _final_snapshot_retrying(self, store: dict[str | None, Any]) -> Snapshot:
        from claimant.model import ClaimantError

        # A node just restarted may not answer at once; the final read must happen.
        for _ in range(5):
            try:
                return self._final_snapshot(store)
            except ClaimantError as exc:
                self.echo(f"final read failed ({exc.code}); retrying in 5s")
                time.sleep(5)
        try:
            return self._final_snapshot(store)
        except ClaimantError as exc:
            raise SetupError(f"could not read the store for the final check: {exc}") from exc

    def _final_snapshot(self, store: dict[str | None, Any]) -> Snapshot:
        snap = self._read(store)
        ruuids = {o.value["request_uuid"] for o in self.history.ops() if "request_uuid" in o.value}
        snap.requests = read_requests(next(iter(store.values())), sorted(ruuids))
        instances: list[Instance] = []
        notes: set[str] = set()
        for name, url in self.dep.build_agents.items():
            try:
                got, note = self._instances_of(name, url)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                snap.instances_note = f"not checked: agent {name} did not answer ({exc})"
                return snap
            instances.extend(got)
            if note:
                notes.add(note)
        snap.instances_note = "; ".join(sorted(notes))
        snap.instances = instances
        return snap

    def _instances_of(self, name: str, url: str) -> tuple[list[Instance], str]:
        r = httpx.get(f"{url}/v1/instances", timeout=10)
        if r.status_code != 404:
            r.raise_for_status()
            return parse_instances(name, r.json()), ""
        # Agents without /v1/instances still list their consumers in /state,
        # without resources: each must then hold *some* entry on the provider.
        state = httpx.get(f"{url}/state", timeout=10).json()
        puuid = state["provider"]["uuid"]
        found = [Instance(name, puuid, str(c), {}) for c in state.get("instances", [])]
        return found, "instances read from GET /state (no /v1/instances): consumers only"

    def teardown(self) -> None:
        self.dep.stop()

    # ---- result ------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        ops = self.history.ops()
        client_ops = [o for o in ops if o.process != NEMESIS]
        by_f: dict[str, Counter[str]] = {}
        for o in client_ops:
            by_f.setdefault(o.f, Counter())[o.outcome.value if o.outcome else "info"] += 1
            if o.outcome != Outcome.OK:
                why = o.result.get("error") or f"{o.result.get('status')} {o.result.get('code')}"
                by_f[o.f][f"{o.outcome.value if o.outcome else 'info'}:{why}"] += 1
        faults = [o for o in ops if o.process == NEMESIS]
        kinds = Counter(o.value["fault"] for o in faults)
        counts = Counter(v.kind for v in self.report.violations)
        return {
            "run_id": self.run_id,
            "store": self.cfg.store_url,
            "seconds": self.cfg.seconds,
            "seed": self.cfg.seed,
            "nemesis": self.cfg.nemeses,
            "mix": self.cfg.mix,
            "cells": {
                cell: [p.name for p in self.dep.services if p.name.endswith(f"-{cell}")]
                for cell in self.cells
            },
            "by_cell": cell_outcomes(ops, self.service_cells),
            "setup_restarts": self.setup_restarts,
            "ops": len(client_ops),
            "acked": sum(1 for o in client_ops if o.outcome == Outcome.OK),
            "failed": sum(1 for o in client_ops if o.outcome == Outcome.FAIL),
            "unknown": sum(1 for o in client_ops if o.outcome == Outcome.INFO),
            "by_op": {f: dict(c) for f, c in sorted(by_f.items())},
            "faults": len(faults),
            "faults_by_kind": dict(sorted(kinds.items())),
            "fault_log": [o.to_dict() for o in faults],
            "replies_dropped": sum(p.dropped for p in self.dep.proxies),
            "replies_delayed": sum(p.delayed for p in self.dep.proxies),
            "nemesis_errors": self.nemesis.errors if self.nemesis is not None else [],
            "client_errors": [e for c in self.clients for e in c.errors][:20],
            "samples": self.samples,
            "samples_skipped": self.samples_skipped,
            "violations": [v.to_dict() for v in self.report.violations],
            "violation_counts": dict(sorted(counts.items())),
            "lost_acked": self.report.lost_acked,
            "over_capacity": self.report.over_capacity,
            "leaked_after_ttl": self.report.leaked_after_ttl,
            "not_checked": self.report.not_checked,
            "workdir": str(self.workdir or ""),
        }


def run_torture(cfg: TortureConfig, echo: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Set up, run, check and tear down; returns the result (``result()``)."""
    run = Run(cfg, echo)
    try:
        try:
            run.setup()
            run.execute()
        except ProcessError as exc:
            raise SetupError(str(exc)) from exc
    finally:
        if run.nemesis is not None:
            run.nemesis.heal()  # never leave a node SIGSTOPped behind
        run.teardown()
    return run.result()
