"""Filters a store query cannot express.

The store already returned only providers that fit the request group
(amounts, traits, attributes, aggregates, tree, heartbeat). A filter here
looks at one candidate and either passes it or rejects it with a reason that
carries the numbers an operator needs.

A filter is a class that subclasses ``Filter`` and is registered as an entry
point in the ``claimant.filters`` group under its ``NAME`` (the built-in ones
in pyproject.toml; yours in your package's: docs/plugins.md). Its options
are a ``PluginOptions`` model, ``Options``, validated when the scheduler is
built; its constructor takes them as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from pydantic import Field

from claimant.model import ClaimStatus, GroupPolicyKind, ProviderUsage
from claimant.plugins import NoOptions, PluginGroup, PluginOptions, subclass_of
from claimant.scheduler.context import PlacementContext

if TYPE_CHECKING:
    from claimant.scheduler.weighers import Weigher


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


class Filter(Protocol):
    """What a filter is. Subclass it: the optional hooks' defaults live here."""

    NAME: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = NoOptions
    #: The filter enforces a hard server-group policy (affinity, anti-affinity):
    #: the scheduler then re-reads the group after claiming, since a concurrent
    #: placement the filter could not see may have broken it.
    ENFORCES_SERVER_GROUP: ClassVar[bool] = False

    def applies(self, ctx: PlacementContext) -> bool:
        """Called once per query: False skips the filter for every candidate
        of that query (so a request without hints pays nothing for them)."""
        return True

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult: ...


FILTERS: PluginGroup[Filter] = PluginGroup(
    "claimant.filters", "filter", subclass_of(Filter), named=True
)


def applies(plugin: Filter | Weigher, ctx: PlacementContext) -> bool:
    return plugin.applies(ctx)


def _short(uuids: Any, n: int = 3) -> str:
    items = sorted(uuids)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


class AffinityFilter(Filter):
    """Server group policy ``affinity``: every member on one host."""

    NAME = "AffinityFilter"
    ENFORCES_SERVER_GROUP = True

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


class AntiAffinityFilter(Filter):
    """Server group policy ``anti-affinity``: no two members on one host."""

    NAME = "AntiAffinityFilter"
    ENFORCES_SERVER_GROUP = True

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


class SameHostFilter(Filter):
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


class DifferentHostFilter(Filter):
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


class MaxClaimsPerProviderFilter(Filter):
    """At most ``max_claims`` unconfirmed claims (builds in flight) on one
    provider, like Nova's IoOpsFilter: a burst of requests then spreads over
    more hosts instead of queueing builds on the emptiest one. Costs one store
    read per candidate, so it is not on by default."""

    NAME = "MaxClaimsPerProviderFilter"

    class Options(PluginOptions):
        max_claims: Annotated[int, Field(ge=1)] = 8

    def __init__(self, max_claims: int = 8) -> None:
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
