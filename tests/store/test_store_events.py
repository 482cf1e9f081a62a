"""Events (issue 11): each step of a claim leaves an event on its provider and
its request, enabling and disabling a provider leaves one, callers add their
own, and a subject's history reads oldest first, newest ``limit``."""

from __future__ import annotations

from claimant.model import new_uuid
from claimant.model.events import Event, Subject
from claimant.store import Store

from .builders import FakeClock, make_provider, take


def _names(store: Store, subject: Subject, uuid: str) -> list[str]:
    return [e.event for e in store.list_events(subject, uuid)]


def test_claim_confirm_release_leave_events(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=8)
    request = new_uuid()
    a = take(store, p, {"VCPU": 2}, request_uuid=request)
    clock.advance(1)
    store.confirm_claim(a.uuid)
    clock.advance(1)
    store.release_claim(a.uuid)
    events = store.list_events(Subject.PROVIDER, p.uuid)
    assert [e.event for e in events] == ["claimed", "confirmed", "released"]
    assert [e.at for e in events] == [clock.now - 2, clock.now - 1, clock.now]
    assert all(e.details["claim_uuid"] == a.uuid for e in events)
    assert events[0].details["amounts"] == {"VCPU": 2}
    assert events[0].details["request_uuid"] == request
    on_request = store.list_events(Subject.REQUEST, request)
    assert [e.event for e in on_request] == ["claimed", "confirmed", "released"]
    assert on_request[0].details["provider_uuid"] == p.uuid


def test_expiry_sweep_leaves_events(store: Store, clock: FakeClock) -> None:
    p = make_provider(store, vcpu=8)
    request = new_uuid()
    c = take(store, p, request_uuid=request, ttl=10)
    kept = take(store, p, ttl=100)
    clock.advance(11)
    assert store.expire_claims() == 1
    assert _names(store, Subject.PROVIDER, p.uuid) == ["claimed", "claimed", "expired"]
    expired = store.list_events(Subject.PROVIDER, p.uuid)[-1]
    assert expired.details["claim_uuid"] == c.uuid != kept.uuid
    assert _names(store, Subject.REQUEST, request) == ["claimed", "expired"]


def test_enable_disable_leave_events_only_on_change(store: Store) -> None:
    p = make_provider(store)
    store.update_provider(p.uuid, None, enabled=False)
    store.update_provider(p.uuid, None, enabled=False)
    store.update_provider(p.uuid, None, enabled=True)
    assert _names(store, Subject.PROVIDER, p.uuid) == ["disabled", "enabled"]


def test_added_events_newest_limit_oldest_first(store: Store) -> None:
    uuid = new_uuid()
    store.add_events([Event(Subject.REQUEST, uuid, 100.0 + i, f"e{i}", {"i": i}) for i in range(5)])
    store.add_events([Event(Subject.REQUEST, new_uuid(), 1.0, "other")])
    got = store.list_events(Subject.REQUEST, uuid, limit=3)
    assert [(e.event, e.at, e.details) for e in got] == [
        ("e2", 102.0, {"i": 2}),
        ("e3", 103.0, {"i": 3}),
        ("e4", 104.0, {"i": 4}),
    ]
    assert store.list_events(Subject.PROVIDER, uuid) == []


def test_summary_counts_capacity_use_health_and_live_claims(store: Store, clock: FakeClock) -> None:
    """Issue 11: what /metrics shows, from one aggregate read."""
    up = make_provider(store, vcpu=8, memory_mb=1024)
    stale = make_provider(store, vcpu=4, memory_mb=512)
    off = make_provider(store, vcpu=2, memory_mb=256)
    store.heartbeat(up.uuid, at=clock.now)
    store.heartbeat(stale.uuid, at=clock.now - 120)
    store.update_provider(off.uuid, None, enabled=False)
    take(store, up, {"VCPU": 2}, ttl=10)
    take(store, up, {"VCPU": 1, "MEMORY_MB": 100}, ttl=100)
    store.confirm_claim(take(store, stale, {"VCPU": 3}).uuid)
    s = store.summary(clock.now - 60)
    assert s.capacity == {"VCPU": 14, "MEMORY_MB": 1792}
    assert s.used == {"VCPU": 6, "MEMORY_MB": 100}
    assert s.providers == {("up", True): 1, ("stale", True): 1, ("no_agent", False): 1}
    assert s.claims_live == 2
    clock.advance(11)  # the first claim expires: no longer used, no longer live
    s = store.summary(None)
    assert s.used == {"VCPU": 4, "MEMORY_MB": 100}
    assert s.claims_live == 1
    assert s.providers == {("up", True): 2, ("no_agent", False): 1}
