"""Weighers: rank the candidates that passed the filters.

Each weigher returns one raw weight per candidate. The scheduler scales each
weigher's weights to [0, 1] across the candidates (min -> 0, max -> 1, all
equal -> 0), multiplies by the weigher's multiplier from the config and sums
them; the highest total wins. This is how Nova combines its weighers, so the
multipliers operators know carry over.

Resource weighers (``FOLLOWS_STRATEGY = True``) weigh free capacity: with a
positive multiplier they spread, with a negative one they pack. A request
whose hint says ``pack`` flips their sign.

Like a filter, a weigher may define ``applies(ctx) -> bool`` to be skipped
for a whole query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from claimant.model import GroupPolicyKind, InvalidInput, ProviderUsage, Strategy, deadline
from claimant.scheduler.context import PlacementContext
from claimant.scheduler.filters import applies
from claimant.scheduler.registry import Registry


@runtime_checkable
class Weigher(Protocol):
    NAME: ClassVar[str]

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]: ...


WEIGHERS: Registry[Weigher] = Registry("weigher")


def normalize(weights: Sequence[float]) -> list[float]:
    """Scale to [0, 1]: the smallest becomes 0, the largest 1; all equal -> 0."""
    if not weights:
        return []
    low, high = min(weights), max(weights)
    span = high - low
    if span == 0:
        return [0.0] * len(weights)
    return [(w - low) / span for w in weights]


def combine(
    candidates: Sequence[ProviderUsage],
    weighers: Sequence[tuple[Weigher, float]],
    ctx: PlacementContext,
) -> list[float]:
    """Total weight per candidate: sum of multiplier * normalised weight."""
    totals = [0.0] * len(candidates)
    if not candidates:
        return totals
    flip = ctx.request.hints.strategy == Strategy.PACK
    for weigher, multiplier in weighers:
        deadline.check("weighing candidates")
        if multiplier == 0 or not applies(weigher, ctx):
            continue
        if flip and getattr(weigher, "FOLLOWS_STRATEGY", False):
            multiplier = -multiplier
        raw = weigher.weigh(candidates, ctx)
        if len(raw) != len(candidates):
            raise InvalidInput(
                f"weigher {weigher.NAME} returned {len(raw)} weights for {len(candidates)} "
                "candidates"
            )
        for i, w in enumerate(normalize(raw)):
            totals[i] += multiplier * w
    return totals


class _FreeWeigher:
    NAME: ClassVar[str] = ""
    RESOURCE_CLASS: ClassVar[str] = ""
    FOLLOWS_STRATEGY: ClassVar[bool] = True

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        rc = self.RESOURCE_CLASS
        out = []
        # Inline ProviderUsage.free: three weighers times every candidate of
        # every placement.
        for c in candidates:
            u = c.usages.get(rc)
            out.append(float(u.capacity - u.used) if u is not None else 0.0)
        return out


@WEIGHERS.register
class RAMWeigher(_FreeWeigher):
    """Free MEMORY_MB."""

    NAME = "RAMWeigher"
    RESOURCE_CLASS = "MEMORY_MB"


@WEIGHERS.register
class CPUWeigher(_FreeWeigher):
    """Free VCPU."""

    NAME = "CPUWeigher"
    RESOURCE_CLASS = "VCPU"


@WEIGHERS.register
class DiskWeigher(_FreeWeigher):
    """Free DISK_GB."""

    NAME = "DiskWeigher"
    RESOURCE_CLASS = "DISK_GB"


@WEIGHERS.register
class ServerGroupSoftAffinityWeigher:
    """Policy ``soft-affinity``: more members of the group on the host weigh more."""

    NAME = "ServerGroupSoftAffinityWeigher"

    def applies(self, ctx: PlacementContext) -> bool:
        return ctx.is_host_group and ctx.request.hints.group_policy == GroupPolicyKind.SOFT_AFFINITY

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        hints = ctx.request.hints
        if hints.group_policy != GroupPolicyKind.SOFT_AFFINITY or not ctx.is_host_group:
            return [0.0] * len(candidates)
        hosts = ctx.state.server_group_hosts()
        return [float(hosts.get(c.provider.root_uuid, 0)) for c in candidates]


@WEIGHERS.register
class ServerGroupSoftAntiAffinityWeigher:
    """Policy ``soft-anti-affinity``: more members of the group on the host weigh less."""

    NAME = "ServerGroupSoftAntiAffinityWeigher"

    def applies(self, ctx: PlacementContext) -> bool:
        hints = ctx.request.hints
        return ctx.is_host_group and hints.group_policy == GroupPolicyKind.SOFT_ANTI_AFFINITY

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        hints = ctx.request.hints
        if hints.group_policy != GroupPolicyKind.SOFT_ANTI_AFFINITY or not ctx.is_host_group:
            return [0.0] * len(candidates)
        hosts = ctx.state.server_group_hosts()
        return [-float(hosts.get(c.provider.root_uuid, 0)) for c in candidates]


@WEIGHERS.register
class BuildFailureWeigher:
    """Recent build failures on the provider (``Scheduler.record_build_failure``)
    weigh against it. The counter is in memory, per scheduler process, and
    decays by half every ``half_life`` seconds (set through the options; the
    Scheduler reads it)."""

    NAME = "BuildFailureWeigher"

    def __init__(self, half_life: float = 600.0) -> None:
        if (
            isinstance(half_life, bool)
            or not isinstance(half_life, int | float)
            or not half_life > 0
        ):
            raise InvalidInput(
                f"{self.NAME}: half_life must be a positive number of seconds, got {half_life!r}",
                field="half_life",
            )
        self.half_life = float(half_life)

    def applies(self, ctx: PlacementContext) -> bool:
        return bool(ctx.state.failures)

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        failures = ctx.state.failures
        return [-failures.get(c.provider.uuid) for c in candidates]
