"""Filters a store query cannot express.

The store already returned only providers that fit the request group
(amounts, traits, attributes, aggregates, tree, heartbeat). A filter here
looks at one candidate and either passes it or rejects it with a reason that
carries the numbers an operator needs. To add your own, write a class with a
``NAME`` and a ``filter`` method and register it::

    @FILTERS.register
    class RackFilter:
        NAME = "RackFilter"

        def __init__(self, rack: str) -> None:  # options come from config.options
            self.rack = rack

        def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
            rack = candidate.provider.attributes.get("rack")
            if rack == self.rack:
                return FilterResult.ok()
            return FilterResult.reject(f"rack is {rack!r}, want {self.rack!r}")

then list ``"RackFilter"`` in ``SchedulerConfig.filters`` and its keyword
arguments in ``SchedulerConfig.options["RackFilter"]``.

A filter may also define ``applies(ctx) -> bool``: called once per query, a
False skips the filter for every candidate of that query (the built-in hint
filters use it, so a request without hints pays nothing for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from claimant.model import ClaimStatus, GroupPolicyKind, InvalidInput, ProviderUsage
from claimant.scheduler.context import PlacementContext
from claimant.scheduler.registry import Registry


@dataclass(frozen=True, slots=True)
class FilterResult:
    passed: bool
    reason: str = ""

    @classmethod
    def ok(cls) -> FilterResult:
        return _PASS

    @classmethod
    def reject(cls, reason: str) -> FilterResult:
        return cls(False, reason)


_PASS = FilterResult(True)


@runtime_checkable
class Filter(Protocol):
    NAME: ClassVar[str]

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult: ...


FILTERS: Registry[Filter] = Registry("filter")


def applies(plugin: object, ctx: PlacementContext) -> bool:
    """A plugin's optional ``applies(ctx)``; plugins without one always apply."""
    check = getattr(plugin, "applies", None)
    return True if check is None else bool(check(ctx))


def _short(uuids: Any, n: int = 3) -> str:
    items = sorted(uuids)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


@FILTERS.register
class AffinityFilter:
    """Server group policy ``affinity``: every member on one host."""

    NAME = "AffinityFilter"

    def applies(self, ctx: PlacementContext) -> bool:
        return ctx.is_host_group and ctx.request.hints.group_policy == GroupPolicyKind.AFFINITY

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        hints = ctx.request.hints
        if hints.group_policy != GroupPolicyKind.AFFINITY or not ctx.is_host_group:
            return FilterResult.ok()
        hosts = ctx.state.server_group_hosts()
        if not hosts or candidate.provider.root_uuid in hosts:
            return FilterResult.ok()
        members = sum(hosts.values())
        return FilterResult.reject(
            f"affinity: server group {hints.group!r} has {members} member(s) on "
            f"{len(hosts)} other host(s) ({_short(hosts)})"
        )


@FILTERS.register
class AntiAffinityFilter:
    """Server group policy ``anti-affinity``: no two members on one host."""

    NAME = "AntiAffinityFilter"

    def applies(self, ctx: PlacementContext) -> bool:
        return ctx.is_host_group and ctx.request.hints.group_policy == GroupPolicyKind.ANTI_AFFINITY

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        hints = ctx.request.hints
        if hints.group_policy != GroupPolicyKind.ANTI_AFFINITY or not ctx.is_host_group:
            return FilterResult.ok()
        n = ctx.state.server_group_hosts().get(candidate.provider.root_uuid, 0)
        if n == 0:
            return FilterResult.ok()
        return FilterResult.reject(
            f"anti-affinity: server group {hints.group!r} already has {n} member(s) on this host"
        )


@FILTERS.register
class SameHostFilter:
    """Hint ``same_host``: on a host that holds one of the named consumers."""

    NAME = "SameHostFilter"

    def applies(self, ctx: PlacementContext) -> bool:
        return ctx.is_host_group and bool(ctx.request.hints.same_host)

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        wanted = ctx.request.hints.same_host
        if not wanted or not ctx.is_host_group:
            return FilterResult.ok()
        hosts = ctx.state.same_hosts()
        if candidate.provider.root_uuid in hosts:
            return FilterResult.ok()
        if not hosts:
            return FilterResult.reject(
                f"same_host: none of the {len(wanted)} named consumer(s) holds anything"
            )
        return FilterResult.reject(
            f"same_host: the {len(wanted)} named consumer(s) are on {len(hosts)} other "
            f"host(s) ({_short(hosts)})"
        )


@FILTERS.register
class DifferentHostFilter:
    """Hint ``different_host``: not on a host that holds any named consumer."""

    NAME = "DifferentHostFilter"

    def applies(self, ctx: PlacementContext) -> bool:
        return ctx.is_host_group and bool(ctx.request.hints.different_host)

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        if not ctx.request.hints.different_host or not ctx.is_host_group:
            return FilterResult.ok()
        if candidate.provider.root_uuid not in ctx.state.different_hosts():
            return FilterResult.ok()
        return FilterResult.reject("different_host: this host holds a named consumer")


@FILTERS.register
class MaxClaimsPerProviderFilter:
    """At most ``max_claims`` unconfirmed claims (builds in flight) on one
    provider, like Nova's IoOpsFilter: a burst of requests then spreads over
    more hosts instead of queueing builds on the emptiest one. Costs one store
    read per candidate, so it is not on by default."""

    NAME = "MaxClaimsPerProviderFilter"

    def __init__(self, max_claims: int = 8) -> None:
        if isinstance(max_claims, bool) or not isinstance(max_claims, int) or max_claims < 1:
            raise InvalidInput(
                f"{self.NAME}: max_claims must be a positive integer, got {max_claims!r}",
                field="max_claims",
            )
        self.max_claims = max_claims

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        n = len(
            ctx.store.list_claims(provider_uuid=candidate.provider.uuid, status=ClaimStatus.CLAIMED)
        )
        if n < self.max_claims:
            return FilterResult.ok()
        return FilterResult.reject(
            f"max claims: {n} unconfirmed claim(s) on this provider, limit {self.max_claims}"
        )
