"""The trees one search looks at: providers with the usage they were read
with, indexed the ways the per-group step asks."""

from __future__ import annotations

from collections.abc import Iterable

from claimant.model import Provider, ProviderUsage
from claimant.scheduler.candidates.request import SHARING_TRAIT


class Snapshot:
    def __init__(self, found: Iterable[ProviderUsage]) -> None:
        self.usages: dict[str, ProviderUsage] = {}
        for pu in found:
            self.usages[pu.provider.uuid] = pu
        self.providers: dict[str, Provider] = {u: pu.provider for u, pu in self.usages.items()}
        self.children: dict[str, int] = {}
        self.by_agg: dict[str, set[str]] = {}
        self.sharing: set[str] = set()
        for u, p in self.providers.items():
            if p.parent_uuid is not None:
                self.children[p.parent_uuid] = self.children.get(p.parent_uuid, 0) + 1
            for agg in p.aggregates:
                self.by_agg.setdefault(agg, set()).add(u)
            if SHARING_TRAIT in p.traits:
                self.sharing.add(u)
        self.has_trees = any(p.parent_uuid for p in self.providers.values())
        self._fits: dict[tuple[str, int], set[str]] = {}
        self._anchors: dict[str, set[str]] = {}
        self._members: dict[str, list[str]] | None = None
        self._sym: dict[str, tuple[object, ...] | None] = {}

    def used(self, uuid: str, rc: str) -> int:
        u = self.usages[uuid].usages.get(rc)
        return u.used if u else 0

    def free(self, uuid: str, rc: str) -> int:
        u = self.usages[uuid].usages.get(rc)
        return u.free if u else 0

    def with_resource(self, rc: str, amount: int) -> set[str]:
        """Enabled providers with room for ``amount`` of ``rc``, its units
        included (what the store's candidate query checks)."""
        key = (rc, amount)
        found = self._fits.get(key)
        if found is None:
            found = set()
            for u, p in self.providers.items():
                inv = p.inventories.get(rc)
                if (
                    inv is not None
                    and p.enabled
                    and inv.min_unit <= amount <= inv.max_unit
                    and amount % inv.step_size == 0
                    and self.used(u, rc) + amount <= inv.capacity
                ):
                    found.add(u)
            self._fits[key] = found
        return found

    def root(self, uuid: str) -> str:
        return self.providers[uuid].root_uuid

    def parent(self, uuid: str) -> str | None:
        return self.providers[uuid].parent_uuid

    def in_aggs(self, member_of: Iterable[frozenset[str]]) -> set[str]:
        out = set(self.providers)
        for anyof in member_of:
            out &= set().union(*(self.by_agg.get(a, set()) for a in anyof))
        return out

    def anchors(self, sharing_uuid: str) -> set[str]:
        """Roots of every loaded tree that shares an aggregate with this provider."""
        out = self._anchors.get(sharing_uuid)
        if out is None:
            out = set()
            for agg in self.providers[sharing_uuid].aggregates:
                out |= {self.root(u) for u in self.by_agg.get(agg, set())}
            self._anchors[sharing_uuid] = out
        return out

    def ancestors(self, uuid: str) -> set[str]:
        out = {uuid}
        cursor = self.parent(uuid)
        while cursor is not None and cursor in self.providers:
            out.add(cursor)
            cursor = self.parent(cursor)
        return out

    def symmetry_key(self, uuid: str) -> tuple[object, ...] | None:
        if uuid not in self._sym:
            self._sym[uuid] = self._symmetry_key(uuid)
        return self._sym[uuid]

    def _symmetry_key(self, uuid: str) -> tuple[object, ...] | None:
        """Two leaves under one parent with equal keys are interchangeable:
        swapping them maps every partial assignment that touches neither onto
        itself. None for providers that are not such leaves."""
        p = self.providers[uuid]
        if p.parent_uuid is None or uuid in self.children or uuid in self.sharing:
            return None
        usage = self.usages[uuid].usages
        return (
            p.parent_uuid,
            p.enabled,
            p.traits,
            p.aggregates,
            tuple(
                sorted(
                    (rc, inv, usage[rc].used if rc in usage else 0)
                    for rc, inv in p.inventories.items()
                )
            ),
        )

    def members(self, root: str) -> list[str]:
        if self._members is None:
            self._members = {}
            for u, p in self.providers.items():
                self._members.setdefault(p.root_uuid, []).append(u)
        return self._members.get(root, [])
