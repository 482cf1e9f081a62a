"""/v1/capacity: the cloud at a glance (``claimant top``, the dashboard):
capacity, used and free per resource class and per aggregate, and how many
providers are in each health, in one read of the store; the same per cell
(docs/cells.md), and ``?cell=`` for one cell only."""

from __future__ import annotations

from typing import Any

from claimant.api.deps import HeartbeatTimeoutDep, StoreDep
from claimant.model import Health, ProviderUsage, StoreUnavailable, provider_health
from claimant.store import check_cell

# The cell of a provider with no home (made before cells, on a keyspace of
# several DCs).
NO_CELL = "-"


class _Sum:
    __slots__ = ("capacity", "providers", "schedulable_free", "used")

    def __init__(self) -> None:
        self.capacity = 0
        self.used = 0
        self.schedulable_free = 0
        self.providers = 0

    def to_dict(self) -> dict[str, Any]:
        free = self.capacity - self.used
        return {
            "capacity": self.capacity,
            "used": self.used,
            "free": free,
            "used_percent": round(100 * self.used / self.capacity, 1) if self.capacity else 0.0,
            "schedulable_free": self.schedulable_free,
            "providers": self.providers,
        }


def _add(sums: dict[str, _Sum], pu: ProviderUsage, schedulable: bool) -> None:
    for rc, u in pu.usages.items():
        s = sums.setdefault(rc, _Sum())
        s.capacity += u.capacity
        s.used += u.used
        s.providers += 1
        if schedulable:
            s.schedulable_free += max(u.free, 0)


class _Providers:
    __slots__ = ("enabled", "health", "total")

    def __init__(self) -> None:
        self.total = 0
        self.enabled = 0
        self.health = {h.value: 0 for h in Health}

    def add(self, enabled: bool, health: Health) -> None:
        self.total += 1
        self.enabled += enabled
        self.health[health.value] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "enabled": self.enabled,
            "disabled": self.total - self.enabled,
            "health": dict(self.health),
        }


def get_capacity(
    store: StoreDep, timeout: HeartbeatTimeoutDep, cell: str | None = None
) -> dict[str, Any]:
    if cell is not None:
        check_cell(store, cell)  # 400 unknown_cell
    now = store.clock()
    providers = _Providers()
    classes: dict[str, _Sum] = {}
    aggregates: dict[str, dict[str, _Sum]] = {}
    members: dict[str, int] = {}
    # Every cell of the store, those without providers too.
    cells: dict[str, tuple[_Providers, dict[str, _Sum]]] = {
        name: (_Providers(), {}) for name in ([cell] if cell is not None else store.cells())
    }
    usages = store.list_usages()
    try:
        names = {a.uuid: a.name for a in store.list_aggregates()}
    except StoreUnavailable:
        # Aggregate names are global rows (QUORUM over every DC): while a DC
        # is down they can't be read, but the sums, read in this cell, can.
        # Unnamed aggregates show their uuid (docs/cells.md).
        names = {}
    for pu in usages:
        p = pu.provider
        home = p.cell or NO_CELL
        if cell is not None and home != cell:
            continue
        h = provider_health(p.heartbeat_at, now, timeout)
        providers.add(p.enabled, h)
        # What a new request could still get: the scheduler skips disabled
        # providers and those past the heartbeat timeout.
        schedulable = p.enabled and h in (Health.UP, Health.NO_AGENT)
        _add(classes, pu, schedulable)
        in_cell = cells.setdefault(home, (_Providers(), {}))
        in_cell[0].add(p.enabled, h)
        _add(in_cell[1], pu, schedulable)
        for agg in p.aggregates:
            _add(aggregates.setdefault(agg, {}), pu, schedulable)
            members[agg] = members.get(agg, 0) + 1
    return {
        "providers": providers.to_dict(),
        "heartbeat_timeout": timeout,
        "resource_classes": {rc: s.to_dict() for rc, s in sorted(classes.items())},
        "aggregates": [
            {
                "uuid": agg,
                "name": names.get(agg),
                "providers": members[agg],
                "resource_classes": {rc: s.to_dict() for rc, s in sorted(sums.items())},
            }
            for agg, sums in sorted(aggregates.items())
        ],
        "cell": cell,
        "cells": {
            name: {
                "providers": counts.to_dict(),
                "resource_classes": {rc: s.to_dict() for rc, s in sorted(sums.items())},
            }
            for name, (counts, sums) in sorted(cells.items())
        },
    }
