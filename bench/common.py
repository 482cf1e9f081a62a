"""Helpers shared by the bench scripts: workloads, percentiles, memory.

A workload is deterministic for a seed: the same providers (mixed sizes, some
traits, aggregates and attributes) and the same requests (mixed flavors, some
asking for traits or an aggregate), so runs on different stores compare.
"""

from __future__ import annotations

import math
import os
import random
import resource
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from claimant.model import (
    AttributeConstraint,
    Inventory,
    Provider,
    Request,
    RequestGroup,
    new_uuid,
)
from claimant.store import Store

# name, VCPU, MEMORY_MB, DISK_GB, share of the fleet
HOST_SIZES: tuple[tuple[str, int, int, int, float], ...] = (
    ("small", 16, 65_536, 500, 0.4),
    ("medium", 32, 131_072, 1_000, 0.4),
    ("large", 64, 262_144, 2_000, 0.2),
)
# name, VCPU, MEMORY_MB, DISK_GB, share of the requests
FLAVORS: tuple[tuple[str, int, int, int, float], ...] = (
    ("tiny", 1, 512, 1, 0.3),
    ("small", 2, 2_048, 20, 0.3),
    ("medium", 4, 8_192, 40, 0.25),
    ("large", 8, 16_384, 80, 0.1),
    ("xlarge", 16, 65_536, 160, 0.05),
)
CUSTOM_TRAITS = ("CUSTOM_SSD", "CUSTOM_BENCH_GOLD")
AGGREGATES = tuple(f"bench-agg-{i}" for i in range(10))


def _weighted(rng: random.Random, table: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def make_provider(rng: random.Random, index: int) -> Provider:
    name, vcpu, mem, disk, _ = _weighted(rng, HOST_SIZES)
    traits = set()
    if rng.random() < 0.6:
        traits.add("HW_CPU_X86_AVX2")
    if rng.random() < 0.3:
        traits.add("CUSTOM_SSD")
    if rng.random() < 0.05:
        traits.add("CUSTOM_BENCH_GOLD")
    aggregates = {AGGREGATES[index % len(AGGREGATES)]} if rng.random() < 0.5 else set()
    return Provider(
        uuid=new_uuid(),
        name=f"bench-{name}-{index}",
        attributes={"cpu_arch": "aarch64" if rng.random() < 0.1 else "x86_64"},
        traits=frozenset(traits),
        aggregates=frozenset(aggregates),
        inventories={
            "VCPU": Inventory("VCPU", vcpu, allocation_ratio=4.0),
            "MEMORY_MB": Inventory("MEMORY_MB", mem, reserved=512),
            "DISK_GB": Inventory("DISK_GB", disk),
        },
    )


def populate(
    store: Store,
    count: int,
    *,
    seed: int = 1,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Create providers ``start`` .. ``start + count - 1`` of the seeded fleet."""
    for trait in CUSTOM_TRAITS:
        store.create_trait(trait)
    rng = random.Random(f"{seed}-{start}")
    uuids = []
    for i in range(start, start + count):
        uuids.append(store.create_provider(make_provider(rng, i)).uuid)
        if progress and (i - start + 1) % 1000 == 0:
            progress(i - start + 1)
    return uuids


def make_group(rng: random.Random) -> RequestGroup:
    _, vcpu, mem, disk, _ = _weighted(rng, FLAVORS)
    group = RequestGroup(resources={"VCPU": vcpu, "MEMORY_MB": mem, "DISK_GB": disk})
    roll = rng.random()
    if roll < 0.2:
        group = group.evolve(required_traits=frozenset({"HW_CPU_X86_AVX2"}))
    elif roll < 0.25:
        group = group.evolve(required_traits=frozenset({"CUSTOM_SSD"}))
    elif roll < 0.3:
        group = group.evolve(member_of=(frozenset({rng.choice(AGGREGATES)}),))
    elif roll < 0.32:
        group = group.evolve(attributes=(AttributeConstraint("cpu_arch", "==", "aarch64"),))
    return group


def make_requests(count: int, *, seed: int = 2, instances: int = 1) -> list[Request]:
    """``count`` requests of ``instances`` instances each."""
    rng = random.Random(seed)
    return [
        Request(
            uuid=new_uuid(),
            groups=(make_group(rng),),
            project_id=f"project-{rng.randrange(20)}",
            user_id="bench",
            count=instances,
        )
        for _ in range(count)
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(slots=True)
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(seconds),
            percentile(seconds, 50) * 1e3,
            percentile(seconds, 99) * 1e3,
            sum(seconds) / len(seconds) * 1e3,
            max(seconds) * 1e3,
        )


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def temp_sqlite_url(prefix: str = "claimant-bench-") -> tuple[str, str]:
    """A fresh SQLite store URL in a temporary directory, and that directory."""
    directory = tempfile.mkdtemp(prefix=prefix)
    return "sqlite:///" + os.path.join(directory, "bench.db").lstrip("/"), directory


def overcommitted(store: Store, provider_uuids: Sequence[str]) -> list[str]:
    """Every provider over capacity in any class, by reading its usage, and by
    summing the live ledger (claims and allocations) independently of it."""
    from_ledger: dict[tuple[str, str], int] = {}
    for claim in store.list_claims():
        for rc, n in claim.amounts.items():
            key = (claim.provider_uuid, rc)
            from_ledger[key] = from_ledger.get(key, 0) + n
    bad = []
    for uuid in provider_uuids:
        usage = store.get_usage(uuid)
        for rc, u in usage.usages.items():
            ledger = from_ledger.get((uuid, rc), 0)
            if u.used > u.capacity or ledger > u.capacity or ledger != u.used:
                bad.append(
                    f"{usage.provider.name} {rc}: used {u.used}, ledger {ledger}, "
                    f"capacity {u.capacity}"
                )
    return bad
