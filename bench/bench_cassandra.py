"""Benchmark of the Cassandra store: scheduler placements/s and candidate
query latency.

    .venv/bin/python bench/bench_cassandra.py --store cassandra://127.0.0.1/claimant_bench \\
        --providers 1000 --procs 2 --threads 8 --seconds 30 --candidates 10000,100000

Phases:
1. load ``--providers`` compute providers (plain bulk writes, a fresh keyspace);
2. ``--procs`` processes x ``--threads`` threads each run ``Scheduler.schedule``
   for ``--seconds`` (one instance of VCPU 1 + MEMORY_MB 1024 per request);
   reports placements/s, p50/p99 latency, LWT conflicts and retries, and
   checks that no provider is over capacity (ledger rows summed, not the
   denormalised state);
3. for each size in ``--candidates``: grow the provider count to that size
   and time ``find_candidates`` (limit 50) p50/p99.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from typing import Any

from claimant.model import (
    ClaimantError,
    Inventory,
    NoValidHost,
    Provider,
    Request,
    RequestGroup,
    new_uuid,
)
from claimant.store import CandidateQuery, open_store
from claimant.store.cassandra import CassandraStore

VCPU = 64
MEMORY_MB = 262_144


def make_providers(n: int, start: int) -> list[Provider]:
    return [
        Provider(
            uuid=new_uuid(),
            name=f"bench-cn{start + i}",
            inventories={
                "VCPU": Inventory("VCPU", VCPU),
                "MEMORY_MB": Inventory("MEMORY_MB", MEMORY_MB),
            },
        )
        for i in range(n)
    ]


def open_cassandra(url: str) -> CassandraStore:
    st = open_store(url)
    if not isinstance(st, CassandraStore):
        sys.exit("bench_cassandra needs a cassandra:// store URL")
    return st


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def worker(url: str, threads: int, seconds: float, limit: int, out: Any) -> None:
    """One process: ``threads`` schedulers sharing one store object."""
    from claimant.scheduler import Scheduler
    from claimant.scheduler.config import SchedulerConfig

    st = open_cassandra(url)
    sched = Scheduler(st, SchedulerConfig(candidate_limit=limit))
    lat: list[float] = []
    counts = {"placed": 0, "failed": 0, "errors": 0, "conflicts": 0, "retries": 0, "queries": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            req = Request(
                uuid=new_uuid(),
                groups=(RequestGroup(resources={"VCPU": 1, "MEMORY_MB": 1024}),),
            )
            began = time.perf_counter()
            try:
                result = sched.schedule(req)
            except NoValidHost:
                with lock:
                    counts["failed"] += 1
                continue
            except ClaimantError:
                with lock:
                    counts["errors"] += 1
                continue
            took = time.perf_counter() - began
            with lock:
                lat.append(took)
                counts["placed"] += len(result.placements)
                counts["conflicts"] += result.stats.conflicts
                counts["retries"] += result.stats.retries
                counts["queries"] += result.stats.queries

    cpu = time.process_time()
    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    cpu = time.process_time() - cpu
    out.put({"lat": lat, "counts": counts, "stats": dict(st.stats), "cpu": cpu})
    st.close()


def check_overcommit(st: CassandraStore) -> tuple[int, int]:
    """(providers over capacity, live ledger entries), from the ledger rows."""
    now = st.clock()
    held: dict[str, dict[str, int]] = {}
    entries = 0
    for row in st._run("SELECT provider_uuid, ckey, amounts, expires_at FROM providers"):
        if not row.ckey or not row.ckey.startswith("l:") or row.amounts is None:
            continue
        if row.expires_at is not None and row.expires_at <= now:
            continue
        entries += 1
        bucket = held.setdefault(row.provider_uuid, {})
        for rc, n in row.amounts.items():
            bucket[rc] = bucket.get(rc, 0) - n
    over = 0
    for uuid, amounts in held.items():
        caps = {rc: u.capacity for rc, u in st.get_usage(uuid).usages.items()}
        if any(n > caps.get(rc, 0) for rc, n in amounts.items()):
            over += 1
    return over, entries


def server_cpu(pids: list[int]) -> float:
    """CPU seconds local Cassandra processes have used (0 if none given)."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench_schedule(
    url: str, procs: int, threads: int, seconds: float, limit: int, server_pid: list[int]
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    began = time.monotonic()
    ps = [
        ctx.Process(target=worker, args=(url, threads, seconds, limit, out)) for _ in range(procs)
    ]
    for p in ps:
        p.start()
    server = server_cpu(server_pid)
    results = [out.get() for _ in ps]
    server = server_cpu(server_pid) - server
    for p in ps:
        p.join()
    wall = time.monotonic() - began
    lat = [x for r in results for x in r["lat"]]
    counts = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    stats = {k: sum(r["stats"][k] for r in results) for k in results[0]["stats"]}
    placed = max(counts["placed"], 1)
    client_ms = sum(r["cpu"] for r in results) / placed * 1000
    server_ms = server / placed * 1000
    return {
        "placements": counts["placed"],
        "placements_per_s": round(counts["placed"] / seconds, 1),
        "wall_s": round(wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "conflicts": counts["conflicts"],
        "retries": counts["retries"],
        "no_valid_host": counts["failed"],
        "errors": counts["errors"],
        "find_candidates_calls": counts["queries"],
        "lwt_writes": stats["cas"],
        "lwt_lost": stats["cas_lost"],
        "serial_reads": stats["serial_reads"],
        "unknown_outcomes": stats["unknown"],
        # CPU per placement: what the machine is busy with, whoever else runs on it.
        "client_cpu_ms_per_placement": round(client_ms, 2),
        "server_cpu_ms_per_placement": round(server_ms, 2) if server_pid else None,
        "placements_per_s_per_core": round(1000 / (client_ms + server_ms), 1)
        if server_pid
        else None,
    }


def bench_candidates(st: CassandraStore, samples: int) -> dict[str, float]:
    lat = []
    seen = 0
    for i in range(samples):
        q = CandidateQuery(
            group=RequestGroup(resources={"VCPU": 1 + i % 4, "MEMORY_MB": 1024}), limit=50
        )
        began = time.perf_counter()
        found = st.find_candidates(q)
        lat.append(time.perf_counter() - began)
        seen += len(found)
    return {
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2),
        "avg_returned": round(seen / samples, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="cassandra://127.0.0.1/claimant_bench?rf=1")
    ap.add_argument("--providers", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--candidates", default="10000,100000", help="sizes, comma separated")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="do not drop the keyspace at the end")
    ap.add_argument(
        "--server-pid", default="", help="local Cassandra pids (comma separated), to count CPU"
    )
    ap.add_argument("--candidate-limit", type=int, default=50, help="the scheduler's")
    args = ap.parse_args()

    st = open_cassandra(args.store)
    st.drop()
    st.migrate()
    report: dict[str, Any] = {"store": args.store}
    began = time.monotonic()
    st.load_providers_unchecked(make_providers(args.providers, 0))
    report["load_s"] = round(time.monotonic() - began, 1)
    count = args.providers
    if args.seconds > 0:
        report["schedule"] = bench_schedule(
            args.store,
            args.procs,
            args.threads,
            args.seconds,
            args.candidate_limit,
            [int(p) for p in args.server_pid.split(",") if p],
        )
        over, entries = check_overcommit(st)
        report["schedule"]["providers_over_capacity"] = over
        report["schedule"]["live_ledger_entries"] = entries
        print(json.dumps(report, indent=2), flush=True)
    report["candidates"] = {}
    for size in [int(s) for s in args.candidates.split(",") if s]:
        if size > count:
            began = time.monotonic()
            st.load_providers_unchecked(make_providers(size - count, count))
            print(f"loaded {size - count} more providers in {time.monotonic() - began:.1f}s")
            count = size
        report["candidates"][str(size)] = bench_candidates(st, args.samples)
        print(json.dumps(report, indent=2), flush=True)
    if not args.keep:
        st.drop()
    st.close()


if __name__ == "__main__":
    main()
