"""Both backends answer one bad input with one error and one message: the
checks live in ``store/_common.py`` (issue 13). Before, Cassandra let an
amount beyond Placement's bound reach its capacity check and worded amount
errors its own way, and SQLite worded a rename onto a taken name its own way."""

from __future__ import annotations

from typing import Any

import pytest

from claimant.model import AlreadyExists, InvalidInput, new_uuid
from claimant.model.resources import MAX_INT
from claimant.store import ClaimSpec, Store

from .builders import allocs, make_provider

BAD_AMOUNTS = [
    ({"VCPU": MAX_INT + 1}, f"VCPU: amount must be between 1 and {MAX_INT}, got {MAX_INT + 1}"),
    ({"VCPU": 1.5}, "VCPU: amount must be an integer, got 1.5"),
    ({"VCPU": 0}, f"VCPU: amount must be between 1 and {MAX_INT}, got 0"),
]


@pytest.mark.parametrize(("amounts", "message"), BAD_AMOUNTS, ids=["beyond-max", "float", "zero"])
def test_a_claims_bad_amount(store: Store, amounts: dict[str, Any], message: str) -> None:
    p = make_provider(store, vcpu=8)
    with pytest.raises(InvalidInput) as err:
        store.claim(ClaimSpec(p.uuid, p.generation, amounts, new_uuid(), ttl=60))
    assert err.value.message == message
    assert store.get_usage(p.uuid).usages["VCPU"].used == 0


@pytest.mark.parametrize(("amounts", "message"), BAD_AMOUNTS, ids=["beyond-max", "float", "zero"])
def test_an_allocations_bad_amount(store: Store, amounts: dict[str, Any], message: str) -> None:
    p = make_provider(store, vcpu=8)
    with pytest.raises(InvalidInput) as err:
        store.write_allocations([allocs(new_uuid(), {p.uuid: amounts})])
    assert err.value.message == message
    assert store.get_provider(p.uuid).generation == p.generation


def test_a_rename_onto_a_taken_name(store: Store) -> None:
    taken = make_provider(store)
    p = make_provider(store)
    with pytest.raises(AlreadyExists) as err:
        store.update_provider(p.uuid, p.generation, name=taken.name)
    assert err.value.message == f"a provider with name {taken.name!r} already exists"
    assert store.get_provider(p.uuid).name == p.name
