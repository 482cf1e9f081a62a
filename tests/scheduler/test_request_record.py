"""A placement writes its request's record once (issue 10): the outcome is
the first record, created insert-if-absent, not a pending record saved again;
for a request of one instance and one group, in the claim's own transaction.
A uuid already recorded still places nothing, and a create that wins the
uuid while we place keeps it: our claims go back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from claimant.model import AlreadyExists, NoValidHost, RequestStatus
from claimant.scheduler import Filter, FilterResult, PlacementContext, lifecycle
from claimant.store import Store
from tests.plugin_dist import plugin_dist
from tests.scheduler.builders import grp, host, req, scheduler, used


@contextmanager
def request_writes(store: Store) -> Iterator[list[str]]:
    """The statements that write a request record, on this thread's connection
    (a single thread's group commit runs on its own connection)."""
    seen: list[str] = []
    conn = store._conn()  # type: ignore[attr-defined]
    conn.set_trace_callback(lambda sql: seen.append(sql) if "INTO requests" in sql else None)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def test_a_placement_writes_its_record_once(store: Store) -> None:
    host(store, "a")
    request = req()
    with request_writes(store) as writes:
        result = scheduler(store).schedule(request)
    assert len(writes) == 1
    saved = store.get_request(request.uuid)
    assert saved.status is RequestStatus.SCHEDULED
    assert list(saved.claims) == [c.uuid for p in result.placements for c in p.claims]
    assert [e["event"] for e in saved.history] == ["scheduled"]
    assert saved.created_at > 0


def test_a_placement_is_one_write_transaction(store: Store) -> None:
    """The record goes with the claim (``Store.claim_and_record``)."""
    host(store, "a")
    begun: list[str] = []
    conn = store._conn()  # type: ignore[attr-defined]
    conn.set_trace_callback(lambda sql: begun.append(sql) if sql.startswith("BEGIN") else None)
    try:
        result = scheduler(store).schedule(req())
    finally:
        conn.set_trace_callback(None)
    assert begun == ["BEGIN IMMEDIATE"]
    assert result.request.status is RequestStatus.SCHEDULED
    assert store.get_request(result.request.uuid) == result.request


def test_a_failed_placement_writes_its_record_once(store: Store) -> None:
    host(store, "a", vcpu=1)
    request = req(grp(VCPU=4))
    with request_writes(store) as writes, pytest.raises(NoValidHost):
        scheduler(store).schedule(request)
    assert len(writes) == 1
    saved = store.get_request(request.uuid)
    assert saved.status is RequestStatus.FAILED
    assert [e["event"] for e in saved.history] == ["failed"]


def test_a_recorded_uuid_places_nothing(store: Store) -> None:
    a = host(store, "a")
    request = req()
    lifecycle.create(store, request)
    with pytest.raises(AlreadyExists):
        scheduler(store).schedule(request)
    assert used(store, a) == 0
    assert store.get_request(request.uuid).status is RequestStatus.PENDING


class RacingCreate(Filter):
    """Another caller records the same uuid while this one places it."""

    NAME = "TestRacingCreate"

    def filter(self, candidate: Any, ctx: PlacementContext) -> FilterResult:
        lifecycle.create(ctx.store, ctx.request, event={"event": "accepted"})
        return FilterResult.ok()


def test_a_create_that_wins_the_uuid_meanwhile_keeps_it(store: Store, tmp_path: Path) -> None:
    a = host(store, "a")
    request = req()

    with (
        plugin_dist(
            tmp_path, {"claimant.filters": {RacingCreate.NAME: f"{__name__}:RacingCreate"}}
        ),
        pytest.raises(AlreadyExists),
    ):
        scheduler(store, filters=["TestRacingCreate"]).schedule(request)
    assert used(store, a) == 0
    assert store.list_claims(request_uuid=request.uuid) == []
    winner = store.get_request(request.uuid)
    assert winner.status is RequestStatus.PENDING
    assert [e["event"] for e in winner.history] == ["accepted"]
