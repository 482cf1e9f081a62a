"""Places one instance of a request with a provider per group: query the
store for each group's candidates, filter and weigh them, pick among the
best (skipping providers in flight), then claim every group's provider in
provider-uuid order, re-reading a provider whose compare-and-set was lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from claimant.model import (
    CellUnavailable,
    Claim,
    GenerationConflict,
    GroupPolicy,
    InsufficientCapacity,
    NotFound,
    ProviderUsage,
    Request,
    Strategy,
    Usage,
    deadline,
)
from claimant.scheduler import health
from claimant.scheduler.context import RequestState
from claimant.scheduler.diagnostics import (
    CELL,
    GroupDiag,
    InstanceFailed,
    add_amounts,
    amount_problems,
)
from claimant.scheduler.filters import applies
from claimant.scheduler.placer import Placer
from claimant.scheduler.results import ScheduleStats
from claimant.scheduler.weighers import combine
from claimant.store.base import CandidateQuery

if TYPE_CHECKING:
    from claimant.scheduler.scheduler import Scheduler


def _provider_of(candidate: ProviderUsage) -> tuple[str]:
    return (candidate.provider.uuid,)


class FlatPlacer(Placer):
    """Places one instance: a provider per request group, then the claims."""

    def __init__(
        self,
        scheduler: Scheduler,
        state: RequestState,
        index: int,
        consumer: str,
        stats: ScheduleStats,
        exclude: frozenset[str],
        held: list[Claim],
    ) -> None:
        super().__init__(scheduler, state, index, consumer, stats, exclude, held)
        self.pools: dict[int, list[ProviderUsage]] = {}
        self.dropped_since_query: dict[int, int] = {}
        # Single-group requests with count > 1 reuse the previous instance's
        # candidates (one query for many instances); see reusable().
        self.from_previous = False
        leftover = state.leftover
        state.leftover = None
        if leftover is not None and self.reusable():
            self.pools[0] = self.rank(0, leftover)
            self.dropped_since_query[0] = 0
            self.from_previous = True

    def reusable(self) -> bool:
        return len(self.groups) == 1

    def leave_leftover(self, claims: list[Claim]) -> None:
        """Hand the rest of the candidate list to the next instance, with the
        provider just claimed updated as the store now has it (unless someone
        else wrote to it meanwhile: the claim's compare-and-set will tell)."""
        if not self.reusable() or self.index + 1 >= self.request.count:
            return
        cand = self.choice[0]
        uuid = cand.provider.uuid
        usages = dict(cand.usages)
        for rc, n in claims[0].amounts.items():
            u = usages.get(rc)
            if u is not None:
                usages[rc] = Usage(rc, u.capacity, u.used + n)
        updated = ProviderUsage(cand.provider.evolve(generation=self.gens[uuid]), usages)
        rest = [c for c in self.pools.get(0, []) if c.provider.uuid != uuid]
        if not amount_problems(updated, self.groups[0].resources):
            rest.insert(0, updated)
        self.state.leftover = rest

    # -- choosing ----------------------------------------------------------
    def confined(self, gi: int) -> bool:
        """Later groups stay in the first group's tree unless they name where to go."""
        g = self.groups[gi]
        return gi > 0 and not g.member_of and not g.in_tree

    def query(self, gi: int) -> list[ProviderUsage]:
        group = self.groups[gi]
        roots = frozenset({self.choice[0].provider.root_uuid}) if self.confined(gi) else None
        exclude = self.exclude
        if self.request.group_policy == GroupPolicy.ISOLATE:
            exclude |= {c.provider.uuid for j, c in self.choice.items() if j != gi}
        timeout = self.cfg.heartbeat_timeout
        q = CandidateQuery(
            group=group,
            limit=self.cfg.candidate_limit,
            strategy=self.request.hints.strategy,
            exclude=exclude,
            roots=roots,
            heartbeat_after=self.store.clock() - timeout if timeout is not None else None,
        )
        found = self.store.find_candidates(q)
        diag = self.diags[gi]
        self.stats.queries += 1
        self.stats.candidates_seen += len(found)
        diag.queries += 1
        diag.candidates += len(found)
        # Explained only if the instance fails: a confined group may come up
        # empty in several hosts' trees before one fits.
        diag.empty_query = None if found else q
        return self.rank(gi, found)

    def rank(self, gi: int, found: list[ProviderUsage]) -> list[ProviderUsage]:
        """Filter and weigh candidates; best first."""
        diag = self.diags[gi]
        ctx = self.ctx(gi)
        filters = [f for f in self.s.filters if applies(f, ctx)]
        if gi == 0:
            self.check_group = any(f.ENFORCES_SERVER_GROUP for f in filters)
            if self.check_group:
                self.members_seen = set(self.state.server_group_hosts())
        passed = []
        confined = self.request.cell
        down = self.state.down_cells
        for cand in found:
            deadline.check("filtering candidates")
            self.state.remember_root(cand)
            cell = cand.provider.cell
            if confined is not None and cell != confined:
                diag.reject(CELL, cand, f"in cell {cell}; the request is confined to {confined}")
                continue
            if cell in down:
                diag.reject(CELL, cand, f"cell {cell} is unreachable")
                continue
            for flt in filters:
                result = flt.filter(cand, ctx)
                if not result.passed:
                    diag.reject(flt.NAME, cand, result.reason)
                    break
            else:
                passed.append(cand)
        diag.passed += len(passed)
        weights = combine(passed, self.s.weighers, ctx)
        # The service's own cell first (docs/cells.md), then by weight.
        own = self.store.local_cell() if confined is None else None
        order = sorted(
            range(len(passed)), key=lambda i: (passed[i].provider.cell != own, -weights[i])
        )
        return [passed[i] for i in order]

    def explain_empty(self, q: CandidateQuery) -> str:
        """Why the store found nothing: ask again for any free amount at all,
        and report the closest providers with the numbers."""
        relaxed = q.group.evolve(resources={rc: 1 for rc in q.group.resources})
        probe = CandidateQuery(
            group=relaxed,
            limit=3,
            strategy=Strategy.SPREAD,
            sort_class=q.order_class(),
            exclude=q.exclude,
            roots=q.roots,
            heartbeat_after=q.heartbeat_after,
        )
        near = self.store.find_candidates(probe)
        # A disabled or dead host that would fit is what an operator looks for.
        blocked = health.describe(health.unavailable(self.store, q, self.cfg.heartbeat_timeout))
        self.stats.queries += 2
        where = " in the first group's tree" if q.roots else ""
        if not near:
            return (
                f"the store found no provider{where} that matches the group's traits, "
                "attributes, aggregates, type and tree, is enabled and has a recent "
                "heartbeat, with any capacity free" + blocked
            )
        closest = "; ".join(
            f"{c.provider.name}: {', '.join(amount_problems(c, q.group.resources)) or 'fits now'}"
            for c in near
        )
        return (
            f"the store found no provider{where} with enough free capacity; closest: {closest}"
            + blocked
        )

    def pending_on(self, provider_uuid: str, gi: int) -> dict[str, int]:
        """Amounts other groups of this instance have chosen on a provider."""
        total: dict[str, int] = {}
        for j, c in self.choice.items():
            if j != gi and c.provider.uuid == provider_uuid:
                add_amounts(total, self.groups[j].resources)
        return total

    def usable(self, cand: ProviderUsage, gi: int) -> bool:
        uuid = cand.provider.uuid
        if self.request.group_policy == GroupPolicy.ISOLATE and any(
            c.provider.uuid == uuid for j, c in self.choice.items() if j != gi
        ):
            return False
        pending = self.pending_on(uuid, gi)
        if not pending:
            return True
        add_amounts(pending, self.groups[gi].resources)
        return not amount_problems(cand, pending)

    def pick(self, gi: int) -> ProviderUsage | None:
        self.unmark(gi)
        pool = self.pools[gi]
        picked = self.s.in_flight.pick(
            (c for c in pool if self.usable(c, gi)),
            _provider_of,
            self.cfg.host_subset_size,
            self.s.rng,
            self.own_marks(),
        )
        if picked is None:
            return None
        chosen, self.marks[gi] = picked
        pool.remove(chosen)
        uuid = chosen.provider.uuid
        self.gens[uuid] = max(self.gens.get(uuid, -1), chosen.provider.generation)
        return chosen

    def clear_after_host(self) -> None:
        for j in range(1, len(self.groups)):
            if self.confined(j):
                self.unmark(j)
                self.choice.pop(j, None)
                self.pools.pop(j, None)
                self.dropped_since_query.pop(j, None)

    def choose_all(self) -> None:
        gi = 0
        while gi < len(self.groups):
            deadline.check("choosing providers")
            if gi in self.choice:
                gi += 1
                continue
            if gi not in self.pools:
                self.pools[gi] = self.query(gi)
                self.dropped_since_query[gi] = 0
            cand = self.pick(gi)
            if cand is not None:
                self.choice[gi] = cand
                gi += 1
                continue
            if self.from_previous:
                # Candidates left over from the previous instance ran out:
                # that says nothing about the store, so ask it (no retry spent).
                self.from_previous = False
                del self.pools[gi]
                self.diags[gi] = GroupDiag(self.groups[gi])
                continue
            # Pool exhausted. If we dropped providers we lost to concurrent
            # claims, others may fit now: query again, paid from the budget.
            if self.dropped_since_query.get(gi) and self.spend():
                del self.pools[gi]
                continue
            if self.confined(gi) and 0 in self.choice:
                # Nothing for this group in the chosen host's tree: that host
                # cannot take the whole instance, so try another one.
                self.drop(
                    0,
                    self.choice[0],
                    f"group {self.groups[gi].name!r} found nothing in its tree "
                    f"({self.diags[gi].summary()})",
                    lost=False,
                )
                gi = 0
                continue
            diag = self.diags[gi]
            if diag.empty_query is not None and not diag.store:
                diag.store = self.explain_empty(diag.empty_query)
            raise InstanceFailed(gi, diag.summary())

    # -- claiming ----------------------------------------------------------
    def place(self) -> list[Claim]:
        while True:
            deadline.check("placing an instance")
            self.choose_all()
            claims = self.claim_all()
            if claims is None:
                continue
            try:
                why = self.server_group_race(claims)
            except BaseException:
                self.give_back(list(enumerate(claims)), quiet=True)
                raise
            if not why:
                self.leave_leftover(claims)
                return claims
            # Another scheduler placed a member of the same hard server group
            # at the same moment: give ours back and place again, fresh view.
            self.give_back(list(enumerate(claims)))
            self.stats.conflicts += 1
            self.state.refresh_server_group()
            host = self.choice[0]
            self.pools.clear()
            if not self.spend():
                self.drop(0, host, why, lost=True)
                raise InstanceFailed(
                    0, f"{why}; gave up after {self.cfg.max_claim_retries} claim retries"
                )
            self.drop(0, host, why, lost=True)

    def claim_all(self) -> list[Claim] | None:
        """Claims in provider-uuid order; None if a choice had to change."""
        order = sorted(self.choice.items(), key=lambda kv: (kv[1].provider.uuid, kv[0]))
        taken: list[tuple[int, Claim]] = []
        try:
            return self.claim_in_order(order, taken)
        except BaseException:
            # Any error at all (a store outage, an interrupt), not only a lost
            # compare-and-set: what this instance took must not outlive it.
            self.give_back(taken, quiet=True)
            raise

    def claim_in_order(
        self, order: list[tuple[int, ProviderUsage]], taken: list[tuple[int, Claim]]
    ) -> list[Claim] | None:
        pos = 0
        while pos < len(order):
            deadline.check("claiming")
            gi, cand = order[pos]
            uuid = cand.provider.uuid
            spec = self.claim_spec(uuid, self.gens[uuid], self.groups[gi].resources)
            try:
                if self.records_with_claim():
                    claim, self.state.recorded = self.store.claim_and_record(spec, self.record_of)
                else:
                    claim = self.store.claim(spec)
            except CellUnavailable as exc:
                # Skip the cell: its providers are out of every pool. A claim
                # whose outcome it left unknown lives until its TTL.
                self.give_back(taken, quiet=True)
                self.cell_down(gi, cand, exc)
                return None
            except (GenerationConflict, InsufficientCapacity, NotFound) as exc:
                if not isinstance(exc, NotFound):
                    self.stats.conflicts += 1
                if not self.spend():
                    self.give_back(taken)
                    self.drop(gi, cand, exc.message, lost=True)
                    raise InstanceFailed(
                        gi,
                        f"{self.diags[gi].summary()}; gave up after "
                        f"{self.cfg.max_claim_retries} claim retries",
                    ) from exc
                fresh, why = self.reread(uuid, order[pos:])
                if fresh is not None:
                    self.gens[uuid] = fresh.provider.generation
                    for j, c in order[pos:]:
                        if c.provider.uuid == uuid:
                            self.choice[j] = fresh
                    continue
                self.give_back(taken)
                self.drop(gi, cand, why, lost=True)
                return None
            taken.append((gi, claim))
            self.gens[uuid] += 1
            pos += 1
        return [c for _, c in sorted(taken, key=lambda t: t[0])]

    def records_with_claim(self) -> bool:
        """The request's record goes with this claim: it is the request's
        only claim and nothing after it can give it back (a server-group
        re-check can)."""
        return (
            self.state.record is not None
            and self.request.count == 1
            and len(self.groups) == 1
            and not self.check_group
        )

    def record_of(self, claim: Claim) -> Request:
        """The request's record, holding ``claim`` (see records_with_claim)."""
        if self.state.record is None:
            raise ValueError("no record to write with the claim")
        return self.state.record([claim])

    def reread(
        self, uuid: str, rest: Sequence[tuple[int, ProviderUsage]]
    ) -> tuple[ProviderUsage | None, str]:
        """The provider as it is now if it still takes every group still to be
        claimed on it (amounts and filters); else None and why not."""
        try:
            fresh = self.store.get_usage(uuid)
        except NotFound:
            return None, "provider is gone"
        except CellUnavailable as exc:
            cell = exc.details.get("cell")
            self.state.down_cells.add(cell or "?")
            return None, f"cell {cell} is unreachable"
        if not fresh.provider.enabled:
            return None, "provider was disabled"
        need: dict[str, int] = {}
        for j, c in rest:
            if c.provider.uuid != uuid:
                continue
            add_amounts(need, self.groups[j].resources)
            ctx = self.ctx(j)
            for f in (f for f in self.s.filters if applies(f, ctx)):
                result = f.filter(fresh, ctx)
                if not result.passed:
                    return None, f"after re-read, {f.NAME}: {result.reason}"
        problems = amount_problems(fresh, need)
        if problems:
            return None, "after re-read, no longer fits: " + "; ".join(problems)
        return fresh, ""

    def cell_down(self, gi: int, cand: ProviderUsage, exc: CellUnavailable) -> None:
        cell = exc.details.get("cell") or cand.provider.cell or "?"
        self.state.down_cells.add(cell)
        self.drop(gi, cand, f"cell {cell} is unreachable", lost=False)
        for pool in self.pools.values():
            pool[:] = [c for c in pool if c.provider.cell != cell]

    def dropped(self, gi: int, *, lost: bool) -> None:
        if lost:
            self.dropped_since_query[gi] = self.dropped_since_query.get(gi, 0) + 1
        if gi == 0:
            self.clear_after_host()
