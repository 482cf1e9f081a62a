"""Explain a placement without claiming (``POST /v1/requests?dry_run=true``,
``claimant request explain``): per group, what the store's query returned,
which filter rejected whom and why, each weigher's share of the weight, the
best ``host_subset_size`` a placement would pick among, and the providers
that would fit but are disabled or stale.

It runs the scheduler's own query, filters and weighers, for the request's
first instance; it writes nothing. A real placement picks at random among
the subset, and the store may change in between.
"""

from __future__ import annotations

from typing import Any

from claimant.model import (
    GroupPolicy,
    InvalidInput,
    ProviderUsage,
    Request,
    Strategy,
    new_uuid,
)
from claimant.scheduler import health
from claimant.scheduler.context import PlacementContext, RequestState
from claimant.scheduler.filters import applies
from claimant.scheduler.scheduler import Scheduler, validate_request
from claimant.scheduler.weighers import normalize
from claimant.store.base import CandidateQuery


def explain(scheduler: Scheduler, request: Request) -> dict[str, Any]:
    request = validate_request(request)
    if request.spans_trees:
        raise InvalidInput(
            "dry_run explains requests placed group by group; a request with a "
            "span=tree group or same_subtree is placed by the candidate engine, "
            "which it does not explain yet",
            field="dry_run",
        )
    consumer = request.consumers[0] if request.consumers else new_uuid()
    store, cfg = scheduler.store, scheduler.config
    state = RequestState(store, request, scheduler.failures)
    now = store.clock()
    timeout = cfg.heartbeat_timeout
    chosen: dict[int, ProviderUsage] = {}
    groups: list[dict[str, Any]] = []
    for gi, group in enumerate(request.groups):
        confined = gi > 0 and not group.member_of and not group.in_tree and 0 in chosen
        exclude: frozenset[str] = frozenset()
        if request.group_policy == GroupPolicy.ISOLATE:
            exclude = frozenset(c.provider.uuid for c in chosen.values())
        query = CandidateQuery(
            group=group,
            limit=cfg.candidate_limit,
            strategy=request.hints.strategy,
            exclude=exclude,
            roots=frozenset({chosen[0].provider.root_uuid}) if confined else None,
            heartbeat_after=now - timeout if timeout is not None else None,
        )
        found = store.find_candidates(query)
        ctx = PlacementContext(state, group, gi, consumer, 0, chosen=dict(chosen))
        rows, passed = _filter(scheduler, found, ctx, state)
        weights = _weigh(scheduler, passed, ctx)
        order = sorted(range(len(passed)), key=lambda i: -weights[i]["total"])
        for rank, i in enumerate(order):
            rows[passed[i].provider.uuid].update(weights[i], rank=rank + 1)
        subset = [passed[i] for i in order[: cfg.host_subset_size]]
        if subset:
            chosen[gi] = subset[0]
        groups.append(
            {
                "group": group.name,
                "resources": dict(group.resources),
                "query": {
                    "limit": query.limit,
                    "strategy": query.strategy.value,
                    "in_first_groups_tree": confined,
                    "excluded": sorted(exclude),
                },
                "candidates": list(rows.values()),
                "passed_filters": len(passed),
                "would_pick_among": [c.provider.uuid for c in subset],
                "would_choose": subset[0].provider.uuid if subset else None,
                "not_eligible": health.unavailable(store, query, timeout),
            }
        )
    fits = all(g["would_choose"] for g in groups)
    return {
        "dry_run": True,
        "fits": fits,
        "instance": 1,
        "count": request.count,
        "host_subset_size": cfg.host_subset_size,
        "strategy": request.hints.strategy.value,
        "filters": [f.NAME for f in scheduler.filters],
        "weighers": {w.NAME: m for w, m in scheduler.weighers},
        "groups": groups,
    }


def _filter(
    scheduler: Scheduler, found: list[ProviderUsage], ctx: PlacementContext, state: RequestState
) -> tuple[dict[str, dict[str, Any]], list[ProviderUsage]]:
    filters = [f for f in scheduler.filters if applies(f, ctx)]
    rows: dict[str, dict[str, Any]] = {}
    passed = []
    for cand in found:
        state.remember_root(cand)
        row: dict[str, Any] = {
            "uuid": cand.provider.uuid,
            "name": cand.provider.name,
            "free": health.free_of(cand),
            "passed": True,
        }
        for flt in filters:
            result = flt.filter(cand, ctx)
            if not result.passed:
                row.update(passed=False, rejected_by=flt.NAME, reason=result.reason)
                break
        else:
            passed.append(cand)
        rows[cand.provider.uuid] = row
    return rows, passed


def _weigh(
    scheduler: Scheduler, passed: list[ProviderUsage], ctx: PlacementContext
) -> list[dict[str, Any]]:
    """Each candidate's total and every weigher's part of it (multiplier x
    normalised weight), computed as ``weighers.combine`` does."""
    out: list[dict[str, Any]] = [{"total": 0.0, "weights": {}} for _ in passed]
    if not passed:
        return out
    flip = ctx.request.hints.strategy == Strategy.PACK
    for weigher, multiplier in scheduler.weighers:
        if multiplier == 0 or not applies(weigher, ctx):
            continue
        if flip and weigher.FOLLOWS_STRATEGY:
            multiplier = -multiplier
        for i, w in enumerate(normalize(weigher.weigh(passed, ctx))):
            out[i]["weights"][weigher.NAME] = round(multiplier * w, 6)
            out[i]["total"] += multiplier * w
    for o in out:
        o["total"] = round(o["total"], 6)
    return out
