"""Issue 13: every public read and write of the SQLite store goes through one
error-translating path. On a database that was never migrated, or a file that
is not a database at all, each method raises claimant's own error
(``StoreUnavailable``), never ``sqlite3``'s, and the message quotes no driver
text."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claimant.model import (
    DEFAULT_CLAIM_TTL,
    Consumer,
    ConsumerAllocations,
    Inventory,
    Provider,
    Request,
    RequestGroup,
    ResourceClass,
    ResourceType,
    StoreUnavailable,
    new_uuid,
)
from claimant.model.events import Event, Subject
from claimant.model.types import AttributeSpec
from claimant.store import CandidateQuery, ClaimSpec, ProviderFilter, ReshapeSpec, TreeQuery
from claimant.store.base import ImportedConsumer
from claimant.store.sqlite import SQLiteStore

P = new_uuid()
GROUP = RequestGroup(resources={"VCPU": 1})


def _provider() -> Provider:
    return Provider(P, "p1", inventories={"VCPU": Inventory("VCPU", 8)})


# (name, call): one public method each, with arguments that make it read or
# write the database.
CALLS: list[tuple[str, Callable[[SQLiteStore], Any]]] = [
    ("list_resource_classes", lambda s: s.list_resource_classes()),
    ("get_resource_class", lambda s: s.get_resource_class("VCPU")),
    ("create_resource_class", lambda s: s.create_resource_class(ResourceClass("CUSTOM_X"))),
    ("delete_resource_class", lambda s: s.delete_resource_class("CUSTOM_X")),
    ("list_traits", lambda s: s.list_traits()),
    ("create_trait", lambda s: s.create_trait("CUSTOM_T")),
    ("delete_trait", lambda s: s.delete_trait("CUSTOM_T")),
    ("traits_in_use", lambda s: s.traits_in_use()),
    ("list_resource_types", lambda s: s.list_resource_types()),
    ("get_resource_type", lambda s: s.get_resource_type("gpu_box")),
    (
        "create_resource_type",
        lambda s: s.create_resource_type(ResourceType("gpu_box", (AttributeSpec("n", "integer"),))),
    ),
    ("delete_resource_type", lambda s: s.delete_resource_type("gpu_box")),
    ("create_aggregate", lambda s: s.create_aggregate("rack1")),
    ("get_aggregate", lambda s: s.get_aggregate("rack1")),
    ("list_aggregates", lambda s: s.list_aggregates()),
    ("delete_aggregate", lambda s: s.delete_aggregate("rack1")),
    ("create_provider", lambda s: s.create_provider(_provider())),
    ("get_provider", lambda s: s.get_provider(P)),
    ("list_providers", lambda s: s.list_providers()),
    ("list_providers(group)", lambda s: s.list_providers(ProviderFilter(group=GROUP))),
    ("list_usages", lambda s: s.list_usages()),
    ("update_provider", lambda s: s.update_provider(P, 0, name="p2")),
    ("update_provider_quietly", lambda s: s.update_provider_quietly(P, name="p2")),
    ("delete_provider", lambda s: s.delete_provider(P)),
    ("set_inventories", lambda s: s.set_inventories(P, 0, {})),
    ("set_traits", lambda s: s.set_traits(P, 0, [])),
    ("set_aggregates", lambda s: s.set_aggregates(P, 0, [])),
    ("heartbeat", lambda s: s.heartbeat(P)),
    ("find_candidates", lambda s: s.find_candidates(CandidateQuery(GROUP))),
    (
        "find_candidates(type)",
        lambda s: s.find_candidates(
            CandidateQuery(RequestGroup(resources={"VCPU": 1}, provider_type="gpu_box"))
        ),
    ),
    ("candidate_trees", lambda s: s.candidate_trees(TreeQuery({"VCPU": 1}))),
    ("get_usage", lambda s: s.get_usage(P)),
    (
        "claim",
        lambda s: s.claim(ClaimSpec(P, 0, {"VCPU": 1}, new_uuid(), ttl=DEFAULT_CLAIM_TTL)),
    ),
    (
        "claim_and_record",
        lambda s: s.claim_and_record(
            ClaimSpec(P, 0, {"VCPU": 1}, new_uuid()), lambda c: Request(new_uuid(), groups=(GROUP,))
        ),
    ),
    ("confirm_claim", lambda s: s.confirm_claim(new_uuid())),
    ("release_claim", lambda s: s.release_claim(new_uuid())),
    ("get_claim", lambda s: s.get_claim(new_uuid())),
    ("list_claims", lambda s: s.list_claims()),
    ("expire_claims", lambda s: s.expire_claims()),
    ("providers_of_consumers", lambda s: s.providers_of_consumers([new_uuid()])),
    ("providers_of_group", lambda s: s.providers_of_group("g")),
    ("get_consumer", lambda s: s.get_consumer(new_uuid())),
    (
        "write_allocations",
        lambda s: s.write_allocations(
            [ConsumerAllocations(new_uuid(), "p", "u", {P: {"VCPU": 1}})]
        ),
    ),
    ("reshape", lambda s: s.reshape(ReshapeSpec(inventories={P: (0, {})}))),
    ("usages_by_project", lambda s: s.usages_by_project("p")),
    ("has_nested_providers", lambda s: s.has_nested_providers()),
    ("has_sharing_providers", lambda s: s.has_sharing_providers()),
    ("flat_cloud", lambda s: s.flat_cloud()),
    ("remove_consumer_allocations", lambda s: s.remove_consumer_allocations(new_uuid())),
    ("import_providers", lambda s: s.import_providers([_provider()])),
    (
        "import_allocations",
        lambda s: s.import_allocations(
            [ImportedConsumer(Consumer(new_uuid(), "p", "u"), {P: {"VCPU": 1}})]
        ),
    ),
    ("create_request", lambda s: s.create_request(Request(new_uuid(), groups=(GROUP,)))),
    ("save_request", lambda s: s.save_request(Request(new_uuid(), groups=(GROUP,)))),
    ("get_request", lambda s: s.get_request(new_uuid())),
    ("list_requests", lambda s: s.list_requests()),
    ("summary", lambda s: s.summary(None)),
    ("heartbeats_between", lambda s: s.heartbeats_between(0.0, 1.0)),
    ("add_events", lambda s: s.add_events([Event(Subject.PROVIDER, P, 1.0, "disabled")])),
    ("list_events", lambda s: s.list_events(Subject.PROVIDER, P)),
    ("reset", lambda s: s.reset()),
]


def _unmigrated(path: Path) -> None:
    sqlite3.connect(path).close()


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database, " * 512)


@pytest.fixture(params=[_unmigrated, _not_a_database], ids=["unmigrated", "not-a-database"])
def broken(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
    path = tmp_path / "broken.db"
    request.param(path)
    store = SQLiteStore(str(path))
    try:
        yield store
    finally:
        store.close()


@pytest.mark.parametrize("call", [c for _, c in CALLS], ids=[n for n, _ in CALLS])
def test_each_public_method_raises_the_stores_own_error(
    broken: SQLiteStore, call: Callable[[SQLiteStore], Any]
) -> None:
    with pytest.raises(StoreUnavailable) as err:
        call(broken)
    message = err.value.message.lower()
    for driver_text in ("no such table", "file is not a database", "sqlite3", "operationalerror"):
        assert driver_text not in message


def test_every_public_method_is_covered() -> None:
    from claimant.store.base import Store

    covered = {n.split("(")[0] for n, _ in CALLS}
    public = {
        name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))
    }
    # Lifecycle calls that do not read (close) or that make the schema
    # (migrate, drop), the clock, and cells, which SQLite answers without
    # reading.
    assert public - covered == {
        "clock",
        "close",
        "migrate",
        "drop",
        "cells",
        "local_cell",
        "home_of",
    }


def test_an_unmigrated_store_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    _unmigrated(path)
    store = SQLiteStore(str(path))
    try:
        with pytest.raises(StoreUnavailable, match="claimant store migrate"):
            store.list_providers()
    finally:
        store.close()
