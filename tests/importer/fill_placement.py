"""Fill an OpenStack Placement with a realistic cloud, through its own API.

Standard library only, so it runs with any Python next to a Placement:

    python fill_placement.py --url http://127.0.0.1:8781 [--hosts 6]
    PLACEMENT_VENV/bin/python fill_placement.py --sqlite placement.db --dump out.sql

``--url`` talks HTTP to a running Placement (noauth2, token ``admin``);
``--sqlite`` creates a Placement database in a SQLite file (``placement-manage
db sync``), runs Placement's WSGI app in-process against it, and with
``--dump`` writes the database as SQL text (what tests/importer/data holds).

The cloud: compute hosts with NUMA children (PCPU) and a GPU child (VGPU),
an SR-IOV child (SRIOV_NET_VF, bandwidth), hosts sharing DISK_GB from a
storage pool through an aggregate (MISC_SHARES_VIA_AGGREGATE), bare-metal
nodes with a custom class, custom traits, consumers of several types and
projects (INSTANCE, MIGRATION, none), a move in progress (the migration
holds the source host, the instance the target), a provider re-parented
after creation, an inventory shrunk below its usage, and generations well
past their first values (inventory, trait and allocation rewrites).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import urllib.error
import urllib.request
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

Call = Callable[[str, str, Any, str], tuple[int, Any]]
NS = uuidlib.UUID("1e9c6b0e-0d0e-4c1b-8d6f-3c2b1a0f9e8d")


def uid(*parts: object) -> str:
    """Deterministic uuids, so two fills of one size hold the same cloud."""
    return str(uuidlib.uuid5(NS, "/".join(map(str, parts))))


def http_caller(base: str) -> Call:
    def call(method: str, path: str, body: Any = None, version: str = "1.39") -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
        req.add_header("x-auth-token", "admin")
        req.add_header("openstack-api-version", f"placement {version}")
        req.add_header("accept", "application/json")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    return call


def wsgi_caller(db_path: str) -> Call:
    """Placement's app in-process on a SQLite file (needs the placement package)."""
    conf_dir = os.path.dirname(os.path.abspath(db_path))
    conf_file = os.path.join(conf_dir, "placement-fill.conf")
    with open(conf_file, "w") as f:
        f.write(
            "[api]\nauth_strategy = noauth2\n[placement_database]\n"
            f"connection = sqlite:///{os.path.abspath(db_path)}\n"
        )
    manage = os.path.join(os.path.dirname(sys.executable), "placement-manage")
    subprocess.run([manage, "--config-file", conf_file, "db", "sync"], check=True)
    from oslo_config import cfg
    from placement import conf as pconf
    from placement import db_api, deploy
    from webob import Request

    conf = cfg.ConfigOpts()
    pconf.register_opts(conf)
    conf([], default_config_files=[conf_file])
    db_api.configure(conf)
    app = deploy.loadapp(conf)

    def call(method: str, path: str, body: Any = None, version: str = "1.39") -> tuple[int, Any]:
        req = Request.blank(path, method=method)
        req.headers["x-auth-token"] = "admin"
        req.headers["openstack-api-version"] = f"placement {version}"
        req.headers["accept"] = "application/json"
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        resp = req.get_response(app)
        return resp.status_int, json.loads(resp.body) if resp.body else None

    return call


class Cloud:
    def __init__(self, call: Call) -> None:
        self._call = call

    def ok(self, method: str, path: str, body: Any = None, version: str = "1.39") -> Any:
        status, data = self._call(method, path, body, version)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    def gen(self, rp: str) -> int:
        return int(self.ok("GET", f"/resource_providers/{rp}")["generation"])

    def provider(self, rp: str, name: str, parent: str | None = None) -> str:
        body: dict[str, Any] = {"uuid": rp, "name": name}
        if parent:
            body["parent_provider_uuid"] = parent
        self.ok("POST", "/resource_providers", body)
        return rp

    def inventories(self, rp: str, invs: dict[str, dict[str, Any]]) -> None:
        body = {"resource_provider_generation": self.gen(rp), "inventories": invs}
        self.ok("PUT", f"/resource_providers/{rp}/inventories", body)

    def traits(self, rp: str, traits: list[str]) -> None:
        body = {"resource_provider_generation": self.gen(rp), "traits": traits}
        self.ok("PUT", f"/resource_providers/{rp}/traits", body)

    def aggregates(self, rp: str, aggs: list[str]) -> None:
        body = {"resource_provider_generation": self.gen(rp), "aggregates": aggs}
        self.ok("PUT", f"/resource_providers/{rp}/aggregates", body)

    def consumer_generation(self, consumer: str) -> int | None:
        got = self.ok("GET", f"/allocations/{consumer}")
        return got.get("consumer_generation") if got.get("allocations") else None

    def allocate(
        self,
        consumer: str,
        allocs: dict[str, dict[str, int]],
        project: str,
        user: str,
        ctype: str | None = "INSTANCE",
    ) -> None:
        body: dict[str, Any] = {
            "allocations": {rp: {"resources": res} for rp, res in allocs.items()},
            "project_id": project,
            "user_id": user,
            "consumer_generation": self.consumer_generation(consumer),
        }
        version = "1.39"
        if ctype is None:
            version = "1.36"  # before consumer types: the consumer has none
        else:
            body["consumer_type"] = ctype
        self.ok("PUT", f"/allocations/{consumer}", body, version)


def fill(call: Call, hosts: int = 6, seed: int = 14) -> dict[str, int]:
    rnd = random.Random(seed)
    c = Cloud(call)
    for rc in ("CUSTOM_BAREMETAL_GOLD", "CUSTOM_FPGA_XILINX"):
        c.ok("PUT", f"/resource_classes/{rc}", None, "1.7")
    for t in ("CUSTOM_RACK_A", "CUSTOM_RACK_B", "CUSTOM_GPU_A100", "CUSTOM_PHYSNET_DATA"):
        c.ok("PUT", f"/traits/{t}")
    c.ok("PUT", "/traits/CUSTOM_UNUSED")

    agg_shared = uid("agg", "shared-disk")
    agg_az = [uid("agg", "az", i) for i in range(2)]
    pool = c.provider(uid("pool"), "shared-storage-pool")
    c.inventories(pool, {"DISK_GB": {"total": 100000, "reserved": 1000, "allocation_ratio": 1.0}})
    c.traits(pool, ["MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD"])
    c.aggregates(pool, [agg_shared])

    roots: list[str] = []
    gpus: list[str] = []
    vfs: list[str] = []
    for h in range(hosts):
        root = c.provider(uid("host", h), f"compute-{h:05d}")
        roots.append(root)
        shares = h % 2 == 0
        invs: dict[str, dict[str, Any]] = {
            "VCPU": {"total": 32, "reserved": 2, "allocation_ratio": 4.0, "max_unit": 32},
            "MEMORY_MB": {
                "total": 131072,
                "reserved": 4096,
                "allocation_ratio": 1.5,
                "max_unit": 131072,
            },
        }
        if not shares:
            invs["DISK_GB"] = {"total": 2000, "reserved": 10, "min_unit": 1, "step_size": 1}
        c.inventories(root, invs)
        traits = ["HW_CPU_X86_AVX2", "COMPUTE_VOLUME_MULTI_ATTACH", f"CUSTOM_RACK_{'AB'[h % 2]}"]
        c.traits(root, traits)
        aggs = [agg_az[h % 2]] + ([agg_shared] if shares else [])
        c.aggregates(root, aggs)
        for n in range(2):
            numa = c.provider(uid("numa", h, n), f"compute-{h:05d}_NUMA{n}", root)
            c.inventories(numa, {"PCPU": {"total": 8, "max_unit": 8}})
        if h % 3 == 0:
            gpu = c.provider(uid("gpu", h), f"compute-{h:05d}_pGPU0", root)
            c.inventories(gpu, {"VGPU": {"total": 4, "max_unit": 4}})
            c.traits(gpu, ["CUSTOM_GPU_A100"])
            gpus.append(gpu)
        if h % 4 == 1:
            # Made as a root, then moved under its host (microversion 1.37).
            pf = c.provider(uid("pf", h), f"compute-{h:05d}_PF0")
            c.ok(
                "PUT",
                f"/resource_providers/{pf}",
                {"name": f"compute-{h:05d}_PF0", "parent_provider_uuid": root},
                "1.37",
            )
            c.inventories(
                pf,
                {
                    "SRIOV_NET_VF": {"total": 16, "max_unit": 16},
                    "NET_BW_EGR_KILOBIT_PER_SEC": {
                        "total": 10_000_000,
                        "reserved": 100_000,
                        "max_unit": 10_000_000,
                        "step_size": 1000,
                    },
                },
            )
            c.traits(pf, ["CUSTOM_PHYSNET_DATA", "HW_NIC_SRIOV"])
            vfs.append(pf)
    metal = []
    for m in range(max(2, hosts // 3)):
        node = c.provider(uid("metal", m), f"ironic-node-{m:04d}")
        c.inventories(node, {"CUSTOM_BAREMETAL_GOLD": {"total": 1, "max_unit": 1}})
        metal.append(node)

    projects = [uid("project", i) for i in range(3)]
    users = [uid("user", i) for i in range(4)]
    consumers = 0

    def owner() -> tuple[str, str]:
        return rnd.choice(projects), rnd.choice(users)

    for h, root in enumerate(roots):
        for i in range(3):
            vm = uid("vm", h, i)
            res: dict[str, dict[str, int]] = {root: {"VCPU": 2, "MEMORY_MB": 4096}}
            if h % 2 == 0:
                res[pool] = {"DISK_GB": 40}
            else:
                res[root]["DISK_GB"] = 20
            project, user = owner()
            ctype: str | None = "INSTANCE" if i else None
            c.allocate(vm, res, project, user, ctype)
            # A resize: the consumer's generation moves on.
            if i == 1:
                res[root]["VCPU"] = 4
                c.allocate(vm, res, project, user, ctype)
            consumers += 1
        numa = uid("numa", h, 0)
        pinned = uid("pinned", h)
        project, user = owner()
        c.allocate(pinned, {root: {"MEMORY_MB": 2048}, numa: {"PCPU": 4}}, project, user)
        consumers += 1
    for g, gpu in enumerate(gpus):
        vm = uid("gpu-vm", g)
        root = c.ok("GET", f"/resource_providers/{gpu}")["root_provider_uuid"]
        project, user = owner()
        c.allocate(vm, {root: {"VCPU": 8, "MEMORY_MB": 16384}, gpu: {"VGPU": 1}}, project, user)
        consumers += 1
    for v, pf in enumerate(vfs):
        vm = uid("sriov-vm", v)
        root = c.ok("GET", f"/resource_providers/{pf}")["root_provider_uuid"]
        project, user = owner()
        c.allocate(
            vm,
            {
                root: {"VCPU": 1, "MEMORY_MB": 2048},
                pf: {"SRIOV_NET_VF": 1, "NET_BW_EGR_KILOBIT_PER_SEC": 1_000_000},
            },
            project,
            user,
        )
        consumers += 1
    for m, node in enumerate(metal[:-1]):
        project, user = owner()
        c.allocate(uid("metal-instance", m), {node: {"CUSTOM_BAREMETAL_GOLD": 1}}, project, user)
        consumers += 1
    # Moves in progress, as Nova does them: the migration record takes over
    # the instance's allocation on the source host, the instance holds the
    # target (POST /allocations, both consumers in one request).
    for k in range(min(2, len(roots) // 2)):
        src, dst = roots[2 * k + 1], roots[2 * k]
        vm = uid("vm", 2 * k + 1, 2)
        held = c.ok("GET", f"/allocations/{vm}", None, "1.39")
        migration = uid("migration", k)
        target = {dst: {"VCPU": 2, "MEMORY_MB": 4096}, pool: {"DISK_GB": 20}}
        c.ok(
            "POST",
            "/allocations",
            {
                migration: {
                    "allocations": {src: {"resources": held["allocations"][src]["resources"]}},
                    "project_id": held["project_id"],
                    "user_id": held["user_id"],
                    "consumer_generation": None,
                    "consumer_type": "MIGRATION",
                },
                vm: {
                    "allocations": {rp: {"resources": r} for rp, r in target.items()},
                    "project_id": held["project_id"],
                    "user_id": held["user_id"],
                    "consumer_generation": held["consumer_generation"],
                    "consumer_type": "INSTANCE",
                },
            },
            "1.39",
        )
        consumers += 1
    # An operator shrank a host below what it holds (Placement allows it).
    if roots:
        c.inventories(
            roots[0],
            {
                "VCPU": {"total": 4, "reserved": 0, "allocation_ratio": 1.0, "max_unit": 4},
                "MEMORY_MB": {
                    "total": 131072,
                    "reserved": 4096,
                    "allocation_ratio": 1.5,
                    "max_unit": 131072,
                },
            },
        )
    # Traits rewritten: generations well past 0.
    for root in roots[::2]:
        c.traits(root, ["HW_CPU_X86_AVX2", "CUSTOM_RACK_A", "COMPUTE_STATUS_DISABLED"])
    providers = len(c.ok("GET", "/resource_providers")["resource_providers"])
    return {"providers": providers, "consumers": consumers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running Placement (noauth2)")
    where.add_argument("--sqlite", help="create and fill this SQLite file in-process")
    ap.add_argument("--hosts", type=int, default=6)
    ap.add_argument("--dump", help="with --sqlite: write the database as SQL text here")
    args = ap.parse_args()
    call = http_caller(args.url) if args.url else wsgi_caller(args.sqlite)
    print(json.dumps(fill(call, hosts=args.hosts)))
    if args.sqlite and args.dump:
        import sqlite3

        conn = sqlite3.connect(args.sqlite)
        with open(args.dump, "w") as f:
            for line in conn.iterdump():
                f.write(line + "\n")
        conn.close()


if __name__ == "__main__":
    main()
