"""The simulated cloud and its workload, both generated from a seed.

Cloud: H compute hosts (VCPU, MEMORY_MB, DISK_GB) spread over availability
zones (aggregates); bare-metal nodes (type ``baremetal``, one unit of a
``CUSTOM_BAREMETAL_*`` class: discrete, whole machines); one shared
``block_storage`` pool per zone, in the zone's aggregate.

Workload: mixed VM sizes (some with count > 1), VMs with a volume (a second
request group on the zone's pool) and bare-metal requests."""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from claimant.model import Inventory, Request, RequestGroup, new_uuid

BAREMETAL_CLASSES = ("CUSTOM_BAREMETAL_GOLD", "CUSTOM_BAREMETAL_SILVER")

# (name, VCPU, MEMORY_MB, DISK_GB, weight)
FLAVORS = (
    ("small", 1, 2048, 20, 4),
    ("medium", 2, 4096, 40, 3),
    ("large", 4, 8192, 80, 2),
    ("xlarge", 8, 16384, 160, 1),
)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One provider of the simulated cloud; ``agent`` says whether an agent
    builds on it (storage pools are passive: the host agent confirms them)."""

    name: str
    uuid: str
    type: str
    inventories: dict[str, Inventory]
    aggregates: frozenset[str] = frozenset()
    attributes: dict[str, Any] = field(default_factory=dict)
    agent: bool = True

    def config(self) -> dict[str, Any]:
        """The agent config table this host would be started with."""
        return {
            "name": self.name,
            "uuid": self.uuid,
            "type": self.type,
            "attributes": dict(self.attributes),
            "aggregates": sorted(self.aggregates),
            "inventories": {
                rc: {
                    "total": inv.total,
                    "reserved": inv.reserved,
                    "allocation_ratio": inv.allocation_ratio,
                }
                for rc, inv in self.inventories.items()
            },
        }


@dataclass(frozen=True, slots=True)
class Cloud:
    hosts: list[HostSpec]
    zones: list[str]  # aggregate uuid per availability zone

    @property
    def agents(self) -> list[HostSpec]:
        return [h for h in self.hosts if h.agent]


def _uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def make_cloud(hosts: int, seed: int = 0, prefix: str = "") -> Cloud:
    """``prefix`` names the hosts (and seeds their uuids): one cloud per cell
    of a multi-cell run, since provider names are global."""
    rng = random.Random(f"cloud-{seed}-{prefix}" if prefix else f"cloud-{seed}")
    zones = [_uuid(rng) for _ in range(max(1, min(4, hosts // 4)))]
    out: list[HostSpec] = []
    for i in range(hosts):
        zone = zones[i % len(zones)]
        out.append(
            HostSpec(
                name=f"{prefix}compute-{i:04d}",
                uuid=_uuid(rng),
                type="compute",
                inventories={
                    "VCPU": Inventory("VCPU", 16, allocation_ratio=4.0),
                    "MEMORY_MB": Inventory("MEMORY_MB", 65536, reserved=512),
                    "DISK_GB": Inventory("DISK_GB", 1000),
                },
                aggregates=frozenset({zone}),
                attributes={"cpu_arch": "x86_64", "availability_zone": f"az{i % len(zones)}"},
            )
        )
    for i in range(max(2, hosts)):
        rc = BAREMETAL_CLASSES[i % len(BAREMETAL_CLASSES)]
        out.append(
            HostSpec(
                name=f"{prefix}baremetal-{i:04d}",
                uuid=_uuid(rng),
                type="baremetal",
                inventories={rc: Inventory(rc, 1)},
                attributes={"cpu_arch": "x86_64", "cpus": 32, "ram_gb": 256},
            )
        )
    for z, zone in enumerate(zones):
        out.append(
            HostSpec(
                name=f"{prefix}pool-az{z}",
                uuid=_uuid(rng),
                type="block_storage",
                inventories={"DISK_GB": Inventory("DISK_GB", 1500 * max(1, hosts // len(zones)))},
                aggregates=frozenset({zone}),
                attributes={"backend": "ceph", "media": "ssd"},
                agent=False,
            )
        )
    return Cloud(out, zones)


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the workload (the rest are plain VMs)."""

    volume: float = 0.2
    baremetal: float = 0.1
    multi: float = 0.2  # VM requests with count 2..3


def make_workload(
    cloud: Cloud, requests: int, seed: int = 0, mix: Mix | None = None
) -> list[Request]:
    mix = mix or Mix()
    rng = random.Random(f"workload-{seed}")
    weights = [f[4] for f in FLAVORS]
    out: list[Request] = []
    for _ in range(requests):
        roll = rng.random()
        if roll < mix.baremetal:
            rc = rng.choice(BAREMETAL_CLASSES)
            groups: tuple[RequestGroup, ...] = (
                RequestGroup(resources={rc: 1}, provider_type="baremetal"),
            )
            count = 1
        else:
            _, vcpu, mem, disk, _ = rng.choices(FLAVORS, weights)[0]
            host = RequestGroup(
                resources={"VCPU": vcpu, "MEMORY_MB": mem, "DISK_GB": disk},
                provider_type="compute",
            )
            count = rng.randint(2, 3) if rng.random() < mix.multi else 1
            if roll < mix.baremetal + mix.volume:
                zone = frozenset({rng.choice(cloud.zones)})
                groups = (
                    host.evolve(member_of=(zone,)),
                    RequestGroup(
                        name="volume",
                        resources={"DISK_GB": 50 * rng.randint(1, 8)},
                        provider_type="block_storage",
                        member_of=(zone,),
                    ),
                )
            else:
                groups = (host,)
        out.append(Request(uuid=new_uuid(), groups=groups, count=count))
    return out
