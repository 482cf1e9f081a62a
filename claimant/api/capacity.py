"""/v1/capacity: the cloud at a glance (``claimant top``, the dashboard):
capacity, used and free per resource class and per aggregate, and how many
providers are in each health, in one read of the store."""

from __future__ import annotations

from typing import Any

from claimant.api.deps import HeartbeatTimeoutDep, StoreDep
from claimant.model import Health, ProviderUsage, provider_health


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


def get_capacity(store: StoreDep, timeout: HeartbeatTimeoutDep) -> dict[str, Any]:
    now = store.clock()
    classes: dict[str, _Sum] = {}
    aggregates: dict[str, dict[str, _Sum]] = {}
    members: dict[str, int] = {}
    health = {h.value: 0 for h in Health}
    enabled = 0
    usages = store.list_usages()
    names = {a.uuid: a.name for a in store.list_aggregates()}
    for pu in usages:
        p = pu.provider
        h = provider_health(p.heartbeat_at, now, timeout)
        health[h.value] += 1
        enabled += p.enabled
        # What a new request could still get: the scheduler skips disabled
        # providers and those past the heartbeat timeout.
        schedulable = p.enabled and h in (Health.UP, Health.NO_AGENT)
        _add(classes, pu, schedulable)
        for agg in p.aggregates:
            _add(aggregates.setdefault(agg, {}), pu, schedulable)
            members[agg] = members.get(agg, 0) + 1
    return {
        "providers": {
            "total": len(usages),
            "enabled": enabled,
            "disabled": len(usages) - enabled,
            "health": health,
        },
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
    }
