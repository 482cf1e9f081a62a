"""One torture run: start the real processes, run clients and the nemesis,
sample, quiesce, wait out the claim TTL, check, stop everything.

Everything a run creates is named after its run id (providers, traits), so
a store that already holds data is left alone and only the run's own
providers and requests are checked.
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
from claimant.torture.history import History, Outcome
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

    def setup(self) -> None:
        self._check_config()
        work = self._workdir()
        self.workdir = work
        self.echo(f"run {self.run_id}: logs in {work}")
        ttl = self.cfg.claim_ttl
        dep = self.dep
        for i in range(self.cfg.services):
            port = free_port()
            argv = claimant_argv(
                "serve",
                "--claim-ttl",
                str(ttl),
                "--store",
                self.url,
                "--port",
                str(port),
                "--expire-interval",
                str(self.cfg.expire_interval),
                "--no-access-log",
                "--log-level",
                "warning",
            )
            p = Proc(
                f"service-{i + 1}",
                argv,
                work / f"service-{i + 1}.log",
                f"http://127.0.0.1:{port}/healthz",
            )
            p.start()
            # One at a time: the first migrates the schema, the rest find it done.
            p.wait_ready(120)
            dep.services.append(p)
        service_urls = [p.ready_url.rsplit("/", 1)[0] for p in dep.services]
        shared_trait = f"CUSTOM_TORTURE_{self.run_id.upper()}_SHARED"
        build_trait = f"CUSTOM_TORTURE_{self.run_id.upper()}_BUILD"
        for trait in (shared_trait, build_trait):
            r = httpx.put(f"{service_urls[0]}/v1/traits/{trait}", headers=ADMIN, timeout=30)
            if r.status_code not in (201, 204):
                raise SetupError(f"could not create trait {trait}: {r.status_code} {r.text[:200]}")

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
                self.url,
                "--port",
                str(cport),
                "--log-level",
                "warning",
            ),
            work / "conductor.log",
            f"{conductor_url}/v1/agents",
        )
        dep.conductor.start()
        dep.conductor.wait_ready(120)

        from claimant.agent.config import provider_uuid_for

        dep.proxy_thread = ProxyThread()
        shared: list[str] = []
        build: list[str] = []
        plan = [("s", shared_trait, self.cfg.shared_vcpu, 8192)] * self.cfg.shared_providers + [
            ("b", build_trait, 8, 4096)
        ] * self.cfg.build_providers
        counts: Counter[str] = Counter()
        for kind, trait, vcpu, mem in plan:
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
                    self.url,
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
            if kind == "b":
                dep.build_agents[name] = f"http://127.0.0.1:{port}"
        for p in dep.agents:
            p.wait_ready(120)
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
    def _store(self) -> Iterator[Any]:
        from claimant.store import open_store

        store = open_store(self.url)
        try:
            yield store
        finally:
            store.close()

    def _sample(self, store: Any) -> None:
        from claimant.model import ClaimantError

        try:
            snap = read_snapshot(store, self.providers)
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
                t.join(timeout=self.cfg.client_timeout * 3 + 120)
            self.nemesis.heal()
            if self.cluster is not None:
                self.cluster.start(timeout=300)
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

    def _final_snapshot_retrying(self, store: Any) -> Snapshot:
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

    def _final_snapshot(self, store: Any) -> Snapshot:
        snap = read_snapshot(store, self.providers)
        ruuids = {o.value["request_uuid"] for o in self.history.ops() if "request_uuid" in o.value}
        snap.requests = read_requests(store, sorted(ruuids))
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
