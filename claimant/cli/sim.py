"""``claimant sim``: run the loop (conductor, K schedulers, H agents with the
fake driver) in legacy (Nova FilterScheduler) or claimant mode, and report."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from claimant.model.errors import ClaimantError

if TYPE_CHECKING:  # imported lazily below: `claimant --help` stays fast
    from claimant.sim import SimResult
    from claimant.store import Store

LEVELS = (1, 2, 4, 8, 16)


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


def _table(results: list[SimResult]) -> None:
    from claimant.cli.output import Mode, Out

    # Two-line headings keep the table within 80 columns (issue 11).
    cols = (
        ("mode", "mode"),
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
    rows = []
    for r in results:
        cells = []
        for _, attr in cols:
            v = getattr(r, attr)
            cells.append(f"{v:.1f}" if isinstance(v, float) else str(v))
        rows.append(cells)
    titles = [title for title, _ in cols]
    Out(Mode.TABLE).table(titles, rows, title="claimant sim", right=titles[1:])


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
@click.option("--json", "as_json", is_flag=True, help="One JSON line per run.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Run both modes at 1, 2, 4, 8, 16 schedulers and write an SVG (or PNG) comparing them.",
)
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
    as_json: bool,
    plot: str | None,
) -> None:
    """Simulate the whole loop and measure races, retries and overcommit."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from claimant.sim import SimConfig, run
    from claimant.sim.plot import write_plot

    if plot:
        _check_plot_path(plot)
    runs = (
        [(m, k) for m in ("legacy", "claimant") for k in LEVELS] if plot else [(mode, schedulers)]
    )
    results = []
    try:
        with _store(store_url, wipe) as store:
            for m, k in runs:
                cfg = SimConfig(
                    mode=m,
                    hosts=hosts,
                    schedulers=k,
                    requests=requests,
                    seed=seed,
                    build_time=build_time,
                    failure_rate=failure_rate,
                    host_subset_size=host_subset_size,
                    max_attempts=max_attempts,
                )
                err = Console(stderr=True)
                with Progress(
                    TextColumn(f"{m} K={k}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=err,
                    transient=True,
                    disable=not err.is_terminal,
                ) as bar:
                    task = bar.add_task("requests", total=requests)
                    result = run(store, cfg, progress=lambda n: bar.advance(task, n))  # noqa: B023
                results.append(result)
                if as_json:
                    click.echo(json.dumps(result.to_dict(), sort_keys=True))
            if plot:
                caption = f"{hosts} hosts, {requests} requests, store {results[0].store}"
                write_plot(
                    plot,
                    {m: [r for r in results if r.mode == m] for m in ("legacy", "claimant")},
                    caption,
                )
    except ClaimantError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    if not as_json:
        _table(results)
        if plot:
            click.echo(f"wrote {plot}")
