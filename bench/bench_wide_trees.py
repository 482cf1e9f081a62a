"""Placement's own wide-tree requests, on claimant and on OpenStack Placement.

The shapes are those of Placement's functional tests for bug 2126751
(placement/tests/functional/test_allocation_candidates.py): computes with
VCPU 8, MEMORY_MB 4096, DISK_GB 500, each with N child providers ("PFs") of
CUSTOM_VF; the request is the root group DISK_GB:20,MEMORY_MB:2048,VCPU:2
plus G groups of CUSTOM_VF:1, group_policy=none, and a limit.

Every shape's trees are created through the Placement API of each service,
timed (median of --repeat GET /allocation_candidates), checked (the number
of candidates, every candidate within capacity and one group per VF), and
deleted again, so shapes never see each other's trees.

    .venv/bin/python bench/bench_wide_trees.py                   # claimant serve on SQLite
    .venv/bin/python bench/bench_wide_trees.py --store cassandra://127.0.0.1/bench_wide?rf=1
    .venv/bin/python bench/bench_wide_trees.py --against http://127.0.0.1:8780   # + Placement

``--against URL`` runs the same shapes on a running Placement service
(noauth2) and prints its times beside claimant's. A Placement request that
fails or takes longer than --timeout counts as failed, and that shape is not
repeated there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]
HEADERS = {
    "x-auth-token": "admin",
    "OpenStack-API-Version": "placement 1.38",
    "Accept": "application/json",
}
VF = "CUSTOM_VF"


@dataclass(frozen=True)
class Shape:
    name: str
    computes: int
    pfs: int
    vfs: int
    groups: int
    limit: int

    def expected(self) -> int:
        """How many candidates there are, capped by the limit."""
        per_tree = 1
        if self.vfs == 1:
            for i in range(self.groups):
                per_tree *= self.pfs - i
        else:
            per_tree = self.pfs**self.groups
        return min(self.limit, self.computes * max(per_tree, 0))


SHAPES = (
    Shape("8x8", 1, 8, 1, 8, 1000),
    Shape("8x6", 1, 8, 1, 6, 1000),
    Shape("21x8", 1, 21, 1, 8, 1000),
    Shape("21x16", 1, 21, 1, 16, 1000),
    Shape("21x21", 1, 21, 1, 21, 1000),
    Shape("2 x 21x8", 2, 21, 1, 8, 1000),
    Shape("2 x 21x21", 2, 21, 1, 21, 1000),
    Shape("2 x 32x32", 2, 32, 1, 32, 1000),
    Shape("2 x 48x48", 2, 48, 1, 48, 100),
    Shape("2 x 64x64", 2, 64, 1, 64, 10),
    Shape("2 x 8 PFs x 8 VFs, 4 groups", 2, 8, 8, 4, 1000),
)


def check(r: httpx.Response, *ok: int) -> httpx.Response:
    if r.status_code not in ok:
        raise SystemExit(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}")
    return r


def provider(c: httpx.Client, name: str, inventories: dict[str, int], parent: str | None) -> str:
    uuid = str(uuidlib.uuid4())
    body: dict[str, Any] = {"name": name, "uuid": uuid}
    if parent:
        body["parent_provider_uuid"] = parent
    check(c.post("/resource_providers", json=body), 200, 201)
    check(
        c.put(
            f"/resource_providers/{uuid}/inventories",
            json={
                "resource_provider_generation": 0,
                "inventories": {rc: {"total": n} for rc, n in inventories.items()},
            },
        ),
        200,
    )
    return uuid


@contextmanager
def trees(c: httpx.Client, shape: Shape) -> Iterator[dict[str, list[str]]]:
    tag = uuidlib.uuid4().hex[:8]
    made: dict[str, list[str]] = {}
    try:
        for i in range(shape.computes):
            root = provider(
                c, f"wide-{tag}-c{i}", {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 500}, None
            )
            made[root] = []
            for j in range(shape.pfs):
                made[root].append(provider(c, f"wide-{tag}-c{i}-pf{j}", {VF: shape.vfs}, root))
        yield made
    finally:
        for root, children in made.items():
            for u in children:
                c.delete(f"/resource_providers/{u}")
            c.delete(f"/resource_providers/{root}")


def query(shape: Shape) -> str:
    q = "resources=DISK_GB:20,MEMORY_MB:2048,VCPU:2"
    q += "".join(f"&resources{g}={VF}:1" for g in range(shape.groups))
    return f"/allocation_candidates?{q}&group_policy=none&limit={shape.limit}"


def validate(body: dict[str, Any], shape: Shape, made: dict[str, list[str]]) -> str | None:
    """None if the answer is right, else what is wrong with it."""
    areqs = body["allocation_requests"]
    if len(areqs) != shape.expected():
        return f"{len(areqs)} candidates, expected {shape.expected()}"
    for ar in areqs:
        allocs = ar["allocations"]
        roots = [u for u in allocs if u in made]
        if len(roots) != 1:
            return "a candidate spans trees"
        per_pf = [allocs[u]["resources"].get(VF, 0) for u in made[roots[0]] if u in allocs]
        if sum(per_pf) != shape.groups or max(per_pf) > shape.vfs:
            return "a candidate over capacity"
    return None


@dataclass
class Timing:
    median_ms: float | None
    candidates: int | None
    error: str | None = None
    cpu_ms: float | None = None  # server CPU per request, when the server is ours


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its children (Linux /proc)."""
    if pid is None:
        return 0.0
    pids = {pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(
    c: httpx.Client, shape: Shape, repeat: int, timeout: float, pid: int | None = None
) -> Timing:
    with trees(c, shape) as made:
        times: list[float] = []
        last: httpx.Response | None = None
        cpu0 = cpu_seconds(pid)
        for _ in range(repeat):
            t0 = time.perf_counter()
            try:
                r = c.get(query(shape), timeout=timeout)
            except httpx.TimeoutException:
                return Timing(None, None, f"no answer in {timeout:g} s")
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                return Timing(None, None, f"HTTP {r.status_code} after {elapsed / 1000:.1f} s")
            times.append(elapsed)
            last = r
        if last is None:
            return Timing(None, None, "no request made")
        body = last.json()  # parsed once: the client shares the machine's cores
        cpu = (cpu_seconds(pid) - cpu0) * 1000 / repeat if pid is not None else None
        wrong = validate(body, shape, made)
        return Timing(statistics.median(times), len(body["allocation_requests"]), wrong, cpu)


def start_claimant(work: Path, store: str) -> tuple[str, subprocess.Popen[bytes]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = work / "claimant.log"
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            *("--store", store, "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--log-level", "warning"),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/", headers=HEADERS, timeout=2).status_code == 200:
                return url, proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.stderr.write(log.read_text())
            proc.terminate()
            raise SystemExit("claimant serve did not come up")
        time.sleep(0.2)


def ensure_class(c: httpx.Client) -> None:
    check(c.put(f"/resource_classes/{VF}"), 201, 204)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="store URL for the claimant serve started here (SQLite)")
    ap.add_argument("--claimant-url", help="a running claimant instead of starting one")
    ap.add_argument("--against", help="a running Placement service (noauth2) to compare with")
    ap.add_argument("--repeat", type=int, default=7, help="requests per shape (median)")
    ap.add_argument("--placement-repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per Placement request")
    ap.add_argument("--only", action="append", help="shape names to run (repeatable)")
    args = ap.parse_args()
    shapes = [s for s in SHAPES if not args.only or s.name in args.only]
    proc = None
    with tempfile.TemporaryDirectory(prefix="bench-wide-") as tmp:
        url = args.claimant_url
        if url is None:
            store = args.store or "sqlite:///" + str(Path(tmp) / "claimant.db").lstrip("/")
            url, proc = start_claimant(Path(tmp), store)
        try:
            results = []
            with httpx.Client(base_url=url, headers=HEADERS, timeout=120) as c:
                ensure_class(c)
                for shape in shapes:
                    pid = proc.pid if proc is not None else None
                    results.append((shape, measure(c, shape, args.repeat, 120, pid)))
            ref: dict[str, Timing] = {}
            if args.against:
                with httpx.Client(base_url=args.against, headers=HEADERS, timeout=120) as p:
                    ensure_class(p)
                    for shape in shapes:
                        ref[shape.name] = measure(p, shape, args.placement_repeat, args.timeout)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average"
        f" {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; claimant {url}; CPU ms: the"
        " claimant server's CPU per request (ours only); ratio: Placement ms / claimant ms"
    )
    head = f"{'shape':30} {'limit':>5} {'candidates':>10} {'claimant ms':>11} {'CPU ms':>7}"
    if args.against:
        head += f" {'Placement ms':>12} {'ratio':>7}"
    print(head)
    for shape, t in results:
        line = f"{shape.name:30} {shape.limit:>5} {t.candidates or 0:>10} "
        line += f"{t.median_ms:>11.1f}" if t.median_ms is not None else f"{'-':>11}"
        line += f" {t.cpu_ms:>7.1f}" if t.cpu_ms is not None else f" {'':>7}"
        if args.against:
            r = ref[shape.name]
            if r.median_ms is None:
                line += f" {'failed':>12} {'':>7}  ({r.error})"
            else:
                ratio = r.median_ms / t.median_ms if t.median_ms else float("nan")
                line += f" {r.median_ms:>12.1f} {ratio:>6.1f}x"
                if r.error:
                    line += f"  (Placement: {r.error})"
        if t.error:
            line += f"  (claimant: {t.error})"
        print(line)
    return 1 if any(t.error or t.median_ms is None for _, t in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
