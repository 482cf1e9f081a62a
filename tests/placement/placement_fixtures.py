"""Placement's pre-loaded gabbi fixtures, rebuilt by loading the same
providers, inventories, traits, aggregates and allocations through claimant's
Placement API over HTTP (never behind its back into the store).

Each function takes a ``Loader`` and returns the environment variables the
YAML files read. The topologies are those Placement's fixtures describe.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

Env = dict[str, str]


def new_uuid() -> str:
    return str(uuid.uuid4())


class Loader:
    """Admin client at microversion 1.37 (no consumer types, as Placement's
    fixtures write consumers without one)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"x-auth-token": "admin", "openstack-api-version": "placement 1.37"},
            timeout=30,
        )

    def _ok(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
        return r

    def generation(self, rp: str) -> int:
        return int(self._ok(self.http.get(f"/resource_providers/{rp}")).json()["generation"])

    def rp(self, name: str, *aggs: str, parent: str | None = None, uuid: str | None = None) -> str:
        rp_uuid = uuid or new_uuid()
        body: dict[str, Any] = {"name": name, "uuid": rp_uuid}
        if parent:
            body["parent_provider_uuid"] = parent
        self._ok(self.http.post("/resource_providers", json=body))
        if aggs:
            self.aggs(rp_uuid, *aggs)
        return rp_uuid

    def aggs(self, rp: str, *aggs: str) -> None:
        body = {"aggregates": list(aggs), "resource_provider_generation": self.generation(rp)}
        self._ok(self.http.put(f"/resource_providers/{rp}/aggregates", json=body))

    def inv(self, rp: str, rc: str, total: int, **fields: Any) -> None:
        if rc.startswith("CUSTOM_"):
            self._ok(self.http.put(f"/resource_classes/{rc}"))
        fields.setdefault("max_unit", total)
        body = {"resource_class": rc, "total": total, **fields}
        self._ok(self.http.post(f"/resource_providers/{rp}/inventories", json=body))

    def traits(self, rp: str, *names: str) -> None:
        for name in names:
            if name.startswith("CUSTOM_"):
                self._ok(self.http.put(f"/traits/{name}"))
        body = {"traits": list(names), "resource_provider_generation": self.generation(rp)}
        self._ok(self.http.put(f"/resource_providers/{rp}/traits", json=body))

    def alloc(
        self, rp: str, consumer: str, project: str, user: str, amounts: dict[str, int]
    ) -> None:
        current = self._ok(self.http.get(f"/allocations/{consumer}")).json()
        allocations = {
            u: {"resources": dict(a["resources"])} for u, a in current["allocations"].items()
        }
        # set_allocation in Placement's fixtures replaces the consumer's
        # allocations on this provider only
        allocations[rp] = {"resources": amounts}
        body = {
            "allocations": allocations,
            "project_id": project,
            "user_id": user,
            "consumer_generation": current.get("consumer_generation"),
        }
        self._ok(self.http.put(f"/allocations/{consumer}", json=body))

    def close(self) -> None:
        self.http.close()


def allocation(ld: Loader, env: Env) -> Env:
    out = {"ALT_USER_ID": new_uuid()}
    project, user, alt_user = env["PROJECT_ID"], env["USER_ID"], out["ALT_USER_ID"]
    rp = ld.rp(env["RP_NAME"], uuid=env["RP_UUID"])
    ld.inv(rp, "DISK_GB", 2048, step_size=10, min_unit=10, max_unit=1000)
    ld.inv(rp, "VCPU", 10, max_unit=10)
    out["CONSUMER_0"] = new_uuid()
    ld.alloc(rp, out["CONSUMER_0"], project, user, {"DISK_GB": 1000})
    out["CONSUMER_ID"] = new_uuid()
    ld.alloc(rp, out["CONSUMER_ID"], project, user, {"VCPU": 6})
    out["ALT_CONSUMER_ID"] = new_uuid()
    ld.alloc(rp, out["ALT_CONSUMER_ID"], project, alt_user, {"DISK_GB": 20, "VCPU": 1})
    out["ALT_RP_UUID"] = new_uuid()
    out["ALT_RP_NAME"] = new_uuid()
    return out


def shared_storage(ld: Loader, env: Env) -> Env:
    agg = new_uuid()
    out = {"AGG_UUID": agg}
    for name in ("cn1", "cn2", "ss", "ss2"):
        out[f"{name.upper()}_UUID"] = ld.rp(name, agg)
    for cn, numa in (("CN1", "1"), ("CN2", "2")):
        for i in ("1", "2"):
            n = ld.rp(f"numa{numa}_{i}", parent=out[f"{cn}_UUID"])
            out[f"NUMA{numa}_{i}_UUID"] = n
            out[f"PF{numa}_{i}_UUID"] = ld.rp(f"pf{numa}_{i}", parent=n)
    for cn in ("CN1_UUID", "CN2_UUID"):
        ld.inv(out[cn], "VCPU", 24, allocation_ratio=16.0)
        ld.inv(out[cn], "MEMORY_MB", 128 * 1024, allocation_ratio=1.5)
    ld.traits(out["CN1_UUID"], "HW_CPU_X86_SSE", "HW_CPU_X86_SSE2")
    ld.inv(out["CN2_UUID"], "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
    for ss in ("SS_UUID", "SS2_UUID"):
        ld.inv(out[ss], "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
        ld.traits(out[ss], "MISC_SHARES_VIA_AGGREGATE")
    for pf in ("PF1_1_UUID", "PF1_2_UUID", "PF2_1_UUID", "PF2_2_UUID"):
        ld.inv(out[pf], "SRIOV_NET_VF", 8, allocation_ratio=1.0)
    return out


def numa_aggregate(ld: Loader, env: Env) -> Env:
    a, b, c = new_uuid(), new_uuid(), new_uuid()
    out = {"AGGA_UUID": a, "AGGB_UUID": b, "AGGC_UUID": c}
    out["CN1_UUID"] = ld.rp("cn1", a)
    out["CN2_UUID"] = ld.rp("cn2", a, b)
    out["SS1_UUID"] = ld.rp("ss1", a)
    out["SS2_UUID"] = ld.rp("ss2", c)
    out["NUMA1_1_UUID"] = ld.rp("numa1_1", c, parent=out["CN1_UUID"])
    out["NUMA1_2_UUID"] = ld.rp("numa1_2", parent=out["CN1_UUID"])
    out["NUMA2_1_UUID"] = ld.rp("numa2_1", parent=out["CN2_UUID"])
    out["NUMA2_2_UUID"] = ld.rp("numa2_2", parent=out["CN2_UUID"])
    for n in ("NUMA1_1_UUID", "NUMA1_2_UUID", "NUMA2_1_UUID", "NUMA2_2_UUID"):
        ld.inv(out[n], "VCPU", 24, allocation_ratio=16.0)
    for ss in ("SS1_UUID", "SS2_UUID"):
        ld.inv(out[ss], "DISK_GB", 2000, reserved=100, allocation_ratio=1.0)
        ld.traits(out[ss], "MISC_SHARES_VIA_AGGREGATE")
    return out


def numa_network(ld: Loader, env: Env, deep: bool = False) -> Env:
    out: Env = {}
    cn1 = cn2 = None
    if deep:
        gp1 = ld.rp("gp1")
        p1 = ld.rp("p1", parent=gp1)
        p2 = ld.rp("p2", parent=gp1)
        cn1 = ld.rp("cn1", parent=p1)
        cn2 = ld.rp("cn2", parent=p2)
    agg = out["AGGA_UUID"] = new_uuid()
    ss1 = out["SS1_UUID"] = ld.rp("ss1", agg)
    ld.traits(ss1, "MISC_SHARES_VIA_AGGREGATE")
    ld.inv(ss1, "DISK_GB", 2000)
    if cn1 is None:
        cn1 = ld.rp("cn1", agg)
    ld.aggs(cn1, agg)
    ld.traits(cn1, "COMPUTE_VOLUME_MULTI_ATTACH")
    out["CN1_UUID"] = cn1
    numas = []
    for i in (0, 1):
        numa = ld.rp(f"numa{i}", parent=cn1)
        ld.traits(numa, "HW_NUMA_ROOT", *(["CUSTOM_FOO"] if i == 1 else []))
        ld.inv(numa, "VCPU", 4)
        numas.append(numa)
        out[f"NUMA{i}_UUID"] = numa
    ld.inv(numas[0], "MEMORY_MB", 2048, min_unit=512, step_size=256)
    ld.inv(numas[1], "MEMORY_MB", 2048, min_unit=256, max_unit=1024)
    project, user = "numafx-project", "numafx-user"
    ld.alloc(numas[0], new_uuid(), project, user, {"VCPU": 2})
    fpga = out["FPGA0_UUID"] = ld.rp("fpga0", parent=numas[0])
    ld.inv(fpga, "FPGA", 1)
    pgpu = out["PGPU0_UUID"] = ld.rp("pgpu0", parent=numas[0])
    ld.inv(pgpu, "VGPU", 8)
    for i in (0, 1):
        fpga = out[f"FPGA1_{i}_UUID"] = ld.rp(f"fpga1_{i}", parent=numas[1])
        ld.inv(fpga, "FPGA", 1)
    agent = out["SRIOV_AGENT_UUID"] = ld.rp("sriov_agent", parent=cn1)
    ld.traits(agent, "CUSTOM_VNIC_TYPE_DIRECT")
    for i in (1, 2):
        dev = out[f"ESN{i}_UUID"] = ld.rp(f"esn{i}", parent=agent)
        ld.traits(dev, f"CUSTOM_PHYSNET{i}")
        ld.inv(dev, "NET_BW_EGR_KILOBIT_PER_SEC", 10000 * i)
    agent = out["OVS_AGENT_UUID"] = ld.rp("ovs_agent", parent=cn1)
    ld.traits(agent, "CUSTOM_VNIC_TYPE_NORMAL")
    dev = out["BR_INT_UUID"] = ld.rp("br_int", parent=agent)
    ld.traits(dev, "CUSTOM_PHYSNET0")
    ld.inv(dev, "NET_BW_EGR_KILOBIT_PER_SEC", 1000)
    if cn2 is None:
        cn2 = ld.rp("cn2")
    ld.aggs(cn2, agg)
    ld.inv(cn2, "VCPU", 8)
    ld.alloc(cn2, new_uuid(), project, user, {"VCPU": 3})
    ld.inv(cn2, "MEMORY_MB", 2048, min_unit=1024, step_size=128)
    ld.inv(cn2, "DISK_GB", 1000)
    ld.traits(cn2, "CUSTOM_FOO")
    out["CN2_UUID"] = cn2
    nics = []
    for i in (1, 2, 3):
        nic = out[f"NIC{i}_UUID"] = ld.rp(f"nic{i}", parent=cn2)
        ld.traits(nic, "CUSTOM_HW_NIC_ROOT")
        nics.append(nic)
    pfs = [("1_1", 0, 1, 4), ("1_2", 0, 2, 4)]
    pfs += [(f"2_{i + 1}", 1, (i % 2) + 1, 2) for i in range(4)]
    pfs += [("3_1", 2, 1, 8)]
    for suffix, nic_index, physnet, vfs in pfs:
        pf = out[f"PF{suffix}_UUID"] = ld.rp(f"pf{suffix}", parent=nics[nic_index])
        ld.traits(pf, f"CUSTOM_PHYSNET{physnet}")
        ld.inv(pf, "CUSTOM_VF", vfs)
    return out


def deep_numa_network(ld: Loader, env: Env) -> Env:
    return numa_network(ld, env, deep=True)


def non_shared_storage(ld: Loader, env: Env) -> Env:
    out = {"AGGA_UUID": new_uuid(), "AGGB_UUID": new_uuid(), "AGGC_UUID": new_uuid()}
    for name in ("cn1", "cn2", "cn3"):
        cn = out[f"{name.upper()}_UUID"] = ld.rp(name)
        ld.inv(cn, "VCPU", 24)
        ld.inv(cn, "MEMORY_MB", 128 * 1024)
        ld.inv(cn, "DISK_GB", 2000)
    return out


def granular(ld: Loader, env: Env) -> Env:
    ld._ok(ld.http.put("/resource_classes/CUSTOM_NET_MBPS"))
    a, b, c = new_uuid(), new_uuid(), new_uuid()
    out = {"AGGA": a, "AGGB": b, "AGGC": c}
    left = out["CN_LEFT"] = ld.rp("cn_left", a)
    for rc, n in (
        ("VCPU", 8),
        ("MEMORY_MB", 4096),
        ("DISK_GB", 500),
        ("VGPU", 8),
        ("SRIOV_NET_VF", 8),
        ("CUSTOM_NET_MBPS", 4000),
    ):
        ld.inv(left, rc, n)
    ld.traits(
        left, "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_GPU_API_DXVA", "HW_NIC_DCB_PFC", "CUSTOM_FOO"
    )
    middle = out["CN_MIDDLE"] = ld.rp("cn_middle", a, b)
    for rc, n in (("VCPU", 8), ("MEMORY_MB", 4096), ("SRIOV_NET_VF", 8), ("CUSTOM_NET_MBPS", 4000)):
        ld.inv(middle, rc, n)
    ld.traits(middle, "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_CPU_X86_SSE", "HW_NIC_ACCEL_TLS")
    right = out["CN_RIGHT"] = ld.rp("cn_right", b, c)
    for rc, n in (("VCPU", 8), ("MEMORY_MB", 4096), ("DISK_GB", 500)):
        ld.inv(right, rc, n)
    ld.inv(right, "VGPU", 8, max_unit=2)
    ld.traits(right, "HW_CPU_X86_MMX", "HW_GPU_API_DXVA", "CUSTOM_DISK_SSD")
    shr1 = out["SHR_DISK_1"] = ld.rp("shr_disk_1", a)
    ld.inv(shr1, "DISK_GB", 1000)
    ld.traits(shr1, "MISC_SHARES_VIA_AGGREGATE", "CUSTOM_DISK_SSD")
    shr2 = out["SHR_DISK_2"] = ld.rp("shr_disk_2", a, b)
    ld.inv(shr2, "DISK_GB", 1000)
    ld.traits(shr2, "MISC_SHARES_VIA_AGGREGATE")
    net = out["SHR_NET"] = ld.rp("shr_net", c)
    ld.inv(net, "SRIOV_NET_VF", 16)
    ld.inv(net, "CUSTOM_NET_MBPS", 40000)
    ld.traits(net, "MISC_SHARES_VIA_AGGREGATE")
    return out


_SRIOV_TYPES = (
    "CUSTOM_VNIC_TYPE_DIRECT",
    "CUSTOM_VNIC_TYPE_DIRECT_PHYSICAL",
    "CUSTOM_VNIC_TYPE_MACVTAP",
)


def neutron_qos_multisegment(ld: Loader, env: Env) -> Env:
    """Four computes, each with an OVS agent (bridges) and an SR-IOV agent (PFs);
    the physnet traits say which network segment each device reaches."""
    out: Env = {}
    # compute: (bridges [(suffix, physnet)], bridge bw, pfs [(suffix, physnet)], pf bw)
    layout = {
        "compute0": ([("br_ex", "br-ex", "OTHER")], 5000, [("pf0", "enp129s0f0", "OTHER")], 10000),
        "compute1": (
            [("br_ex", "br-ex", "MSN_S1")],
            5000,
            [("pf0", "enp129s0f0", "MSN_S1")],
            10000,
        ),
        "compute2": (
            [("br_ex", "br-ex", "MSN_S2")],
            5000,
            [("pf0", "enp129s0f0", "MSN_S2")],
            10000,
        ),
        "compute3": (
            [("br_ex", "br-ex", "MSN_S1"), ("br_ex2", "br-ex2", "MSN_S2")],
            1000,
            [("pf0", "enp129s0f0", "MSN_S1"), ("pf1", "enp129s0f1", "MSN_S2")],
            1000,
        ),
    }
    for compute, (bridges, br_bw, pfs, pf_bw) in layout.items():
        cn = out[compute] = ld.rp(compute)
        for rc, n in (("VCPU", 8), ("MEMORY_MB", 4096), ("DISK_GB", 500)):
            ld.inv(cn, rc, n)
        ovs = out[f"{compute}:ovs_agent"] = ld.rp(f"{compute}:Open vSwitch agent", parent=cn)
        ld.inv(ovs, "NET_PACKET_RATE_KILOPACKET_PER_SEC", 1000)
        ld.traits(ovs, "CUSTOM_VNIC_TYPE_NORMAL")
        for key, name, physnet in bridges:
            br = out[f"{compute}:{key}"] = ld.rp(f"{compute}:Open vSwitch agent:{name}", parent=ovs)
            ld.inv(br, "NET_BW_EGR_KILOBIT_PER_SEC", br_bw)
            ld.inv(br, "NET_BW_IGR_KILOBIT_PER_SEC", br_bw)
            ld.traits(br, "CUSTOM_VNIC_TYPE_NORMAL", f"CUSTOM_PHYSNET_{physnet}")
        sriov = out[f"{compute}:sriov_agent"] = ld.rp(f"{compute}:NIC Switch agent", parent=cn)
        ld.traits(sriov, *_SRIOV_TYPES)
        for key, name, physnet in pfs:
            pf = out[f"{compute}:{key}"] = ld.rp(f"{compute}:NIC Switch agent:{name}", parent=sriov)
            ld.inv(pf, "NET_BW_EGR_KILOBIT_PER_SEC", pf_bw)
            ld.inv(pf, "NET_BW_IGR_KILOBIT_PER_SEC", pf_bw)
            ld.traits(pf, *_SRIOV_TYPES, f"CUSTOM_PHYSNET_{physnet}")
    # Placement's fixture points compute3:sriov_agent at compute2's agent; kept
    # so the YAML sees the same values.
    out["compute3:sriov_agent"] = out["compute2:sriov_agent"]
    return out


LOADERS: dict[str, Callable[[Loader, Env], Env]] = {
    "AllocationFixture": allocation,
    "SharedStorageFixture": shared_storage,
    "NUMAAggregateFixture": numa_aggregate,
    "NUMANetworkFixture": numa_network,
    "DeepNUMANetworkFixture": deep_numa_network,
    "NonSharedStorageFixture": non_shared_storage,
    "GranularFixture": granular,
    "NeutronQoSMultiSegmentFixture": neutron_qos_multisegment,
}
