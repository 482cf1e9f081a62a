"""GET /allocation_candidates: every way to satisfy a request from the
providers as they are now, with provider summaries and group mappings.

Placement's algorithm, rebuilt over a snapshot read through the store
contract (providers plus usages): the unnumbered group may spread over one
provider tree plus sharing providers (MISC_SHARES_VIA_AGGREGATE) linked to
it by an aggregate; each numbered group is one provider; the groups are then
combined per tree (the "anchor") under group_policy and same_subtree, and
every combination is checked against capacity once more.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from claimant.api.bounds import MAX_GROUPS, MAX_INT64, check_count
from claimant.api.placement import errors
from claimant.api.placement.common import (
    Filters,
    parse_in_tree,
    parse_member_of,
    parse_required,
    parse_resources,
    parse_traits_value,
    trait_order,
)
from claimant.api.placement.errors import bad_request
from claimant.api.placement.framework import Req, Resp
from claimant.model import Inventory, NotFound, Provider, ProviderUsage, RequestGroup
from claimant.store.base import CandidateQuery, ProviderFilter

SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"

GET_SCHEMA_1_10: dict[str, Any] = {
    "type": "object",
    "properties": {"resources": {"type": "string"}},
    "required": ["resources"],
    "additionalProperties": False,
}
# 1.16: limit
GET_SCHEMA_1_16 = copy.deepcopy(GET_SCHEMA_1_10)
GET_SCHEMA_1_16["properties"]["limit"] = {
    "type": ["integer", "string"],
    "pattern": "^[1-9][0-9]*$",
    "minimum": 1,
    "minLength": 1,
}
# 1.17: required
GET_SCHEMA_1_17 = copy.deepcopy(GET_SCHEMA_1_16)
GET_SCHEMA_1_17["properties"]["required"] = {"type": ["string"]}
# 1.21: member_of
GET_SCHEMA_1_21 = copy.deepcopy(GET_SCHEMA_1_17)
GET_SCHEMA_1_21["properties"]["member_of"] = {"type": ["string"]}
# 1.25: granular groups (numbered suffixes) and group_policy
GET_SCHEMA_1_25 = copy.deepcopy(GET_SCHEMA_1_21)
for _key in ("resources", "required", "member_of"):
    del GET_SCHEMA_1_25["properties"][_key]
del GET_SCHEMA_1_25["required"]
_NUM = "[1-9][0-9]*"
GET_SCHEMA_1_25["patternProperties"] = {
    f"^{k}({_NUM})?$": {"type": "string"} for k in ("resources", "required", "member_of")
}
GET_SCHEMA_1_25["properties"]["group_policy"] = {"type": "string", "enum": ["none", "isolate"]}
# 1.31: in_tree per group
GET_SCHEMA_1_31 = copy.deepcopy(GET_SCHEMA_1_25)
GET_SCHEMA_1_31["patternProperties"][f"^in_tree({_NUM})?$"] = {"type": "string"}
# 1.33: suffixes are strings
_SUFFIX = "[a-zA-Z0-9_-]{1,64}"
GET_SCHEMA_1_33 = copy.deepcopy(GET_SCHEMA_1_31)
GET_SCHEMA_1_33["patternProperties"] = {
    f"^{k}({_SUFFIX})?$": {"type": "string"}
    for k in ("resources", "required", "member_of", "in_tree")
}
# 1.35: root_required
GET_SCHEMA_1_35 = copy.deepcopy(GET_SCHEMA_1_33)
GET_SCHEMA_1_35["properties"]["root_required"] = {"type": ["string"]}
# 1.36: same_subtree
GET_SCHEMA_1_36 = copy.deepcopy(GET_SCHEMA_1_35)
GET_SCHEMA_1_36["properties"]["same_subtree"] = {"type": ["string"]}

_SCHEMAS = (
    (36, GET_SCHEMA_1_36),
    (35, GET_SCHEMA_1_35),
    (33, GET_SCHEMA_1_33),
    (31, GET_SCHEMA_1_31),
    (25, GET_SCHEMA_1_25),
    (21, GET_SCHEMA_1_21),
    (17, GET_SCHEMA_1_17),
    (16, GET_SCHEMA_1_16),
)
_KEY_RE = re.compile(f"^(resources|required|member_of|in_tree)({_NUM})?$")
_KEY_RE_1_33 = re.compile(f"^(resources|required|member_of|in_tree)({_SUFFIX})?$")


# -- parsing ----------------------------------------------------------------
@dataclass
class Group(Filters):
    suffix: str = ""

    @property
    def same_provider(self) -> bool:
        return bool(self.suffix)


@dataclass
class Wide:
    limit: int | None = None
    group_policy: str | None = None
    root_required: set[str] = field(default_factory=set)
    root_forbidden: set[str] = field(default_factory=set)
    same_subtrees: list[set[str]] = field(default_factory=list)


def _parse_wide(req: Req) -> Wide:
    w = Wide()
    limits = req.params("limit")
    if limits:
        w.limit = int(limits[0])
        if w.limit > MAX_INT64:
            raise bad_request(
                f"Invalid query string parameters: limit must be at most {MAX_INT64}."
            )
    policies = req.params("group_policy")
    w.group_policy = policies[0] if policies else None
    roots = req.params("root_required")
    if roots:
        if len(roots) > 1:
            raise bad_request(
                "Query parameter 'root_required' may be specified only once.",
                errors.ILLEGAL_DUPLICATE_QUERYPARAM,
            )
        required, forbidden = parse_traits_value(roots[0], True, False)
        w.root_required = {t for s in required for t in s}
        w.root_forbidden = forbidden
        clash = w.root_required & w.root_forbidden
        if clash:
            raise bad_request(
                "Conflicting required and forbidden traits found in root_required: "
                + ", ".join(sorted(clash)),
                errors.QUERYPARAM_BAD_VALUE,
            )
    for value in req.params("same_subtree"):
        suffixes = {s.strip() for s in value.split(",")}
        if "" in suffixes:
            raise bad_request(
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
                errors.QUERYPARAM_BAD_VALUE,
            )
        w.same_subtrees.append(suffixes)
    return w


def _parse_groups(req: Req, wide: Wide) -> dict[str, Group]:
    pattern = _KEY_RE_1_33 if req.want(33) else _KEY_RE
    groups: dict[str, Group] = {}
    seen: set[tuple[str, str]] = set()
    for key, value in req.query:
        m = pattern.match(key)
        if not m:
            continue
        prefix, suffix = m.group(1), m.group(2) or ""
        if prefix in ("required", "member_of") and (prefix, suffix) in seen:
            continue  # parsed from every value of the key at once (not once per value)
        seen.add((prefix, suffix))
        g = groups.setdefault(suffix, Group(suffix=suffix))
        if prefix == "resources":
            g.resources = parse_resources(value)
        elif prefix == "required":
            g.required, g.forbidden = parse_required(req, suffix)
        elif prefix == "member_of":
            g.member_of, g.forbidden_aggs = parse_member_of(req, suffix)
        else:
            g.in_tree = parse_in_tree(value)
    check_count("request groups", groups, MAX_GROUPS)
    for suffix, g in groups.items():
        g.check_bounds(suffix)
    if req.want(36):
        resourceless = {s for s, g in groups.items() if not g.resources}
        subtree = set().union(*wide.same_subtrees) if wide.same_subtrees else set()
        if len(resourceless) == len(groups):
            raise bad_request(
                "There must be at least one resources or resources[$S] parameter.",
                errors.QUERYPARAM_MISSING_VALUE,
            )
        bad = [s for s in resourceless if s not in subtree]
        if bad:
            raise bad_request(
                "Resourceless suffixed group request should be specified in `same_subtree` "
                f"query param: bad group(s) - {bad}.",
                errors.QUERYPARAM_BAD_VALUE,
            )
        bad = [s for s in subtree if s not in groups]
        if bad:
            raise bad_request(
                f"Real suffixes should be specified in `same_subtree`: {bad} not found in "
                f"{list(groups)}.",
                errors.QUERYPARAM_BAD_VALUE,
            )
    else:
        orphans = [f"required{s}" for s, g in groups.items() if g.required and not g.resources]
        if orphans:
            raise bad_request(
                "All traits parameters must be associated with resources.  Found the "
                "following orphaned traits keys: " + ", ".join(orphans)
            )
        orphans = [
            f"member_of{s}"
            for s, g in groups.items()
            if not g.resources and (g.member_of or g.forbidden_aggs)
        ]
        if orphans:
            raise bad_request(
                "All member_of parameters must be associated with resources. Found the "
                "following orphaned member_of keys: " + ", ".join(orphans)
            )
        if not all(g.resources for g in groups.values()):
            raise bad_request("All request groups must specify resources.")
        if not groups:
            raise bad_request(
                "At least one request group (`resources` or `resources{$S}`) is required."
            )
    if req.want(22):
        clashes = [
            f"required{s}: ({', '.join(sorted(anyof))})"
            for s, g in groups.items()
            for anyof in g.required
            if all(t in g.forbidden for t in anyof)
        ]
        if clashes:
            raise bad_request(
                "Conflicting required and forbidden traits found in the following traits "
                "keys: " + ", ".join(sorted(clashes))
            )
    return groups


# -- the search ---------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """Some amount of one class from one provider."""

    provider: str
    rc: str
    amount: int


@dataclass
class AReq:
    anchor: str
    pieces: tuple[Piece, ...]
    mappings: dict[str, frozenset[str]]
    same_provider: bool = False

    def key(self) -> tuple[Any, ...]:
        return (
            frozenset(self.pieces),
            tuple(sorted((k, tuple(sorted(v))) for k, v in self.mappings.items())),
        )


class World:
    """What the search looks at, read through the store: every provider once
    (tree, traits, aggregates), and per requested (class, amount) the providers
    that can give it, with their usage, in one store query each."""

    def __init__(self, req: Req, *, lean: bool = False) -> None:
        self.store = req.store
        # lean: the flat shortcut knows the cloud has no trees and no sharing
        # providers and reads only the providers its one query returns.
        listed = [] if lean else req.store.list_providers()
        self.providers: dict[str, Provider] = {p.uuid: p for p in listed}
        self._used: dict[str, dict[str, int]] = {}
        self._fits: dict[tuple[str, int], set[str]] = {}
        self.has_trees = any(p.parent_uuid for p in self.providers.values())
        self.sharing = {u for u, p in self.providers.items() if SHARING_TRAIT in p.traits}
        self.by_agg: dict[str, set[str]] = {}
        for u, p in self.providers.items():
            for agg in p.aggregates:
                self.by_agg.setdefault(agg, set()).add(u)

    def _remember(self, found: Iterable[ProviderUsage]) -> None:
        for pu in found:
            self.providers[pu.provider.uuid] = pu.provider
            self._used[pu.provider.uuid] = {rc: u.used for rc, u in pu.usages.items()}

    def used(self, uuid: str) -> dict[str, int]:
        if uuid not in self._used:
            self._remember([self.store.get_usage(uuid)])
        return self._used[uuid]

    def with_resource(self, rc: str, amount: int) -> set[str]:
        """Providers with room for ``amount`` of ``rc`` (units and step included)."""
        key = (rc, amount)
        if key not in self._fits:
            query = CandidateQuery(RequestGroup(resources={rc: amount}), limit=len(self.providers))
            found = self.store.find_candidates(query) if self.providers else []
            self._remember(found)
            self._fits[key] = {pu.provider.uuid for pu in found}
        return self._fits[key]

    def root(self, uuid: str) -> str:
        return self.providers[uuid].root_uuid

    def inv(self, uuid: str, rc: str) -> Inventory | None:
        return self.providers[uuid].inventories.get(rc)

    def in_aggs(self, member_of: list[frozenset[str]]) -> set[str]:
        out = set(self.providers)
        for anyof in member_of:
            out &= set().union(*(self.by_agg.get(a, set()) for a in anyof))
        return out

    def anchors(self, sharing_uuid: str) -> set[str]:
        """Roots of every tree that shares an aggregate with this provider."""
        out: set[str] = set()
        for agg in self.providers[sharing_uuid].aggregates:
            out |= {self.root(u) for u in self.by_agg.get(agg, set())}
        return out

    def parent(self, uuid: str) -> str | None:
        return self.providers[uuid].parent_uuid


class NoCandidates(Exception):
    pass


def _group_candidates(w: World, g: Group, anchors_ok: set[str] | None) -> list[AReq]:
    in_aggs = w.in_aggs(g.member_of) if g.member_of else None
    if in_aggs is not None and not in_aggs:
        raise NoCandidates
    tree_root = None
    if g.in_tree:
        if g.in_tree not in w.providers:
            raise NoCandidates
        tree_root = w.root(g.in_tree)
    with_rc: dict[str, set[str]] = {}
    for rc, amount in g.resources.items():
        found = {
            u
            for u in w.with_resource(rc, amount)
            if u in w.providers and (tree_root is None or w.root(u) == tree_root)
        }
        if not found:
            raise NoCandidates
        with_rc[rc] = found
    bad_aggs = w.in_aggs([frozenset(g.forbidden_aggs)]) if g.forbidden_aggs else set()
    if not g.same_provider and (w.sharing or w.has_trees):
        return _spread_candidates(w, g, with_rc, in_aggs, bad_aggs, tree_root, anchors_ok)
    return _single_candidates(w, g, with_rc, in_aggs, bad_aggs, anchors_ok)


def _single_candidates(
    w: World,
    g: Group,
    with_rc: dict[str, set[str]],
    in_aggs: set[str] | None,
    bad_aggs: set[str],
    anchors_ok: set[str] | None,
) -> list[AReq]:
    ok = set(w.providers)
    for rc_set in with_rc.values():
        ok &= rc_set
    if in_aggs is not None:
        ok &= in_aggs
    ok = {
        u
        for u in ok
        if u not in bad_aggs
        and g.traits_ok(w.providers[u].traits)
        and not (g.forbidden & w.providers[u].traits)
    }
    out: list[AReq] = []
    for u in sorted(ok, key=lambda x: (w.root(x), x)):
        pieces = tuple(Piece(u, rc, n) for rc, n in g.resources.items())
        root = w.root(u)
        mappings = {g.suffix: frozenset({u})}
        if anchors_ok is None or root in anchors_ok:
            out.append(AReq(root, pieces, mappings, g.same_provider))
        if u in w.sharing:
            for anchor in sorted(w.anchors(u)):
                if anchor != root and (anchors_ok is None or anchor in anchors_ok):
                    out.append(AReq(anchor, pieces, mappings, g.same_provider))
    return out


def _spread_candidates(
    w: World,
    g: Group,
    with_rc: dict[str, set[str]],
    in_aggs: set[str] | None,
    bad_aggs: set[str],
    tree_root: str | None,
    anchors_ok: set[str] | None,
) -> list[AReq]:
    if g.required:
        wanted = set().union(*g.required)
        if not any(wanted & p.traits for p in w.providers.values()):
            return []
    # tree root -> class -> providers (own tree members, or sharing providers)
    trees: dict[str, dict[str, set[str]]] | None = None
    for rc, members in with_rc.items():
        pairs = {(u, w.root(u)) for u in members}
        sharing = w.sharing & members
        if in_aggs is not None:
            sharing &= in_aggs
        if sharing and tree_root is None:
            pairs |= {(s, anchor) for s in sharing for anchor in w.anchors(s)}
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
    out: list[AReq] = []
    for root in sorted(trees or {}):
        per_rc = trees[root]  # type: ignore[index]
        classes = sorted(per_rc)
        for combo in itertools.product(*(sorted(per_rc[rc]) for rc in classes)):
            traits: set[str] = set()
            clash = False
            for u in combo:
                t = w.providers[u].traits
                if g.forbidden & t:
                    clash = True
                    break
                traits |= t
            if clash or not all(anyof & traits for anyof in g.required):
                continue
            pieces = tuple(
                Piece(u, rc, g.resources[rc]) for u, rc in zip(combo, classes, strict=True)
            )
            out.append(AReq(root, pieces, {g.suffix: frozenset(combo)}, False))
    return out


def _same_subtree(w: World, uuids: set[str]) -> bool:
    if len(uuids) <= 1:
        return True
    common: set[str] | None = None
    for u in uuids:
        ancestors = {u}
        cursor = w.parent(u)
        while cursor is not None:
            ancestors.add(cursor)
            cursor = w.parent(cursor)
        common = ancestors if common is None else common & ancestors
    return bool((common or set()) & uuids)


def _merge(w: World, groups: dict[str, list[AReq]], wide: Wide) -> list[AReq]:
    by_anchor: dict[str, dict[str, list[AReq]]] = {}
    for suffix, areqs in groups.items():
        for a in areqs:
            by_anchor.setdefault(a.anchor, {}).setdefault(suffix, []).append(a)
    n_granular = len([s for s in groups if s])
    seen: dict[tuple[Any, ...], AReq] = {}
    for anchor, by_suffix in by_anchor.items():
        if set(by_suffix) != set(groups):
            continue
        for combo in itertools.product(*(by_suffix[s] for s in groups)):
            if wide.group_policy == "isolate":
                used = set().union(
                    *(next(iter(a.mappings.values())) for a in combo if a.same_provider)
                )
                if len(used) != n_granular:
                    continue
            ok = True
            for subtree in wide.same_subtrees:
                uuids: set[str] = set()
                for a in combo:
                    for s in subtree:
                        uuids |= a.mappings.get(s, frozenset())
                if not _same_subtree(w, uuids):
                    ok = False
                    break
            if not ok:
                continue
            amounts: dict[tuple[str, str], int] = {}
            mappings: dict[str, set[str]] = {}
            for a in combo:
                for p in a.pieces:
                    amounts[(p.provider, p.rc)] = amounts.get((p.provider, p.rc), 0) + p.amount
                for s, us in a.mappings.items():
                    mappings.setdefault(s, set()).update(us)
            if any(not _within(w, u, rc, n) for (u, rc), n in amounts.items()):
                continue
            merged = AReq(
                anchor,
                tuple(Piece(u, rc, n) for (u, rc), n in amounts.items()),
                {s: frozenset(us) for s, us in mappings.items()},
            )
            seen.setdefault(merged.key(), merged)
    return list(seen.values())


def _within(w: World, uuid: str, rc: str, amount: int) -> bool:
    inv = w.inv(uuid, rc)
    return (
        inv is not None
        and w.used(uuid).get(rc, 0) + amount <= inv.capacity
        and amount <= inv.max_unit
    )


def _anchor_roots(w: World, wide: Wide) -> set[str] | None:
    if not (wide.root_required or wide.root_forbidden):
        return None
    roots = {
        u
        for u, p in w.providers.items()
        if p.parent_uuid is None
        and wide.root_required <= p.traits
        and not (wide.root_forbidden & p.traits)
    }
    if not roots:
        raise NoCandidates
    return roots


def _flat_search(w: World, g: Group, wide: Wide) -> list[AReq]:
    """Placement's own shortcut: with no trees and no sharing providers one
    group is one provider, and the store answers the whole group in one
    query (emptiest providers first, so ``limit`` keeps the best ones)."""
    if g.in_tree:
        try:
            w.store.get_provider(g.in_tree)
        except NotFound:
            return []
    group = RequestGroup(
        resources=dict(g.resources),
        required_traits=frozenset(t for anyof in g.required if len(anyof) == 1 for t in anyof),
        any_traits=tuple(anyof for anyof in g.required if len(anyof) > 1),
        forbidden_traits=frozenset(g.forbidden),
        member_of=tuple(g.member_of),
        forbidden_aggregates=frozenset(g.forbidden_aggs),
        in_tree=g.in_tree,
    )
    found = w.store.find_candidates(
        CandidateQuery(group, limit=wide.limit or max(1, len(w.providers)))
    )
    w._remember(found)
    out = []
    for pu in found:
        u = pu.provider.uuid
        pieces = tuple(Piece(u, rc, n) for rc, n in g.resources.items())
        out.append(AReq(u, pieces, {g.suffix: frozenset({u})}, g.same_provider))
    return out


def _flat_cloud(req: Req) -> bool:
    """No provider trees and no sharing providers anywhere."""
    sharing = RequestGroup(required_traits=frozenset({SHARING_TRAIT}))
    return not (
        req.store.has_nested_providers() or req.store.list_providers(ProviderFilter(group=sharing))
    )


def _search(req: Req, groups: dict[str, Group], wide: Wide) -> tuple[list[AReq], World]:
    simple = len(groups) == 1 and not (wide.root_required or wide.root_forbidden)
    if simple and wide.limit and _flat_cloud(req):
        # Nova always sends a limit: answer from one store query
        w = World(req, lean=True)
        return _flat_search(w, next(iter(groups.values())), wide), w
    w = World(req)
    if simple and not (w.has_trees or w.sharing):
        return _flat_search(w, next(iter(groups.values())), wide), w
    try:
        anchors_ok = _anchor_roots(w, wide)
        found: dict[str, list[AReq]] = {}
        for suffix, g in groups.items():
            areqs = _group_candidates(w, g, anchors_ok)
            if not areqs:
                return [], w
            found[suffix] = areqs
    except NoCandidates:
        return [], w
    merged = _merge(w, found, wide)
    if not req.want(29) and w.has_trees:
        # before 1.29 a candidate may not use two providers of one tree
        merged = [
            a
            for a in merged
            if len({p.provider for p in a.pieces}) == len({w.root(p.provider) for p in a.pieces})
        ]
    if wide.limit and wide.limit < len(merged):
        merged = merged[: wide.limit]
    return merged, w


# -- the handler --------------------------------------------------------------
def _check_names(req: Req, groups: dict[str, Group], wide: Wide) -> None:
    known_rcs = {rc.name for rc in req.store.list_resource_classes()}
    for g in groups.values():
        for rc in g.resources:
            if rc not in known_rcs:
                raise bad_request(
                    f"Invalid resource class in resources parameter: No such resource class {rc}."
                )
    names = wide.root_required | wide.root_forbidden
    for g in groups.values():
        names |= g.trait_names()
    missing = sorted(names - set(req.store.list_traits()))
    if missing:
        raise bad_request(f"No such trait(s): {', '.join(missing)}.")


def _serialize(req: Req, w: World, areqs: list[AReq], groups: dict[str, Group]) -> dict[str, Any]:
    out_reqs: list[dict[str, Any]] = []
    for a in areqs:
        per_provider: dict[str, dict[str, int]] = {}
        for p in a.pieces:
            per_provider.setdefault(p.provider, {})[p.rc] = p.amount
        if req.want(12):
            item: dict[str, Any] = {
                "allocations": {u: {"resources": r} for u, r in per_provider.items()}
            }
            if req.want(34):
                item["mappings"] = {s: sorted(us) for s, us in a.mappings.items()}
        else:
            item = {
                "allocations": [
                    {"resource_provider": {"uuid": u}, "resources": r}
                    for u, r in per_provider.items()
                ]
            }
        out_reqs.append(item)
    if not req.want(29) and w.has_trees:
        shown = {p.provider for a in areqs for p in a.pieces}
    else:
        roots = {w.root(p.provider) for a in areqs for p in a.pieces}
        shown = {u for u in w.providers if w.root(u) in roots}
    requested = set().union(*(g.resources for g in groups.values()))
    summaries: dict[str, Any] = {}
    for u in sorted(shown):
        p = w.providers[u]
        summary: dict[str, Any] = {
            "resources": {
                rc: {"capacity": inv.capacity, "used": w.used(u).get(rc, 0)}
                for rc, inv in p.inventories.items()
                if req.want(27) or rc in requested
            }
        }
        if req.want(17):
            summary["traits"] = trait_order(p.traits)
        if req.want(29):
            summary["parent_provider_uuid"] = p.parent_uuid
            summary["root_provider_uuid"] = p.root_uuid
        summaries[u] = summary
    return {"allocation_requests": out_reqs, "provider_summaries": summaries}


def list_all(req: Req) -> Resp:
    schema = next((s for minor, s in _SCHEMAS if req.want(minor)), GET_SCHEMA_1_10)
    req.validate_query(schema)
    wide = _parse_wide(req)
    groups = _parse_groups(req, wide)
    if not wide.group_policy and len([g for g in groups.values() if g.same_provider]) > 1:
        raise bad_request(
            'The "group_policy" parameter is required when specifying more than one '
            '"resources{N}" parameter.'
        )
    _check_names(req, groups, wide)
    areqs, w = _search(req, groups, wide)
    return Resp(200, _serialize(req, w, areqs, groups)).modified(req, None)
