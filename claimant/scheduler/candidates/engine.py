"""Allocation candidates for a request of several groups: load only the trees
that can host it (pages of trees from the store), list each group's options
per tree, then search each tree's assignments depth-first, round-robin over
the trees, until ``limit`` distinct candidates are found."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from claimant.model import NotFound, ProviderUsage, RequestGroup
from claimant.scheduler.candidates.groups import Option, anchor_roots, group_options
from claimant.scheduler.candidates.request import (
    AllocationRequest,
    CandidateRequest,
    CandidateResult,
    GroupSpec,
    SearchStats,
)
from claimant.scheduler.candidates.search import TreeSearch
from claimant.scheduler.candidates.snapshot import Snapshot
from claimant.store.base import CandidateQuery, Store, TreeQuery

#: trees read per store round; a page is searched before the next is read
MAX_PAGE = 1000
MIN_PAGE = 50


def find_allocation_candidates(store: Store, req: CandidateRequest) -> CandidateResult:
    stats = SearchStats()
    if _flat_shortcut_applies(store, req):
        return _flat(store, req, stats)
    tree_roots: dict[str, str | None] = {}
    for g in req.groups:
        tree_roots[g.suffix] = None
        if g.in_tree:
            try:
                tree_roots[g.suffix] = store.get_provider(g.in_tree).root_uuid
            except NotFound:
                return CandidateResult([], [], stats)
    needs: dict[str, int] = {}
    for g in req.groups:
        for rc, n in g.resources.items():
            needs[rc] = min(n, needs.get(rc, n))
    page_size = MAX_PAGE if req.limit is None else min(MAX_PAGE, max(MIN_PAGE, req.limit))
    seen: set[tuple[object, ...]] = set()
    found: list[AllocationRequest] = []
    shown: dict[str, ProviderUsage] = {}
    after: str | None = None
    while True:
        page = store.candidate_trees(TreeQuery(needs, max_roots=page_size, after=after))
        stats.pages += 1
        stats.trees += len(page.roots)
        snap = Snapshot(page.providers)
        used: set[str] = set()
        for areq in _search_page(snap, req, tree_roots, stats):
            # Only a sharing provider can make two trees give one candidate
            # (its own and every tree it anchors to); without one, distinct
            # assignments are distinct candidates and need no key.
            if snap.sharing:
                key = (
                    frozenset(
                        (u, rc, n) for u, r in areq.allocations.items() for rc, n in r.items()
                    ),
                    frozenset(areq.mappings.items()),
                )
                if key in seen:
                    continue
                seen.add(key)
            found.append(areq)
            used.update(areq.allocations)
            if req.limit is not None and len(found) >= req.limit:
                break
        _summarise(snap, req, used, shown)
        if (req.limit is not None and len(found) >= req.limit) or page.after is None:
            break
        after = page.after
    return CandidateResult(found, [shown[u] for u in sorted(shown)], stats)


def _search_page(
    snap: Snapshot, req: CandidateRequest, tree_roots: dict[str, str | None], stats: SearchStats
) -> Iterator[AllocationRequest]:
    anchors_ok = anchor_roots(snap, req)
    if anchors_ok is not None and not anchors_ok:
        return
    # Groups alike but for their suffix (Placement's "one device per group")
    # share one list of options per tree, so the work is per kind of group.
    by_spec: dict[tuple[object, ...], dict[str, list[Option]]] = {}
    for g in req.groups:
        spec = _unsuffixed(g)
        if spec in by_spec:
            continue
        per_anchor: dict[str, list[Option]] = {}
        for o in group_options(snap, g, tree_roots[g.suffix], anchors_ok):
            per_anchor.setdefault(o.anchor, []).append(o)
        if not per_anchor:
            return
        by_spec[spec] = per_anchor
    specs = [by_spec[_unsuffixed(g)] for g in req.groups]
    anchors = sorted(set.intersection(*(set(per_anchor) for per_anchor in specs)))
    groups = list(req.groups)
    searches: deque[Iterator[AllocationRequest]] = deque(
        iter(TreeSearch(snap, req, groups, [per_anchor[a] for per_anchor in specs], stats))
        for a in anchors
    )
    if req.depth_first:
        for it in searches:
            yield from it
        return
    # Round-robin over the trees (Placement's "breadth-first" strategy), so
    # that a limit leaves candidates on every tree rather than on the first.
    while searches:
        it = searches.popleft()
        chosen = next(it, None)
        if chosen is None:
            continue
        searches.append(it)
        yield chosen


def _unsuffixed(g: GroupSpec) -> tuple[object, ...]:
    return (
        tuple(sorted(g.resources.items())),
        g.required,
        g.forbidden,
        g.member_of,
        g.forbidden_aggs,
        g.in_tree,
        g.granular,
    )


def _summarise(
    snap: Snapshot, req: CandidateRequest, used: set[str], shown: dict[str, ProviderUsage]
) -> None:
    """Placement summarises every provider of the trees the candidates use
    (before 1.29, with trees: only the providers used)."""
    if not req.nested_aware and snap.has_trees:
        for u in used:
            shown[u] = snap.usages[u]
        return
    for root in {snap.root(u) for u in used}:
        for u in snap.members(root):
            shown[u] = snap.usages[u]


# -- the flat shortcut ----------------------------------------------------------
def _flat_shortcut_applies(store: Store, req: CandidateRequest) -> bool:
    """Placement's own shortcut: one group, a limit (Nova always sends one),
    no root rule, and a cloud with no trees and no sharing providers: the
    store answers the whole group in one query, emptiest providers first."""
    if len(req.groups) != 1 or req.limit is None or req.root_required or req.root_forbidden:
        return False
    if not req.groups[0].resources:
        return False
    return store.flat_cloud()


def _flat(store: Store, req: CandidateRequest, stats: SearchStats) -> CandidateResult:
    g = req.groups[0]
    if g.in_tree:
        try:
            store.get_provider(g.in_tree)
        except NotFound:
            return CandidateResult([], [], stats)
    group = _as_request_group(g)
    found = store.find_candidates(CandidateQuery(group, limit=req.limit or 1))
    stats.pages = 1
    stats.trees = len(found)
    areqs = [
        AllocationRequest(
            pu.provider.uuid, {pu.provider.uuid: dict(g.resources)}, {g.suffix: (pu.provider.uuid,)}
        )
        for pu in found
    ]
    return CandidateResult(areqs, sorted(found, key=lambda pu: pu.provider.uuid), stats)


def _as_request_group(g: GroupSpec) -> RequestGroup:
    return RequestGroup(
        resources=dict(g.resources),
        required_traits=frozenset(t for anyof in g.required if len(anyof) == 1 for t in anyof),
        any_traits=tuple(anyof for anyof in g.required if len(anyof) > 1),
        forbidden_traits=frozenset(g.forbidden),
        member_of=tuple(g.member_of),
        forbidden_aggregates=frozenset(g.forbidden_aggs),
        in_tree=g.in_tree,
    )
