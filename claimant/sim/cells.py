"""The simulator across cells (issue 12, docs/cells.md): one cloud, one
workload and K schedulers with their conductors per cell, each on a store
whose own cell is that cell (``dc=``), optionally with a data centre stopped
part-way through.

Each cell's providers are created through its own store, so they are homed
there; each cell's requests are confined to it (``Request.cell``). Results
are per cell: what was placed, what failed and why (by error code), the
rate before and after a stop, and the overcommit check, which reads each
provider through the store of its home cell.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from claimant.agent import Agent
from claimant.conductor import AgentDirectory, Conductor
from claimant.model import ClaimantError, InvalidInput, Request, RequestStatus, StoreUnavailable
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.sim.runner import (
    SimConfig,
    SimResult,
    _percentile,
    build_cloud,
    drain,
    heartbeat,
    new_result,
    overcommitted,
)
from claimant.sim.workload import make_cloud, make_workload
from claimant.store.base import Store


@dataclass(frozen=True, slots=True)
class DcStop:
    """Stop data centre ``cell`` once ``at_s`` seconds have passed or
    ``at_fraction`` of all requests have finished (whichever is given), and
    start it again after the run. ``stop`` and ``start`` do it (the launcher,
    in the CLI); they block until done."""

    cell: str
    stop: Callable[[], object]
    start: Callable[[], object]
    at_s: float | None = None
    at_fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.at_s is None) == (self.at_fraction is None):
            raise InvalidInput("give the stop a time or a share of the requests", field="at")
        if self.at_fraction is not None and not 0 <= self.at_fraction <= 1:
            raise InvalidInput("the share of requests must be between 0 and 1", field="at")
        if self.at_s is not None and self.at_s < 0:
            raise InvalidInput("the time of the stop must be >= 0", field="at")


def _ms(values: list[float], q: float) -> float | None:
    return round(_percentile(values, q), 1) if values else None


@dataclass(slots=True)
class Phase:
    """What one cell's requests got in one phase of the run."""

    name: str
    placed: int = 0
    active: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_latencies_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "placed": self.placed,
            "requests_active": self.active,
            "requests_failed": self.failed,
            "seconds": round(self.seconds, 2),
            "placements_per_s": round(self.placed / self.seconds, 2) if self.seconds else 0.0,
            "p50_ms": _ms(self.latencies_ms, 50),
            "error_p50_ms": _ms(self.error_latencies_ms, 50),
        }


@dataclass(slots=True)
class CellResult:
    cell: str
    result: SimResult
    # Why requests or builds failed: an error code the request was refused
    # with (cell_unavailable, store_unavailable ...), no_valid_host, or
    # build:<failure> for each failed build (build:store, build:claim ...).
    failures: Counter[str] = field(default_factory=Counter)
    error_latencies_ms: list[float] = field(default_factory=list)
    # (finished at, s since the start; placed; request active; latency ms)
    finished: list[tuple[float, int, bool, float]] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            **self.result.to_dict(),
            "failures_by_code": dict(self.failures.most_common()),
            "error_p50_ms": _ms(self.error_latencies_ms, 50),
            "phases": [p.to_dict() for p in self.phases],
        }


@dataclass(slots=True)
class CellsResult:
    cells: list[CellResult]
    stop: dict[str, Any] | None = None  # what the DC stop did, if one was asked

    @property
    def overcommitted_providers(self) -> int:
        return sum(c.result.overcommitted_providers for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cells": [c.to_dict() for c in self.cells],
            "stop_dc": self.stop,
            "overcommitted_providers": self.overcommitted_providers,
        }


class _CellTally:
    def __init__(self, out: CellResult, t0: float) -> None:
        self.out = out
        self.t0 = t0
        self.lock = threading.Lock()

    def add(self, latency_ms: float, placed: int, active: bool, **counts: int) -> None:
        r = self.out.result
        with self.lock:
            r.latencies_ms.append(latency_ms)
            r.placed += placed
            r.requests_active += int(active)
            r.requests_failed += int(not active)
            for k, v in counts.items():
                setattr(r, k, getattr(r, k) + v)
            if not active:
                self.out.error_latencies_ms.append(latency_ms)
            self.out.finished.append((time.perf_counter() - self.t0, placed, active, latency_ms))

    def fail(self, code: str, n: int = 1) -> None:
        with self.lock:
            self.out.failures[code] += n


def _request(conductor: Conductor, r: Request, tally: _CellTally) -> None:
    t0 = time.perf_counter()
    try:
        res = conductor.build(r)
    except ClaimantError as exc:
        # A request the store refused outright (its cell is down ...): the
        # run goes on and counts it by its code.
        tally.fail(exc.code)
        tally.add((time.perf_counter() - t0) * 1000, 0, False)
        return
    for inst in res.instances:
        for kind, _ in inst.failures:
            tally.fail(f"build:{kind}")
    if res.no_valid_host:
        tally.fail("no_valid_host")
    active = res.request.status == RequestStatus.ACTIVE
    if not active and not res.no_valid_host and not res.failures():
        tally.fail(f"request:{res.request.status.value}")
    tally.add(
        (time.perf_counter() - t0) * 1000,
        res.placed,
        active,
        no_valid_host=int(res.no_valid_host),
        build_failures=res.failures(),
        build_failures_from_races=res.failures(races_only=True),
        driver_failures=sum(1 for i in res.instances for k, _ in i.failures if k == "driver"),
        retries=res.reschedules,
        claim_conflicts=res.stats.conflicts,
        claim_retries=res.stats.retries,
    )


@dataclass(slots=True)
class _Cell:
    """One cell of a run: its store, agents, the providers it owns, and the
    requests left to place."""

    name: str
    store: Store
    agents: dict[str, Agent]
    owned: set[str]
    todo: queue.Queue[Request]
    out: CellResult


def _check(stores: dict[str, Store], cfg: SimConfig, stop: DcStop | None) -> None:
    if cfg.mode != "claimant":
        raise InvalidInput("a run across cells is claimant mode only", field="mode")
    if not stores:
        raise InvalidInput("a run across cells needs at least one cell", field="cells")
    if stop is not None and stop.cell not in stores:
        raise InvalidInput(f"cannot stop {stop.cell}: not one of the run's cells", field="stop")


def _build_cell(i: int, name: str, store: Store, cfg: SimConfig) -> _Cell:
    """The cell's providers, homed there through its own store, and its
    workload, confined to it."""
    cloud = make_cloud(cfg.hosts, cfg.seed, prefix=f"{name}-")
    agents = build_cloud(store, cloud, cfg)
    workload = [
        r.evolve(cell=name) for r in make_workload(cloud, cfg.requests, cfg.seed * 1009 + i)
    ]
    todo: queue.Queue[Request] = queue.Queue()
    for r in workload:
        todo.put(r)
    out = CellResult(name, new_result(store, cfg, cloud, workload))
    return _Cell(name, store, agents, {h.uuid for h in cloud.hosts}, todo, out)


def _worker(
    cell: _Cell,
    k: int,
    cfg: SimConfig,
    tally: _CellTally,
    errors: list[BaseException],
    done: Callable[[], None],
) -> None:
    directory = AgentDirectory()
    for uuid, agent in cell.agents.items():
        directory.add([uuid], agent)
    conductor = Conductor(
        cell.store,
        Scheduler(
            cell.store,
            SchedulerConfig(host_subset_size=cfg.host_subset_size, claim_ttl=cfg.claim_ttl),
            rng=random.Random(f"{cfg.seed}-{cell.name}-{k}"),
        ),
        directory,
        max_attempts=cfg.max_attempts,
        build_workers=1,
    )
    drain(cell.todo, lambda r: _request(conductor, r, tally), errors, done)


class _Stopper:
    """Runs ``stop`` once its moment came (a time, or a share of the
    ``total`` requests ``finished``), unless ``halt`` is set first; ``fired``
    records when it began and ended, and any error."""

    def __init__(
        self,
        stop: DcStop,
        total: int,
        finished: threading.Semaphore,
        halt: threading.Event,
        t0: float,
    ) -> None:
        self.stop = stop
        self.total = total
        self.finished = finished
        self.halt = halt
        self.t0 = t0
        self.fired: dict[str, Any] = {}

    def __call__(self) -> None:
        stop = self.stop
        if stop.at_fraction is not None:
            for _ in range(round(stop.at_fraction * self.total)):
                while not self.finished.acquire(timeout=0.2):
                    if self.halt.is_set():
                        return
        elif self.halt.wait(stop.at_s):
            return
        self.fired["began_s"] = time.perf_counter() - self.t0
        try:
            stop.stop()
        except Exception as exc:  # the run goes on; the report says the stop failed
            self.fired["error"] = f"{type(exc).__name__}: {exc}"
        self.fired["stopped_s"] = time.perf_counter() - self.t0


def run_cells(
    stores: dict[str, Store],
    cfg: SimConfig,
    *,
    stop: DcStop | None = None,
    progress: Callable[[int], None] | None = None,
) -> CellsResult:
    """Wipe the keyspace, build a cloud in each cell of ``stores`` (cell ->
    a store whose own cell it is), run each cell's workload (``cfg.requests``
    requests, ``cfg.schedulers`` schedulers per cell) all at once, verify.
    ``cfg.hosts`` and ``cfg.requests`` are per cell."""
    _check(stores, cfg, stop)
    names = list(stores)
    stores[names[0]].reset()  # one keyspace: every cell's store sees the same wipe
    cells = [_build_cell(i, name, stores[name], cfg) for i, name in enumerate(names)]
    finished = threading.Semaphore(0)
    halt = threading.Event()
    errors: list[BaseException] = []
    t0 = time.perf_counter()
    tallies = {c.name: _CellTally(c.out, t0) for c in cells}

    def done() -> None:
        finished.release()
        if progress is not None:
            progress(1)

    agents = [a for c in cells for a in c.agents.values()]
    threading.Thread(target=heartbeat, args=(agents, halt), daemon=True).start()
    threads = [
        threading.Thread(target=_worker, args=(c, k, cfg, tallies[c.name], errors, done))
        for k in range(cfg.schedulers)
        for c in cells
    ]
    stopper = None
    if stop is not None:
        stopper = _Stopper(stop, cfg.requests * len(cells), finished, halt, t0)
    stopping = threading.Thread(target=stopper, daemon=True) if stopper is not None else None
    for t in threads:
        t.start()
    if stopping is not None:
        stopping.start()
    for t in threads:
        t.join()
    ended = time.perf_counter() - t0
    halt.set()
    if stopping is not None:
        stopping.join()  # a stop under way finishes before the DC is started again
    fired = stopper.fired if stopper is not None else {}
    stop_report = _restart(stop, fired) if stop is not None else None
    if errors:
        raise errors[0]
    for c in cells:
        _finish(c.out, c.store, c.owned, fired.get("began_s"), stop, ended)
    return CellsResult([c.out for c in cells], stop_report)


def _restart(stop: DcStop, fired: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"cell": stop.cell, "fired": "began_s" in fired}
    report["at"] = f"{stop.at_s:g}s" if stop.at_s is not None else f"{stop.at_fraction:.0%}"
    if "began_s" in fired:
        report["began_s"] = round(fired["began_s"], 2)
        report["stopped_s"] = round(fired["stopped_s"], 2)
        if "error" in fired:
            report["error"] = fired["error"]
        began = time.perf_counter()
        # Started again before the check: it reads each provider in its home cell.
        stop.start()
        report["restart_s"] = round(time.perf_counter() - began, 1)
    return report


def _when_up(read: Callable[[], list[str]], patience: float = 300.0) -> list[str]:
    """``read`` once the store answers it. After a DC is started again the
    driver finds its nodes only on its own reconnection schedule (backing off
    to a minute or more), so the first reads there fail for a while."""
    deadline = time.monotonic() + patience
    pause = 0.5
    while True:
        try:
            return read()
        except StoreUnavailable:  # CellUnavailable too
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


def _finish(
    out: CellResult,
    store: Store,
    owned: set[str],
    split: float | None,
    stop: DcStop | None,
    ended: float,
) -> None:
    r = out.result
    r.elapsed_s = max((f[0] for f in out.finished), default=ended)
    r.placements_per_s = r.placed / r.elapsed_s if r.elapsed_s else 0.0
    r.p50_ms = _percentile(r.latencies_ms, 50)
    r.p99_ms = _percentile(r.latencies_ms, 99)
    r.overcommitted_providers = len(_when_up(lambda: overcommitted(store, only=owned)))
    if split is None or stop is None:
        return
    before, after = Phase("both up"), Phase(f"{stop.cell} stopped")
    before.seconds = min(split, r.elapsed_s)
    after.seconds = max(0.0, r.elapsed_s - split)
    for at, placed, active, ms in out.finished:
        phase = before if at < split else after
        phase.placed += placed
        if active:
            phase.active += 1
            phase.latencies_ms.append(ms)
        else:
            phase.failed += 1
            phase.error_latencies_ms.append(ms)
    out.phases = [before, after]
