"""Issue 11: ``explain`` on every backend: the scheduler's own query,
filters and weighers, nothing claimed."""

from __future__ import annotations

import time

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
