"""Issue 16: the store stops at the request's deadline (every backend): a read
past it raises DeadlineExceeded, never a driver error; giving a claim back is
never cut; nothing is half-written."""

from __future__ import annotations

import time

import pytest

from claimant.model import deadline
from claimant.model.errors import DeadlineExceeded
from claimant.store import CandidateQuery, Store

from .builders import group, make_provider, take, used


def past_deadline() -> deadline.Deadline:
    d = deadline.Deadline(0.001, "GET /test")
    time.sleep(0.002)
    return d


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: s.list_providers(), id="list_providers"),
        pytest.param(lambda s: s.find_candidates(CandidateQuery(group=group())), id="candidates"),
        pytest.param(lambda s: s.list_requests(), id="list_requests"),
    ],
)
def test_a_read_past_the_deadline_is_cut(store: Store, read: object) -> None:
    make_provider(store)
    with deadline.entered(past_deadline()), pytest.raises(DeadlineExceeded) as err:
        read(store)  # type: ignore[operator]
    assert err.value.code == "deadline_exceeded"
    text = err.value.message.lower()
    assert "sqlite" not in text and "cassandra" not in text and "interrupt" not in text


def test_a_claim_is_released_past_the_deadline(store: Store) -> None:
    p = make_provider(store)
    claim = take(store, p)
    d = past_deadline()
    with deadline.entered(d):
        store.release_claim(claim.uuid)
    assert used(store, p.uuid) == 0
    assert d.tripped is None


def test_a_write_past_the_deadline_writes_nothing(store: Store) -> None:
    p = make_provider(store)
    with deadline.entered(past_deadline()), pytest.raises(DeadlineExceeded):
        store.set_traits(p.uuid, p.generation, {"HW_CPU_X86_AVX"})
    assert store.get_provider(p.uuid).traits == frozenset()
    assert store.get_provider(p.uuid).generation == p.generation


def test_without_a_deadline_nothing_is_cut(store: Store) -> None:
    make_provider(store)
    with deadline.shielded():
        assert len(store.list_providers()) == 1
