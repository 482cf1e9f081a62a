"""``claimant sim``: run the loop (conductor, K schedulers, H agents with the
fake driver) in legacy (Nova FilterScheduler) or claimant mode, and report."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from claimant.cli.errors import EXIT_ERROR, failure
from claimant.cli.tunables import tool_logging
from claimant.model.errors import ClaimantError

if TYPE_CHECKING:  # imported lazily below: `claimant --help` stays fast
    from rich.progress import Progress

    from claimant.cluster.launcher import Cluster
    from claimant.sim import CellsResult, DcStop, SimConfig, SimResult
    from claimant.store import Store

LEVELS = (1, 2, 4, 8, 16)
# A cluster `sim --cells` makes starts here, away from `claimant cluster`'s
# default (127.0.0.1), which a developer's own node may hold.
CELLS_BASE_ADDRESS = "127.0.0.101"


class SetupFailed(click.ClickException):
    """The run could not start (no Java or jars, ports taken, Cassandra not
    answering): exit 2, so scripts tell it from a run that found overcommit
    (exit 1)."""

    exit_code = 2


@contextlib.contextmanager
def _store(url: str | None, wipe: bool) -> Iterator[Store]:
    from claimant.store import open_store

    tmp = None
    if url is None:
        tmp = tempfile.mkdtemp(prefix="claimant-sim-")
        url = "sqlite:///" + os.path.join(tmp, "sim.db").lstrip("/")
    store = open_store(url)
    try:
        store.migrate()
        if tmp is None and not wipe and store.list_providers():
            raise ClaimantError(
                f"{url} holds providers; the simulator wipes its store: pass --wipe to allow it",
                code="invalid_input",
            )
        yield store
    finally:
        store.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(tmp, "sim.db"))


# Two-line headings keep the table within 80 columns (issue 11).
_COLS = (
    ("K", "schedulers"),
    ("placed", "placed"),
    ("no valid\nhost", "no_valid_host"),
    ("race\nfails", "build_failures_from_races"),
    ("retries", "retries"),
    ("CAS\nlost", "claim_conflicts"),
    ("over-\ncommit", "overcommitted_providers"),
    ("placed\n/s", "placements_per_s"),
    ("p99\nms", "p99_ms"),
)


def _row(r: SimResult, cols: tuple[tuple[str, str], ...]) -> list[str]:
    out = []
    for _, attr in cols:
        v = getattr(r, attr)
        out.append(f"{v:.1f}" if isinstance(v, float) else str(v))
    return out


def _table(results: list[SimResult]) -> None:
    from claimant.cli.output import Mode, Out

    cols = (("mode", "mode"), *_COLS)
    titles = [title for title, _ in cols]
    rows = [_row(r, cols) for r in results]
    Out(Mode.TABLE).table(titles, rows, title="claimant sim", right=titles[1:])


def render_cells(result: CellsResult, echo: Callable[[str], None] = click.echo) -> None:
    """The per-cell table, the failures by code, and with a DC stop the rate
    of each cell before and after it; 80 columns."""
    from claimant.cli.output import Mode, Out

    out = Out(Mode.TABLE)
    cols = (("cell", "cell"), ("failed", "requests_failed"), *_COLS)
    titles = [title for title, _ in cols]
    rows = []
    for c in result.cells:
        row = _row(c.result, cols[1:])
        row[-1] = f"{c.result.p99_ms:.0f}"  # a stopped DC's tail runs to minutes
        rows.append([c.cell, *row])
    out.table(titles, rows, title=f"claimant sim: {len(result.cells)} cells", right=titles[1:])
    for c in result.cells:
        codes = ", ".join(f"{k} x{n}" for k, n in c.failures.most_common()) or "none"
        took = "" if not c.error_latencies_ms else f" (p50 {_p50(c.error_latencies_ms)} ms)"
        for line in textwrap.wrap(f"{c.cell} failures: {codes}{took}", 80, subsequent_indent="  "):
            echo(line)
    stop = result.stop
    if stop is None:
        return
    if not stop["fired"]:
        echo(f"{stop['cell']} was not stopped: the run ended before {stop['at']}")
        return
    echo(
        f"{stop['cell']} stopped at {stop['began_s']:.1f} s (at {stop['at']}), down after "
        f"{stop['stopped_s'] - stop['began_s']:.1f} s; started again in {stop['restart_s']:.1f} s"
    )
    if "error" in stop:
        echo(f"the stop failed: {stop['error']}")
    titles = ["cell", "phase", "placed", "active", "failed", "placed/s", "p50 ms", "error p50 ms"]
    rows = []
    for c in result.cells:
        for ph in c.phases:
            d = ph.to_dict()
            rows.append(
                [c.cell, d["phase"], str(d["placed"]), str(d["requests_active"]),
                 str(d["requests_failed"]), f"{d['placements_per_s']:.1f}",
                 _dash(d["p50_ms"]), _dash(d["error_p50_ms"])]
            )  # fmt: skip
    out.table(titles, rows, title="before and after the stop", right=titles[2:])


def _p50(values: list[float]) -> str:
    ordered = sorted(values)
    return _ms(ordered[len(ordered) // 2])


def _ms(v: float) -> str:
    return f"{v:.1f}" if v < 10 else f"{v:.0f}"


def _dash(v: float | None) -> str:
    return "-" if v is None else _ms(v)


def _check_plot_path(path: str) -> None:
    """Fail before the runs, not after them."""
    lower = path.lower()
    if lower.endswith(".svg"):
        return
    if not lower.endswith(".png"):
        raise click.UsageError("--plot writes .svg or .png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.UsageError("--plot FILE.png needs matplotlib; write an .svg instead") from None


@click.command()
@click.option(
    "--mode", type=click.Choice(["legacy", "claimant"]), default="claimant", show_default=True
)
@click.option("--hosts", default=16, show_default=True, type=click.IntRange(1, 100000))
@click.option(
    "--schedulers", default=4, show_default=True, type=click.IntRange(1, 256), help="K threads."
)
@click.option("--requests", default=200, show_default=True, type=click.IntRange(1, 10**7))
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL; the run WIPES it. Default: a temporary SQLite file.",
)
@click.option("--wipe", is_flag=True, help="Allow wiping a --store that holds providers.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--build-time", default=0.005, show_default=True, type=click.FloatRange(min=0), help="Seconds."
)
@click.option("--failure-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--host-subset-size", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--max-attempts", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--claim-ttl",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds an unconfirmed claim lives (an agent retries a failing confirm that long).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per run.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Run both modes at 1, 2, 4, 8, 16 schedulers and write an SVG (or PNG) comparing them.",
)
@click.option(
    "--cells",
    type=click.IntRange(2, 9),
    default=None,
    help="Run across N cells (data centres) of a Cassandra cluster: per cell its own "
    "providers, K schedulers and a conductor, --hosts and --requests each. Without "
    "--cluster-dir, a cluster of N DCs x 1 node is made with the launcher and destroyed after.",
)
@click.option(
    "--cluster-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --cells: a running launcher cluster of N or more DCs. It is kept; the run's "
    "own keyspace is dropped.",
)
@click.option(
    "--base-address",
    default=CELLS_BASE_ADDRESS,
    show_default=True,
    help="With --cells and no --cluster-dir: the new cluster's first node (127.0.0.X).",
)
@click.option("--heap", default="512m", show_default=True, help="The new cluster's node heap.")
@click.option(
    "--cluster-timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to wait for each node to start.",
)
@click.option(
    "--stop-dc",
    default=None,
    metavar="DC",
    help="With --cells: stop this data centre (all its nodes) part-way through the run, "
    "and start it again after.",
)
@click.option(
    "--at",
    "stop_at",
    default="50%",
    show_default=True,
    help="When --stop-dc stops it: after S seconds ('30s') or once a share of all the "
    "requests has finished ('50%').",
)
@tool_logging
def sim(
    mode: str,
    hosts: int,
    schedulers: int,
    requests: int,
    store_url: str | None,
    wipe: bool,
    seed: int,
    build_time: float,
    failure_rate: float,
    host_subset_size: int,
    max_attempts: int,
    claim_ttl: float,
    as_json: bool,
    plot: str | None,
    cells: int | None,
    cluster_dir: Path | None,
    base_address: str,
    heap: str,
    cluster_timeout: float,
    stop_dc: str | None,
    stop_at: str,
) -> None:
    """Simulate the whole loop and measure races, retries and overcommit.

    Exit status: 0 when the run went through and nothing was overcommitted
    (failed requests are results, counted by code); 1 when a provider ended
    over capacity, or the run stopped on an error; 2 on bad options, or when
    the run could not be set up (with --cells: no Java or Cassandra jars,
    addresses in use, nodes down, the store not answering)."""
    from claimant.sim import SimConfig

    at = _check_options(mode, cells, cluster_dir, base_address, stop_dc, stop_at, plot, store_url)
    cfg = SimConfig(
        mode=mode,
        hosts=hosts,
        schedulers=schedulers,
        requests=requests,
        seed=seed,
        build_time=build_time,
        failure_rate=failure_rate,
        host_subset_size=host_subset_size,
        max_attempts=max_attempts,
        claim_ttl=claim_ttl,
    )
    if cells is None:
        _modes(cfg, store_url, wipe, plot, as_json)
        return
    result = _cells(
        cfg, cells, cluster_dir, base_address, heap, cluster_timeout, stop_dc, at, as_json
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), sort_keys=True))
    else:
        render_cells(result)
    if result.overcommitted_providers:
        raise click.exceptions.Exit(1)


def _check_options(
    mode: str,
    cells: int | None,
    cluster_dir: Path | None,
    base_address: str,
    stop_dc: str | None,
    stop_at: str,
    plot: str | None,
    store_url: str | None,
) -> tuple[float | None, float | None]:
    """Options that go only with --cells, or not with it; --at parsed."""
    if cells is None:
        for name, given in (
            ("--cluster-dir", cluster_dir is not None),
            ("--stop-dc", stop_dc is not None),
            ("--base-address", base_address != CELLS_BASE_ADDRESS),
        ):
            if given:
                raise click.UsageError(f"{name} goes with --cells N")
        return (None, None)
    if mode != "claimant":
        raise click.UsageError("--cells runs claimant mode only")
    if plot or store_url:
        raise click.UsageError(
            "--cells makes its own keyspace on a cluster: give --cluster-dir, not "
            + ("--plot" if plot else "--store")
        )
    return _parse_at(stop_at)


def _modes(
    cfg: SimConfig, store_url: str | None, wipe: bool, plot: str | None, as_json: bool
) -> None:
    """One run of ``cfg`` on one store, or with ``plot`` both modes at each
    of ``LEVELS`` schedulers; the table (or JSON lines) and the plot."""
    from claimant.sim.plot import write_plot

    if plot:
        _check_plot_path(plot)
    runs = (
        [(m, k) for m in ("legacy", "claimant") for k in LEVELS]
        if plot
        else [(cfg.mode, cfg.schedulers)]
    )
    results: list[SimResult] = []
    try:
        with _store(store_url, wipe) as store:
            for m, k in runs:
                result = _run(store, replace(cfg, mode=m, schedulers=k))
                results.append(result)
                if as_json:
                    click.echo(json.dumps(result.to_dict(), sort_keys=True))
            if plot:
                caption = f"{cfg.hosts} hosts, {cfg.requests} requests, store {results[0].store}"
                write_plot(
                    plot,
                    {m: [r for r in results if r.mode == m] for m in ("legacy", "claimant")},
                    caption,
                )
    except ClaimantError as exc:
        raise failure(exc, exit_code=EXIT_ERROR, as_json=as_json) from exc
    if not as_json:
        _table(results)
        if plot:
            click.echo(f"wrote {plot}")


def _run(store: Store, cfg: SimConfig) -> SimResult:
    """One run, with a progress bar on a terminal."""
    from claimant.sim import run

    with _progress(f"{cfg.mode} K={cfg.schedulers}") as bar:
        task = bar.add_task("requests", total=cfg.requests)
        return run(store, cfg, progress=lambda n: bar.advance(task, n))


def _progress(label: str) -> Progress:
    """A bar on stderr that leaves no trace, shown only on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = Console(stderr=True)
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _parse_at(text: str) -> tuple[float | None, float | None]:
    """'30s' or '30' -> (30, None); '50%' -> (None, 0.5)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(s|%)?\s*", text)
    if m is None or (m.group(2) == "%" and float(m.group(1)) > 100):
        raise click.UsageError(f"--at {text!r}: give seconds ('30s') or a share ('50%')")
    value = float(m.group(1))
    return (None, value / 100) if m.group(2) == "%" else (value, None)


def _with_option(url: str, key: str, value: str) -> str:
    # Edited as text: rf=dc1:1,dc2:1 stays readable.
    base, sep, query = url.partition("?")
    items = [i for i in query.split("&") if i and i.split("=", 1)[0] != key] if sep else []
    return f"{base}?{'&'.join([*items, f'{key}={value}'])}"


def _cells(
    cfg: SimConfig,
    count: int,
    cluster_dir: Path | None,
    base_address: str,
    heap: str,
    timeout: float,
    stop_dc: str | None,
    at: tuple[float | None, float | None],
    as_json: bool = False,
) -> CellsResult:
    """Set up the cells (a new cluster, or a keyspace on --cluster-dir),
    run, and clean up whatever the run made."""
    from claimant.cluster import ClusterError
    from claimant.cluster.launcher import Cluster

    made = cluster_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="claimant-sim-cells-")) if made else None
    cluster = Cluster(cluster_dir if cluster_dir is not None else Path(str(workdir)) / "cluster")
    stores: dict[str, Store] = {}
    try:
        try:
            if made:
                _echo(f"cluster up: {count} DCs x 1 node from {base_address} in {cluster.dir}")
                cluster.up(
                    count, dcs=count, base_address=base_address, heap=heap,
                    timeout=timeout, echo=_echo,
                )  # fmt: skip
            _open_cells(cluster, count, stop_dc, stores)
        except ClusterError as exc:
            raise SetupFailed(str(exc)) from exc
        except ClaimantError as exc:
            raise failure(exc, exit_code=SetupFailed.exit_code, as_json=as_json) from exc
        stop = None
        if stop_dc is not None:
            stop = _dc_stop(cluster, stop_dc, timeout, at)
        return _run_cells(stores, cfg, stop, as_json)
    finally:
        _clean_up(cluster, stores, workdir)


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _open_cells(
    cluster: Cluster, count: int, stop_dc: str | None, stores: dict[str, Store]
) -> None:
    """A store per cell in ``stores`` (filled as they open, so that a failure
    part-way closes those), on a new keyspace of ``cluster``, migrated."""
    from claimant.cluster import config as cluster_config
    from claimant.store import open_store

    state = cluster.load()
    names = cluster_config.dc_names(state.dcs)
    if state.dcs < count:
        raise SetupFailed(
            f"the cluster in {cluster.dir} has {state.dcs} data centre(s); "
            f"--cells {count} needs {count}"
        )
    down = [f"node{n.index} ({n.dc}) is {n.state}" for n in cluster.status()]
    down = [d for d in down if not d.endswith(" up")]
    if down:
        raise SetupFailed(f"every node must be up: {', '.join(down)}")
    names = names[:count]
    if stop_dc is not None and stop_dc not in names:
        raise SetupFailed(f"--stop-dc {stop_dc}: the run's cells are {', '.join(names)}")
    keyspace = f"sim_{secrets.token_hex(3)}"
    url = cluster.store_url().replace("/claimant?", f"/{keyspace}?", 1)
    # Bounded store calls: a request to a stopped DC fails, not hangs.
    url = _with_option(url, "timeout", "5")
    for name in names:
        stores[name] = open_store(_with_option(url, "dc", name))
    _echo(f"keyspace {keyspace}: migrating ...")
    stores[names[0]].migrate()


def _dc_stop(
    cluster: Cluster, dc: str, timeout: float, at: tuple[float | None, float | None]
) -> DcStop:
    from claimant.sim import DcStop

    return DcStop(
        dc,
        stop=lambda: _echo(f"stopping {dc}: {cluster.stop(dc=dc, timeout=60)}"),
        start=lambda: cluster.start(dc=dc, timeout=timeout, echo=_echo),
        at_s=at[0],
        at_fraction=at[1],
    )


def _run_cells(
    stores: dict[str, Store], cfg: SimConfig, stop: DcStop | None, as_json: bool = False
) -> CellsResult:
    """The run across ``stores``' cells, with a progress bar on a terminal."""
    from claimant.sim import run_cells

    with _progress(f"{len(stores)} cells K={cfg.schedulers}") as bar:
        task = bar.add_task("requests", total=cfg.requests * len(stores))
        try:
            return run_cells(stores, cfg, stop=stop, progress=lambda n: bar.advance(task, n))
        except ClaimantError as exc:
            raise failure(exc, exit_code=EXIT_ERROR, as_json=as_json) from exc


def _clean_up(cluster: Cluster, stores: dict[str, Store], workdir: Path | None) -> None:
    """Close the stores; drop the run's keyspace on a kept cluster, or
    destroy the cluster the run made (``workdir``)."""
    from claimant.cluster import ClusterError

    if stores and workdir is None:
        with contextlib.suppress(Exception):  # best effort: the keyspace is the run's own
            next(iter(stores.values())).drop()
    for s in stores.values():
        with contextlib.suppress(Exception):
            s.close()
    if workdir is not None:
        _echo("destroying the cluster ...")
        with contextlib.suppress(ClusterError, OSError):
            cluster.destroy(timeout=60)
        shutil.rmtree(str(workdir), ignore_errors=True)
