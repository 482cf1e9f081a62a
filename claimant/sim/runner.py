"""One simulator run: a cloud of agents, K schedulers, a workload, the figures.

Everything runs in one process: K worker threads, each one scheduler (its
own ``Scheduler`` or, in legacy mode, its own ``HostManager`` copy) driving
requests to completion; agents are in-process objects (the conductor reaches
them through the same messages it sends over HTTP). The store is real.
"""

from __future__ import annotations

import contextlib
import queue
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from claimant.agent import Agent, AgentConfig, FakeDriver
from claimant.agent.messages import Failure
from claimant.conductor import AgentDirectory, Conductor
from claimant.model import (
    AlreadyExists,
    ClaimNotActive,
    InvalidInput,
    NotFound,
    Provider,
    Request,
    RequestStatus,
    ResourceClass,
    new_uuid,
)
from claimant.scheduler import Scheduler, SchedulerConfig, lifecycle
from claimant.sim.legacy import FilterScheduler, HostLocks, HostManager, legacy_build
from claimant.sim.workload import BAREMETAL_CLASSES, Cloud, make_cloud, make_workload
from claimant.store.base import Store

MODES = ("legacy", "claimant")
HEARTBEAT_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class SimConfig:
    mode: str = "claimant"
    hosts: int = 16
    schedulers: int = 4
    requests: int = 200
    seed: int = 0
    build_time: float = 0.005
    failure_rate: float = 0.0
    host_subset_size: int = 3
    # What an unconfirmed claim lives for; an agent that can't confirm (a DC
    # down) retries for that long, so a shorter one ends such runs sooner.
    claim_ttl: float = 300.0
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}", field="mode")
        for name, low in (("hosts", 1), ("schedulers", 1), ("requests", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidInput(f"{name} must be an integer >= {low}", field=name)
        if not 0 <= self.failure_rate <= 1:
            raise InvalidInput("failure_rate must be between 0 and 1", field="failure_rate")
        if self.build_time < 0:
            raise InvalidInput("build_time must be >= 0", field="build_time")
        if not self.claim_ttl > 0:
            raise InvalidInput("claim_ttl must be > 0", field="claim_ttl")


@dataclass(slots=True)
class SimResult:
    mode: str
    store: str
    hosts: int
    providers: int
    schedulers: int
    requests: int
    instances_requested: int = 0
    placed: int = 0
    requests_active: int = 0
    requests_failed: int = 0
    no_valid_host: int = 0
    build_failures: int = 0
    build_failures_from_races: int = 0
    driver_failures: int = 0
    retries: int = 0  # reschedules after a failed build
    claim_conflicts: int = 0  # compare-and-set claims the store refused (claimant mode)
    claim_retries: int = 0
    overcommitted_providers: int = 0
    elapsed_s: float = 0.0
    placements_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["latencies_ms"]
        return out


class _Tally:
    def __init__(self, result: SimResult) -> None:
        self.r = result
        self.lock = threading.Lock()

    def add(self, latency_ms: float, **counts: int) -> None:
        with self.lock:
            self.r.latencies_ms.append(latency_ms)
            for k, v in counts.items():
                setattr(self.r, k, getattr(self.r, k) + v)


def build_cloud(store: Store, cloud: Cloud, cfg: SimConfig) -> dict[str, Agent]:
    """Register every provider the way production does: agents for hosts,
    the operator (here: directly) for the passive storage pools."""
    for rc in BAREMETAL_CLASSES:
        with contextlib.suppress(AlreadyExists):
            store.create_resource_class(ResourceClass(rc, discrete=True))
    agents: dict[str, Agent] = {}
    for i, h in enumerate(cloud.hosts):
        if not h.agent:
            store.create_provider(
                Provider(
                    uuid=h.uuid,
                    name=h.name,
                    type=h.type,
                    attributes=dict(h.attributes),
                    aggregates=h.aggregates,
                    inventories=dict(h.inventories),
                )
            )
            continue
        driver = FakeDriver(cfg.build_time, cfg.failure_rate, seed=cfg.seed * 100003 + i)
        agent = Agent(store, AgentConfig(provider=h.config()), driver)
        agent.start(background=False)
        agents[h.uuid] = agent
    return agents


def overcommitted(store: Store, only: set[str] | None = None) -> list[str]:
    """Providers holding more than their capacity, read back from the store two
    ways: its usage arithmetic, and the ledger entries summed here. ``only``:
    just these provider uuids."""
    bad = []
    for p in store.list_providers():
        if only is not None and p.uuid not in only:
            continue
        usage = store.get_usage(p.uuid)
        summed: dict[str, int] = {}
        for c in store.list_claims(provider_uuid=p.uuid):
            for rc, n in c.amounts.items():
                summed[rc] = summed.get(rc, 0) + n
        for rc, inv in p.inventories.items():
            u = usage.usages.get(rc)
            if (u is not None and u.used > u.capacity) or summed.get(rc, 0) > inv.capacity:
                bad.append(p.name)
                break
    return bad


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def new_result(store: Store, cfg: SimConfig, cloud: Cloud, workload: list[Request]) -> SimResult:
    """A run's result before any request: what was asked, on what."""
    return SimResult(
        mode=cfg.mode,
        store=store.url.split(":", 1)[0],
        hosts=cfg.hosts,
        providers=len(cloud.hosts),
        schedulers=cfg.schedulers,
        requests=cfg.requests,
        instances_requested=sum(r.count for r in workload),
    )


def heartbeat(agents: list[Agent], halt: threading.Event) -> None:
    """Every agent's heartbeat each ``HEARTBEAT_INTERVAL`` until ``halt``."""
    while not halt.wait(HEARTBEAT_INTERVAL):
        for a in agents:
            with contextlib.suppress(Exception):  # a stopped cell's agents fail
                a.heartbeat()


def drain(
    todo: queue.Queue[Request],
    step: Callable[[Request], None],
    errors: list[BaseException],
    done: Callable[[], None],
) -> None:
    """One worker: ``step`` each request it takes from ``todo`` until none is
    left, ``done`` after each. An error ends this worker and is kept in
    ``errors``, for the run to raise once every worker has stopped."""
    while True:
        try:
            r = todo.get_nowait()
        except queue.Empty:
            return
        try:
            step(r)
        except BaseException as exc:  # surface it after the run; stop this worker
            errors.append(exc)
            return
        done()


def run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(
    store: Store,
    cfg: SimConfig,
    *,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Wipe the store, build the cloud, run the workload, verify. The store
    must be one the caller is willing to lose."""
    store.reset()
    cloud = make_cloud(cfg.hosts, cfg.seed)
    agents = build_cloud(store, cloud, cfg)
    workload = make_workload(cloud, cfg.requests, cfg.seed)
    result = new_result(store, cfg, cloud, workload)
    tally = _Tally(result)
    todo: queue.Queue[Request] = queue.Queue()
    for r in workload:
        todo.put(r)
    halt = threading.Event()
    steps = _Steps(store, cfg, cloud, agents, tally)
    errors: list[BaseException] = []

    def done() -> None:
        if progress is not None:
            progress(1)

    def worker(k: int) -> None:
        drain(todo, steps.for_worker(k), errors, done)

    threading.Thread(target=heartbeat, args=(list(agents.values()), halt), daemon=True).start()
    t0 = time.perf_counter()
    run_threads([threading.Thread(target=worker, args=(k,)) for k in range(cfg.schedulers)])
    result.elapsed_s = time.perf_counter() - t0
    halt.set()
    if errors:
        raise errors[0]
    result.overcommitted_providers = len(overcommitted(store))
    result.placements_per_s = result.placed / result.elapsed_s if result.elapsed_s else 0.0
    result.p50_ms = _percentile(result.latencies_ms, 50)
    result.p99_ms = _percentile(result.latencies_ms, 99)
    return result


class _Steps:
    """What a worker of one run does with a request, in either mode: the
    shared parts (agents, the legacy host locks and probes) and a scheduler
    of the worker's own."""

    def __init__(
        self, store: Store, cfg: SimConfig, cloud: Cloud, agents: dict[str, Agent], tally: _Tally
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.agents = agents
        self.tally = tally
        self.directory = AgentDirectory()
        for uuid, agent in agents.items():
            self.directory.add([uuid], agent)
        self.locks = HostLocks()
        self.probes = sorted(
            {(h.type, rc) for h in cloud.hosts for rc in h.inventories if rc != "DISK_GB"}
            | {("block_storage", "DISK_GB")}
        )

    def for_worker(self, k: int) -> Callable[[Request], None]:
        cfg, store = self.cfg, self.store
        rng = random.Random(f"{cfg.seed}-{k}")
        if cfg.mode == "claimant":
            sched_cfg = SchedulerConfig(
                host_subset_size=cfg.host_subset_size, claim_ttl=cfg.claim_ttl
            )
            conductor = Conductor(
                store,
                Scheduler(store, sched_cfg, rng=rng),
                self.directory,
                max_attempts=cfg.max_attempts,
                build_workers=1,
            )
            return lambda r: _claimant_request(conductor, r, self.tally)
        fs = FilterScheduler(
            HostManager(store, self.probes), host_subset_size=cfg.host_subset_size, rng=rng
        )
        return lambda r: _legacy_request(store, fs, self.locks, self.agents, cfg, r, self.tally)


def _claimant_request(conductor: Conductor, r: Request, tally: _Tally) -> None:
    t0 = time.perf_counter()
    res = conductor.build(r)
    races = res.failures(races_only=True)
    total = res.failures()
    active = res.request.status == RequestStatus.ACTIVE
    tally.add(
        (time.perf_counter() - t0) * 1000,
        placed=res.placed,
        requests_active=int(active),
        requests_failed=int(not active),
        no_valid_host=int(res.no_valid_host),
        build_failures=total,
        build_failures_from_races=races,
        driver_failures=sum(1 for i in res.instances for k, _ in i.failures if k == "driver"),
        retries=res.reschedules,
        claim_conflicts=res.stats.conflicts,
        claim_retries=res.stats.retries,
    )


def _legacy_request(
    store: Store,
    fs: FilterScheduler,
    locks: HostLocks,
    agents: dict[str, Agent],
    cfg: SimConfig,
    r: Request,
    tally: _Tally,
) -> None:
    t0 = time.perf_counter()
    # Nova persists the RequestSpec too; keep the store traffic comparable.
    r = lifecycle.create(store, r)
    counts = dict(build_failures=0, build_failures_from_races=0, driver_failures=0, retries=0)
    dests = fs.select(r.groups, r.count)
    built: list[list[str]] = []
    failed = 0
    nvh = dests is None
    for chosen in dests or []:
        consumer = new_uuid()
        tried: set[str] = set()
        attempt = 1
        while True:
            host = chosen[0][0].uuid
            out = legacy_build(
                store,
                locks,
                agents[host].driver,
                consumer,
                [(h.uuid, amounts) for h, amounts in chosen],
                r.uuid,
            )
            if out.ok:
                built.append([c.uuid for c in out.claims])
                break
            counts["build_failures"] += 1
            if out.failure is not None and out.failure.is_race:
                counts["build_failures_from_races"] += 1
            if out.failure == Failure.DRIVER:
                counts["driver_failures"] += 1
            tried.add(host)
            if attempt >= cfg.max_attempts:
                failed += 1
                break
            again = fs.select(r.groups, 1, exclude=tried)
            if again is None:
                failed += 1
                break
            chosen = again[0]
            attempt += 1
            counts["retries"] += 1
    placed = len(built)
    if (failed or nvh) and r.all_or_nothing:
        for claims in built:
            for uuid in claims:
                with contextlib.suppress(NotFound, ClaimNotActive):
                    store.release_claim(uuid)
        placed = 0
    active = placed > 0 and placed == r.count
    lifecycle.record(
        store,
        r,
        RequestStatus.ACTIVE if active else RequestStatus.FAILED,
        {"event": "active" if active else "failed", "built": placed},
        claims=[u for claims in built for u in claims] if placed else (),
    )
    tally.add(
        (time.perf_counter() - t0) * 1000,
        placed=placed,
        requests_active=int(active),
        requests_failed=int(not active),
        no_valid_host=int(nvh),
        **counts,
    )
