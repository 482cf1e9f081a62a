"""A candidate is the provider as any other read returns it (issue 10: the
SQLite store loads candidates with slimmer SQL and builds their objects
without ``__init__``; nothing may be lost on the way, not the 17th digit of
a ratio or a timestamp)."""

from __future__ import annotations

from claimant.model import Provider, ProviderUsage, Usage
from claimant.model.build import maker
from claimant.store import CandidateQuery, Store

from .builders import group, inv, make_provider

# Neither survives 15 significant digits (SQLite's JSON numbers).
RATIO = 0.1 + 0.2
HEARTBEAT = 1796150278.0123457


def test_a_candidate_is_the_provider_as_read(store: Store) -> None:
    p = make_provider(
        store,
        inventories={
            "VCPU": inv("VCPU", 30, allocation_ratio=RATIO),
            "MEMORY_MB": inv("MEMORY_MB", 1024),
        },
        traits=("HW_CPU_X86_AVX2",),
        attributes={"cpu_arch": "x86_64"},
    )
    store.heartbeat(p.uuid, at=HEARTBEAT)
    got = store.get_provider(p.uuid)
    [cand] = store.find_candidates(CandidateQuery(group(resources={"VCPU": 2}), limit=5))
    assert cand.provider == got
    assert cand.provider.heartbeat_at == HEARTBEAT
    assert cand.provider.inventories["VCPU"].allocation_ratio == RATIO
    assert cand.usages["VCPU"] == Usage("VCPU", 9, 0)
    assert store.get_usage(p.uuid) == cand


def test_made_objects_equal_constructed_ones() -> None:
    fields = (
        "u",
        "n",
        "compute",
        None,
        "u",
        {},
        frozenset(),
        frozenset(),
        {},
        True,
        3,
        None,
        1.5,
        2.5,
        "dc1",
    )
    made = maker(Provider)(*fields)
    assert made == Provider(*fields)
    assert hash(maker(Usage)("VCPU", 4, 1)) == hash(Usage("VCPU", 4, 1))
    assert maker(ProviderUsage)(made, {}) == ProviderUsage(made, {})
