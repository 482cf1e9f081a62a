"""Legacy (Nova FilterScheduler) vs claimant over a range of concurrency, on
any store. Prints one JSON line per run and, with --plot, writes the chart.

    .venv/bin/python bench/bench_sim.py --store cassandra://127.0.0.1/claimant_bench \
        --hosts 16 --requests 200 --levels 1,4,8 --plot /tmp/cassandra.svg

The store is wiped by every run (a Cassandra keyspace is dropped at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from claimant.sim import SimConfig, run
from claimant.sim.plot import write_plot
from claimant.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="store URL (default: a temporary SQLite file)")
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--modes", default="legacy,claimant")
    ap.add_argument("--build-time", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    url = args.store or "sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.db").lstrip("/")
    store = open_store(url)
    store.migrate()
    results = []
    try:
        for mode in args.modes.split(","):
            for k in (int(x) for x in args.levels.split(",")):
                cfg = SimConfig(
                    mode=mode,
                    hosts=args.hosts,
                    schedulers=k,
                    requests=args.requests,
                    build_time=args.build_time,
                    seed=args.seed,
                )
                r = run(store, cfg)
                results.append(r)
                print(json.dumps(r.to_dict(), sort_keys=True), flush=True)
    finally:
        if url.startswith("cassandra:"):
            store.drop()
        store.close()
    if args.plot:
        modes = args.modes.split(",")
        caption = f"{args.hosts} hosts, {args.requests} requests, store {results[0].store}"
        write_plot(args.plot, {m: [r for r in results if r.mode == m] for m in modes}, caption)


if __name__ == "__main__":
    main()
