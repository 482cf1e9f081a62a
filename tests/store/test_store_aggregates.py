"""Aggregate names: name <-> uuid, unique both ways; membership untouched."""

from __future__ import annotations

import uuid as uuidlib

import pytest

from claimant.model import AlreadyExists, InvalidInput, NotFound
from claimant.store import Store

from .builders import make_provider


def test_create_get_list_delete(store: Store) -> None:
    u = str(uuidlib.uuid4())
    made = store.create_aggregate("rack-1", u)
    assert (made.name, made.uuid) == ("rack-1", u)
    auto = store.create_aggregate("az-east")
    assert str(uuidlib.UUID(auto.uuid)) == auto.uuid
    assert store.get_aggregate("rack-1").uuid == u
    assert store.get_aggregate(u.upper()).name == "rack-1"
    assert [a.name for a in store.list_aggregates()] == ["az-east", "rack-1"]
    store.delete_aggregate(u)
    with pytest.raises(NotFound):
        store.get_aggregate("rack-1")
    store.delete_aggregate("az-east")
    assert store.list_aggregates() == []
    with pytest.raises(NotFound):
        store.delete_aggregate("az-east")


def test_names_and_uuids_are_unique(store: Store) -> None:
    u = str(uuidlib.uuid4())
    store.create_aggregate("rack-1", u)
    with pytest.raises(AlreadyExists) as name_taken:
        store.create_aggregate("rack-1")
    assert name_taken.value.details["field"] == "name"
    with pytest.raises(AlreadyExists) as uuid_taken:
        store.create_aggregate("rack-2", u)
    assert uuid_taken.value.details["field"] == "uuid"
    # the refused create left nothing behind: rack-2 is still free
    store.create_aggregate("rack-2")
    assert [a.name for a in store.list_aggregates()] == ["rack-1", "rack-2"]


# A fixed uuid, not a random one: test ids must be the same in every process.
BAD_NAMES = [
    "",
    " x",
    "a,b",
    "a/b",
    "!a",
    "in:a",
    "a\tb",
    "0b9e3c1e-2f4d-4a8b-9c6d-7e5f4a3b2c1d",
    "x" * 201,
]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused(store: Store, bad: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_aggregate(bad)


def test_naming_and_unnaming_leave_memberships_alone(store: Store) -> None:
    u = str(uuidlib.uuid4())
    p = make_provider(store, name="h1", aggregates=(u,))
    store.create_aggregate("rack-1", u)
    assert store.get_provider(p.uuid).aggregates == frozenset({u})
    store.delete_aggregate("rack-1")
    got = store.get_provider(p.uuid)
    assert got.aggregates == frozenset({u})
    assert got.generation == p.generation
