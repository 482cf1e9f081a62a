"""Plain-dict forms of requests and claims: what stores persist as JSON and
what the APIs send. Input coming from users is validated by the API schemas
first; ``*_from_dict`` trusts its input's shape but still validates rules."""

from __future__ import annotations

from typing import Any

from claimant.model.claim import Claim
from claimant.model.request import (
    GroupPolicy,
    GroupPolicyKind,
    Hints,
    Request,
    RequestGroup,
    RequestStatus,
    Span,
    Strategy,
)
from claimant.model.types import AttributeConstraint


def group_to_dict(g: RequestGroup) -> dict[str, Any]:
    return {
        "name": g.name,
        "resources": dict(g.resources),
        "required_traits": sorted(g.required_traits),
        "forbidden_traits": sorted(g.forbidden_traits),
        "any_traits": [sorted(s) for s in g.any_traits],
        "attributes": [
            {"name": c.name, "op": c.op, "value": list(c.value) if c.op == "in" else c.value}
            for c in g.attributes
        ],
        "member_of": [sorted(s) for s in g.member_of],
        "forbidden_aggregates": sorted(g.forbidden_aggregates),
        "in_tree": g.in_tree,
        "provider_type": g.provider_type,
        "span": g.span.value,
    }


def group_from_dict(d: dict[str, Any]) -> RequestGroup:
    return RequestGroup(
        name=d.get("name", ""),
        resources=dict(d.get("resources", {})),
        required_traits=frozenset(d.get("required_traits", ())),
        forbidden_traits=frozenset(d.get("forbidden_traits", ())),
        any_traits=tuple(frozenset(s) for s in d.get("any_traits", ())),
        attributes=tuple(
            AttributeConstraint(
                a["name"], a["op"], tuple(a["value"]) if a["op"] == "in" else a["value"]
            )
            for a in d.get("attributes", ())
        ),
        member_of=tuple(frozenset(s) for s in d.get("member_of", ())),
        forbidden_aggregates=frozenset(d.get("forbidden_aggregates", ())),
        in_tree=d.get("in_tree"),
        provider_type=d.get("provider_type"),
        span=Span(d.get("span", "provider")),
    )


def hints_to_dict(h: Hints) -> dict[str, Any]:
    return {
        "group": h.group,
        "group_policy": h.group_policy.value if h.group_policy else None,
        "same_host": list(h.same_host),
        "different_host": list(h.different_host),
        "strategy": h.strategy.value,
    }


def hints_from_dict(d: dict[str, Any]) -> Hints:
    policy = d.get("group_policy")
    return Hints(
        group=d.get("group"),
        group_policy=GroupPolicyKind(policy) if policy else None,
        same_host=tuple(d.get("same_host", ())),
        different_host=tuple(d.get("different_host", ())),
        strategy=Strategy(d.get("strategy", "spread")),
    )


def request_to_dict(r: Request) -> dict[str, Any]:
    return {
        "uuid": r.uuid,
        "groups": [group_to_dict(g) for g in r.groups],
        "project_id": r.project_id,
        "user_id": r.user_id,
        "group_policy": r.group_policy.value,
        "same_subtree": [sorted(s) for s in r.same_subtree],
        "hints": hints_to_dict(r.hints),
        "count": r.count,
        "all_or_nothing": r.all_or_nothing,
        "consumers": list(r.consumers),
        "status": r.status.value,
        "claims": list(r.claims),
        "history": list(r.history),
        "reason": r.reason,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "cell": r.cell,
    }


def request_from_dict(d: dict[str, Any]) -> Request:
    return Request(
        uuid=d["uuid"],
        groups=tuple(group_from_dict(g) for g in d["groups"]),
        project_id=d.get("project_id", ""),
        user_id=d.get("user_id", ""),
        group_policy=GroupPolicy(d.get("group_policy", "none")),
        same_subtree=tuple(frozenset(s) for s in d.get("same_subtree", ())),
        hints=hints_from_dict(d.get("hints", {})),
        count=d.get("count", 1),
        all_or_nothing=d.get("all_or_nothing", True),
        consumers=tuple(d.get("consumers", ())),
        status=RequestStatus(d.get("status", "pending")),
        claims=tuple(d.get("claims", ())),
        history=tuple(d.get("history", ())),
        reason=d.get("reason", ""),
        created_at=d.get("created_at", 0.0),
        updated_at=d.get("updated_at", 0.0),
        cell=d.get("cell"),
    )


def claim_to_dict(c: Claim) -> dict[str, Any]:
    return {
        "uuid": c.uuid,
        "provider_uuid": c.provider_uuid,
        "consumer_uuid": c.consumer_uuid,
        "amounts": dict(c.amounts),
        "status": c.status.value,
        "request_uuid": c.request_uuid,
        "group": c.group,
        "project_id": c.project_id,
        "user_id": c.user_id,
        "created_at": c.created_at,
        "expires_at": c.expires_at,
    }
