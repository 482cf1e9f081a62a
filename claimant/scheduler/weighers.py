"""Weighers: rank the candidates that passed the filters.

Each weigher returns one raw weight per candidate. The scheduler scales each
weigher's weights to [0, 1] across the candidates (min -> 0, max -> 1, all
equal -> 0), multiplies by the weigher's multiplier from the config and sums
them; the highest total wins. This is how Nova combines its weighers, so the
multipliers operators know carry over.

Resource weighers (``FOLLOWS_STRATEGY = True``) weigh free capacity: with a
positive multiplier they spread, with a negative one they pack. A request
whose hint says ``pack`` flips their sign.

A weigher subclasses ``Weigher`` and is an entry point in the
``claimant.weighers`` group under its ``NAME``, with typed ``Options``, as a
filter is (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar, Protocol

from pydantic import Field

from claimant.model import GroupPolicyKind, InvalidInput, ProviderUsage, Strategy, deadline
from claimant.plugins import NoOptions, PluginGroup, PluginOptions, subclass_of
from claimant.scheduler.context import PlacementContext


class Weigher(Protocol):
    """What a weigher is. Subclass it: the optional hooks' defaults live here."""

    NAME: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = NoOptions
    #: Weighs free capacity: a request whose hint says ``pack`` flips its sign.
    FOLLOWS_STRATEGY: ClassVar[bool] = False

    def applies(self, ctx: PlacementContext) -> bool:
        """Called once per query: False skips the weigher for that query."""
        return True

    def failure_half_life(self) -> float | None:
        """Seconds in which the scheduler's build-failure counts halve, for a
        weigher that reads them (``ctx.state.failures``); None for the rest."""
        return None

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]: ...


WEIGHERS: PluginGroup[Weigher] = PluginGroup(
    "claimant.weighers", "weigher", subclass_of(Weigher), named=True
)


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
        if multiplier == 0 or not weigher.applies(ctx):
            continue
        if flip and weigher.FOLLOWS_STRATEGY:
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


class _FreeWeigher(Weigher):
    RESOURCE_CLASS: ClassVar[str] = ""
    FOLLOWS_STRATEGY = True

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        rc = self.RESOURCE_CLASS
        out = []
        # Inline ProviderUsage.free: three weighers times every candidate of
        # every placement.
        for c in candidates:
            u = c.usages.get(rc)
            out.append(float(u.capacity - u.used) if u is not None else 0.0)
        return out


class RAMWeigher(_FreeWeigher):
    """Free MEMORY_MB."""

    NAME = "RAMWeigher"
    RESOURCE_CLASS = "MEMORY_MB"


class CPUWeigher(_FreeWeigher):
    """Free VCPU."""

    NAME = "CPUWeigher"
    RESOURCE_CLASS = "VCPU"


class DiskWeigher(_FreeWeigher):
    """Free DISK_GB."""

    NAME = "DiskWeigher"
    RESOURCE_CLASS = "DISK_GB"


class ServerGroupSoftAffinityWeigher(Weigher):
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


class ServerGroupSoftAntiAffinityWeigher(Weigher):
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


class BuildFailureWeigher(Weigher):
    """Recent build failures on the provider (``Scheduler.record_build_failure``)
    weigh against it. The counter is in memory, per scheduler process, and
    decays by half every ``half_life`` seconds (set through the options; the
    Scheduler reads it)."""

    NAME = "BuildFailureWeigher"

    class Options(PluginOptions):
        half_life: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 600.0

    def __init__(self, half_life: float = 600.0) -> None:
        self.half_life = float(half_life)

    def failure_half_life(self) -> float | None:
        return self.half_life

    def applies(self, ctx: PlacementContext) -> bool:
        return bool(ctx.state.failures)

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        failures = ctx.state.failures
        return [-failures.get(c.provider.uuid) for c in candidates]
