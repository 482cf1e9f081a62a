"""What every backend does the same way, whatever it stores: checking a
claim's spec and amounts, building the claim, the errors of a lost
compare-and-set or a capacity check, a consumer's generation check, and a
custom resource type's JSON form. A backend imports these instead of writing
its own copy, so both answer one input with one error and one message."""

from __future__ import annotations

import json

from claimant.model import (
    BUILTIN_TYPES,
    AlreadyExists,
    AttributeSpec,
    Claim,
    ClaimStatus,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    InvalidInput,
    Inventory,
    ResourceType,
    check_fit,
    new_uuid,
)
from claimant.model.resources import validate_amounts
from claimant.store.base import ClaimSpec


def check_amounts(amounts: dict[str, int], what: str) -> None:
    """At least one class, each amount a positive integer within Placement's
    bounds. ``what``: "a claim", "an allocation" (for the message)."""
    if not amounts:
        raise InvalidInput(f"{what} needs at least one resource amount")
    validate_amounts(amounts)


def check_claim_spec(spec: ClaimSpec) -> None:
    if spec.ttl <= 0:
        raise InvalidInput("a claim's ttl must be positive", field="ttl")
    check_amounts(spec.amounts, "a claim")


def new_claim(spec: ClaimSpec, now: float) -> Claim:
    """The claim ``spec`` makes at ``now`` (checked first)."""
    check_claim_spec(spec)
    return Claim(
        uuid=spec.claim_uuid or new_uuid(),
        provider_uuid=spec.provider_uuid,
        consumer_uuid=spec.consumer_uuid,
        amounts=dict(spec.amounts),
        status=ClaimStatus.CLAIMED,
        request_uuid=spec.request_uuid,
        group=spec.group,
        project_id=spec.project_id,
        user_id=spec.user_id,
        created_at=now,
        expires_at=now + spec.ttl,
    )


def generation_conflict(uuid: str, have: int, expected: int | None) -> GenerationConflict:
    return GenerationConflict(
        f"provider {uuid} is at generation {have}, not {expected}: re-read and retry",
        uuid=uuid,
        generation=have,
    )


def does_not_fit(uuid: str, reasons: list[str]) -> InsufficientCapacity:
    return InsufficientCapacity(
        f"does not fit on provider {uuid}: " + "; ".join(reasons),
        uuid=uuid,
        reasons=reasons,
    )


def raise_unless_fits(
    uuid: str, invs: dict[str, Inventory], used: dict[str, int], amounts: dict[str, int]
) -> None:
    report = check_fit(invs, used, amounts)
    if not report.fits:
        raise does_not_fit(uuid, report.reasons)


def provider_taken(what: str, value: str) -> AlreadyExists:
    return AlreadyExists(f"a provider with {what} {value!r} already exists", field=what)


def check_consumer_generation(
    consumer_uuid: str, expected: int | str | None, current: int | None
) -> None:
    """Placement's consumer generation check: ``expected`` "any" skips it;
    None means the caller expects a new consumer (``current`` None)."""
    if expected != "any" and current != expected:
        raise ConsumerGenerationConflict(
            f"consumer {consumer_uuid} is at generation {current}, not {expected}",
            uuid=consumer_uuid,
            generation=current,
        )


def custom_type(rtype: ResourceType) -> ResourceType:
    """The custom type ``create_resource_type`` stores: checked, never a
    built-in's name, marked custom."""
    rtype.validate_type()
    if rtype.name in BUILTIN_TYPES:
        raise AlreadyExists(f"{rtype.name} is a built-in resource type", name=rtype.name)
    return ResourceType(
        rtype.name, tuple(rtype.attributes.values()), rtype.description, builtin=False
    )


def type_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"resource type {name} already exists", name=name)


def check_type_deletable(name: str) -> None:
    if name in BUILTIN_TYPES:
        raise InvalidInput(f"{name} is a built-in resource type and cannot be deleted")


def type_to_json(rtype: ResourceType) -> str:
    return json.dumps(rtype.to_dict())


def type_from_json(body: str) -> ResourceType:
    """A custom resource type from its stored JSON (``type_to_json``)."""
    d = json.loads(body)
    return ResourceType(
        d["name"],
        tuple(
            AttributeSpec(a["name"], a["kind"], a.get("required", False), a.get("description", ""))
            for a in d["attributes"]
        ),
        d.get("description", ""),
        builtin=False,
    )
