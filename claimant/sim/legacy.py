"""Nova's FilterScheduler, reproduced for the comparison (``--mode legacy``).

What it keeps from Nova (nova/scheduler/host_manager.py, filter_scheduler.py,
compute/resource_tracker.py), because this is where its races come from:

- Each scheduler has its own in-memory ``HostState`` of every host, refreshed
  from the store on every request (HostManager.get_all_host_states). A host
  state that this scheduler consumed from since its last refresh keeps its
  own numbers until the host's record in the store changes
  (HostState.update_from_compute_node skips older records).
- Filters run on that copy (RamFilter, CoreFilter, DiskFilter, and the exact
  match of a bare-metal node's class), the RAM weigher ranks it, and one host
  is chosen at random among the best ``host_subset_size``; the choice is
  consumed from the copy only (consume_from_request).
- The host checks the claim only when it builds: under its own lock, against
  the store's real usage (ResourceTracker.instance_claim under
  COMPUTE_RESOURCE_SEMAPHORE). Too little free means the build fails and the
  conductor reschedules with the hosts already tried excluded (RetryFilter),
  at most ``max_attempts`` builds. So races cost failed builds and retries,
  never overcommit: the store refuses an overcommitting write either way.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from claimant.agent.driver import BuildError, Driver
from claimant.agent.messages import Failure
from claimant.model import (
    Claim,
    ClaimNotActive,
    GenerationConflict,
    InsufficientCapacity,
    NotFound,
    RequestGroup,
    check_fit,
)
from claimant.store.base import CandidateQuery, ClaimSpec, Store

# What the HostManager reads: one probe per (provider type, class) the cloud
# offers. A probe asks for 1 unit, so a host with none of that class free is
# not returned; it would fail every filter anyway.
Probe = tuple[str, str]


@dataclass(slots=True)
class HostState:
    uuid: str
    name: str
    type: str
    aggregates: frozenset[str]
    capacity: dict[str, int]
    used: dict[str, int]
    generation: int
    # The store generation this state was last built from, and whether this
    # scheduler has consumed from it since (then it is newer than the record).
    consumed: bool = False

    def free(self, rc: str) -> int:
        return self.capacity.get(rc, 0) - self.used.get(rc, 0)

    def fits(self, amounts: dict[str, int]) -> bool:
        return all(self.free(rc) >= n for rc, n in amounts.items())

    def consume(self, amounts: dict[str, int]) -> None:
        for rc, n in amounts.items():
            self.used[rc] = self.used.get(rc, 0) + n
        self.consumed = True


class HostManager:
    """One scheduler's copy of every host."""

    def __init__(self, store: Store, probes: list[Probe]) -> None:
        self.store = store
        self.probes = probes
        self.states: dict[str, HostState] = {}
        self.refreshes = 0

    def refresh(self) -> None:
        seen: dict[str, HostState] = {}
        for ptype, rc in self.probes:
            group = RequestGroup(resources={rc: 1}, provider_type=ptype)
            for cand in self.store.find_candidates(CandidateQuery(group=group, limit=100000)):
                p = cand.provider
                if p.uuid in seen:
                    continue
                old = self.states.get(p.uuid)
                if old is not None and old.consumed and old.generation == p.generation:
                    # Our own consumption is newer than the record: keep it.
                    seen[p.uuid] = old
                    continue
                seen[p.uuid] = HostState(
                    uuid=p.uuid,
                    name=p.name,
                    type=p.type,
                    aggregates=p.aggregates,
                    capacity={c: u.capacity for c, u in cand.usages.items()},
                    used={c: u.used for c, u in cand.usages.items()},
                    generation=p.generation,
                )
        # Hosts the probes no longer return are full (or gone): drop them.
        self.states = seen
        self.refreshes += 1


class FilterScheduler:
    def __init__(
        self, hosts: HostManager, *, host_subset_size: int = 1, rng: random.Random | None = None
    ) -> None:
        self.hosts = hosts
        self.subset = host_subset_size
        self.rng = rng or random.Random()

    def _passes(self, h: HostState, g: RequestGroup, exclude: set[str]) -> bool:
        if h.uuid in exclude:  # RetryFilter
            return False
        if g.provider_type and h.type != g.provider_type:
            return False
        if any(not (h.aggregates & any_of) for any_of in g.member_of):
            return False  # AggregateInstanceExtraSpecsFilter / availability zone
        # RamFilter, CoreFilter, DiskFilter; exact class match for bare metal.
        return h.fits(g.resources)

    def _pick(self, hosts: list[HostState]) -> HostState:
        # RAMWeigher (most free RAM first); Cinder's CapacityWeigher for pools.
        key = "MEMORY_MB" if any("MEMORY_MB" in h.capacity for h in hosts) else "DISK_GB"
        ranked = sorted(hosts, key=lambda h: -h.free(key))
        return self.rng.choice(ranked[: self.subset])

    def select(
        self, groups: tuple[RequestGroup, ...], count: int, exclude: set[str] | None = None
    ) -> list[list[tuple[HostState, dict[str, int]]]] | None:
        """One destination per group per instance, from a fresh refresh; None
        if some instance finds no host (NoValidHost)."""
        self.hosts.refresh()
        exclude = exclude or set()
        out = []
        for _ in range(count):
            chosen = []
            for g in groups:
                passed = [h for h in self.hosts.states.values() if self._passes(h, g, exclude)]
                if not passed:
                    return None
                h = self._pick(passed)
                h.consume(g.resources)
                chosen.append((h, dict(g.resources)))
            out.append(chosen)
        return out


class HostLocks:
    """The per-host lock of each compute (and of each pool's volume service)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def __getitem__(self, uuid: str) -> threading.Lock:
        with self._guard:
            return self._locks[uuid]


@dataclass(slots=True)
class LegacyBuild:
    ok: bool
    failure: Failure | None = None
    claims: list[Claim] = field(default_factory=list)


def legacy_build(
    store: Store,
    locks: HostLocks,
    driver: Driver,
    consumer: str,
    destinations: list[tuple[str, dict[str, int]]],
    request_uuid: str,
) -> LegacyBuild:
    """The compute side: claim on each destination under its lock, checking
    the store's real usage (instance_claim), then build, then confirm."""
    taken: list[Claim] = []

    def give_back() -> None:
        for c in taken:
            with contextlib.suppress(NotFound, ClaimNotActive):
                store.release_claim(c.uuid)

    for uuid, amounts in destinations:
        with locks[uuid]:
            for _ in range(5):
                usage = store.get_usage(uuid)
                used = {rc: u.used for rc, u in usage.usages.items()}
                if not check_fit(usage.provider.inventories, used, amounts).fits:
                    give_back()
                    return LegacyBuild(False, Failure.CAPACITY)
                try:
                    taken.append(
                        store.claim(
                            ClaimSpec(
                                provider_uuid=uuid,
                                expected_generation=usage.provider.generation,
                                amounts=amounts,
                                consumer_uuid=consumer,
                                request_uuid=request_uuid,
                            )
                        )
                    )
                    break
                except (GenerationConflict, InsufficientCapacity):
                    continue  # a writer outside these locks (a sweep): read again
            else:
                give_back()
                return LegacyBuild(False, Failure.CAPACITY)
    try:
        driver.build(consumer, {u: a for u, a in destinations})
    except BuildError:
        give_back()
        return LegacyBuild(False, Failure.DRIVER)
    for c in taken:
        store.confirm_claim(c.uuid)
    return LegacyBuild(True, None, taken)
