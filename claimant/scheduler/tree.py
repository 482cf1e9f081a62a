"""Places one instance of a request with a span=tree group (or
``same_subtree``): the candidate engine finds allocations spread over one
tree's providers; filters and weighers judge the tree's root; each
provider's share is its own claim (compare-and-set), in provider-uuid order."""

from __future__ import annotations

from collections.abc import Collection

from claimant.model import (
    CellUnavailable,
    Claim,
    GenerationConflict,
    InsufficientCapacity,
    NotFound,
    ProviderUsage,
    RequestGroup,
    Span,
)
from claimant.scheduler.candidates import (
    AllocationRequest,
    CandidateRequest,
    GroupSpec,
    find_allocation_candidates,
)
from claimant.scheduler.context import PlacementContext
from claimant.scheduler.diagnostics import InstanceFailed
from claimant.scheduler.filters import Filter, applies
from claimant.scheduler.placer import Placer
from claimant.scheduler.weighers import combine


def _spec(g: RequestGroup) -> GroupSpec:
    """A native group as the candidate engine takes it: a span=provider group
    is granular (one provider), a span=tree group may spread over its tree."""
    return GroupSpec(
        suffix=g.name,
        resources=dict(g.resources),
        required=tuple(frozenset({t}) for t in sorted(g.required_traits)) + g.any_traits,
        forbidden=g.forbidden_traits,
        member_of=g.member_of,
        forbidden_aggs=g.forbidden_aggregates,
        in_tree=g.in_tree,
        granular=g.span == Span.PROVIDER,
    )


# (the tree's root as filters and weighers see it, the candidate, the usages it was read with)
_TreeCandidate = tuple[ProviderUsage, AllocationRequest, dict[str, ProviderUsage]]


def _providers_of_tree(candidate: _TreeCandidate) -> Collection[str]:
    return candidate[1].allocations.keys()


class TreePlacer(Placer):
    """Places one instance of a request with a span=tree group: the candidate
    engine finds allocations spread over one tree's providers; filters and
    weighers judge the tree's root; each provider's share is its own claim
    (compare-and-set), written in provider-uuid order. A lost claim gives
    back the others and moves on to the next candidate."""

    def place(self) -> list[Claim]:
        # Providers whose claim we lost since the last query: candidates using
        # them were read at a generation that is gone.
        stale: set[str] = set()
        pool = self.candidates()
        while True:
            pick = self.pick_tree(pool, stale)
            if pick is None:
                if stale and self.spend():
                    stale.clear()
                    pool = self.candidates()
                    continue
                why = self.diags[0].summary()
                if stale:
                    why += f"; gave up after {self.cfg.max_claim_retries} claim retries"
                raise InstanceFailed(0, why)
            root, areq, usages = pick
            self.choice = {0: root}  # the host: host_root(), ctx() and server groups
            claims = self.claim_tree(root, areq, usages, stale)
            if claims is None:
                continue
            try:
                why = self.server_group_race(claims)
            except BaseException:
                self.give_back(list(enumerate(claims)), quiet=True)
                raise
            if not why:
                return claims
            self.give_back(list(enumerate(claims)))
            self.stats.conflicts += 1
            self.state.refresh_server_group()
            self.drop(0, root, why, lost=True)
            if not self.spend():
                raise InstanceFailed(
                    0, f"{why}; gave up after {self.cfg.max_claim_retries} claim retries"
                )
            stale.clear()
            pool = self.candidates()

    def dropped(self, gi: int, *, lost: bool) -> None:
        """Nothing more: a lost provider is in ``place``'s ``stale`` set."""

    def candidates(self) -> list[_TreeCandidate]:
        """The engine's candidates whose trees pass the filters, best root first."""
        creq = CandidateRequest(
            groups=tuple(_spec(g) for g in self.groups),
            group_policy=self.request.group_policy.value,
            same_subtrees=self.request.same_subtree,
            limit=self.cfg.candidate_limit,
        )
        result = find_allocation_candidates(self.store, creq)
        usages = {pu.provider.uuid: pu for pu in result.summaries}
        timeout = self.cfg.heartbeat_timeout
        since = self.store.clock() - timeout if timeout is not None else None
        diag = self.diags[0]
        self.stats.queries += 1
        self.stats.candidates_seen += len(result.allocation_requests)
        diag.queries += 1
        diag.candidates += len(result.allocation_requests)
        if not result.allocation_requests:
            diag.store = (
                "the candidate engine found no provider tree that meets every group "
                "(amounts, traits, aggregates, tree, group_policy)"
            )
        ctx = self.ctx(0)
        filters = [f for f in self.s.filters if applies(f, ctx)]
        self.check_group = any(f.ENFORCES_SERVER_GROUP for f in filters)
        if self.check_group:
            self.members_seen = set(self.state.server_group_hosts())
        roots: dict[str, ProviderUsage | None] = {}
        kept: list[tuple[str, AllocationRequest]] = []
        for areq in result.allocation_requests:
            used = set(areq.allocations)
            if used & self.exclude or areq.anchor in self.exclude:
                continue
            if since is not None and any(
                (hb := usages[u].provider.heartbeat_at) is not None and hb < since
                for u in used
                if u in usages
            ):
                continue
            if areq.anchor not in roots:
                roots[areq.anchor] = self.judge(areq.anchor, usages, filters, ctx)
            if roots[areq.anchor] is not None:
                kept.append((areq.anchor, areq))
        passed = [pu for pu in roots.values() if pu is not None]
        diag.passed += len(kept)
        weights = combine(passed, self.s.weighers, ctx)
        weight = {pu.provider.uuid: w for pu, w in zip(passed, weights, strict=True)}
        # sorted() is stable: within a root, the engine's order stays.
        kept.sort(key=lambda t: -weight[t[0]])
        out: list[_TreeCandidate] = []
        for anchor, areq in kept:
            root = roots[anchor]
            if root is not None:
                out.append((root, areq, usages))
        return out

    def judge(
        self,
        anchor: str,
        usages: dict[str, ProviderUsage],
        filters: list[Filter],
        ctx: PlacementContext,
    ) -> ProviderUsage | None:
        """The tree's root if it passes every filter, else None (and why, in the diag)."""
        root = usages.get(anchor)
        if root is None:
            # A candidate of sharing providers only does not show its anchor's tree.
            try:
                root = self.store.get_usage(anchor)
            except NotFound:
                return None
            except CellUnavailable as exc:
                self.state.down_cells.add(exc.details.get("cell") or "?")
                return None
        self.state.remember_root(root)
        for flt in filters:
            result = flt.filter(root, ctx)
            if not result.passed:
                self.diags[0].reject(flt.NAME, root, result.reason)
                return None
        return root

    def pick_tree(self, pool: list[_TreeCandidate], stale: set[str]) -> _TreeCandidate | None:
        self.unmark(0)
        down = self.state.down_cells
        picked = self.s.in_flight.pick(
            (
                c
                for c in pool
                if not (stale & c[1].allocations.keys())
                and not (down and down & _cells_of(c[1], c[2]))
            ),
            _providers_of_tree,
            self.cfg.host_subset_size,
            self.s.rng,
        )
        if picked is None:
            return None
        chosen, self.marks[0] = picked
        pool.remove(chosen)
        return chosen

    def claim_tree(
        self,
        root: ProviderUsage,
        areq: AllocationRequest,
        usages: dict[str, ProviderUsage],
        stale: set[str],
    ) -> list[Claim] | None:
        """One claim per provider, in provider-uuid order (two schedulers after
        the same providers collide on the first); None if one was lost."""
        taken: list[tuple[int, Claim]] = []
        try:
            for i, uuid in enumerate(sorted(areq.allocations)):
                known = usages[uuid].provider.generation if uuid in usages else -1
                gen = self.gens[uuid] = max(self.gens.get(uuid, -1), known)
                spec = self.claim_spec(uuid, gen, areq.allocations[uuid])
                try:
                    claim = self.store.claim(spec)
                except CellUnavailable as exc:
                    # Skip the cell, as the flat placer does: no tree with a
                    # provider there is picked again for this request.
                    self.give_back(taken, quiet=True)
                    cell = exc.details.get("cell") or _cell_of(uuid, usages)
                    self.state.down_cells.add(cell)
                    self.drop(0, root, f"cell {cell} is unreachable", lost=False)
                    return None
                except (GenerationConflict, InsufficientCapacity, NotFound) as exc:
                    if not isinstance(exc, NotFound):
                        self.stats.conflicts += 1
                    stale.add(uuid)
                    self.give_back(taken)
                    self.drop(0, root, f"{uuid}: {exc.message}", lost=True)
                    return None
                taken.append((i, claim))
                self.gens[uuid] = gen + 1
        except BaseException:
            self.give_back(taken, quiet=True)
            raise
        return [c for _, c in taken]


def _cell_of(uuid: str, usages: dict[str, ProviderUsage]) -> str:
    pu = usages.get(uuid)
    return (pu.provider.cell if pu is not None else None) or "?"


def _cells_of(areq: AllocationRequest, usages: dict[str, ProviderUsage]) -> set[str]:
    """The cells of the providers a tree candidate would claim on."""
    return {_cell_of(u, usages) for u in areq.allocations}
