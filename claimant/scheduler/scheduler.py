"""The scheduler: query the store, filter, weigh, pick among the best, claim.

See docs/scheduler.md for the exact semantics of retries, multi-group
requests and partial placement.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from claimant.model import (
    CellUnavailable,
    Claim,
    ClaimantError,
    ClaimNotActive,
    GenerationConflict,
    GroupPolicy,
    GroupPolicyKind,
    InsufficientCapacity,
    InvalidInput,
    NotFound,
    NoValidHost,
    ProviderUsage,
    Request,
    RequestGroup,
    Span,
    Strategy,
    Usage,
    deadline,
    new_uuid,
    normalize_uuid,
)
from claimant.scheduler import health
from claimant.scheduler.candidates import (
    AllocationRequest,
    CandidateRequest,
    GroupSpec,
    find_allocation_candidates,
)
from claimant.scheduler.config import SchedulerConfig
from claimant.scheduler.context import FailureCounter, PlacementContext, RequestState
from claimant.scheduler.filters import FILTERS, Filter, applies
from claimant.scheduler.weighers import WEIGHERS, Weigher, combine
from claimant.store.base import CandidateQuery, ClaimSpec, Store, check_cell

# Reasons kept per filter and group in NoValidHost details; the counts are exact.
_MAX_EXAMPLES = 5
# Who rejects a candidate for its cell in a group's diagnostics (not a filter
# plugin: a request's cell is always honoured, whatever filters are on).
CELL = "cell"


@dataclass(slots=True)
class ScheduleStats:
    queries: int = 0  # find_candidates calls (diagnostic ones included)
    candidates_seen: int = 0  # candidates the store returned, summed over queries
    conflicts: int = 0  # claims the store refused (lost compare-and-set, or no longer fits)
    retries: int = 0  # re-reads and re-queries spent from max_claim_retries
    claims_released: int = 0  # claims this call took and gave back
    elapsed_s: float = 0.0

    def add(self, other: ScheduleStats) -> None:
        self.queries += other.queries
        self.candidates_seen += other.candidates_seen
        self.conflicts += other.conflicts
        self.retries += other.retries
        self.claims_released += other.claims_released
        self.elapsed_s += other.elapsed_s


@dataclass(slots=True)
class InstancePlacement:
    consumer_uuid: str
    # One per request group, in group order; for a request with a span=tree
    # group, one per provider used, in provider-uuid order.
    claims: list[Claim]

    @property
    def providers(self) -> list[str]:
        return [c.provider_uuid for c in self.claims]


@dataclass(slots=True)
class ScheduleResult:
    request: Request
    placements: list[InstancePlacement]
    stats: ScheduleStats
    # Set when all_or_nothing is off and not every instance could be placed.
    partial: NoValidHost | None = None
    # The request's record, when place() wrote it with the last claim.
    recorded: Request | None = None


@dataclass(slots=True)
class _GroupDiag:
    """Why one group's candidates were not used, for NoValidHost details."""

    group: RequestGroup
    queries: int = 0
    candidates: int = 0
    passed: int = 0
    rejected: dict[str, list[str]] = field(default_factory=dict)
    rejected_counts: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    lost_count: int = 0
    store: str = ""
    empty_query: CandidateQuery | None = None

    def reject(self, who: str, candidate: ProviderUsage, reason: str) -> None:
        self.rejected_counts[who] = self.rejected_counts.get(who, 0) + 1
        examples = self.rejected.setdefault(who, [])
        if len(examples) < _MAX_EXAMPLES:
            examples.append(f"{candidate.provider.name} ({candidate.provider.uuid}): {reason}")

    def drop(self, provider: str, reason: str) -> None:
        self.lost_count += 1
        if len(self.lost) < _MAX_EXAMPLES:
            self.lost.append(f"{provider}: {reason}")

    def summary(self) -> str:
        if self.queries and not self.candidates:
            return self.store or "the store found no provider that fits"
        parts = [f"{self.candidates} candidate(s) from the store"]
        for who, n in sorted(self.rejected_counts.items()):
            parts.append(f"{n} rejected by {who} (first: {self.rejected[who][0]})")
        if self.lost_count:
            parts.append(f"{self.lost_count} dropped ({'; '.join(self.lost[:2])})")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.group.name,
            "resources": dict(self.group.resources),
            "queries": self.queries,
            "candidates": self.candidates,
            "passed_filters": self.passed,
            "rejected": {
                who: {"count": self.rejected_counts[who], "examples": ex}
                for who, ex in sorted(self.rejected.items())
            },
            "lost": {"count": self.lost_count, "examples": self.lost},
        }
        if self.store:
            out["store"] = self.store
        return out


class _Failed(Exception):
    """One instance could not be placed; carries the group that ran out."""

    def __init__(self, group_index: int, why: str) -> None:
        super().__init__(why)
        self.group_index = group_index
        self.why = why


def _amount_problems(usage: ProviderUsage, amounts: dict[str, int]) -> list[str]:
    """Why ``amounts`` do not fit ``usage`` now, with the numbers."""
    reasons = []
    for rc, amount in sorted(amounts.items()):
        u = usage.usages.get(rc)
        if u is None:
            reasons.append(f"{rc}: provider has no inventory of this class")
        elif u.used + amount > u.capacity:
            reasons.append(
                f"{rc}: requested {amount}, used {u.used}, capacity {u.capacity} (free {u.free})"
            )
    return reasons


def _add(total: dict[str, int], amounts: dict[str, int]) -> None:
    for rc, n in amounts.items():
        total[rc] = total.get(rc, 0) + n


class Scheduler:
    """Places requests. Thread-safe: one instance may serve many threads; each
    ``schedule`` call keeps its own state and talks only to the store."""

    def __init__(
        self,
        store: Store,
        config: SchedulerConfig | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config if config is not None else SchedulerConfig()
        self.rng = rng if rng is not None else random.Random()
        cfg = self.config
        unknown = set(cfg.options) - set(cfg.filters) - set(cfg.weighers)
        if unknown:
            raise InvalidInput(
                f"scheduler options name plugins that are not configured: "
                f"{', '.join(sorted(unknown))}",
                field="options",
            )
        self.filters: list[Filter] = [FILTERS.build(n, cfg.options.get(n)) for n in cfg.filters]
        self.weighers: list[tuple[Weigher, float]] = [
            (WEIGHERS.build(n, cfg.options.get(n)), float(m)) for n, m in cfg.weighers.items()
        ]
        half_life = next(
            (h for w, _ in self.weighers if (h := w.failure_half_life()) is not None), 600.0
        )
        self.failures = FailureCounter(half_life, clock=lambda: self.store.clock())

    # -- build failures ----------------------------------------------------
    def record_build_failure(self, provider_uuid: str) -> float:
        """Count a failed build on a provider; returns its decayed count."""
        return self.failures.record(provider_uuid)

    def record_build_success(self, provider_uuid: str) -> None:
        self.failures.reset(provider_uuid)

    # -- scheduling --------------------------------------------------------
    def schedule(self, request: Request) -> ScheduleResult:
        """Persist, place and record a request (``claimant.scheduler.lifecycle``)."""
        # Imported here: lifecycle builds on this module.
        from claimant.scheduler.lifecycle import schedule

        return schedule(self, request)

    def place(
        self,
        request: Request,
        *,
        exclude: Iterable[str] = (),
        held: list[Claim] | None = None,
        record: Callable[[list[Claim]], Request] | None = None,
    ) -> ScheduleResult:
        """Claims for every instance of ``request``: query, filter, weigh, pick,
        claim. Reads and writes nothing but candidates and claims (the request
        record is the lifecycle's business).

        ``exclude``: providers no candidate query may return (hosts an instance
        already failed on). Raises ``NoValidHost`` when an instance cannot be
        placed (unless ``all_or_nothing`` is off and some were: then the result
        carries ``partial``). On *any* error every claim this call took is given
        back first; a claim the store would not release either (an outage) is
        appended to ``held`` and lives until its TTL.

        ``record``: the request's record once placed, from its claims.
        Where nothing can follow the last claim (one instance, one group, no
        server-group check) it is created with that claim in one write
        (``Store.claim_and_record``, ``AlreadyExists`` if the uuid is taken)
        and the result's ``recorded`` is it; else ``recorded`` is None and
        the caller records.
        """
        started = time.perf_counter()
        request = validate_request(request)
        if request.cell is not None:
            check_cell(self.store, request.cell)
        consumers = request.consumers
        if not consumers:
            consumers = tuple(new_uuid() for _ in range(request.count))
            request = request.evolve(consumers=consumers)
        stuck: list[Claim] = held if held is not None else []
        stats = ScheduleStats()
        state = RequestState(self.store, request, self.failures)
        state.record = record
        skip = frozenset(exclude)
        placements: list[InstancePlacement] = []
        failure: tuple[int, _Failed, list[_GroupDiag]] | None = None
        placer_type = _TreePlacer if request.spans_trees else _InstancePlacer
        try:
            for index, consumer in enumerate(consumers):
                placer = placer_type(self, state, index, consumer, stats, skip, stuck)
                try:
                    claims = placer.place()
                except _Failed as exc:
                    failure = (index, exc, placer.diags)
                    break
                placements.append(InstancePlacement(consumer, claims))
                state.placed_roots.append(placer.host_root())
        except BaseException:
            # A store error (or an interrupt) mid-request: give back what the
            # earlier instances took (the placer gave back its own) and let the
            # caller see the original error.
            self._release_all(placements, stats, stuck, quiet=True)
            stats.elapsed_s = time.perf_counter() - started
            raise
        stats.elapsed_s = time.perf_counter() - started
        if failure is None:
            return ScheduleResult(request, placements, stats, recorded=state.recorded)

        index, exc, diags = failure
        if state.down_cells:
            # Placeable nowhere else: the cells it could go to are cut off.
            self._release_all(placements, stats, stuck, quiet=True)
            cells = ", ".join(sorted(state.down_cells))
            raise CellUnavailable(
                f"request {request.uuid}: no reachable cell can place instance {index + 1}"
                f" of {request.count}; unreachable: {cells} ({exc.why})",
                request_uuid=request.uuid,
                cells=sorted(state.down_cells),
            )
        details = {
            "request_uuid": request.uuid,
            "instance": index,
            "placed": len(placements),
            "count": request.count,
            "group": request.groups[exc.group_index].name,
            "groups": [d.to_dict() for d in diags],
        }
        group_name = request.groups[exc.group_index].name or "(default)"
        message = (
            f"no valid host for instance {index + 1} of {request.count} "
            f"(request {request.uuid}), group {group_name!r}: {exc.why}"
        )
        nvh = NoValidHost(message, **details)
        if placements and not request.all_or_nothing:
            return ScheduleResult(request, placements, stats, partial=nvh)
        self._release_all(placements, stats, stuck, quiet=False)
        raise nvh

    def _release_all(
        self,
        placements: Iterable[InstancePlacement],
        stats: ScheduleStats,
        held: list[Claim],
        *,
        quiet: bool,
    ) -> None:
        error: ClaimantError | None = None
        for p in placements:
            n, exc = self._release(p.claims, held)
            stats.claims_released += n
            error = error or exc
        if error is not None and not quiet:
            raise error

    def release_claims(self, claims: Sequence[Claim]) -> int:
        """Give claims back, last first; how many were. Best effort: a claim
        the store would not release (an outage) lives until its TTL."""
        released, _ = self._release(claims, [])
        return released

    def _release(
        self, claims: Sequence[Claim], held: list[Claim]
    ) -> tuple[int, ClaimantError | None]:
        """Give claims back, last first, trying every one. A claim the store
        failed to release is appended to ``held``; returns how many were given
        back and the first error."""
        released = 0
        error: ClaimantError | None = None
        for claim in reversed(claims):
            try:
                self.store.release_claim(claim.uuid)
            except (NotFound, ClaimNotActive):
                pass  # expired or already gone: nothing is held either way
            except ClaimantError as exc:
                # Maybe still held (until its TTL): whoever records the request says so.
                held.append(claim)
                error = error or exc
                continue
            released += 1
        return released, error


def validate_request(request: Request) -> Request:
    if not isinstance(request, Request):
        raise InvalidInput(f"schedule() takes a Request, got {type(request).__name__}")
    request.validate()
    hints = request.hints
    if hints.group_policy is not None and not hints.group:
        raise InvalidInput("hints.group_policy needs hints.group", field="group_policy")
    if hints.group_policy is not None and not isinstance(hints.group_policy, GroupPolicyKind):
        raise InvalidInput(f"unknown group policy {hints.group_policy!r}", field="group_policy")
    for name in ("same_host", "different_host"):
        for uuid in getattr(hints, name):
            normalize_uuid(uuid, name)
    if request.consumers:
        for uuid in request.consumers:
            normalize_uuid(uuid, "consumers")
        if len(set(request.consumers)) != len(request.consumers):
            raise InvalidInput("consumers must be distinct", field="consumers")
    return request


class _InstancePlacer:
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
        self.s = scheduler
        self.exclude = exclude
        self.held = held
        self.cfg = scheduler.config
        self.store = scheduler.store
        self.state = state
        self.request = state.request
        self.groups = state.request.groups
        self.index = index
        self.consumer = consumer
        self.stats = stats
        self.budget = self.cfg.max_claim_retries
        self.pools: dict[int, list[ProviderUsage]] = {}
        self.choice: dict[int, ProviderUsage] = {}
        # Best known generation per provider (generations only grow).
        self.gens: dict[str, int] = {}
        self.dropped_since_query: dict[int, int] = {}
        self.diags = [_GroupDiag(g) for g in self.groups]
        # Server-group hosts the host group's filters saw (hard policies).
        self.members_seen: set[str] = set()
        self.check_group = False
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
        if not _amount_problems(updated, self.groups[0].resources):
            rest.insert(0, updated)
        self.state.leftover = rest

    def host_root(self) -> str:
        return self.choice[0].provider.root_uuid

    def ctx(self, gi: int) -> PlacementContext:
        return PlacementContext(
            state=self.state,
            group=self.groups[gi],
            group_index=gi,
            consumer_uuid=self.consumer,
            instance_index=self.index,
            chosen={j: c for j, c in self.choice.items() if j != gi},
        )

    def spend(self) -> bool:
        if self.budget <= 0:
            return False
        self.budget -= 1
        self.stats.retries += 1
        return True

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
            f"{c.provider.name}: {', '.join(_amount_problems(c, q.group.resources)) or 'fits now'}"
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
                _add(total, self.groups[j].resources)
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
        _add(pending, self.groups[gi].resources)
        return not _amount_problems(cand, pending)

    def pick(self, gi: int) -> ProviderUsage | None:
        pool = self.pools[gi]
        best = list(
            itertools.islice((c for c in pool if self.usable(c, gi)), self.cfg.host_subset_size)
        )
        if not best:
            return None
        chosen = self.s.rng.choice(best)
        pool.remove(chosen)
        uuid = chosen.provider.uuid
        self.gens[uuid] = max(self.gens.get(uuid, -1), chosen.provider.generation)
        return chosen

    def clear_after_host(self) -> None:
        for j in range(1, len(self.groups)):
            if self.confined(j):
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
                self.diags[gi] = _GroupDiag(self.groups[gi])
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
            raise _Failed(gi, diag.summary())

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
                raise _Failed(0, f"{why}; gave up after {self.cfg.max_claim_retries} claim retries")
            self.drop(0, host, why, lost=True)

    def server_group_race(self, claims: list[Claim]) -> str:
        """Re-read the server group after claiming: a hard policy broken by a
        concurrent placement is reported (the filters saw the group before
        either claim existed). Whoever sees the other gives way, so at worst
        both retry; never both stay."""
        hints = self.request.hints
        policy = hints.group_policy
        if not self.check_group or not hints.group:
            return ""
        root = self.choice[0].provider.root_uuid
        fresh = self.state.read_server_group()
        if policy == GroupPolicyKind.ANTI_AFFINITY:
            # Ours counts one; the filter already kept us off hosts with members.
            if fresh.get(root, 0) > 1:
                return (
                    f"anti-affinity: a concurrent scheduler placed another member of "
                    f"{hints.group!r} on this host"
                )
            return ""
        if self.members_seen:
            return ""  # members existed: the filter pinned us to their hosts
        others = sorted(r for r in fresh if r != root)
        if others:
            return (
                f"affinity: a concurrent scheduler placed the first member of "
                f"{hints.group!r} on another host ({others[0]})"
            )
        return ""

    def claim_all(self) -> list[Claim] | None:
        """Claims in provider-uuid order; None if a choice had to change."""
        order = sorted(self.choice.items(), key=lambda kv: (kv[1].provider.uuid, kv[0]))
        taken: list[tuple[int, Claim]] = []
        try:
            return self._claim_in_order(order, taken)
        except BaseException:
            # Any error at all (a store outage, an interrupt), not only a lost
            # compare-and-set: what this instance took must not outlive it.
            self.give_back(taken, quiet=True)
            raise

    def _claim_spec(self, uuid: str, generation: int, amounts: dict[str, int]) -> ClaimSpec:
        return ClaimSpec(
            provider_uuid=uuid,
            expected_generation=generation,
            amounts=dict(amounts),
            consumer_uuid=self.consumer,
            request_uuid=self.request.uuid,
            group=self.request.hints.group,
            project_id=self.request.project_id,
            user_id=self.request.user_id,
            ttl=self.cfg.claim_ttl,
        )

    def _claim_in_order(
        self, order: list[tuple[int, ProviderUsage]], taken: list[tuple[int, Claim]]
    ) -> list[Claim] | None:
        pos = 0
        while pos < len(order):
            deadline.check("claiming")
            gi, cand = order[pos]
            uuid = cand.provider.uuid
            spec = self._claim_spec(uuid, self.gens[uuid], self.groups[gi].resources)
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
                    raise _Failed(
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
            _add(need, self.groups[j].resources)
            ctx = self.ctx(j)
            for f in (f for f in self.s.filters if applies(f, ctx)):
                result = f.filter(fresh, ctx)
                if not result.passed:
                    return None, f"after re-read, {f.NAME}: {result.reason}"
        problems = _amount_problems(fresh, need)
        if problems:
            return None, "after re-read, no longer fits: " + "; ".join(problems)
        return fresh, ""

    def give_back(self, taken: list[tuple[int, Claim]], *, quiet: bool = False) -> None:
        """Release ``taken`` (and empty it, so nothing is given back twice).
        A release the store failed raises after every claim was tried, unless
        ``quiet`` (an error is already on its way); either way the claim is
        in ``self.held``."""
        claims = [c for _, c in taken]
        taken.clear()
        released, error = self.s._release(claims, self.held)
        self.stats.claims_released += released
        for claim in claims:
            uuid = claim.provider_uuid
            # Our claim and its release each bumped the generation by one.
            self.gens[uuid] = self.gens.get(uuid, 0) + 1
        if error is not None and not quiet:
            raise error

    def cell_down(self, gi: int, cand: ProviderUsage, exc: CellUnavailable) -> None:
        cell = exc.details.get("cell") or cand.provider.cell or "?"
        self.state.down_cells.add(cell)
        self.drop(gi, cand, f"cell {cell} is unreachable", lost=False)
        for pool in self.pools.values():
            pool[:] = [c for c in pool if c.provider.cell != cell]

    def drop(self, gi: int, cand: ProviderUsage, reason: str, *, lost: bool) -> None:
        self.diags[gi].drop(cand.provider.name, reason)
        if lost:
            self.dropped_since_query[gi] = self.dropped_since_query.get(gi, 0) + 1
        self.choice.pop(gi, None)
        if gi == 0:
            self.clear_after_host()


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


class _TreePlacer(_InstancePlacer):
    """Places one instance of a request with a span=tree group: the candidate
    engine finds allocations spread over one tree's providers; filters and
    weighers judge the tree's root; each provider's share is its own claim
    (compare-and-set), written in provider-uuid order. A lost claim gives
    back the others and moves on to the next candidate."""

    def reusable(self) -> bool:
        return False

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
                raise _Failed(0, why)
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
                raise _Failed(0, f"{why}; gave up after {self.cfg.max_claim_retries} claim retries")
            stale.clear()
            pool = self.candidates()

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
        self.state.remember_root(root)
        for flt in filters:
            result = flt.filter(root, ctx)
            if not result.passed:
                self.diags[0].reject(flt.NAME, root, result.reason)
                return None
        return root

    def pick_tree(self, pool: list[_TreeCandidate], stale: set[str]) -> _TreeCandidate | None:
        usable = (c for c in pool if not (stale & c[1].allocations.keys()))
        best = list(itertools.islice(usable, self.cfg.host_subset_size))
        if not best:
            return None
        chosen = self.s.rng.choice(best)
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
                spec = self._claim_spec(uuid, gen, areq.allocations[uuid])
                try:
                    claim = self.store.claim(spec)
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
