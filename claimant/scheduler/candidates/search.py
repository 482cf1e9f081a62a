"""Depth-first search of one tree's group assignments.

Groups are assigned one at a time, most constrained first. Every prefix is
checked as it grows: capacity and max_unit with the amounts of the earlier
groups summed, group_policy=isolate, the pre-1.29 one-provider-per-tree rule,
and each same_subtree set once its last group is placed. A prefix that fails
cuts its whole subtree (Placement's bug 2126751 prunes the same way but then
still walks factorially many dead ends).

Symmetry: two leaves under one parent with equal traits, aggregates,
inventories and usage are interchangeable while no group is on either of
them. If placing a group on the first leads to no candidate, placing it on
the second cannot either, so the search skips it. That turns "N groups of
one device on N-1 identical devices" from N! dead ends into N^2 steps.
Candidates themselves are never merged: each distinct assignment is a
distinct allocation request (its mappings differ), as in Placement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter

from claimant.model import deadline
from claimant.scheduler.candidates.groups import Option
from claimant.scheduler.candidates.request import (
    AllocationRequest,
    CandidateRequest,
    GroupSpec,
    SearchStats,
)
from claimant.scheduler.candidates.snapshot import Snapshot

# Search steps between two deadline checks (a power of two, minus one):
# cheap, and still well under a millisecond of work between checks (a
# check waits for the end of one depth's scan of its options).
CHECK_MASK = 255


@dataclass(frozen=True, slots=True)
class _Compiled:
    """An option with every name turned into a small integer: the search
    loop is the hot path and does only list indexing."""

    option: Option
    pieces: tuple[tuple[int, int], ...]  # (room index, amount)
    providers: tuple[int, ...]
    granular: int  # provider index of a granular option, else -1
    roots: tuple[tuple[str, int], ...]  # (root, provider index) of each piece
    sym: int  # symmetry class (Snapshot.symmetry_key), else -1
    # The one piece of a single-class option (most are), else (-1, 0).
    k1: int
    a1: int
    # The option's, repeated here: a candidate is built from these in C
    # (map, zip, chain) rather than in a Python loop per group.
    per_provider: tuple[tuple[str, dict[str, int]], ...]
    mapping: tuple[str, ...]


_PER_PROVIDER = attrgetter("per_provider")
_MAPPING = attrgetter("mapping")


class TreeSearch:
    """The candidates of one anchor tree, lazily, in a stable order."""

    def __init__(
        self,
        snap: Snapshot,
        req: CandidateRequest,
        groups: list[GroupSpec],
        options: list[list[Option]],
        stats: SearchStats,
    ) -> None:
        order = sorted(range(len(groups)), key=lambda i: (len(options[i]), i))
        self.groups = [groups[i] for i in order]
        self.suffixes = tuple(g.suffix for g in self.groups)
        self.stats = stats
        self.isolate = req.group_policy == "isolate"
        self.one_per_tree = not req.nested_aware
        self.snap = snap
        self._keys: dict[tuple[str, str], int] = {}
        self._pidx: dict[str, int] = {}
        self._syms: dict[object, int] = {}
        self.names: list[str] = []
        self.room: list[int] = []
        self.maxu: list[int] = []
        compiled: dict[int, list[_Compiled]] = {}
        for i in order:
            if id(options[i]) not in compiled:
                compiled[id(options[i])] = [self._compile(o) for o in options[i]]
        # Groups that share a list of options share its compiled form too.
        self.options: list[list[_Compiled]] = [compiled[id(options[i])] for i in order]
        # same_subtree sets, checked at the depth where their last group lands
        depth_of = {g.suffix: d for d, g in enumerate(self.groups)}
        self.subtrees: list[list[tuple[int, ...]]] = [[] for _ in self.groups]
        for suffixes in req.same_subtrees:
            depths = tuple(sorted(depth_of[s] for s in suffixes if s in depth_of))
            if depths:
                self.subtrees[depths[-1]].append(depths)
        self.feasible = self._overall_capacity_ok()

    def _provider(self, u: str) -> int:
        n = self._pidx.get(u)
        if n is None:
            n = self._pidx[u] = len(self.names)
            self.names.append(u)
        return n

    def _compile(self, o: Option) -> _Compiled:
        pieces = []
        for u, rc, amount in o.pieces:
            k = self._keys.get((u, rc))
            if k is None:
                k = len(self.room)
                self._keys[(u, rc)] = k
                inv = self.snap.providers[u].inventories[rc]
                self.room.append(inv.capacity - self.snap.used(u, rc))
                self.maxu.append(inv.max_unit)
            pieces.append((k, amount))
        used_by_pieces = sorted({u for u, _, _ in o.pieces})
        granular = -1
        sym = -1
        if o.granular and len(o.providers) == 1:
            u = next(iter(o.providers))
            granular = self._provider(u)
            key = self.snap.symmetry_key(u)
            if key is not None:
                sym = self._syms.setdefault(key, len(self._syms))
        return _Compiled(
            o,
            tuple(pieces),
            tuple(self._provider(u) for u in sorted(o.providers)),
            granular,
            tuple((self.snap.root(u), self._provider(u)) for u in used_by_pieces),
            sym,
            *(pieces[0] if len(pieces) == 1 else (-1, 0)),
            o.per_provider,
            o.mapping,
        )

    def _overall_capacity_ok(self) -> bool:
        """Placement's pre-check (bug 2160721): the tree's free amounts of
        each class, over every provider some group could use, must cover
        what all the groups ask together."""
        asked: dict[str, int] = {}
        for g in self.groups:
            for rc, n in g.resources.items():
                asked[rc] = asked.get(rc, 0) + n
        free: dict[str, int] = {}
        for (_, rc), k in self._keys.items():
            free[rc] = free.get(rc, 0) + self.room[k]
        return all(free.get(rc, 0) >= n for rc, n in asked.items())

    def _same_subtree(self, uuids: set[str]) -> bool:
        if len(uuids) <= 1:
            return True
        common: set[str] | None = None
        for u in uuids:
            a = self.snap.ancestors(u)
            common = a if common is None else common & a
        return bool((common or set()) & uuids)

    def __iter__(self) -> Iterator[AllocationRequest]:
        # One function on purpose (the README says why, measured): its state
        # lives in locals bound once, and split into undo, scan and apply
        # functions the wide-tree search cost 6-20% more CPU. Split it only
        # with bench/bench_wide_trees.py showing the same server CPU.
        if not self.feasible or not self.groups:
            return
        n = len(self.groups)
        room, maxu = self.room, self.maxu
        taken = [0] * len(room)
        touched = [0] * len(self.names)
        iso = [0] * len(self.names)
        isolate, one_per_tree = self.isolate, self.one_per_tree
        tree_user: dict[str, tuple[int, int]] = {}
        pos = [-1] * n
        applied: list[_Compiled | None] = [None] * n
        fresh_key = [-1] * n
        found_at = [0] * n
        dead: list[set[int]] = [set() for _ in range(n)]
        completions = 0
        shared = 0  # providers used by more than one placed option, counted per extra use
        nodes = reported = 0
        next_check = CHECK_MASK + 1
        subtrees = self.subtrees
        depth = 0
        try:
            while depth >= 0:
                current = applied[depth]
                if current is not None:
                    # undo the option placed at this depth
                    k = current.k1
                    if k >= 0:
                        room[k] += current.a1
                        taken[k] -= current.a1
                    else:
                        for k, a in current.pieces:
                            room[k] += a
                            taken[k] -= a
                    g = current.granular
                    if g >= 0:  # its one provider
                        touched[g] -= 1
                        if touched[g]:
                            shared -= 1
                        iso[g] -= 1
                    else:
                        for p in current.providers:
                            touched[p] -= 1
                            if touched[p]:
                                shared -= 1
                    if one_per_tree:
                        for root, _ in current.roots:
                            user, count = tree_user[root]
                            if count == 1:
                                del tree_user[root]
                            else:
                                tree_user[root] = (user, count - 1)
                    applied[depth] = None
                    if fresh_key[depth] >= 0 and completions == found_at[depth]:
                        dead[depth].add(fresh_key[depth])
                opts = self.options[depth]
                n_opts = len(opts)
                dead_here = dead[depth]
                i = start = pos[depth] + 1
                chosen: _Compiled | None = None
                key = -1
                # The hot loop: most options fail on room, so that is
                # checked first, with as few lookups as possible.
                while i < n_opts:
                    o = opts[i]
                    i += 1
                    k = o.k1
                    if k >= 0:
                        a = o.a1
                        if room[k] < a or taken[k] + a > maxu[k]:
                            continue
                    elif not all(room[k] >= a and taken[k] + a <= maxu[k] for k, a in o.pieces):
                        continue
                    key = -1
                    if o.sym >= 0 and not touched[o.granular]:
                        key = o.sym
                        if key in dead_here:
                            continue
                    if isolate and o.granular >= 0 and iso[o.granular]:
                        continue
                    if one_per_tree and not self._one_per_tree_ok(o, tree_user):
                        continue
                    chosen = o
                    break
                nodes += i - start
                if nodes >= next_check:
                    deadline.check("candidate search")
                    next_check = nodes + CHECK_MASK + 1
                if chosen is None:
                    pos[depth] = -1
                    dead_here.clear()
                    depth -= 1
                    continue
                pos[depth] = i - 1
                k = chosen.k1
                if k >= 0:
                    room[k] -= chosen.a1
                    taken[k] += chosen.a1
                else:
                    for k, a in chosen.pieces:
                        room[k] -= a
                        taken[k] += a
                g = chosen.granular
                if g >= 0:
                    if touched[g]:
                        shared += 1
                    touched[g] += 1
                    iso[g] += 1
                else:
                    for p in chosen.providers:
                        if touched[p]:
                            shared += 1
                        touched[p] += 1
                if one_per_tree:
                    for root, p in chosen.roots:
                        user, count = tree_user.get(root, (p, 0))
                        tree_user[root] = (user, count + 1)
                applied[depth] = chosen
                fresh_key[depth] = key
                found_at[depth] = completions
                if subtrees[depth] and not self._subtrees_ok(depth, applied):
                    continue  # undone at the top of the loop, at this same depth
                if depth == n - 1:
                    completions += 1
                    self.stats.nodes += nodes - reported
                    reported = nodes
                    yield self._candidate(applied, not shared)  # type: ignore[arg-type]
                    continue
                depth += 1
        finally:
            self.stats.nodes += nodes - reported

    def _candidate(self, applied: list[_Compiled], disjoint: bool) -> AllocationRequest:
        """One allocation request from one option per group. Amounts dicts
        are the options' own (never changed); only a provider that several
        groups use gets a merged one."""
        if disjoint:
            allocations = dict(chain.from_iterable(map(_PER_PROVIDER, applied)))
        else:
            allocations = {}
            for c in applied:
                for u, amounts in c.per_provider:
                    have = allocations.get(u)
                    if have is None:
                        allocations[u] = amounts
                    else:
                        merged = dict(have)
                        for rc, n in amounts.items():
                            merged[rc] = merged.get(rc, 0) + n
                        allocations[u] = merged
        # One option per group, so a group's mapping is its option's providers.
        return AllocationRequest(
            applied[0].option.anchor,
            allocations,
            dict(zip(self.suffixes, map(_MAPPING, applied), strict=True)),
        )

    @staticmethod
    def _one_per_tree_ok(o: _Compiled, tree_user: dict[str, tuple[int, int]]) -> bool:
        """Before 1.29 a candidate may use only one provider of each tree."""
        mine: dict[str, int] = {}
        for root, p in o.roots:
            if mine.setdefault(root, p) != p:
                return False
            held = tree_user.get(root)
            if held is not None and held[0] != p:
                return False
        return True

    def _subtrees_ok(self, depth: int, applied: list[_Compiled | None]) -> bool:
        for depths in self.subtrees[depth]:
            uuids: set[str] = set()
            for d in depths:
                c = applied[d]
                if c is not None:
                    uuids.update(c.option.providers)
            if not self._same_subtree(uuids):
                return False
        return True
