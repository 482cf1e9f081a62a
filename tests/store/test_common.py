"""``claimant.store._common``: what every backend checks and builds the same
way (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest

from claimant.model import (
    AlreadyExists,
    AttributeSpec,
    ClaimStatus,
    ConsumerGenerationConflict,
    InvalidInput,
    ResourceType,
)
from claimant.model.resources import MAX_INT
from claimant.store import ClaimSpec
from claimant.store._common import (
    check_amounts,
    check_consumer_generation,
    custom_type,
    new_claim,
    type_from_json,
    type_to_json,
)


@pytest.mark.parametrize(
    "amounts",
    [{}, {"VCPU": 0}, {"VCPU": -1}, {"VCPU": True}, {"VCPU": 1.0}, {"VCPU": MAX_INT + 1}],
    ids=["empty", "zero", "negative", "bool", "float", "beyond-max"],
)
def test_bad_amounts_are_invalid_input(amounts: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        check_amounts(amounts, "a claim")


def test_a_claim_is_built_from_its_spec() -> None:
    spec = ClaimSpec("p", 3, {"VCPU": 2}, "c", request_uuid="r", group="g", ttl=10)
    claim = new_claim(spec, 100.0)
    assert (claim.status, claim.created_at, claim.expires_at) == (ClaimStatus.CLAIMED, 100.0, 110.0)
    assert (claim.provider_uuid, claim.consumer_uuid, claim.amounts) == ("p", "c", {"VCPU": 2})
    with pytest.raises(InvalidInput, match="ttl"):
        new_claim(ClaimSpec("p", 3, {"VCPU": 2}, "c", ttl=0), 100.0)


@pytest.mark.parametrize(
    ("expected", "current", "conflict"),
    [("any", 4, False), (None, None, False), (4, 4, False), (None, 1, True), (3, 4, True)],
    ids=["any", "new", "same", "expected-new", "moved"],
)
def test_consumer_generation(
    expected: int | str | None, current: int | None, conflict: bool
) -> None:
    if conflict:
        with pytest.raises(ConsumerGenerationConflict):
            check_consumer_generation("c", expected, current)
    else:
        check_consumer_generation("c", expected, current)


def test_a_custom_type_round_trips_through_json() -> None:
    rtype = custom_type(ResourceType("gpu_box", (AttributeSpec("gpus", "integer", True),), "d"))
    assert type_from_json(type_to_json(rtype)) == rtype
    with pytest.raises(AlreadyExists):
        custom_type(ResourceType("compute", ()))
