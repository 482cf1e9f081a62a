"""Aggregate names heal a half-failed create or delete (cassandra/aggregates.py).

Each dangling row is written directly, as a crash between two LWTs leaves it;
then create, get, list and delete must behave with no operator step.
"""

from __future__ import annotations

import threading
import uuid as uuidlib

import pytest

from claimant.model import AlreadyExists, NotFound
from claimant.store.cassandra.store import CassandraStore

pytestmark = pytest.mark.cassandra


def _new() -> str:
    return str(uuidlib.uuid4())


def _name_row(st: CassandraStore, name: str, uuid: str, *, pending: bool | None) -> None:
    st._run(
        "INSERT INTO aggregate_names (name, uuid, created_at, attempt, pending)"
        " VALUES (?, ?, ?, ?, ?)",
        [name, uuid, 1.0, _new(), pending],
    )


def _uuid_row(st: CassandraStore, uuid: str, name: str, token: str | None) -> None:
    st._run(
        "INSERT INTO aggregate_uuids (uuid, name, attempt) VALUES (?, ?, ?)", [uuid, name, token]
    )


def test_pending_name_row_left_by_a_crash_is_taken_over(cstore: CassandraStore) -> None:
    stale = _new()
    _name_row(cstore, "rack-1", stale, pending=True)  # crash after step 1
    with pytest.raises(NotFound):
        cstore.get_aggregate("rack-1")
    assert cstore.list_aggregates() == []
    u = _new()
    assert cstore.create_aggregate("rack-1", u).uuid == u
    assert cstore.get_aggregate("rack-1").uuid == u
    assert cstore.get_aggregate(u).name == "rack-1"
    with pytest.raises(NotFound):
        cstore.get_aggregate(stale)
    # the stale uuid is free to be named
    assert cstore.create_aggregate("rack-2", stale).uuid == stale


def test_both_halves_pending_after_a_crash_before_commit(cstore: CassandraStore) -> None:
    u = _new()
    _name_row(cstore, "rack-1", u, pending=True)  # crash after step 2
    _uuid_row(cstore, u, "rack-1", _new())
    assert cstore.list_aggregates() == []
    with pytest.raises(NotFound):
        cstore.get_aggregate(u)
    # the uuid can be named otherwise: the pending name row is dropped first
    assert cstore.create_aggregate("rack-2", u).uuid == u
    assert [(a.name, a.uuid) for a in cstore.list_aggregates()] == [("rack-2", u)]
    assert cstore.get_aggregate(u).name == "rack-2"
    cstore.create_aggregate("rack-1")  # and the name is free


@pytest.mark.parametrize("token", ["v7", None], ids=["v7", "v6-leftover"])
def test_dangling_uuid_row_left_by_a_crashed_delete(
    cstore: CassandraStore, token: str | None
) -> None:
    u = _new()
    _uuid_row(cstore, u, "old-name", token and _new())  # delete crashed after the name row
    with pytest.raises(NotFound):
        cstore.get_aggregate(u)
    with pytest.raises(NotFound):
        cstore.delete_aggregate(u)
    assert cstore.create_aggregate("rack-1", u).uuid == u
    assert cstore.get_aggregate(u).name == "rack-1"
    cstore.delete_aggregate(u)
    assert cstore.list_aggregates() == []
    # a retried create of the old pair heals it too
    _uuid_row(cstore, u, "old-name", token and _new())
    assert cstore.create_aggregate("old-name", u).uuid == u
    assert cstore.get_aggregate("old-name").uuid == u


def test_a_live_pair_is_never_taken_over(cstore: CassandraStore) -> None:
    u = _new()
    cstore.create_aggregate("rack-1", u)
    with pytest.raises(AlreadyExists) as by_name:
        cstore.create_aggregate("rack-1")
    assert by_name.value.details["field"] == "name"
    with pytest.raises(AlreadyExists) as by_uuid:
        cstore.create_aggregate("rack-2", u)
    assert by_uuid.value.details["field"] == "uuid"
    assert [(a.name, a.uuid) for a in cstore.list_aggregates()] == [("rack-1", u)]


@pytest.mark.parametrize("same_uuid", [False, True], ids=["new-uuids", "same-uuid"])
def test_racing_creates_of_one_name_one_wins(cstore: CassandraStore, same_uuid: bool) -> None:
    n = 6
    shared = _new()
    start = threading.Barrier(n)
    won: list[str] = []
    lost: list[Exception] = []

    def run() -> None:
        u = shared if same_uuid else _new()
        start.wait()
        try:
            won.append(cstore.create_aggregate("rack-1", u).uuid)
        except AlreadyExists as exc:
            lost.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == n - 1
    assert [(a.name, a.uuid) for a in cstore.list_aggregates()] == [("rack-1", won[0])]
    assert cstore.get_aggregate(won[0]).name == "rack-1"
