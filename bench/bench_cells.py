"""Cells (issue 12): placements/s per cell with the other data centre up and
down, and the claim latency when the scheduler's cell is the provider's
(same cell) or not (cross cell), on a 2-DC cluster from the launcher.

One ``claimant serve`` per cell (the launcher's store URL with ``dc=`` that
cell). Each cell's providers are created through its own service and carry a
trait naming the cell, so a request picks the cell of its providers with
``required_traits``. Everything goes through the CLI (``claimant cluster``,
``claimant serve``, ``claimant store``) and public HTTP routes, so the script
measures whatever the code under it does (global SERIAL today, home cells
once they land) without knowing how.

    .venv/bin/python bench/bench_cells.py                       # a new cluster on 127.0.0.14-15
    .venv/bin/python bench/bench_cells.py --cluster-dir D --seconds 30 --json

Phases: (1) both DCs up, the clients of every cell at once, each on its own
service and providers; (2) latency, one request at a time from each cell's
service to its own cell's providers and to the other's; (3) for each DC of
``--down``: stop it (``claimant cluster stop --dc``), run the other cells'
clients, send a few cross-cell requests to the stopped cell's providers,
start it again. A cluster the script made is destroyed at the end; one
given with ``--cluster-dir`` is kept (the script's keyspace is dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from claimant.cli.main import main; main(prog_name='claimant')"]
ADMIN = {"X-Auth-Token": "admin"}
# A placement asks for little of a huge provider: the run measures the
# scheduler's path (query, claim), never a full cell.
REQUEST = {"VCPU": 1, "MEMORY_MB": 256}
INVENTORY = {"VCPU": {"total": 1_000_000}, "MEMORY_MB": {"total": 1_000_000_000}}


def claimant(*args: str, timeout: float = 1200) -> str:
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"claimant {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def with_option(url: str, key: str, value: str) -> str:
    base, sep, query = url.partition("?")
    items = [i for i in query.split("&") if i and i.split("=", 1)[0] != key] if sep else []
    return f"{base}?{'&'.join([*items, f'{key}={value}'])}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Cell:
    dc: str
    url: str  # the store URL of this cell's service
    service: str = ""  # http://127.0.0.1:port
    proc: subprocess.Popen[bytes] | None = None
    trait: str = ""
    providers: list[str] = field(default_factory=list)


@dataclass
class Load:
    """What a set of clients got in one phase."""

    seconds: float = 0.0
    placed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_latencies: list[float] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0

    def summary(self) -> dict[str, Any]:
        p50, p99 = pct(self.latencies, 0.5), pct(self.latencies, 0.99)
        err50 = pct(self.error_latencies, 0.5)
        return {
            "placements_per_s": round(self.placed / self.seconds, 2) if self.seconds else 0.0,
            "placed": self.placed,
            "errors": sum(self.errors.values()),
            "errors_by_code": dict(self.errors.most_common()),
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1),
            # How fast a refusal comes: a cell that is down should fail fast.
            "error_p50_ms": None if err50 is None else round(err50 * 1000, 1),
            "load_average": [round(self.load_before, 1), round(self.load_after, 1)],
        }


def place(http: httpx.Client, cell: Cell, target: Cell, load: Load, guard: threading.Lock) -> None:
    """One ``POST /v1/requests`` through ``cell``'s service for ``target``'s providers."""
    body = {"groups": [{"resources": REQUEST, "required_traits": [target.trait]}]}
    began = time.monotonic()
    try:
        r = http.post(f"{cell.service}/v1/requests", json=body)
        took = time.monotonic() - began
        code = "" if r.status_code < 300 else _code(r)
    except httpx.HTTPError as exc:
        took, code = time.monotonic() - began, type(exc).__name__
    with guard:
        if code:
            load.errors[code] += 1
            load.error_latencies.append(took)
        else:
            load.placed += 1
            load.latencies.append(took)


def _code(r: httpx.Response) -> str:
    try:
        return f"{r.status_code} {r.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(r.status_code)


def run_clients(pairs: list[tuple[Cell, Cell]], clients: int, seconds: float) -> list[Load]:
    """``clients`` threads per (scheduler cell, provider cell) pair, all at once."""
    loads = [Load() for _ in pairs]
    guard = threading.Lock()
    stop = threading.Event()

    def client(cell: Cell, target: Cell, load: Load) -> None:
        with httpx.Client(headers=ADMIN, timeout=30) as http:
            while not stop.is_set():
                place(http, cell, target, load, guard)

    threads = [
        threading.Thread(target=client, args=(cell, target, load), daemon=True)
        for (cell, target), load in zip(pairs, loads, strict=True)
        for _ in range(clients)
    ]
    before = os.getloadavg()[0]
    began = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    took = time.monotonic() - began  # requests in flight at the end count too
    after = os.getloadavg()[0]
    for load in loads:
        load.seconds, load.load_before, load.load_after = took, before, after
    return loads


def sequential(cell: Cell, target: Cell, n: int) -> Load:
    load = Load(load_before=os.getloadavg()[0])
    guard = threading.Lock()
    began = time.monotonic()
    with httpx.Client(headers=ADMIN, timeout=30) as http:
        for _ in range(n):
            place(http, cell, target, load, guard)
    load.seconds = time.monotonic() - began
    load.load_after = os.getloadavg()[0]
    return load


def start_service(cell: Cell, workdir: Path, ttl: float) -> None:
    port = free_port()
    cell.service = f"http://127.0.0.1:{port}"
    log = open(workdir / f"service-{cell.dc}.log", "ab")  # noqa: SIM115 (the child writes it)
    cell.proc = subprocess.Popen(
        [*CLI, "serve", "--store", cell.url, "--port", str(port), "--claim-ttl", str(ttl),
         "--no-migrate", "--no-access-log", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if cell.proc.poll() is not None:
            raise RuntimeError(f"the {cell.dc} service exited; see {workdir}")
        try:
            if httpx.get(f"{cell.service}/healthz", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the {cell.dc} service did not answer in 180 s; see {workdir}")


def make_providers(cell: Cell, count: int, run: str) -> None:
    """Through the cell's own service: a provider's home cell, where cells
    exist, is the creating service's."""
    with httpx.Client(headers=ADMIN, timeout=60) as http:
        r = http.put(f"{cell.service}/v1/traits/{cell.trait}")
        if r.status_code not in (201, 204):
            raise RuntimeError(f"trait {cell.trait}: {r.status_code} {r.text[:300]}")
        for i in range(count):
            body = {
                "name": f"bench-cells-{run}-{cell.dc}-{i}",
                "traits": [cell.trait],
                "inventories": INVENTORY,
            }
            r = http.post(f"{cell.service}/v1/providers", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"provider in {cell.dc}: {r.status_code} {r.text[:300]}")
            cell.providers.append(r.json()["uuid"])


def machine() -> dict[str, Any]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
    }


def bench(args: argparse.Namespace, cells: list[Cell], cluster_dir: Path, echo: Any) -> dict:
    report: dict[str, Any] = {"up": {}, "latency": {}, "down": {}}
    echo(f"both DCs up: {args.clients} clients per cell for {args.seconds:g} s ...")
    loads = run_clients([(c, c) for c in cells], args.clients, args.seconds)
    for c, load in zip(cells, loads, strict=True):
        report["up"][c.dc] = load.summary()
    echo("latency: one request at a time, same cell and cross cell ...")
    for c in cells:
        for t in cells:
            key = f"{c.dc}->{t.dc}"
            report["latency"][key] = sequential(c, t, args.latency_samples).summary()
            report["latency"][key]["cross_cell"] = c.dc != t.dc
    for dc in args.down:
        live = [c for c in cells if c.dc != dc]
        down = next(c for c in cells if c.dc == dc)
        echo(f"stopping {dc} ...")
        claimant("cluster", "stop", "--dc", dc, "--dir", str(cluster_dir))
        try:
            echo(f"{dc} down: {args.clients} clients per live cell for {args.seconds:g} s ...")
            loads = run_clients([(c, c) for c in live], args.clients, args.seconds)
            phase: dict[str, Any] = {
                c.dc: load.summary() for c, load in zip(live, loads, strict=True)
            }
            # Requests from a live cell for the stopped cell's providers: they
            # should fail fast and say why (cell_unavailable once cells exist).
            for c in live:
                cross = sequential(c, down, args.cross_samples).summary()
                phase[f"{c.dc}->{dc}"] = cross
            report["down"][dc] = phase
        finally:
            echo(f"starting {dc} again ...")
            began = time.monotonic()
            claimant(
                "cluster", "start", "--dc", dc, "--dir", str(cluster_dir),
                "--timeout", str(args.start_timeout),
            )  # fmt: skip
            report["down"].setdefault(dc, {})["restart_s"] = round(time.monotonic() - began, 1)
    return report


def _ms(s: dict[str, Any]) -> str:
    return "-" if s["p50_ms"] is None else f"{s['p50_ms']:g} / {s['p99_ms']:g}"


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"bench_cells {result['date']}  {m['host']}: {m['cpus']} cores, {m['memory']}, "
        f"{m['platform']}, Python {m['python']}",
        f"store {result['store']}  providers/cell {result['providers_per_cell']}  "
        f"clients/cell {result['clients_per_cell']}  {result['seconds']:g} s per phase",
        "",
        "| scheduler cell | providers | other DC | placements/s | p50 / p99 ms | errors |"
        " error p50 ms | load average |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]

    def row(sched: str, prov: str, other: str, s: dict[str, Any]) -> str:
        errors = ", ".join(f"{k} x{n}" for k, n in s["errors_by_code"].items()) or "0"
        la = "-".join(f"{x:g}" for x in s["load_average"])
        return (
            f"| {sched} | {prov} | {other} | {s['placements_per_s']:g} | "
            f"{_ms(s)} | {errors} | {s['error_p50_ms'] or '-'} | {la} |"
        )

    for dc, s in result["up"].items():
        lines.append(row(dc, dc, "up", s))
    for down, phase in result["down"].items():
        for key, s in phase.items():
            if key == "restart_s" or not isinstance(s, dict):
                continue
            sched, _, prov = key.partition("->")
            lines.append(row(sched, prov or sched, f"{down} down", s))
    lines += [
        "",
        "| claim latency (1 client) | same / cross cell | p50 / p99 ms | errors |",
        "| --- | --- | ---: | --- |",
    ]
    for key, s in result["latency"].items():
        errors = ", ".join(f"{k} x{n}" for k, n in s["errors_by_code"].items()) or "0"
        kind = "cross" if s["cross_cell"] else "same"
        lines.append(f"| {key} | {kind} | {_ms(s)} | {errors} |")
    restarts = {dc: p.get("restart_s") for dc, p in result["down"].items()}
    if restarts:
        lines.append("")
        lines.append("DC restart (s): " + ", ".join(f"{d} {s}" for d, s in restarts.items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cluster-dir", type=Path, help="an existing 2-DC cluster (kept)")
    ap.add_argument(
        "--base-address",
        default="127.0.0.14",
        help="a new cluster's first node (tests/addresses.py keeps 14-15 for this)",
    )
    ap.add_argument("--heap", default="512m", help="a new cluster's node heap")
    ap.add_argument("--start-timeout", type=float, default=900, help="s, per cluster start")
    ap.add_argument("--providers", type=int, default=20, help="per cell")
    ap.add_argument("--clients", type=int, default=4, help="per cell")
    ap.add_argument("--seconds", type=float, default=20, help="per load phase")
    ap.add_argument("--latency-samples", type=int, default=40)
    ap.add_argument("--cross-samples", type=int, default=10, help="per stopped DC")
    ap.add_argument("--down", default="dc2,dc1", help="DCs to stop in turn, or none")
    ap.add_argument("--timeout", type=int, default=5, help="the store's per-request timeout, s")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    args.down = [] if args.down == "none" else [d for d in args.down.split(",") if d]

    def echo(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="bench-cells-"))
    made = args.cluster_dir is None
    cluster_dir = args.cluster_dir or workdir / "cluster"
    cells: list[Cell] = []
    url = ""
    try:
        if made:
            echo(f"cluster up: 2 DCs x 1 node from {args.base_address} in {cluster_dir} ...")
            claimant(
                "cluster", "up", "-n", "2", "--dcs", "2", "--base-address", args.base_address,
                "--dir", str(cluster_dir), "--heap", args.heap,
                "--timeout", str(args.start_timeout),
            )  # fmt: skip
        status = json.loads(claimant("cluster", "status", "--json", "--dir", str(cluster_dir)))
        dcs = sorted({n["dc"] for n in status["nodes"]})
        if len(dcs) < 2:
            raise SystemExit(f"{cluster_dir} has one data centre; cells need two or more")
        if any(n["state"] != "up" for n in status["nodes"]):
            raise SystemExit(f"every node of {cluster_dir} must be up")
        run = secrets.token_hex(3)
        keyspace = f"bench_cells_{run}"
        url = status["store_url"].replace("/claimant?", f"/{keyspace}?")
        url = with_option(url, "timeout", str(args.timeout))
        cells = [Cell(dc, with_option(url, "dc", dc), trait=f"CUSTOM_BENCH_CELL_{dc.upper()}")
                 for dc in dcs]  # fmt: skip
        unknown = [d for d in args.down if d not in dcs]
        if unknown:
            raise SystemExit(f"--down {', '.join(unknown)}: not among {', '.join(dcs)}")
        echo(f"keyspace {keyspace}: migrating ...")
        claimant("store", "migrate", "--store", cells[0].url)
        for c in cells:
            start_service(c, workdir, ttl=600)
            make_providers(c, args.providers, run)
        echo(f"{len(cells)} services, {args.providers} providers each; logs in {workdir}")
        report = bench(args, cells, cluster_dir, echo)
        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "store": re.sub(r"&dc=[^&]*", "", url),
            "providers_per_cell": args.providers,
            "clients_per_cell": args.clients,
            "seconds": args.seconds,
            **report,
        }
        print(json.dumps(result, indent=1) if args.json else table(result))
    finally:
        for c in cells:
            if c.proc is not None:
                c.proc.terminate()
                try:
                    c.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    c.proc.kill()
        if made:
            echo("destroying the cluster ...")
            subprocess.run([*CLI, "cluster", "destroy", "--yes", "--dir", str(cluster_dir)],
                           capture_output=True, timeout=300, check=False)  # fmt: skip
        elif url:
            drop = cells[0].url if cells else url
            subprocess.run([*CLI, "store", "drop", "--yes", "--store", drop],
                           capture_output=True, timeout=300, check=False)  # fmt: skip


if __name__ == "__main__":
    main()
