"""Each group on its own: every way one group can be met in the loaded
trees, tagged with the tree (the "anchor") it would belong to. Placement's
rules: a granular group is one provider; the unnumbered group may spread over
one tree plus sharing providers linked to it by an aggregate, its required
traits met by the providers used together, its forbidden traits by none."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from claimant.scheduler.candidates.request import CandidateRequest, GroupSpec
from claimant.scheduler.candidates.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Option:
    """One way to meet one group: (provider, class, amount) pieces. Groups
    that differ only in their suffix share their options."""

    anchor: str
    pieces: tuple[tuple[str, str, int], ...]
    providers: frozenset[str]
    granular: bool
    # What a candidate shows of it, built once: its providers in order, and
    # its amounts per provider (shared by every candidate, never changed).
    mapping: tuple[str, ...]
    per_provider: tuple[tuple[str, dict[str, int]], ...]


def _option(
    anchor: str, pieces: tuple[tuple[str, str, int], ...], providers: frozenset[str], granular: bool
) -> Option:
    per: dict[str, dict[str, int]] = {}
    for u, rc, n in pieces:
        per.setdefault(u, {})[rc] = n
    return Option(anchor, pieces, providers, granular, tuple(sorted(providers)), tuple(per.items()))


def anchor_roots(snap: Snapshot, req: CandidateRequest) -> set[str] | None:
    """Roots allowed by root_required (1.35); None when there is no such rule."""
    if not (req.root_required or req.root_forbidden):
        return None
    return {
        u
        for u, p in snap.providers.items()
        if p.parent_uuid is None
        and req.root_required <= p.traits
        and not (req.root_forbidden & p.traits)
    }


def group_options(
    snap: Snapshot, g: GroupSpec, tree_root: str | None, anchors_ok: set[str] | None
) -> list[Option]:
    """``tree_root``: the root of ``g.in_tree`` (the caller resolved it)."""
    in_aggs = snap.in_aggs(g.member_of) if g.member_of else None
    if in_aggs is not None and not in_aggs:
        return []
    with_rc: dict[str, set[str]] = {}
    for rc, amount in g.resources.items():
        found = {
            u
            for u in snap.with_resource(rc, amount)
            if tree_root is None or snap.root(u) == tree_root
        }
        if not found:
            return []
        with_rc[rc] = found
    bad_aggs = snap.in_aggs([frozenset(g.forbidden_aggs)]) if g.forbidden_aggs else set()
    if not g.granular and (snap.sharing or snap.has_trees):
        return _spread(snap, g, with_rc, in_aggs, bad_aggs, tree_root, anchors_ok)
    return _single(snap, g, with_rc, in_aggs, bad_aggs, tree_root, anchors_ok)


def _single(
    snap: Snapshot,
    g: GroupSpec,
    with_rc: dict[str, set[str]],
    in_aggs: set[str] | None,
    bad_aggs: set[str],
    tree_root: str | None,
    anchors_ok: set[str] | None,
) -> list[Option]:
    ok = set(snap.providers)
    if tree_root is not None:
        ok = {u for u in ok if snap.root(u) == tree_root}
    for rc_set in with_rc.values():
        ok &= rc_set
    if in_aggs is not None:
        ok &= in_aggs
    ok = {u for u in ok if u not in bad_aggs and g.traits_ok(snap.providers[u].traits)}
    out: list[Option] = []
    for u in sorted(ok, key=lambda x: (snap.root(x), x)):
        pieces = tuple((u, rc, n) for rc, n in g.resources.items())
        root = snap.root(u)
        only = frozenset({u})
        if anchors_ok is None or root in anchors_ok:
            out.append(_option(root, pieces, only, g.granular))
        if u in snap.sharing:
            for anchor in sorted(snap.anchors(u)):
                if anchor != root and (anchors_ok is None or anchor in anchors_ok):
                    out.append(_option(anchor, pieces, only, g.granular))
    return out


def _spread(
    snap: Snapshot,
    g: GroupSpec,
    with_rc: dict[str, set[str]],
    in_aggs: set[str] | None,
    bad_aggs: set[str],
    tree_root: str | None,
    anchors_ok: set[str] | None,
) -> list[Option]:
    if g.required:
        wanted = set().union(*g.required)
        if not any(wanted & p.traits for p in snap.providers.values()):
            return []
    # tree root -> class -> providers (own tree members, or sharing providers)
    trees: dict[str, dict[str, set[str]]] | None = None
    for rc, members in with_rc.items():
        pairs = {(u, snap.root(u)) for u in members}
        sharing = snap.sharing & members
        if in_aggs is not None:
            sharing &= in_aggs
        if sharing and tree_root is None:
            pairs |= {(s, anchor) for s in sharing for anchor in snap.anchors(s)}
        if anchors_ok is not None:
            pairs = {(u, r) for u, r in pairs if r in anchors_ok}
        if in_aggs is not None:
            pairs = {(u, r) for u, r in pairs if u in in_aggs or r in in_aggs}
        if bad_aggs:
            pairs = {(u, r) for u, r in pairs if u not in bad_aggs and r not in bad_aggs}
        by_tree: dict[str, set[str]] = {}
        for u, r in pairs:
            by_tree.setdefault(r, set()).add(u)
        if trees is None:
            trees = {r: {rc: us} for r, us in by_tree.items()}
        else:
            trees = {r: {**trees[r], rc: by_tree[r]} for r in trees if r in by_tree}
        if not trees:
            return []
    out: list[Option] = []
    for root in sorted(trees or {}):
        per_rc = (trees or {})[root]
        classes = sorted(per_rc)
        # Classes are few (a group holds at most 32, usually 1 to 3), so the
        # product over one tree's providers stays small.
        for combo in itertools.product(*(sorted(per_rc[rc]) for rc in classes)):
            traits: set[str] = set()
            clash = False
            for u in combo:
                t = snap.providers[u].traits
                if g.forbidden & t:
                    clash = True
                    break
                traits |= t
            if clash or not all(anyof & traits for anyof in g.required):
                continue
            pieces = tuple((u, rc, g.resources[rc]) for u, rc in zip(combo, classes, strict=True))
            out.append(_option(root, pieces, frozenset(combo), False))
    return out
