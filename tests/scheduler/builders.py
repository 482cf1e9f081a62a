"""Small builders so each scheduler test states only what it is about."""

from __future__ import annotations

import itertools
import random
from typing import Any

from claimant.model import (
    Hints,
    Inventory,
    Provider,
    Request,
    RequestGroup,
    new_uuid,
)
from claimant.model.names import is_custom
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import Store

_seq = itertools.count(1)


def host(
    store: Store,
    name: str | None = None,
    *,
    vcpu: int | None = 8,
    memory_mb: int | None = 8192,
    disk_gb: int | None = None,
    inventories: dict[str, int] | None = None,
    traits: tuple[str, ...] = (),
    aggregates: tuple[str, ...] = (),
    attributes: dict[str, Any] | None = None,
    parent: Provider | None = None,
    type: str = "compute",
) -> Provider:
    """A provider; ``inventories`` (class -> total) replaces the shortcuts."""
    if inventories is None:
        inventories = {
            rc: n for rc, n in (("VCPU", vcpu), ("MEMORY_MB", memory_mb), ("DISK_GB", disk_gb)) if n
        }
    for t in traits:
        if is_custom(t):
            store.create_trait(t)
    return store.create_provider(
        Provider(
            uuid=new_uuid(),
            name=name or f"host-{next(_seq)}",
            type=type,
            parent_uuid=parent.uuid if parent else None,
            attributes=dict(attributes or {}),
            traits=frozenset(traits),
            aggregates=frozenset(aggregates),
            inventories={rc: Inventory(rc, n) for rc, n in inventories.items()},
        )
    )


def grp(name: str = "", **resources: int) -> RequestGroup:
    return RequestGroup(name=name, resources=resources or {"VCPU": 1})


def req(*groups: RequestGroup, hints: Hints | None = None, **kw: Any) -> Request:
    return Request(
        uuid=new_uuid(),
        groups=groups or (grp(),),
        hints=hints or Hints(),
        project_id="project-a",
        user_id="user-a",
        **kw,
    )


def scheduler(store: Store, seed: int = 7, **config: Any) -> Scheduler:
    return Scheduler(store, SchedulerConfig(**config), rng=random.Random(seed))


def used(store: Store, provider: Provider | str, rc: str = "VCPU") -> int:
    uuid = provider.uuid if isinstance(provider, Provider) else provider
    u = store.get_usage(uuid).usages.get(rc)
    return u.used if u else 0


def names(store: Store, uuids: list[str]) -> list[str]:
    return [store.get_provider(u).name for u in uuids]
