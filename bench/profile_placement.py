"""Where one native placement's time goes on a Cassandra store.

    .venv/bin/python bench/profile_placement.py \\
        --store 'cassandra://127.0.0.1/claimant_prof?rf=1' \\
        --providers 1000 --placements 300 --trace 20 --server-pid PID

One scheduler thread places ``--placements`` requests (VCPU 1 + MEMORY_MB
1024, as bench_cassandra.py) one after another, after a warm-up, and
reports per placement:

1. the statements sent, counted at the driver and grouped by their text
   (lightweight transactions are those with an ``IF``), with client CPU and
   wall time, and the node's CPU when ``--server-pid`` names it (the node
   is whatever else runs on it too);
2. cProfile of the scheduler's thread over as many placements: the top
   functions, and the share of the driver, the store and the scheduler (the
   driver's I/O thread is not in it);
3. Cassandra's own tracing of ``--trace`` placements: per statement kind,
   the coordinator's duration.

The keyspace is dropped at the end (unless ``--keep``). Diagnostics only:
it wraps the driver's session to count, which nothing else does.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BoundStatement

from bench.bench_cassandra import make_providers, open_cassandra, server_cpu
from claimant.model import Request, RequestGroup, new_uuid
from claimant.scheduler import Scheduler, SchedulerConfig


def kind(session: Session, query: Any) -> str:
    """A statement's text, short: what it reads or writes, and whether it is an LWT."""
    if isinstance(query, BatchStatement):
        prepared = session.cluster._prepared_statements
        inner = []
        # The driver keeps (prepared?, query id or text, values) per statement.
        for is_prepared, stmt, _ in query._statements_and_parameters:
            ps = prepared.get(stmt) if is_prepared else None
            inner.append(_short(ps.query_string if ps is not None else str(stmt)))
        tables = sorted({m.group(1) for k in inner if (m := _TABLE.search(k))})
        lwt = " (LWT)" if any("(LWT)" in k for k in inner) else ""
        return f"BATCH of {len(inner)} on {', '.join(tables)}{lwt}"
    if isinstance(query, BoundStatement):
        return _short(query.prepared_statement.query_string)
    return _short(getattr(query, "query_string", str(query)))


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)")


def _short(text: str) -> str:
    text = " ".join(text.split())
    lwt = re.search(r"\bIF\b", text) is not None
    head = text[:90]
    if text.startswith("SELECT"):
        table = re.search(r"\bFROM\s+(\w+)", text)
        where = re.search(r"\bWHERE\s+(.{0,60})", text)
        head = f"SELECT {table.group(1) if table else '?'} WHERE {where.group(1) if where else ''}"
    return head + (" (LWT)" if lwt else "")


class Counting:
    """Counts the statements every session of this process sends."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.traced: list[tuple[str, Any]] = []
        self.trace = False
        self.on = False
        original = Session._create_response_future
        me = self

        def counted(session: Session, query: Any, *args: Any, **kw: Any) -> Any:
            if me.on:
                me.counts[kind(session, query)] += 1
            if me.trace:
                # _create_response_future(query, parameters, trace, ...)
                args = (args[0], True, *args[2:]) if len(args) >= 2 else args
                if "trace" in kw:
                    kw["trace"] = True
            future = original(session, query, *args, **kw)
            if me.trace:
                me.traced.append((kind(session, query), future))
            return future

        Session._create_response_future = counted  # type: ignore[method-assign]


def request() -> Request:
    return Request(
        uuid=new_uuid(),
        groups=(RequestGroup(resources={"VCPU": 1, "MEMORY_MB": 1024}),),
    )


@contextmanager
def measured(out: dict[str, float], pids: list[int]) -> Iterator[None]:
    # The whole process: the driver's I/O thread works for the scheduler's.
    wall, cpu, node = time.perf_counter(), time.process_time(), server_cpu(pids)
    yield
    out["wall_s"] = time.perf_counter() - wall
    out["client_cpu_s"] = time.process_time() - cpu
    out["server_cpu_s"] = server_cpu(pids) - node


def place_many(sched: Scheduler, n: int) -> None:
    for _ in range(n):
        sched.schedule(request())


def area(filename: str) -> str:
    # The driver's compiled code is not profiled: its time shows in the
    # Python function that called it, our counting wrapper among them.
    if filename.endswith("profile_placement.py"):
        return "driver (cassandra-driver)"
    if "/cassandra/" in filename and "claimant" not in filename:
        return "driver (cassandra-driver)"
    if "claimant/store/" in filename:
        return "store (claimant.store)"
    if "claimant/scheduler/" in filename:
        return "scheduler (claimant.scheduler)"
    if "claimant/model/" in filename:
        return "model (claimant.model)"
    return "other (stdlib, threads, logging)"


def profile(sched: Scheduler, n: int, top: int) -> dict[str, Any]:
    # CPU of the scheduler's thread, not the wall time it spends waiting.
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    place_many(sched, n)
    prof.disable()
    stats = pstats.Stats(prof)
    by_area: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, _), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_area[area(filename)] += tt
        total += tt
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(top)
    return {
        "thread_cpu_ms_per_placement": round(total / n * 1e3, 2),
        "share_by_area": {k: round(v / total, 3) for k, v in sorted(by_area.items())},
        "top_tottime": [
            line for line in text.getvalue().splitlines() if line.strip() and "/" in line
        ][:top],
    }


def traces(counting: Counting, sched: Scheduler, n: int) -> dict[str, dict[str, float]]:
    counting.traced.clear()
    counting.trace = True
    try:
        place_many(sched, n)
    finally:
        counting.trace = False
    durations: dict[str, list[float]] = defaultdict(list)
    for name, future in counting.traced:
        try:
            trace = future.get_query_trace(max_wait=5.0)
        except Exception:  # a trace not written in time is left out
            continue
        if trace is not None and trace.duration is not None:
            durations[name].append(trace.duration.total_seconds() * 1e3)
    return {
        name: {"per_placement": round(len(v) / n, 2), "mean_ms": round(sum(v) / len(v), 3)}
        for name, v in sorted(durations.items())
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="cassandra://127.0.0.1/claimant_prof?rf=1")
    ap.add_argument("--providers", type=int, default=1000)
    ap.add_argument("--placements", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--trace", type=int, default=20, help="placements traced by Cassandra")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--server-pid", default="", help="the local node's pid, to count its CPU")
    ap.add_argument("--keep", action="store_true", help="do not drop the keyspace at the end")
    args = ap.parse_args()
    pids = [int(p) for p in args.server_pid.split(",") if p]

    counting = Counting()
    st = open_cassandra(args.store)
    st.drop()
    st.migrate()
    report: dict[str, Any] = {"store": args.store, "load_average_start": os.getloadavg()}
    try:
        st.load_providers_unchecked(make_providers(args.providers, 0))
        sched = Scheduler(st, SchedulerConfig())
        place_many(sched, args.warmup)
        n = args.placements
        cost: dict[str, float] = {}
        with measured(cost, pids):
            place_many(sched, n)
        counting.on = True
        place_many(sched, n)
        counting.on = False
        report["per_placement"] = {
            "statements": round(sum(counting.counts.values()) / n, 2),
            "lwts": round(sum(v for k, v in counting.counts.items() if "(LWT)" in k) / n, 2),
            "wall_ms": round(cost["wall_s"] / n * 1e3, 2),
            "client_cpu_ms": round(cost["client_cpu_s"] / n * 1e3, 2),
            "server_cpu_ms": round(cost["server_cpu_s"] / n * 1e3, 2) if pids else None,
            "by_statement": {k: round(v / n, 2) for k, v in counting.counts.most_common()},
        }
        report["profile"] = profile(sched, n, args.top)
        if args.trace:
            report["trace_ms"] = traces(counting, sched, args.trace)
        report["load_average_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            st.drop()
        st.close()


if __name__ == "__main__":
    main()
