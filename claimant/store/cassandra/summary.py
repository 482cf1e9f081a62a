"""``Store.summary`` on Cassandra: one paged read of every provider's static
row (the decision state), summed here. Cassandra has no cheap aggregate
across partitions, so callers cache the answer (``/metrics`` does, a few
seconds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from claimant.model import Provider
from claimant.store.base import CloudSummary

if TYPE_CHECKING:
    from claimant.store.cassandra.store import CassandraStore


def summary(store: CassandraStore, heartbeat_after: float | None) -> CloudSummary:
    now = store.clock()
    capacity: dict[str, int] = {}
    used: dict[str, int] = {}
    providers: dict[tuple[str, bool], int] = {}
    live = 0
    for state in store._all_states():
        for rc, u in state.usages(now).items():
            capacity[rc] = capacity.get(rc, 0) + u.capacity
            used[rc] = used.get(rc, 0) + u.used
        if state.heartbeat_at is None:
            health = "no_agent"
        elif heartbeat_after is None or state.heartbeat_at > heartbeat_after:
            health = "up"
        else:
            health = "stale"
        key = (health, state.enabled)
        providers[key] = providers.get(key, 0) + 1
        live += len(state.live_holds(now))
    return CloudSummary(capacity, used, providers, live)


def heartbeats_between(store: CassandraStore, after: float, until: float) -> list[Provider]:
    return [
        s.provider()
        for s in store._all_states()
        if s.heartbeat_at is not None and after < s.heartbeat_at <= until
    ]
