"""Candidate reads: the providers that fit a request group, the pages of
candidate trees, and what the cloud's shape allows to skip."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from claimant.model import InvalidInput, NotFound, ProviderUsage, RequestGroup, Strategy
from claimant.model.types import check_constraint, infer_spec
from claimant.store.base import CandidateQuery, TreePage, TreeQuery
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.schema import TREE_INDEX
from claimant.store.cassandra.settle import Settling
from claimant.store.cassandra.state import (
    MAX_PAGES,
    MAX_TOKEN,
    MIN_TOKEN,
    SHARING_TRAIT,
    TREE_FETCH,
    _attr_matches,
    _fits,
    _State,
    _state_from_row,
)


class Candidates(Settling):
    # -- queries ------------------------------------------------------------------
    def _group_matcher(
        self, group: RequestGroup, *, check_types: bool = True
    ) -> Callable[[_State], bool]:
        rtype = None
        if group.provider_type and check_types:
            rtype = self.get_resource_type(group.provider_type)
        constraints = []
        for c in group.attributes:
            spec = rtype.attributes.get(c.name) if rtype else None
            if rtype is not None and spec is None:
                raise InvalidInput(
                    f"resource type {rtype.name} has no attribute {c.name!r}", field=c.name
                )
            constraints.append(check_constraint(spec or infer_spec(c.name, c.value), c))
        tree_root: str | None = None
        if group.in_tree:
            try:
                tree_root = self._read_state(group.in_tree).root_uuid
            except NotFound:
                tree_root = "-"  # matches nothing, as the SQLite store

        def match(s: _State) -> bool:
            if not group.required_traits <= s.traits or group.forbidden_traits & s.traits:
                return False
            if any(not (anyof & s.traits) for anyof in group.any_traits):
                return False
            if any(not (anyof & s.aggregates) for anyof in group.member_of):
                return False
            if group.forbidden_aggregates & s.aggregates:
                return False
            if tree_root is not None and s.root_uuid != tree_root:
                return False
            if group.provider_type and s.type != group.provider_type:
                return False
            return all(_attr_matches(c, s.attributes.get(c.name)) for c in constraints)

        return match

    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        group = query.group
        if not group.resources:
            raise InvalidInput("a candidate query needs at least one resource amount")
        order_rc = query.order_class()
        if order_rc not in group.resources:
            raise InvalidInput(f"sort class {order_rc} is not requested by the group")
        if query.roots is not None and not query.roots:
            return []
        now = self.clock()
        match = self._group_matcher(group)
        ckey = "i:" + order_rc
        amount = group.resources[order_rc]
        fetch = max(self.fetch, int(query.limit))
        want = int(query.limit)
        seen: set[str] = set()
        found: list[tuple[int, _State]] = []

        def accept(rows: list[Any]) -> None:
            for row in rows:
                if row.provider_uuid in seen:
                    continue
                seen.add(row.provider_uuid)
                state = self._from_row_cached(row)
                if state is None or state.uuid in query.exclude:
                    continue
                if not state.enabled and not query.include_disabled:
                    continue
                if (
                    query.heartbeat_after is not None
                    and state.heartbeat_at is not None
                    and state.heartbeat_at <= query.heartbeat_after
                ):
                    continue
                if query.roots is not None and state.root_uuid not in query.roots:
                    continue
                used = state.used(now)
                if not match(state) or not _fits(state, group, used):
                    continue
                free = state.inventories[order_rc].capacity - used.get(order_rc, 0)
                found.append((free, state))

        read = [0]

        def enough() -> bool:
            # At least ``fetch`` rows looked at, and ``limit`` of them fit.
            return read[0] >= fetch and len(found) >= want

        def take(rows: list[Any]) -> None:
            read[0] += len(rows)
            accept(rows)

        exhausted = self._scan_candidates(ckey, amount, fetch, take, enough)
        if exhausted and len(found) < want:
            # Every provider the conservative index admits has been seen; add
            # those whose claims have all expired since they were written.
            accept(self._run(q.CANDIDATES_EXPIRED, [ckey, amount, now, fetch]))
        sign = -1 if query.strategy == Strategy.SPREAD else 1
        found.sort(key=lambda fs: (sign * fs[0], fs[1].created_at, fs[1].seq, fs[1].uuid))
        return [s.usage(now) for _, s in found[:want]]

    def _scan_candidates(
        self,
        ckey: str,
        amount: int,
        fetch: int,
        accept: Callable[[list[Any]], None],
        enough: Callable[[], bool],
    ) -> bool:
        """Page through index rows with ``free >= amount`` in token order,
        from a random token round the ring, so that parallel schedulers look
        at different slices of a big cluster. Stops once ``enough()`` (rows
        the filters SAI cannot apply may reject many) or after MAX_PAGES;
        returns True if the whole ring was read."""
        start = random.randint(MIN_TOKEN + 1, MAX_TOKEN)
        pages = 0
        for lo, hi in ((start, MAX_TOKEN), (MIN_TOKEN, start - 1)):
            cursor = lo
            while True:
                rows = self._run(q.CANDIDATES_RANGE, [ckey, amount, cursor, hi, fetch])
                pages += 1
                accept(rows)
                if len(rows) < fetch or rows[-1].t >= hi:
                    break  # this arc is done
                if enough() or pages >= MAX_PAGES:
                    return False
                cursor = rows[-1].t + 1
            if enough() and lo != MIN_TOKEN:
                return False
        return True

    def candidate_trees(self, query: TreeQuery) -> TreePage:
        """The index rows of each needed class (SAI, bounded by MAX_PAGES)
        name the providers with room and their roots; the trees of one page
        are then walked through ``provider_children``, a level at a time, and
        the providers not seen in the index read. Every class's first page is
        read at once (asynchronously): round trips, not rows, are the cost."""
        needs = sorted(query.needs.items())
        if not needs:
            return TreePage([], [], None)
        now = self.clock()
        fetch = max(self.fetch, TREE_FETCH)
        stmts: list[tuple[str, list[Any]]] = []
        for rc, amount in needs:
            stmts.append((q.CANDIDATES_RANGE, ["i:" + rc, amount, MIN_TOKEN, MAX_TOKEN, fetch]))
            # The index counts claims that have since expired: add those.
            stmts.append((q.CANDIDATES_EXPIRED, ["i:" + rc, amount, now, fetch]))
        first = self._read_many(stmts)
        seen: dict[str, _State] = {}
        per_need: list[tuple[set[str], set[str]]] = []
        for n, (rc, amount) in enumerate(needs):
            roots: set[str] = set()
            sharing: set[str] = set()
            pages = [first[2 * n + 1], first[2 * n]]
            rows = first[2 * n]
            count = 1
            # Bounded like find_candidates: past MAX_PAGES pages (20,000
            # providers with room for one class) the rest of the ring is not
            # read, so a cloud that large may miss trees here.
            while len(rows) == fetch and count < MAX_PAGES:
                rows = self._run(
                    q.CANDIDATES_RANGE, ["i:" + rc, amount, rows[-1].t + 1, MAX_TOKEN, fetch]
                )
                pages.append(rows)
                count += 1
            for page in pages:
                for row in page:
                    state = self._from_row_cached(row)
                    if state is None:
                        continue
                    seen[state.uuid] = state
                    if SHARING_TRAIT in state.traits:
                        sharing.add(state.uuid)
                    roots.add(state.root_uuid)
            per_need.append((roots, sharing))
        # A tree that only a sharing provider serves with some class may have
        # none of its own providers in that class's index: any tree seen at
        # all may be such an anchor (the engine checks the aggregates). A
        # tree none of whose providers has room for anything adds no
        # candidate a sharing provider's own tree does not already give.
        everywhere = {s.root_uuid for s in seen.values()}
        candidates: set[str] | None = None
        for roots, sharing in per_need:
            ok = roots | everywhere if sharing else roots
            candidates = ok if candidates is None else candidates & ok
        ordered = sorted(r for r in candidates or set() if query.after is None or r > query.after)
        more = len(ordered) > query.max_roots
        page_roots = ordered[: query.max_roots]
        if self._has_tree_index():
            members = self._read_trees(page_roots, seen)
        else:
            members = self._tree_members(page_roots)
            missing = [u for u in members if u not in seen]
            for rows in self._run_many(q.READ_STATE, [[u] for u in missing]):
                state = _state_from_row(rows[0]) if rows else None
                if state is not None:
                    seen[state.uuid] = self._remember(state)
        states = [seen[u] for u in members if u in seen]
        aggs = set().union(*(s.aggregates for s in states)) if states else set()
        linked = sorted({u for _, sharing in per_need for u in sharing} - set(members))
        states += [seen[u] for u in linked if seen[u].aggregates & aggs]
        return TreePage(
            page_roots,
            [s.usage(now) for s in states],
            page_roots[-1] if more and page_roots else None,
        )

    def has_nested_providers(self) -> bool:
        """One row of ``provider_children``, not a read of every provider:
        Placement's candidates ask this on every request."""
        return bool(self._run(q.ANY_CHILD))

    def has_sharing_providers(self) -> bool:
        """One row of ``sharing_providers`` (one partition)."""
        return bool(self._run(q.ANY_SHARING))

    def flat_cloud(self) -> bool:
        # Both questions in one round trip.
        children, sharing = self._read_many([(q.ANY_CHILD, []), (q.ANY_SHARING, [])])
        return not (children or sharing)

    def _has_tree_index(self) -> bool:
        """Schema V9's index, as the driver's schema metadata has it (kept
        current by the cluster's schema events): a keyspace not yet migrated
        is walked through ``provider_children`` instead."""
        cluster = self._cluster
        meta = cluster.metadata.keyspaces.get(self.keyspace) if cluster is not None else None
        return meta is not None and TREE_INDEX in meta.indexes

    def _read_trees(self, roots: list[str], seen: dict[str, _State]) -> list[str]:
        """Every provider of these trees, one read per tree, all at once:
        roots first, then the others by root and uuid. Their states go
        into ``seen``."""
        others: list[str] = []
        for rows in self._run_many(q.TREE, [[r] for r in roots]):
            found = []
            for row in rows:
                state = self._from_row_cached(row)
                if state is not None:
                    seen[state.uuid] = state
                    if state.parent_uuid is not None:
                        found.append(state.uuid)
            others += sorted(found)
        return [r for r in roots if r in seen] + others

    def _tree_members(self, roots: list[str]) -> list[str]:
        """Every provider of these trees, roots first, a level at a time."""
        out = list(roots)
        level = list(roots)
        while level:
            nxt = [
                row.child_uuid
                for rows in self._run_many(q.CHILDREN, [[u] for u in level])
                for row in rows
            ]
            out += nxt
            level = nxt
        return out

    def get_usage(self, uuid: str) -> ProviderUsage:
        return self._settled_state(uuid, serial=True).usage(self.clock())
