"""Side by side: claimant vs OpenStack Placement, driven by the same client doing
Nova's scheduling flow through the Placement API.

For each placement: GET /allocation_candidates (VCPU:2, MEMORY_MB:4096,
DISK_GB:40, limit=50), pick one allocation request at random, PUT
/allocations/{new consumer} with consumer_generation null. On a 409 the client
drops that candidate and tries another one from the same list, as Nova's
scheduler moves on to its next host; an exhausted list is fetched again. The
latency of a placement includes its retries.

Both services get the same provider set (seeded), written through their
Placement API. Afterwards every provider's inventories and usages are read
back and a provider counts as overcommitted when usage > (total - reserved) *
allocation_ratio in any class.

The contention variant (--contention-rounds, on by default) then makes a few
providers nearly full (a filler consumer takes all but a few VCPU) and lets many
clients race for the last units through the same flow; more successful
placements than free units, or a usage over capacity, is an overcommit.

    .venv/bin/python bench/bench_nova_flow.py --start-both --providers 1000 \
        --clients 8 --requests 2000

--start-both runs ``claimant serve`` on a temporary SQLite store and the
reference Placement through bench/placement_reference/setup.sh (MariaDB from
Debian, openstack-placement from PyPI in its own venv, gunicorn -w 4). Or point
at running services with --claimant-url / --placement-url (noauth2, empty).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "placement_reference"
MICROVERSION = "placement 1.39"
HEADERS = {
    "x-auth-token": "admin",
    "OpenStack-API-Version": MICROVERSION,
    "Accept": "application/json",
}
FLAVOR = {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 40}
CANDIDATE_LIMIT = 50
MAX_PUTS = 20  # per placement; a placement that needs more counts as failed
CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]


# -- provider set -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProviderSpec:
    uuid: str
    name: str
    inventories: dict[str, dict[str, Any]]
    aggregates: tuple[str, ...] = ()


def fleet(count: int, seed: int) -> list[ProviderSpec]:
    """Compute hosts of 16-64 VCPU (ratio 4) and 64-256 GiB, seeded."""
    rng = random.Random(seed)
    specs = []
    for i in range(count):
        vcpu = rng.choice((16, 32, 48, 64))
        mem_gib = rng.choice((64, 128, 192, 256))
        specs.append(
            ProviderSpec(
                uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                name=f"cn{i:05d}",
                inventories={
                    "VCPU": {"total": vcpu, "allocation_ratio": 4.0},
                    "MEMORY_MB": {"total": mem_gib * 1024, "reserved": 512},
                    "DISK_GB": {"total": rng.choice((1000, 2000))},
                },
            )
        )
    return specs


def hot_set(round_no: int, count: int, free: int, seed: int) -> tuple[list[ProviderSpec], str]:
    """Providers of 8 VCPU (ratio 1) in one aggregate; a filler takes 8 - free."""
    rng = random.Random(f"{seed}-hot-{round_no}")
    agg = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
    specs = [
        ProviderSpec(
            uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
            name=f"hot{round_no:03d}-{i}",
            inventories={
                "VCPU": {"total": 8, "allocation_ratio": 1.0},
                "MEMORY_MB": {"total": 65536, "allocation_ratio": 1.0},
                "DISK_GB": {"total": 1000, "allocation_ratio": 1.0},
            },
            aggregates=(agg,),
        )
        for i in range(count)
    ]
    return specs, agg


# -- Placement API client -----------------------------------------------------
class ApiError(RuntimeError):
    pass


def _check(r: httpx.Response, *ok: int) -> httpx.Response:
    if r.status_code not in ok:
        raise ApiError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r


async def create_provider(c: httpx.AsyncClient, spec: ProviderSpec) -> None:
    r = _check(
        await c.post("/resource_providers", json={"uuid": spec.uuid, "name": spec.name}), 200
    )
    gen = r.json()["generation"]
    r = _check(
        await c.put(
            f"/resource_providers/{spec.uuid}/inventories",
            json={"resource_provider_generation": gen, "inventories": spec.inventories},
        ),
        200,
    )
    gen = r.json()["resource_provider_generation"]
    if spec.aggregates:
        _check(
            await c.put(
                f"/resource_providers/{spec.uuid}/aggregates",
                json={"aggregates": list(spec.aggregates), "resource_provider_generation": gen},
            ),
            200,
        )


async def run_bounded(n: int, jobs: list[Any]) -> None:
    sem = asyncio.Semaphore(n)

    async def one(job: Any) -> None:
        async with sem:
            await job

    await asyncio.gather(*(one(j) for j in jobs))


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers=HEADERS,
        timeout=300,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


async def populate(url: str, specs: list[ProviderSpec], clients: int) -> float:
    async with client(url) as c:
        r = _check(await c.get("/resource_providers"), 200)
        if r.json()["resource_providers"]:
            raise ApiError(f"{url} already has resource providers; the bench needs an empty one")
        t0 = time.perf_counter()
        await run_bounded(clients, [create_provider(c, s) for s in specs])
        return time.perf_counter() - t0


# -- the Nova flow ------------------------------------------------------------
@dataclass(slots=True)
class FlowStats:
    placed: int = 0
    no_candidates: int = 0
    failed: int = 0
    conflicts: int = 0
    refetches: int = 0
    conflict_codes: Counter[str] = field(default_factory=Counter)
    # 5xx answers: the placement is given up, as Nova gives up an instance
    # (a PUT's may or may not have applied: the usage check reads the truth).
    server_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    # provider uuid -> resource class -> amount the client saw accepted
    ledger: dict[str, Counter[str]] = field(default_factory=dict)


def _candidates_query(resources: dict[str, int], member_of: str | None) -> dict[str, str]:
    q = {
        "resources": ",".join(f"{rc}:{n}" for rc, n in resources.items()),
        "limit": str(CANDIDATE_LIMIT),
    }
    if member_of:
        q["member_of"] = member_of
    return q


def _error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["errors"][0].get("code", "?"))
    except (ValueError, KeyError, IndexError, TypeError):
        return "?"


def _server_error(r: httpx.Response, stats: FlowStats) -> bool:
    """Counts a 5xx (e.g. a store deadline under load) and says so; a 4xx
    other than the flow's own 409 still stops the run: that is a bug."""
    if r.status_code < 500:
        return False
    stats.server_errors[f"{r.status_code} {_error_code(r)}"] += 1
    return True


async def place_one(
    c: httpx.AsyncClient,
    rng: random.Random,
    stats: FlowStats,
    resources: dict[str, int],
    member_of: str | None = None,
) -> bool:
    """One Nova-style placement; False when no candidate is left."""
    consumer = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
    query = _candidates_query(resources, member_of)
    t0 = time.perf_counter()
    puts = 0
    while puts < MAX_PUTS:
        r = await c.get("/allocation_candidates", params=query)
        if _server_error(r, stats):
            return True
        _check(r, 200)
        reqs = r.json()["allocation_requests"]
        if not reqs:
            stats.no_candidates += 1
            return False
        while reqs and puts < MAX_PUTS:
            pick = reqs.pop(rng.randrange(len(reqs)))
            body = {
                "allocations": {
                    rp: {"resources": a["resources"]} for rp, a in pick["allocations"].items()
                },
                "project_id": "bench-project",
                "user_id": "bench-user",
                "consumer_generation": None,
                "consumer_type": "INSTANCE",
            }
            puts += 1
            r = await c.put(f"/allocations/{consumer}", json=body)
            if r.status_code == 204:
                stats.placed += 1
                stats.latencies.append(time.perf_counter() - t0)
                for rp, a in body["allocations"].items():
                    stats.ledger.setdefault(rp, Counter()).update(a["resources"])
                return True
            if _server_error(r, stats):
                return True
            if r.status_code != 409:
                _check(r, 204)
            stats.conflicts += 1
            stats.conflict_codes[_error_code(r)] += 1
        stats.refetches += 1
    stats.failed += 1
    return True


async def nova_flow(
    url: str, requests: int, clients: int, seed: int, max_seconds: float
) -> tuple[FlowStats, float]:
    stats = FlowStats()
    left = requests
    stop_at = time.monotonic() + max_seconds

    async def worker(n: int) -> None:
        nonlocal left
        rng = random.Random(f"{seed}-client-{n}")
        async with client(url) as c:
            while left > 0 and time.monotonic() < stop_at:
                left -= 1
                await place_one(c, rng, stats, FLAVOR)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return stats, time.perf_counter() - t0


async def race(url: str, agg: str, clients: int, seed: int, round_no: int) -> FlowStats:
    """Clients place VCPU:1 in the aggregate until no candidate is left."""
    stats = FlowStats()
    resources = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
    start = asyncio.Event()

    async def worker(n: int) -> None:
        rng = random.Random(f"{seed}-race-{round_no}-{n}")
        async with client(url) as c:
            await c.get("/")  # connect before the start line
            await start.wait()
            for _ in range(64):
                if not await place_one(c, rng, stats, resources, member_of=agg):
                    return

    tasks = [asyncio.create_task(worker(n)) for n in range(clients)]
    await asyncio.sleep(0.5)
    start.set()
    await asyncio.gather(*tasks)
    return stats


# -- overcommit check ---------------------------------------------------------
@dataclass(slots=True)
class Check:
    overcommitted: int = 0
    ledger_mismatch: int = 0
    examples: list[str] = field(default_factory=list)


async def check(url: str, uuids: list[str], ledger: dict[str, Counter[str]]) -> Check:
    out = Check()

    async def one(c: httpx.AsyncClient, rp: str) -> None:
        inv = _check(await c.get(f"/resource_providers/{rp}/inventories"), 200).json()
        use = _check(await c.get(f"/resource_providers/{rp}/usages"), 200).json()["usages"]
        over = False
        for rc, i in inv["inventories"].items():
            cap = math.floor((i["total"] - i["reserved"]) * i["allocation_ratio"])
            if use.get(rc, 0) > cap:
                over = True
                if len(out.examples) < 5:
                    out.examples.append(f"{rp} {rc}: used {use[rc]} > capacity {cap}")
        out.overcommitted += over
        seen = ledger.get(rp, Counter())
        if any(use.get(rc, 0) < n for rc, n in seen.items()):
            out.ledger_mismatch += 1

    async with client(url) as c:
        await run_bounded(8, [one(c, rp) for rp in uuids])
    return out


# -- processes ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    out = {pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.add(int(stat.parent.name))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes and their children."""
    ticks = 0
    for pid in {p for root in pids for p in _children(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/", headers=HEADERS, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if (proc and proc.poll() is not None) or time.monotonic() > deadline:
            sys.stderr.write(log.read_text() if log.exists() else "")
            raise SystemExit(f"{url} did not come up")
        time.sleep(0.2)


def start_claimant(
    work: Path, workers: int, store: str | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    store = store or "sqlite:///" + str(work / "claimant.db").lstrip("/")
    log = work / "claimant.log"
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            *("--store", store, "--port", str(port), "--workers", str(workers)),
            *("--no-access-log", "--log-level", "warning", "--expire-interval", "0"),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url, proc, log, 60)
    return url, proc


def start_placement(state: Path, port: int, workers: int) -> str:
    env = dict(os.environ, PLACEMENT_RESET="1")
    out = subprocess.run(
        ["bash", str(REFERENCE / "setup.sh"), str(state), str(port), str(workers)],
        check=True,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def placement_pids(state: Path) -> list[int]:
    pids = []
    for name in ("gunicorn.pid", "mariadb.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.append(int((state / name).read_text().split()[0]))
    return pids


def versions(state: Path | None) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        from importlib.metadata import version

        out["claimant"] = version("claimant")
    except Exception:  # not installed as a distribution: a source tree
        out["claimant"] = "source"
    # The working tree changes between runs: name the commit the figures belong to.
    git = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if git.returncode == 0:
        out["claimant_commit"] = git.stdout.strip()
    if state and (state / "venv/bin/python").exists():
        r = subprocess.run(
            [
                str(state / "venv/bin/python"),
                "-c",
                "import importlib.metadata as m;print(m.version('openstack-placement'))",
            ],
            capture_output=True,
            text=True,
        )
        out["openstack-placement"] = r.stdout.strip()
    r = (
        subprocess.run(["mariadbd", "--version"], capture_output=True, text=True)
        if _has("mariadbd")
        else None
    )
    if r and r.returncode == 0:
        out["mariadb"] = r.stdout.split("Ver", 1)[-1].split()[0]
    return out


def _has(cmd: str) -> bool:
    import shutil

    return shutil.which(cmd) is not None or Path("/usr/sbin", cmd).exists()


# -- one service --------------------------------------------------------------
@dataclass(slots=True)
class Result:
    name: str
    url: str
    populate_s: float = 0.0
    loadavg_start: float = 0.0
    loadavg_end: float = 0.0
    placements: int = 0
    wall_s: float = 0.0
    placements_per_s: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    conflicts: int = 0
    refetches: int = 0
    no_candidates: int = 0
    failed: int = 0
    conflict_codes: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    server_error_codes: dict[str, int] = field(default_factory=dict)
    overcommitted: int = 0
    ledger_mismatch: int = 0
    server_cpu_ms_per_placement: float = math.nan
    client_cpu_ms_per_placement: float = math.nan
    race_rounds: int = 0
    race_free_units: int = 0
    race_placed: int = 0
    race_conflicts: int = 0
    race_overcommitted: int = 0
    race_examples: list[str] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return (s[lo] + (s[hi] - s[lo]) * (k - lo)) * 1e3


def client_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def bench_one(
    name: str, url: str, specs: list[ProviderSpec], args: argparse.Namespace, pids: list[int]
) -> Result:
    res = Result(name, url)
    say(f"{name}: populating {len(specs)} providers at {url}")
    res.populate_s = await populate(url, specs, args.clients)
    say(
        f"{name}: {res.populate_s:.1f}s; Nova flow, {args.requests} placements, "
        f"{args.clients} clients"
    )
    res.loadavg_start = round(os.getloadavg()[0], 2)
    cpu0, ccpu0 = cpu_seconds(pids) if pids else math.nan, client_cpu()
    stats, wall = await nova_flow(url, args.requests, args.clients, args.seed, args.max_seconds)
    if pids:
        res.server_cpu_ms_per_placement = (cpu_seconds(pids) - cpu0) / max(stats.placed, 1) * 1e3
    res.client_cpu_ms_per_placement = (client_cpu() - ccpu0) / max(stats.placed, 1) * 1e3
    res.loadavg_end = round(os.getloadavg()[0], 2)
    res.placements, res.wall_s = stats.placed, wall
    res.placements_per_s = stats.placed / wall
    res.p50_ms, res.p99_ms = pct(stats.latencies, 50), pct(stats.latencies, 99)
    res.conflicts, res.refetches = stats.conflicts, stats.refetches
    res.no_candidates, res.failed = stats.no_candidates, stats.failed
    res.conflict_codes = dict(stats.conflict_codes)
    res.server_errors = sum(stats.server_errors.values())
    res.server_error_codes = dict(stats.server_errors)
    say(f"{name}: {res.placements_per_s:.1f} placements/s; checking usages")
    chk = await check(url, [s.uuid for s in specs], stats.ledger)
    res.overcommitted, res.ledger_mismatch = chk.overcommitted, chk.ledger_mismatch

    for rnd in range(args.contention_rounds):
        hot, agg = hot_set(rnd, args.hot_providers, args.free_units, args.seed)
        await populate_more(url, hot)
        async with client(url) as c:
            for h in hot:
                filler = str(uuidlib.uuid4())
                _check(
                    await c.put(
                        f"/allocations/{filler}",
                        json={
                            "allocations": {h.uuid: {"resources": {"VCPU": 8 - args.free_units}}},
                            "project_id": "bench-project",
                            "user_id": "bench-filler",
                            "consumer_generation": None,
                            "consumer_type": "INSTANCE",
                        },
                    ),
                    204,
                )
        st = await race(url, agg, args.race_clients, args.seed, rnd)
        chk = await check(url, [h.uuid for h in hot], {})
        res.race_rounds += 1
        res.race_free_units += args.free_units * len(hot)
        res.race_placed += st.placed
        res.race_conflicts += st.conflicts
        res.server_errors += sum(st.server_errors.values())
        for k, v in st.server_errors.items():
            res.server_error_codes[k] = res.server_error_codes.get(k, 0) + v
        res.race_overcommitted += chk.overcommitted
        res.race_examples += chk.examples[: 5 - len(res.race_examples)]
    if args.contention_rounds:
        say(
            f"{name}: race: {res.race_placed} placed for {res.race_free_units} free units, "
            f"{res.race_overcommitted} overcommitted"
        )
    return res


async def populate_more(url: str, specs: list[ProviderSpec]) -> None:
    async with client(url) as c:
        await run_bounded(8, [create_provider(c, s) for s in specs])


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- report -------------------------------------------------------------------
def table(results: list[Result], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Nova flow, {meta['providers']} providers, {meta['clients']} clients")
    t.add_column("")
    for r in results:
        t.add_column(r.name, justify="right")
    both = len(results) == 2
    if both:
        t.add_column("ratio", justify="right")

    def row(label: str, attr: str, fmt: str, ratio: str | None = None) -> None:
        vals = [getattr(r, attr) for r in results]
        cells = [
            format(v, fmt) if not isinstance(v, float) or not math.isnan(v) else "n/a" for v in vals
        ]
        if both:
            a, b = vals
            if ratio == "up" and b:
                cells.append(f"{a / b:.1f}x")
            elif ratio == "down" and a:
                cells.append(f"{b / a:.1f}x")
            else:
                cells.append("")
        t.add_row(label, *cells)

    row("placements/s", "placements_per_s", ".1f", "up")
    row("placements", "placements", "d")
    row("p50 per placement (ms)", "p50_ms", ".1f", "down")
    row("p99 per placement (ms)", "p99_ms", ".1f", "down")
    row("409 conflicts", "conflicts", "d")
    row("no candidates", "no_candidates", "d")
    row(f"failed (> {MAX_PUTS} PUTs)", "failed", "d")
    row("5xx answers (placement given up)", "server_errors", "d")
    row("overcommitted providers", "overcommitted", "d")
    row("usage < accepted allocations", "ledger_mismatch", "d")
    row("server CPU ms/placement", "server_cpu_ms_per_placement", ".2f", "down")
    row("client CPU ms/placement", "client_cpu_ms_per_placement", ".2f")
    row("populate (s)", "populate_s", ".1f")
    row("load average, start of the flow", "loadavg_start", ".1f")
    row("load average, end of the flow", "loadavg_end", ".1f")
    if any(r.race_rounds for r in results):
        row("race: free units", "race_free_units", "d")
        row("race: placed", "race_placed", "d")
        row("race: 409 conflicts", "race_conflicts", "d")
        row("race: overcommitted providers", "race_overcommitted", "d")
    console = Console()
    console.print(t)
    for r in results:
        if r.server_error_codes:
            codes = ", ".join(f"{k} x{v}" for k, v in sorted(r.server_error_codes.items()))
            console.print(f"{r.name} 5xx: {codes}")
    console.print(
        " ".join(f"{k}={v}" for k, v in meta.items() if k not in ("providers", "clients"))
    )
    for r in results:
        for ex in r.race_examples:
            console.print(f"{r.name} overcommit: {ex}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--claimant-url")
    ap.add_argument("--placement-url")
    ap.add_argument("--start-both", action="store_true", help="start both services")
    ap.add_argument("--only", choices=("claimant", "placement"), help="with --start-both")
    ap.add_argument("--workers", type=int, default=2, help="claimant uvicorn workers")
    ap.add_argument("--placement-workers", type=int, default=4, help="gunicorn workers")
    ap.add_argument(
        "--placement-state",
        type=Path,
        default=Path(tempfile.gettempdir()) / "claimant-placement-reference",
        help="state dir of the reference Placement (MariaDB datadir, venv, logs)",
    )
    ap.add_argument("--placement-port", type=int, default=8780)
    ap.add_argument(
        "--claimant-store",
        help="with --start-both: serve claimant on this store URL (e.g. an empty"
        " cassandra://127.0.0.1/nova_flow?rf=1) instead of a temporary SQLite file",
    )
    ap.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="also count this process (and its children) as claimant's server CPU,"
        " e.g. the Cassandra node's JVM; repeatable",
    )
    ap.add_argument("--providers", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=900,
        help="per service: stop starting placements after this long",
    )
    ap.add_argument("--save", type=Path, help="also write the JSON line to this file")
    ap.add_argument("--contention-rounds", type=int, default=5)
    ap.add_argument("--hot-providers", type=int, default=3)
    ap.add_argument("--free-units", type=int, default=2, help="free VCPU per hot provider")
    ap.add_argument("--race-clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = ap.parse_args()
    if not (args.start_both or args.claimant_url or args.placement_url):
        ap.error("give --start-both, or --claimant-url and/or --placement-url")
    if not 0 < args.free_units < 8:
        ap.error("--free-units must be 1..7")

    specs = fleet(args.providers, args.seed)
    started = versions(args.placement_state if args.start_both else None)
    targets: list[tuple[str, str, list[int]]] = []
    work = Path(tempfile.mkdtemp(prefix="claimant-nova-flow-"))
    proc = None
    state = args.placement_state if args.start_both else None
    try:
        if args.start_both and args.only != "placement":
            say(f"starting claimant (--workers {args.workers})")
            url, proc = start_claimant(work, args.workers, args.claimant_store)
            targets.append(("claimant", url, [proc.pid, *args.server_pid]))
        elif args.claimant_url:
            targets.append(("claimant", args.claimant_url.rstrip("/"), []))
        if args.start_both and args.only != "claimant":
            say(f"starting the reference Placement in {args.placement_state}")
            url = start_placement(args.placement_state, args.placement_port, args.placement_workers)
            targets.append(("placement", url, placement_pids(args.placement_state)))
        elif args.placement_url:
            targets.append(("placement", args.placement_url.rstrip("/"), []))
        results = [asyncio.run(bench_one(n, u, specs, args, p)) for n, u, p in targets]
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "providers": args.providers,
        "clients": args.clients,
        "requests": args.requests,
        "claimant_workers": args.workers,
        "claimant_store": (args.claimant_store or "sqlite").split("?")[0],
        "placement_workers": args.placement_workers,
        "cpus": os.cpu_count(),
        "loadavg": round(os.getloadavg()[0], 2),
        **started,
        **versions(state),
        "claimant_commit": started.get("claimant_commit", ""),
    }
    line = json.dumps({**meta, "results": [asdict(r) for r in results]}, default=str)
    if args.save:
        args.save.write_text(line + "\n")
    if args.json:
        print(line)
    else:
        table(results, meta)
    bad = [r for r in results if r.name == "claimant" and (r.overcommitted or r.race_overcommitted)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
