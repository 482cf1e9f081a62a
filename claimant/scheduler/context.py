"""What filters and weighers may look at besides the candidate itself.

``RequestState`` lives for one ``Scheduler.schedule`` call and caches the few
store look-ups the placement hints need (server-group members, same/different
host consumers), so each is read once per request, not once per candidate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from claimant.model import Claim, NotFound, ProviderUsage, Request, RequestGroup
from claimant.store.base import Store


class FailureCounter:
    """Recent build failures per provider, decaying with a half-life.

    Kept in memory by each scheduler process: it holds only providers that
    failed recently (entries that decayed below ``floor`` are dropped), never a
    copy of all hosts."""

    def __init__(
        self, half_life: float = 600.0, *, clock: Callable[[], float], floor: float = 0.01
    ) -> None:
        self.half_life = half_life
        self.floor = floor
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, float]] = {}  # uuid -> (value, at)

    def _decayed(self, value: float, at: float, now: float) -> float:
        return value * math.pow(0.5, max(0.0, now - at) / self.half_life)

    def record(self, provider_uuid: str, n: float = 1.0) -> float:
        now = self._clock()
        with self._lock:
            value, at = self._counts.get(provider_uuid, (0.0, now))
            value = self._decayed(value, at, now) + n
            self._counts[provider_uuid] = (value, now)
            if len(self._counts) > 1024:
                self._prune(now)
            return value

    def reset(self, provider_uuid: str) -> None:
        with self._lock:
            self._counts.pop(provider_uuid, None)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def get(self, provider_uuid: str) -> float:
        with self._lock:
            entry = self._counts.get(provider_uuid)
        if entry is None:
            return 0.0
        value = self._decayed(entry[0], entry[1], self._clock())
        return value if value >= self.floor else 0.0

    def _prune(self, now: float) -> None:
        for uuid, (value, at) in list(self._counts.items()):
            if self._decayed(value, at, now) < self.floor:
                del self._counts[uuid]


@dataclass(slots=True)
class RequestState:
    """Per-request caches and what this request has placed so far."""

    store: Store
    request: Request
    failures: FailureCounter
    # Root (host) of the first group of every instance placed so far.
    placed_roots: list[str] = field(default_factory=list)
    # Candidates the previous instance did not use (single-group requests).
    leftover: list[ProviderUsage] | None = None
    # Cells a claim found unreachable: skipped for the rest of the request.
    down_cells: set[str] = field(default_factory=set)
    # The request's record as it will read once placed, given its claims:
    # written with the last claim when nothing can follow that claim
    # (Scheduler.place's ``record``); ``recorded`` is what the store saved.
    record: Callable[[list[Claim]], Request] | None = None
    recorded: Request | None = None
    _roots: dict[str, str] = field(default_factory=dict)
    _group_hosts: dict[str, int] | None = None
    _same_hosts: frozenset[str] | None = None
    _different_hosts: frozenset[str] | None = None

    def root_of(self, provider_uuid: str) -> str:
        root = self._roots.get(provider_uuid)
        if root is None:
            try:
                root = self.store.get_provider(provider_uuid).root_uuid
            except NotFound:
                root = provider_uuid
            self._roots[provider_uuid] = root
        return root

    def remember_root(self, provider: ProviderUsage) -> None:
        self._roots[provider.provider.uuid] = provider.provider.root_uuid

    def server_group_hosts(self) -> dict[str, int]:
        """Host (tree root) -> members of the request's server group on it,
        this request's own placements included."""
        group = self.request.hints.group
        if not group:
            return {}
        if self._group_hosts is None:
            # A member with claims on several providers of one tree counts once.
            self._group_hosts = self.read_server_group()
        out = dict(self._group_hosts)
        for root in self.placed_roots:
            out[root] = out.get(root, 0) + 1
        return out

    def read_server_group(self) -> dict[str, int]:
        """Host (tree root) -> members, read from the store now (uncached)."""
        hosts: dict[str, int] = {}
        if self.request.hints.group:
            for uuid, n in self.store.providers_of_group(self.request.hints.group).items():
                root = self.root_of(uuid)
                hosts[root] = max(hosts.get(root, 0), n)
        return hosts

    def refresh_server_group(self) -> None:
        """Forget the cached view; the store now holds this request's own
        placements too, so they are no longer added on top."""
        self._group_hosts = None
        self.placed_roots.clear()

    def same_hosts(self) -> frozenset[str]:
        if self._same_hosts is None:
            uuids = self.store.providers_of_consumers(self.request.hints.same_host)
            self._same_hosts = frozenset(self.root_of(u) for u in uuids)
        return self._same_hosts

    def different_hosts(self) -> frozenset[str]:
        if self._different_hosts is None:
            uuids = self.store.providers_of_consumers(self.request.hints.different_host)
            self._different_hosts = frozenset(self.root_of(u) for u in uuids)
        return self._different_hosts


@dataclass(slots=True)
class PlacementContext:
    """One request group of one instance being placed."""

    state: RequestState
    group: RequestGroup
    group_index: int
    consumer_uuid: str
    instance_index: int = 0
    # Providers already chosen for the other groups of this instance.
    chosen: dict[int, ProviderUsage] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.state.store

    @property
    def request(self) -> Request:
        return self.state.request

    @property
    def is_host_group(self) -> bool:
        """The first group places the instance's host; host-level hints
        (server groups, same/different host) apply to it alone."""
        return self.group_index == 0
