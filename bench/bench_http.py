"""End-to-end over HTTP: ``claimant serve`` on a temporary SQLite store, N
concurrent clients posting ``POST /v1/requests`` of mixed sizes.

Providers are written straight through the store (not the API) so that the
set-up takes seconds, not minutes; only the scheduling load goes over HTTP.

Reports placements/s, request latency p50/p99, conflicts and retries (from
/metrics), no-valid-host answers, overcommitted providers (checked after the
run through the store: must be 0) and the server's RSS.

    .venv/bin/python bench/bench_http.py --providers 10000 --requests 10000 \
        --clients 8 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from claimant.model import Inventory, Provider, new_uuid
from claimant.store import Store, open_store

TRAITS = ["HW_CPU_X86_AVX2", "HW_CPU_X86_AVX512F", "COMPUTE_STATUS_DISABLED"]
CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]


def populate(store: Store, n: int, rng: random.Random) -> None:
    for i in range(n):
        vcpu = rng.choice((32, 48, 64))
        store.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"cn{i:05d}",
                attributes={"cpu_arch": "x86_64" if i % 10 else "aarch64"},
                traits=frozenset(t for t in TRAITS[:2] if rng.random() < 0.5),
                inventories={
                    "VCPU": Inventory("VCPU", vcpu, allocation_ratio=4.0),
                    "MEMORY_MB": Inventory("MEMORY_MB", vcpu * 4096, reserved=2048),
                    "DISK_GB": Inventory("DISK_GB", 2000),
                },
            )
        )


def request_body(rng: random.Random) -> dict[str, Any]:
    """Mixed sizes: mostly small VMs, some medium, a few large and multi-instance."""
    size = rng.random()
    if size < 0.6:
        vcpus, mem, disk = rng.choice(((1, 1024, 10), (2, 2048, 20), (2, 4096, 40)))
    elif size < 0.9:
        vcpus, mem, disk = rng.choice(((4, 8192, 80), (8, 16384, 160)))
    else:
        vcpus, mem, disk = rng.choice(((16, 32768, 320), (32, 65536, 500)))
    group: dict[str, Any] = {"resources": {"VCPU": vcpus, "MEMORY_MB": mem, "DISK_GB": disk}}
    if rng.random() < 0.2:
        group["required_traits"] = ["HW_CPU_X86_AVX2"]
    body: dict[str, Any] = {"groups": [group], "count": 1 if rng.random() < 0.8 else 2}
    if rng.random() < 0.3:
        body["hints"] = {"strategy": "pack"}
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tree(root_pid: int) -> set[int]:
    pids = {root_pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root_pid:
            pids.add(int(stat.parent.name))
    return pids


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers)."""
    ticks = 0
    for pid in _tree(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(root_pid: int) -> float:
    """RSS of a process and its children (uvicorn workers), from /proc."""
    pids = _tree(root_pid)
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


PLACED = 'claimant_placements_total{result="placed"}'


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def load(
    url: str, bodies: list[dict[str, Any]], clients: int
) -> tuple[list[float], int, int, int]:
    latencies: list[float] = []
    placed = failed = errors = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def worker() -> None:
        nonlocal placed, failed, errors
        async with httpx.AsyncClient(
            base_url=url, headers={"x-auth-token": "admin"}, timeout=120
        ) as c:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await c.post("/v1/requests", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code == 201:
                    placed += len(r.json()["placements"])
                elif r.status_code == 409 and r.json()["error"]["code"] == "no_valid_host":
                    failed += 1
                else:
                    errors += 1
                    if errors <= 3:
                        print(f"  unexpected {r.status_code}: {r.text[:300]}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, placed, failed, errors


def overcommitted(store: Store) -> int:
    bad = 0
    for p in store.list_providers():
        for u in store.get_usage(p.uuid).usages.values():
            if u.used > u.capacity:
                bad += 1
                break
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--providers", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.dir or tempfile.mkdtemp(prefix="claimant-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    url_store = "sqlite:///" + str(db).lstrip("/")

    store = open_store(url_store)
    store.migrate()
    t0 = time.perf_counter()
    populate(store, args.providers, rng)
    print(
        f"populated {args.providers} providers through the store in {time.perf_counter() - t0:.1f}s"
    )
    store.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--store",
            url_store,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((work / "serve.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        bodies = [request_body(rng) for _ in range(args.requests)]
        rss_before = rss_mb(server.pid)
        cpu0 = cpu_seconds(server.pid)
        client0 = time.process_time()
        t0 = time.perf_counter()
        latencies, placed, failed, errors = asyncio.run(load(url, bodies, args.clients))
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.pid) - cpu0
        client_cpu = time.process_time() - client0
        rss_after = rss_mb(server.pid)
        metrics = httpx.get(url + "/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    store = open_store(url_store)
    try:
        bad = overcommitted(store)
        claims = len(store.list_claims())
    finally:
        store.close()
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"requests: {len(bodies)} from {args.clients} clients, server workers: {args.workers}")
    print(
        f"wall: {wall:.1f}s  requests/s: {len(bodies) / wall:.0f}  "
        f"placements: {placed}  placements/s: {placed / wall:.0f}"
    )
    print(
        f"server CPU: {server_cpu:.1f}s = {server_cpu / len(bodies) * 1000:.2f} ms per request; "
        f"client CPU: {client_cpu / len(bodies) * 1000:.2f} ms per request; "
        f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"latency p50: {p50:.1f} ms  p99: {p99:.1f} ms")
    print(f"no_valid_host: {failed}  other errors: {errors}")
    print(
        f"claim conflicts: {metric(metrics, 'claimant_claim_conflicts_total'):.0f}  "
        f"retries: {metric(metrics, 'claimant_claim_retries_total'):.0f}  "
        f"(server counted placements: {metric(metrics, PLACED):.0f})"
    )
    print(f"live claims in the store: {claims}")
    print(f"overcommitted providers: {bad}")
    print(f"server RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after the load")
    return 0 if bad == 0 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
