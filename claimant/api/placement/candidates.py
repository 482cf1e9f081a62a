"""GET /allocation_candidates: every way to satisfy a request from the
providers as they are now, with provider summaries and group mappings.

This module only translates: it parses Placement's query string, hands the
groups to the candidate engine (``claimant.scheduler.candidates``) and
renders its answer per microversion.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from claimant.api.bounds import MAX_INT64, MAX_PLACEMENT_GROUPS, check_count
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
from claimant.api.placement.options import DEPTH_FIRST
from claimant.model.names import STANDARD_RESOURCE_CLASSES, STANDARD_TRAITS
from claimant.scheduler.candidates import (
    CandidateRequest,
    CandidateResult,
    GroupSpec,
    find_allocation_candidates,
)

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
    groups = _read_groups(req)
    check_count("request groups", groups, MAX_PLACEMENT_GROUPS)
    for suffix, g in groups.items():
        g.check_bounds(suffix)
    if req.want(36):
        _check_same_subtree(groups, wide)
    else:
        _check_every_group_has_resources(groups)
    if req.want(22):
        _check_trait_clashes(groups)
    return groups


def _read_groups(req: Req) -> dict[str, Group]:
    """The groups the query string names, by suffix ("" is the unnumbered one)."""
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
    return groups


def _check_same_subtree(groups: dict[str, Group], wide: Wide) -> None:
    """1.36+: a group without resources must be in a ``same_subtree``, which
    names real suffixes only."""
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


def _check_every_group_has_resources(groups: dict[str, Group]) -> None:
    """Before 1.36: traits and member_of only with resources, in every group."""
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


def _check_trait_clashes(groups: dict[str, Group]) -> None:
    """1.22+: a group may not require (any of) only traits it forbids."""
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


# -- the engine ---------------------------------------------------------------
def _engine_request(req: Req, groups: dict[str, Group], wide: Wide) -> CandidateRequest:
    return CandidateRequest(
        groups=tuple(
            GroupSpec(
                suffix=suffix,
                resources=dict(g.resources),
                required=tuple(g.required),
                forbidden=frozenset(g.forbidden),
                member_of=tuple(g.member_of),
                forbidden_aggs=frozenset(g.forbidden_aggs),
                in_tree=g.in_tree,
                granular=g.same_provider,
            )
            for suffix, g in groups.items()
        ),
        group_policy=wide.group_policy,
        same_subtrees=tuple(frozenset(s) for s in wide.same_subtrees),
        root_required=frozenset(wide.root_required),
        root_forbidden=frozenset(wide.root_forbidden),
        limit=wide.limit,
        nested_aware=req.want(29),
    )


# -- the handler --------------------------------------------------------------
_STANDARD_RCS = frozenset(STANDARD_RESOURCE_CLASSES)


def _check_names(req: Req, groups: dict[str, Group], wide: Wide, found_any: bool) -> None:
    """Placement's 400s for unknown classes and traits, asked after the
    search: every question is a round trip on Cassandra. With a candidate
    found, every class asked exists (each candidate takes at least 1 of each
    from a provider that has it), and so does every trait each candidate
    must carry (required ones not in an any-of set, root_required); only
    forbidden traits and any-of alternatives are still asked about. Nova's
    requests name no other (standard names are never asked)."""
    rcs = set() if found_any else {rc for g in groups.values() for rc in g.resources}
    rcs -= _STANDARD_RCS
    known_rcs = {rc.name for rc in req.store.list_resource_classes()} if rcs else set()
    for g in groups.values():
        for rc in g.resources:
            if rc in rcs and rc not in known_rcs:
                raise bad_request(
                    f"Invalid resource class in resources parameter: No such resource class {rc}."
                )
    if found_any:
        names = set(wide.root_forbidden)
        for g in groups.values():
            names |= g.forbidden
            for anyof in g.required:
                if len(anyof) > 1:
                    names |= anyof
    else:
        names = wide.root_required | wide.root_forbidden
        for g in groups.values():
            names |= g.trait_names()
    names -= STANDARD_TRAITS
    missing = sorted(names - set(req.store.list_traits())) if names else []
    if missing:
        raise bad_request(f"No such trait(s): {', '.join(missing)}.")


def _serialize(req: Req, found: CandidateResult, groups: dict[str, Group]) -> dict[str, Any]:
    out_reqs: list[dict[str, Any]] = []
    # Candidates share their amounts dicts (the engine builds each group's
    # option once), so their wrappers are shared too: a thousand candidates
    # of 33 providers are a few MB of JSON, and this is per candidate work.
    wrapped: dict[int, dict[str, Any]] = {}
    nested, mappings = req.want(12), req.want(34)
    for a in found.allocation_requests:
        if nested:
            allocations = {}
            for u, r in a.allocations.items():
                w = wrapped.get(id(r))
                if w is None:
                    w = wrapped[id(r)] = {"resources": r}
                allocations[u] = w
            item: dict[str, Any] = {"allocations": allocations}
            if mappings:
                item["mappings"] = a.mappings  # tuples: JSON lists
        else:
            item = {
                "allocations": [
                    {"resource_provider": {"uuid": u}, "resources": r}
                    for u, r in a.allocations.items()
                ]
            }
        out_reqs.append(item)
    requested = set().union(*(g.resources for g in groups.values()))
    summaries: dict[str, Any] = {}
    for pu in found.summaries:
        p = pu.provider
        summary: dict[str, Any] = {
            "resources": {
                rc: {"capacity": inv.capacity, "used": pu.usages[rc].used if rc in pu.usages else 0}
                for rc, inv in p.inventories.items()
                if req.want(27) or rc in requested
            }
        }
        if req.want(17):
            summary["traits"] = trait_order(p.traits)
        if req.want(29):
            summary["parent_provider_uuid"] = p.parent_uuid
            summary["root_provider_uuid"] = p.root_uuid
        summaries[p.uuid] = summary
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
    opts = req.candidates
    cap = opts.max_allocation_candidates if opts.max_allocation_candidates > 0 else None
    wanted = wide.limit
    sample = opts.randomize_allocation_candidates and wanted is not None
    # Placement generates up to its cap, then applies the request's limit:
    # the first ones, or a random sample of all of them.
    engine_limit = cap if sample else min((n for n in (cap, wanted) if n is not None), default=None)
    ereq = replace(
        _engine_request(req, groups, wide),
        limit=engine_limit,
        depth_first=opts.allocation_candidates_generation_strategy == DEPTH_FIRST,
    )
    found = find_allocation_candidates(req.store, ereq)
    _check_names(req, groups, wide, bool(found.allocation_requests))
    if sample and wanted is not None and len(found.allocation_requests) > wanted:
        found = _sampled(found, wanted)
    return Resp(200, _serialize(req, found, groups)).modified(req, None)


def _sampled(found: CandidateResult, n: int) -> CandidateResult:
    """``n`` of the candidates at random; summaries kept for the trees they
    use, as Placement keeps them (by root provider)."""
    chosen = random.sample(found.allocation_requests, n)
    root_of = {s.provider.uuid: s.provider.root_uuid or s.provider.uuid for s in found.summaries}
    roots = {root_of.get(u, u) for a in chosen for u in a.allocations}
    summaries = [s for s in found.summaries if root_of[s.provider.uuid] in roots]
    return replace(found, allocation_requests=chosen, summaries=summaries)
