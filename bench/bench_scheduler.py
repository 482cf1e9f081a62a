"""Benchmark of the scheduler pipeline against a store, in-process.

    .venv/bin/python bench/bench_scheduler.py --providers 10000 --schedulers 8 --requests 10000
    .venv/bin/python bench/bench_scheduler.py --processes 2 --schedulers 8
    .venv/bin/python bench/bench_scheduler.py --query-only --sizes 1000,10000,100000

Placement mode: populates ``--providers`` providers (mixed sizes, traits,
aggregates; bench/common.py), then ``--schedulers`` threads (split over
``--processes`` processes, each with its own store connection) place
``--requests`` requests of mixed flavors. Reports placements/s, latency per
placement, CAS conflicts, retries, NoValidHost count, RSS, and verifies after
the run that no provider is over capacity (usage and ledger both read back).

Query-only mode: grows the store to each of ``--sizes`` providers and times
``find_candidates`` (what one scheduling step asks the store) p50/p99.

The store defaults to a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rich.console import Console
from rich.table import Table

from bench.common import (
    Latency,
    make_group,
    make_requests,
    overcommitted,
    peak_rss_mb,
    populate,
    rss_mb,
    temp_sqlite_url,
)
from claimant.model import NoValidHost, Strategy
from claimant.scheduler import Scheduler, SchedulerConfig, ScheduleStats
from claimant.store import CandidateQuery, Store, open_store


def _config(args: argparse.Namespace) -> SchedulerConfig:
    return SchedulerConfig(
        host_subset_size=args.host_subset_size,
        candidate_limit=args.candidate_limit,
        max_claim_retries=args.max_claim_retries,
        # Longer than any run, so the overcommit check reads every claim live.
        claim_ttl=3600.0,
    )


def place(
    url: str, args: argparse.Namespace, threads: int, start: int, stop: int, seed: int
) -> dict[str, Any]:
    """Run ``threads`` scheduler threads over requests [start, stop)."""
    store = open_store(url)
    sched = Scheduler(store, _config(args), rng=random.Random(seed))
    requests = make_requests(args.requests, seed=args.seed + 1, instances=args.count)[start:stop]
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    totals = ScheduleStats()
    result: dict[str, Any] = {"placements": 0, "no_valid_host": 0, "errors": []}

    def worker() -> None:
        mine: list[float] = []
        stats = ScheduleStats()
        placed = nvh = 0
        errors: list[str] = []
        while True:
            i = next(counter)
            if i >= len(requests):
                break
            t0 = time.perf_counter()
            try:
                res = sched.schedule(requests[i])
            except NoValidHost:
                nvh += 1
                continue
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            dt = time.perf_counter() - t0
            n = len(res.placements)
            placed += n
            mine.extend([dt / n] * n)
            stats.add(res.stats)
        with lock:
            latencies.extend(mine)
            totals.add(stats)
            result["placements"] += placed
            result["no_valid_host"] += nvh
            result["errors"].extend(errors)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = time.process_time() - cpu0
    result["latencies"] = latencies
    result["stats"] = {
        "queries": totals.queries,
        "candidates_seen": totals.candidates_seen,
        "conflicts": totals.conflicts,
        "retries": totals.retries,
        "claims_released": totals.claims_released,
    }
    result["rss_mb"] = rss_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    store.close()
    return result


def _process_main(
    url: str, args: argparse.Namespace, threads: int, start: int, stop: int, seed: int, q: Any
) -> None:
    try:
        q.put(place(url, args, threads, start, stop, seed))
    except BaseException as exc:
        q.put({"fatal": f"{type(exc).__name__}: {exc}"})


def run_placements(url: str, args: argparse.Namespace, uuids: list[str]) -> dict[str, Any]:
    procs = max(1, args.processes)
    if procs == 1:
        parts = [place(url, args, args.schedulers, 0, args.requests, args.seed)]
        wall = parts[0]["wall_s"]
    else:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        per = -(-args.requests // procs)
        threads = max(1, args.schedulers // procs)
        workers = [
            ctx.Process(
                target=_process_main,
                args=(url, args, threads, i * per, min(args.requests, (i + 1) * per), i, q),
            )
            for i in range(procs)
        ]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        parts = [q.get() for _ in workers]
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0  # includes process start-up
        fatal = [p["fatal"] for p in parts if "fatal" in p]
        if fatal:
            raise SystemExit("worker failed: " + "; ".join(fatal))
    latencies = [x for p in parts for x in p["latencies"]]
    placements = sum(p["placements"] for p in parts)
    stats = {k: sum(p["stats"][k] for p in parts) for k in parts[0]["stats"]}
    worker_wall = max(p["wall_s"] for p in parts)
    store = open_store(url)
    t0 = time.perf_counter()
    bad = overcommitted(store, uuids)
    verify_s = time.perf_counter() - t0
    store.close()
    lat = Latency.of(latencies)
    return {
        "providers": len(uuids),
        "requests": args.requests,
        "instances_per_request": args.count,
        "schedulers": args.schedulers,
        "processes": procs,
        "placements": placements,
        "placements_per_s": placements / worker_wall if worker_wall else 0.0,
        # CPU seconds this run's processes used per placement: on a shared,
        # busy machine it says more than wall time does.
        "cpu_ms_per_placement": sum(p["cpu_s"] for p in parts) / placements * 1e3
        if placements
        else 0.0,
        "load_average": os.getloadavg(),
        "wall_s": wall,
        "latency_ms": {
            "p50": lat.p50_ms,
            "p99": lat.p99_ms,
            "mean": lat.mean_ms,
            "max": lat.max_ms,
        },
        "no_valid_host": sum(p["no_valid_host"] for p in parts),
        "errors": [e for p in parts for e in p["errors"]][:10],
        "error_count": sum(len(p["errors"]) for p in parts),
        **stats,
        "overcommitted_providers": len(bad),
        "overcommitted_examples": bad[:5],
        "verify_s": verify_s,
        "rss_mb": [round(p["rss_mb"], 1) for p in parts],
        "peak_rss_mb": [round(p["peak_rss_mb"], 1) for p in parts],
    }


def explain(store: Store, query: CandidateQuery) -> list[str]:
    """EXPLAIN QUERY PLAN of the candidate query an SQLite store runs."""
    conn = getattr(store, "_conn", None)
    if conn is None:
        return []
    statements: list[str] = []
    # Diagnostics only: reach the store's own connection to see its SQL.
    c: sqlite3.Connection = conn()
    c.set_trace_callback(statements.append)
    try:
        store.find_candidates(query)
    finally:
        c.set_trace_callback(None)
    main = next((s for s in statements if "ORDER BY" in s and s.lstrip().startswith("SELECT")), "")
    if not main:
        return []
    plan = [f"{r[0]}|{r[1]}| {r[3]}" for r in c.execute("EXPLAIN QUERY PLAN " + main)]
    return [main, *plan]


def run_queries(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(url)
    store.migrate()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(args.seed)
    # A --store given may hold providers already (a kept 100k store saves minutes).
    have = len(store.list_providers()) if args.store else 0
    rows = []
    plans: dict[str, list[str]] = {}
    console = Console(stderr=True)
    for size in sizes:
        if size < have:
            console.log(f"skipping {size}: the store already holds {have} providers")
            continue
        t0 = time.perf_counter()
        populate(store, size - have, seed=args.seed, start=have)
        load_s = time.perf_counter() - t0
        have = size
        samples: dict[str, list[float]] = {
            "all": [],
            "cpu": [],
            "plain": [],
            "trait": [],
            "pack": [],
        }
        now = time.time()
        for i in range(args.queries):
            group = make_group(rng)
            strategy = Strategy.PACK if i % 4 == 3 else Strategy.SPREAD
            q = CandidateQuery(
                group=group,
                limit=args.candidate_limit,
                strategy=strategy,
                heartbeat_after=now - 60,
            )
            t = time.perf_counter()
            c = time.thread_time()
            store.find_candidates(q)
            dt = time.perf_counter() - t
            samples["cpu"].append(time.thread_time() - c)
            samples["all"].append(dt)
            kind = (
                "pack"
                if strategy == Strategy.PACK
                else "trait"
                if group.required_traits or group.member_of or group.attributes
                else "plain"
            )
            samples[kind].append(dt)
        lat = {k: Latency.of(v) for k, v in samples.items()}
        rows.append(
            {
                "providers": size,
                "load_s": round(load_s, 1),
                **{
                    f"{k}_p{p}_ms": round(getattr(v, f"p{p}_ms"), 3)
                    for k, v in lat.items()
                    for p in (50, 99)
                },
                "queries": args.queries,
            }
        )
        console.log(
            f"{size} providers: p50 {lat['all'].p50_ms:.2f} ms p99 {lat['all'].p99_ms:.2f} ms"
        )
        if args.explain:
            plans[str(size)] = explain(
                store,
                CandidateQuery(
                    group=make_group(random.Random(3)),
                    limit=args.candidate_limit,
                    heartbeat_after=now - 60,
                ),
            )
    store.close()
    return {
        "query_only": rows,
        "rss_mb": rss_mb(),
        "load_average": os.getloadavg(),
        "plans": plans,
    }


def _print_placements(r: dict[str, Any], console: Console) -> None:
    t = Table(title=f"scheduler: {r['providers']} providers, {r['requests']} requests")
    t.add_column("metric")
    t.add_column("value", justify="right")
    lat = r["latency_ms"]
    for name, value in (
        ("schedulers x processes", f"{r['schedulers']} x {r['processes']}"),
        ("placements", r["placements"]),
        ("placements/s", f"{r['placements_per_s']:.0f}"),
        ("CPU ms per placement", f"{r['cpu_ms_per_placement']:.2f}"),
        ("load average (1/5/15 min)", " ".join(f"{x:.1f}" for x in r["load_average"])),
        ("latency p50 / p99 (ms)", f"{lat['p50']:.2f} / {lat['p99']:.2f}"),
        ("latency mean / max (ms)", f"{lat['mean']:.2f} / {lat['max']:.2f}"),
        ("CAS conflicts", r["conflicts"]),
        ("retries", r["retries"]),
        ("claims released", r["claims_released"]),
        ("store queries", r["queries"]),
        ("NoValidHost", r["no_valid_host"]),
        ("other errors", r["error_count"]),
        ("overcommitted providers", r["overcommitted_providers"]),
        ("RSS now / peak (MiB)", f"{r['rss_mb']} / {r['peak_rss_mb']}"),
    ):
        t.add_row(name, str(value))
    console.print(t)
    for e in r["errors"]:
        console.print(f"[red]error:[/red] {e}")
    for e in r["overcommitted_examples"]:
        console.print(f"[red]overcommitted:[/red] {e}")


def _print_queries(r: dict[str, Any], console: Console) -> None:
    t = Table(title="find_candidates latency (ms)")
    cols = ("providers", "load s", "p50", "p99", "CPU p50", "CPU p99")
    for col in (*cols, "plain p99", "trait p99", "pack p99"):
        t.add_column(col, justify="right")
    for row in r["query_only"]:
        t.add_row(
            str(row["providers"]),
            str(row["load_s"]),
            f"{row['all_p50_ms']:.2f}",
            f"{row['all_p99_ms']:.2f}",
            f"{row['cpu_p50_ms']:.2f}",
            f"{row['cpu_p99_ms']:.2f}",
            f"{row['plain_p99_ms']:.2f}",
            f"{row['trait_p99_ms']:.2f}",
            f"{row['pack_p99_ms']:.2f}",
        )
    console.print(t)
    console.print("load average: " + " ".join(f"{x:.1f}" for x in r["load_average"]))
    for size, plan in r["plans"].items():
        console.print(f"[bold]plan at {size}[/bold]")
        for line in plan:
            console.print(line, markup=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--providers", type=int, default=10_000)
    p.add_argument("--schedulers", type=int, default=8, help="scheduler threads in all")
    p.add_argument("--processes", type=int, default=1, help="split the threads over processes")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--count", type=int, default=1, help="instances per request")
    p.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    p.add_argument("--reset", action="store_true", help="wipe the --store first")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--seed", type=int, default=1)
    defaults = SchedulerConfig()
    p.add_argument("--host-subset-size", type=int, default=defaults.host_subset_size)
    p.add_argument("--candidate-limit", type=int, default=defaults.candidate_limit)
    p.add_argument("--max-claim-retries", type=int, default=defaults.max_claim_retries)
    p.add_argument("--query-only", action="store_true")
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--queries", type=int, default=500, help="queries per size (--query-only)")
    p.add_argument("--explain", action="store_true", help="print SQLite's query plan")
    args = p.parse_args(argv)
    for name in ("providers", "schedulers", "processes", "requests", "queries", "count"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")

    console = Console()
    tmpdir = None
    url = args.store
    if not url:
        url, tmpdir = temp_sqlite_url()
    try:
        if args.query_only:
            if args.reset:
                st = open_store(url)
                st.migrate()
                st.reset()
                st.close()
            result = run_queries(url, args)
            _print_queries(result, console)
        else:
            store = open_store(url)
            store.migrate()
            if args.reset:
                store.reset()
            t0 = time.perf_counter()
            uuids = populate(store, args.providers, seed=args.seed)
            load_s = time.perf_counter() - t0
            store.close()
            result = run_placements(url, args, uuids)
            result["load_s"] = load_s
            _print_placements(result, console)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        bad = result.get("overcommitted_providers", 0)
        return 1 if bad else 0
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
