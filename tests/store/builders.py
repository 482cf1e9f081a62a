"""Small object builders so each test states only what it is about."""

from __future__ import annotations

import itertools
from typing import Any

from claimant.model import (
    Claim,
    ConsumerAllocations,
    Inventory,
    Provider,
    RequestGroup,
    new_uuid,
)
from claimant.model.names import is_custom
from claimant.store import ClaimSpec, Store

_names = itertools.count(1)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def inv(rc: str, total: int, **kw: Any) -> Inventory:
    return Inventory(resource_class=rc, total=total, **kw)


def make_provider(
    store: Store,
    *,
    name: str | None = None,
    vcpu: int | None = 8,
    memory_mb: int | None = None,
    disk_gb: int | None = None,
    inventories: dict[str, Inventory] | None = None,
    traits: tuple[str, ...] | frozenset[str] = (),
    aggregates: tuple[str, ...] | frozenset[str] = (),
    attributes: dict[str, Any] | None = None,
    parent: Provider | str | None = None,
    type: str = "compute",
    enabled: bool = True,
) -> Provider:
    """Create a provider; ``inventories`` replaces the vcpu/memory_mb/disk_gb shortcuts."""
    if inventories is None:
        inventories = {}
        for rc, total in (("VCPU", vcpu), ("MEMORY_MB", memory_mb), ("DISK_GB", disk_gb)):
            if total:
                inventories[rc] = inv(rc, total)
    for trait in traits:
        if is_custom(trait):
            store.create_trait(trait)
    parent_uuid = parent.uuid if isinstance(parent, Provider) else parent
    return store.create_provider(
        Provider(
            uuid=new_uuid(),
            name=name or f"provider-{next(_names)}",
            type=type,
            parent_uuid=parent_uuid,
            attributes=dict(attributes or {}),
            traits=frozenset(traits),
            aggregates=frozenset(aggregates),
            inventories=inventories,
            enabled=enabled,
        )
    )


def generation(store: Store, uuid: str) -> int:
    return store.get_provider(uuid).generation


def used(store: Store, uuid: str, rc: str = "VCPU") -> int:
    u = store.get_usage(uuid).usages.get(rc)
    return u.used if u else 0


def free(store: Store, uuid: str, rc: str = "VCPU") -> int:
    return store.get_usage(uuid).free(rc)


def take(
    store: Store,
    provider: Provider | str,
    amounts: dict[str, int] | None = None,
    *,
    consumer: str | None = None,
    ttl: float = 300.0,
    **kw: Any,
) -> Claim:
    """Claim against the provider's current generation (VCPU 1 unless told)."""
    uuid = provider.uuid if isinstance(provider, Provider) else provider
    return store.claim(
        ClaimSpec(
            provider_uuid=uuid,
            expected_generation=generation(store, uuid),
            amounts=amounts or {"VCPU": 1},
            consumer_uuid=consumer or new_uuid(),
            ttl=ttl,
            **kw,
        )
    )


def group(**kw: Any) -> RequestGroup:
    kw.setdefault("resources", {"VCPU": 1})
    return RequestGroup(**kw)


def allocs(
    consumer: str,
    allocations: dict[str, dict[str, int]],
    *,
    project_id: str = "project-a",
    user_id: str = "user-a",
    **kw: Any,
) -> ConsumerAllocations:
    return ConsumerAllocations(
        consumer_uuid=consumer,
        project_id=project_id,
        user_id=user_id,
        allocations=allocations,
        **kw,
    )


def reasons_text(exc: Exception) -> str:
    """Everything an error says about why: its message and its details."""
    details = getattr(exc, "details", {}) or {}
    return " ".join([str(exc), *(str(v) for v in details.values())])
