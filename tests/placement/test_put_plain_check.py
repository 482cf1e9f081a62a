"""PUT /allocations bodies checked by a plain loop (issue 10): it may only
ever vouch for a body jsonschema accepts; anything else is left to
jsonschema, so Placement's 400 messages are unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from claimant.api.placement.allocations import (
    _PUT_KEYS_1_28,
    _PUT_KEYS_1_38,
    PUT_SCHEMA_1_28,
    PUT_SCHEMA_1_38,
    _plain_put,
)
from claimant.api.placement.framework import _first_error

RP = "0b2b3d6c-3b0b-4b8e-9c57-5b1c1c1c1c1c"
NOVA: dict[str, Any] = {
    "allocations": {RP: {"resources": {"VCPU": 2, "MEMORY_MB": 4096}}},
    "project_id": "p",
    "user_id": "u",
    "consumer_generation": None,
    "consumer_type": "INSTANCE",
}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(NOVA)
    where = body
    for key in path[:-1]:
        where = where[key]
    if value is _DROP:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return body


_DROP = object()
BODIES = {
    "nova": NOVA,
    "generation 3": _with(("consumer_generation",), 3),
    "provider generation": _with(("allocations", RP, "generation"), 4),
    "no allocations (removes)": _with(("allocations",), {}),
    "float amount": _with(("allocations", RP, "resources", "VCPU"), 2.0),
    "bool amount": _with(("allocations", RP, "resources", "VCPU"), True),
    "zero amount": _with(("allocations", RP, "resources", "VCPU"), 0),
    "lower-case class": _with(("allocations", RP, "resources"), {"vcpu": 1}),
    "no resources": _with(("allocations", RP), {}),
    "empty resources": _with(("allocations", RP, "resources"), {}),
    "bad uuid key": {**NOVA, "allocations": {"not-a-uuid": {"resources": {"VCPU": 1}}}},
    "extra key in allocation": _with(("allocations", RP, "extra"), 1),
    "bool generation": _with(("consumer_generation",), False),
    "string generation": _with(("consumer_generation",), "1"),
    "empty project": _with(("project_id",), ""),
    "long user": _with(("user_id",), "u" * 256),
    "no consumer_type": _with(("consumer_type",), _DROP),
    "bad consumer_type": _with(("consumer_type",), "instance"),
    "extra top key": _with(("extra",), 1),
    "mappings": _with(("mappings",), {"": [RP]}),
    "not an object": [NOVA],
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize(
    ("schema", "keys"), [(PUT_SCHEMA_1_38, _PUT_KEYS_1_38), (PUT_SCHEMA_1_28, _PUT_KEYS_1_28)]
)
def test_vouches_only_for_what_jsonschema_accepts(
    name: str, schema: dict[str, Any], keys: frozenset[str]
) -> None:
    body = BODIES[name]
    if schema is PUT_SCHEMA_1_28 and isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "consumer_type"}
    if _plain_put(body, keys):
        assert _first_error(body, schema) is None


def test_vouches_for_novas_body() -> None:
    assert _plain_put(NOVA, _PUT_KEYS_1_38)
    assert _plain_put(BODIES["provider generation"], _PUT_KEYS_1_38)
