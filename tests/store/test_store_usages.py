"""``Store.list_usages``: every provider with its usage in one call, the
numbers ``get_usage`` gives (issue 11: an operator's listing shows used and
free without one call per provider)."""

from __future__ import annotations

from claimant.model import new_uuid
from claimant.store import ProviderFilter, Store

from .builders import FakeClock, allocs, make_provider, take


def test_list_usages_matches_get_usage(store: Store, clock: FakeClock) -> None:
    a = make_provider(store, name="a", vcpu=8, memory_mb=1024)
    b = make_provider(store, name="b", vcpu=4)
    take(store, a, {"VCPU": 3, "MEMORY_MB": 512})
    take(store, b, {"VCPU": 1}, ttl=10)
    store.write_allocations([allocs(new_uuid(), {b.uuid: {"VCPU": 2}})])
    listed = {pu.provider.name: pu for pu in store.list_usages()}
    assert set(listed) == {"a", "b"}
    for name, uuid in (("a", a.uuid), ("b", b.uuid)):
        assert listed[name].usages == store.get_usage(uuid).usages
    assert listed["a"].usages["VCPU"].used == 3 and listed["a"].free("MEMORY_MB") == 512
    assert listed["b"].usages["VCPU"].used == 3
    clock.advance(11)  # b's claim expired: it counts for nothing, swept or not
    assert {pu.provider.name: pu.usages["VCPU"].used for pu in store.list_usages()} == {
        "a": 3,
        "b": 2,
    }


def test_list_usages_takes_the_filter(store: Store) -> None:
    make_provider(store, name="a")
    make_provider(store, name="b")
    assert [pu.provider.name for pu in store.list_usages(ProviderFilter(name="b"))] == ["b"]
    assert store.list_usages(ProviderFilter(name="nope")) == []
