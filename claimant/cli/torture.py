"""``claimant torture``: run the fault-injection harness (docs/torture.md).

Exit status: 0 when the checker found nothing, 1 on any violation, 2 when
the run could not be set up (bad options, a process that would not start).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from claimant.cli.tunables import tool_logging
from claimant.torture.nemesis import ALL as NEMESES
from claimant.torture.workload import MIXES

EXIT_VIOLATIONS = 1
EXIT_SETUP = 2


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.option("--store", "store_url", required=True, help="Store URL the services use.")
@click.option(
    "--cluster-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The launcher's directory of the Cassandra nodes (for node faults).",
)
@click.option("--seconds", type=click.FloatRange(min=1), default=60, show_default=True)
@click.option(
    "--nemesis",
    "nemesis_spec",
    default="kill-service",
    show_default=True,
    help=f"Comma-separated faults, or none: {', '.join(NEMESES)}.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds clients and faults.")
@click.option("--clients", type=click.IntRange(1, 64), default=6, show_default=True)
@click.option(
    "--services",
    type=click.IntRange(1, 8),
    default=2,
    show_default=True,
    help="`claimant serve` processes sharing the store.",
)
@click.option(
    "--claim-ttl",
    type=click.FloatRange(min=1),
    default=8,
    show_default=True,
    help="Claim TTL of the run's schedulers; the run waits it out before checking leaks.",
)
@click.option(
    "--mix",
    type=click.Choice(sorted(MIXES)),
    default="mixed",
    show_default=True,
    help="mixed: every operation; moves: only Placement moves and capacity stealers.",
)
@click.option(
    "--shared-vcpu",
    type=click.IntRange(2, 10000),
    default=12,
    show_default=True,
    help="VCPU of each shared provider: lower means more writes failing part-way.",
)
@click.option(
    "--consumers",
    type=click.IntRange(1, 1000),
    default=8,
    show_default=True,
    help="Placement consumers shared by the clients: fewer means more racing writes.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where logs and agent configs go (default: a new temporary directory).",
)
@click.option(
    "--cells",
    "cells_spec",
    default=None,
    help="Comma-separated data centres, one service (at least) in each, agents spread over "
    "them (store URL dc= per process); default: the DCs of --cluster-dir when it has several.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@tool_logging
def torture(
    store_url: str,
    cluster_dir: Path | None,
    seconds: float,
    nemesis_spec: str,
    seed: int,
    clients: int,
    services: int,
    claim_ttl: float,
    mix: str,
    shared_vcpu: int,
    consumers: int,
    workdir: Path | None,
    cells_spec: str | None,
    as_json: bool,
) -> None:
    """Run real services, agents and a conductor under a mixed workload while
    a nemesis injects faults; check the store for lost, overcommitted or
    leaked resources."""
    from claimant.torture import SetupError, TortureConfig, run_torture
    from claimant.torture.nemesis import parse

    try:
        kinds = parse(nemesis_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--nemesis") from exc
    cfg = TortureConfig(
        store_url=store_url,
        seconds=seconds,
        nemeses=kinds,
        seed=seed,
        cluster_dir=cluster_dir,
        clients=clients,
        services=services,
        claim_ttl=claim_ttl,
        mix=mix,
        shared_vcpu=shared_vcpu,
        consumers=consumers,
        workdir=workdir,
        cells=[c.strip() for c in cells_spec.split(",") if c.strip()] if cells_spec else None,
    )
    try:
        result = run_torture(cfg, echo=_progress)
    except SetupError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        _summary(result)
    if result["violations"]:
        sys.exit(EXIT_VIOLATIONS)


def _summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=80)
    table = Table(title=f"claimant torture {result['run_id']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("store", result["store"])
    table.add_row("nemesis", ", ".join(result["nemesis"]) or "none")
    table.add_row("mix", result["mix"])
    if result["cells"]:
        table.add_row(
            "cells", ", ".join(f"{c}: {', '.join(s)}" for c, s in result["cells"].items())
        )
    table.add_row("seconds / seed", f"{result['seconds']:g} / {result['seed']}")
    table.add_row(
        "ops",
        f"{result['ops']} (acked {result['acked']}, failed {result['failed']}, "
        f"unknown {result['unknown']})",
    )
    faults = ", ".join(f"{k} {n}" for k, n in result["faults_by_kind"].items())
    table.add_row("faults", f"{result['faults']}" + (f" ({faults})" if faults else ""))
    for key in ("lost_acked", "over_capacity", "leaked_after_ttl"):
        n = result[key]
        table.add_row(key, f"[red]{n}[/red]" if n else "0")
    table.add_row("violations", str(len(result["violations"])))
    table.add_row("logs", result["workdir"])
    console.print(table)
    for note in result["not_checked"]:
        console.print(f"[yellow]{note}[/yellow]")
    for v in result["violations"][:20]:
        console.print(f"[red]{v['kind']}[/red] {v['message']}", soft_wrap=False)
        for op in v["ops"][-8:]:
            console.print(
                f"   {op['index']:>6} {op['process']:<8} {op['f']:<13} {op['type']:<6} "
                f"t={op['invoked']:.2f}"
            )
    if len(result["violations"]) > 20:
        console.print(f"... {len(result['violations']) - 20} more (use --json)")
