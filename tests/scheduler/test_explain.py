"""Issue 11: ``explain`` on every backend: the scheduler's own query,
filters and weighers, nothing claimed."""

from __future__ import annotations

import time

from claimant.model.events import Subject
from claimant.scheduler import health
from claimant.scheduler.explain import explain
from claimant.store import Store

from .builders import grp, host, req, scheduler


def test_explain_on_every_store(any_store: Store) -> None:
    store = any_store
    big = host(store, "big", vcpu=16)
    host(store, "small", vcpu=4)
    dead = host(store, "dead", vcpu=32)
    store.heartbeat(dead.uuid, at=time.time() - 3600)
    out = explain(scheduler(store, host_subset_size=1), req(grp(VCPU=2, MEMORY_MB=512)))
    [g] = out["groups"]
    assert [c["name"] for c in sorted(g["candidates"], key=lambda c: c["rank"])] == [
        "big",
        "small",
    ]
    assert g["would_choose"] == big.uuid
    assert [u["name"] for u in g["not_eligible"]] == ["dead"]
    assert store.list_claims() == []


def test_agent_stale_events_once_per_heartbeat(any_store: Store) -> None:
    """Issue 11: a host whose agent went stale gets an ``agent_stale`` event
    (once, however many sweepers look at the same window)."""
    store = any_store
    now = time.time()
    gone = host(store, "gone")
    fresh = host(store, "fresh")
    long_gone = host(store, "long-gone")
    store.heartbeat(gone.uuid, at=now - 70)
    store.heartbeat(fresh.uuid, at=now - 5)
    store.heartbeat(long_gone.uuid, at=now - 3600)
    until = now - 60
    found = health.record_stale(store, until - 30, until, 60.0)
    assert [p.name for p in found] == ["gone"]
    assert health.record_stale(store, until - 30, until, 60.0) == []  # another sweeper
    [event] = store.list_events(Subject.PROVIDER, gone.uuid)
    assert event.event == "agent_stale" and event.details["timeout"] == 60.0
    assert store.list_events(Subject.PROVIDER, fresh.uuid) == []
    store.heartbeat(gone.uuid, at=now - 65)  # back, then stale again: a new event
    assert [p.name for p in health.record_stale(store, until - 30, until, 60.0)] == ["gone"]
